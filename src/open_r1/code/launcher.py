# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The first process inside the local sandbox's namespaces (run by `open_r1.code.sandbox`, not by users).

Standalone on purpose (stdlib only, run with `python -I -S`): it starts before anything else in the fresh
namespaces, as their root and as PID 1 of the new PID namespace, so every process the program starts dies with it.

Protocol on stdin: one line with the byte length N of a JSON header, N bytes of header, then the program's own stdin
(left in the pipe for the last step). The header holds `files` (name -> text, written into the work dir), `steps`
(argv lists run in order; only the last reads stdin, a failing earlier step stops the run: compilation), `limits`,
`uid` (the unprivileged user the steps run as, or null), `private_tmp` (mount fresh tmpfs over the world-writable
directories and make / read-only), `workdir` (used as is when `private_tmp` is false) and `status_fd` (where one JSON
line per finished step is written: exit code, signal, CPU seconds).
"""

import ctypes
import json
import os
import resource
import signal
import sys


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")


def read_exact(count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = os.read(0, count - len(data))
        if not chunk:
            raise EOFError("sandbox header cut short")
        data += chunk
    return data


def read_header() -> dict:
    length = b""
    while not length.endswith(b"\n"):
        byte = os.read(0, 1)
        if not byte:
            raise EOFError("sandbox header missing")
        length += byte
    return json.loads(read_exact(int(length)))


def mount(libc, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda s: s.encode() if s is not None else None  # noqa: E731
    if libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {target}: {os.strerror(error)}")


def private_filesystem(limits: dict) -> str:
    """Fresh tmpfs over every world-writable directory (nothing the program writes outlives it or is seen outside)
    and the rest of the tree read-only; returns the work dir."""
    libc = ctypes.CDLL(None, use_errno=True)
    mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    size = f"size={int(limits['file_size_mb']) * 4}m,mode=1777"
    for directory in WORLD_WRITABLE:
        if os.path.isdir(directory):
            mount(libc, "tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, size)
    # Best effort: a root that is not a mount point of its own (some containers) cannot be remounted.
    try:
        mount(libc, None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    except OSError:
        pass
    return "/tmp/work"


def set_limits(limits: dict) -> None:
    cpu = max(1, int(-(-float(limits["cpu_seconds"]) // 1)))
    memory = int(limits["memory_mb"]) * 2**20
    file_size = int(limits["file_size_mb"]) * 2**20
    for kind, value in (
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (memory, memory)),
        (resource.RLIMIT_FSIZE, (file_size, file_size)),
        (resource.RLIMIT_NPROC, (int(limits["max_processes"]),) * 2),
        (resource.RLIMIT_NOFILE, (256, 256)),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        resource.setrlimit(kind, value)


def run_step(argv: list[str], header: dict, workdir: str, reads_stdin: bool) -> dict:
    pid = os.fork()
    if pid == 0:
        try:
            if not reads_stdin:
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(2, 1)  # a compiler's messages go to stderr
            uid = header.get("uid")
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            os.chdir(workdir)
            set_limits(header["limits"])
            os.execve(argv[0], argv, header["env"])
        except BaseException as error:  # noqa: BLE001 - reported, then the child dies
            os.write(2, f"sandbox: cannot start {argv[0]}: {error}\n".encode())
        os._exit(127)
    # PID 1 reaps every orphan; the step's own status is the one of its PID.
    while True:
        waited, status, usage = os.wait4(-1, 0)
        if waited == pid:
            break
    return {
        "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


def main() -> None:
    header = read_header()
    status = os.fdopen(int(header["status_fd"]), "w")
    os.set_inheritable(status.fileno(), False)
    workdir = private_filesystem(header["limits"]) if header["private_tmp"] else header["workdir"]
    os.makedirs(workdir, exist_ok=True)
    for name, text in header["files"].items():
        with open(os.path.join(workdir, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    if header.get("uid") is not None:
        for path in [workdir, *(os.path.join(workdir, name) for name in header["files"])]:
            os.chown(path, header["uid"], header["uid"])
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    steps = header["steps"]
    for index, argv in enumerate(steps):
        result = run_step(argv, header, workdir, reads_stdin=index == len(steps) - 1)
        status.write(json.dumps({"step": index, **result}) + "\n")
        status.flush()
        if result["exit"] != 0:
            break
    status.close()
    # Leaving PID 1 kills whatever the program left running in the namespace.
    sys.exit(0)


if __name__ == "__main__":
    main()
