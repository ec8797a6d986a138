# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The first process of a local sandbox run inside bubblewrap (run by `open_r1.code.sandbox`, not by users).

Standalone on purpose (stdlib only, run with `python3 -I -S -c <this file>`): it is PID 1 of the run's PID namespace
(`bwrap --as-pid-1`), as the program's own unprivileged user, and judges the run. As the namespace's init it cannot be
stopped or killed from inside (the kernel drops such signals; it ignores the rest), every orphan comes to it, so the
CPU time of every process reaches it when the process ends (the seccomp filter refuses to ignore SIGCHLD, which would
let ended children vanish uncounted), and it checks the whole run's limits every 10 ms: CPU seconds
summed over every process (ended ones included), memory (the processes' resident sets, the files in the private /tmp
and the run's SysV shared memory; memfd_create and message queues are refused by the seccomp filter) and the number
of files in /tmp. A run over a limit is killed whole (`kill(-1)` from PID 1 reaches every other process of the
sandbox). Per-process rlimits (CPU, address space, file size, open files and the run's process count, which the kernel
counts in the run's own user namespace) back the checks up.

Protocol on stdin: one line with the byte length N of a JSON header, N bytes of header, then the program's own stdin
(left in the pipe for the step that reads it). The header holds `files` (name -> text, written into `workdir`),
`steps` (each `argv`, `limits` and `reads_stdin`; a failing step stops the run: compilation), `env` and `status_fd`,
where one JSON line says the run started and one per finished step gives its exit code, signal, CPU seconds, peak
memory and the limit that stopped it, if any (or the launcher's own failure: `{"error": ...}`).

`python3 -I launcher.py --seccomp-filter` writes the sandbox's seccomp program (BPF) to stdout instead; it needs
libseccomp's Python binding (Debian: python3-seccomp).
"""

import ctypes
import errno
import json
import os
import resource
import select
import signal
import sys


PR_SET_DUMPABLE = 4
IGNORED_BY_PID_1 = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
POLL_SECONDS = 0.01
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# Refused by the seccomp filter (EPERM): what no contest program needs and every container escape uses. clone3 gets
# ENOSYS (its flags cannot be inspected by seccomp), so the C library falls back to clone.
BLOCKED_SYSCALLS = (
    "acct add_key bpf delete_module finit_module fsconfig fsmount fsopen fspick init_module io_uring_enter "
    "io_uring_register io_uring_setup kexec_file_load kexec_load keyctl lookup_dcookie memfd_create mount mount_setattr "
    "move_mount msgget "
    "name_to_handle_at open_by_handle_at open_tree perf_event_open personality pivot_root process_vm_readv "
    "process_vm_writev ptrace quotactl reboot request_key setns swapoff swapon syslog umount2 unshare userfaultfd"
).split()


def write_seccomp_filter(out) -> None:
    import seccomp  # noqa: PLC0415 - the system's binding, only in this mode

    sandbox_filter = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in BLOCKED_SYSCALLS:
        try:
            sandbox_filter.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (RuntimeError, ValueError):  # a name this kernel's libseccomp does not know
            pass
    sandbox_filter.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    # Ignoring SIGCHLD (or SA_NOCLDWAIT) makes ended children vanish without their CPU time reaching anyone.
    sigchld = seccomp.Arg(0, seccomp.EQ, signal.SIGCHLD)
    sandbox_filter.add_rule(seccomp.ERRNO(errno.EPERM), "rt_sigaction", sigchld, seccomp.Arg(1, seccomp.NE, 0))
    sandbox_filter.export_bpf(out)


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


def set_limits(limits: dict) -> None:
    """Per-process backstops of the whole-run checks (the checks stop a run first)."""
    cpu = int(float(limits["cpu_seconds"])) + 1
    memory = int(limits["memory_mb"]) * 2**20
    file_size = int(limits["file_size_mb"]) * 2**20
    # The kernel counts processes per user of the run's own user namespace: this launcher and bubblewrap's init too.
    processes = int(limits["max_processes"]) + 2
    for kind, value in (
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (memory, memory)),
        (resource.RLIMIT_FSIZE, (file_size, file_size)),
        (resource.RLIMIT_NPROC, (processes, processes)),
        (resource.RLIMIT_NOFILE, (256, 256)),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        resource.setrlimit(kind, value)


def program_processes() -> list[str]:
    own = str(os.getpid())
    return [name for name in os.listdir("/proc") if name.isdigit() and name != own]


def live_usage() -> tuple[float, int]:
    """CPU seconds (each process's own and its ended children's) and resident bytes of the live program processes."""
    ticks, resident = 0, 0
    for pid in program_processes():
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{pid}/statm", "rb") as handle:
                pages = int(handle.read().split()[1])
        except (OSError, IndexError, ValueError):  # ended meanwhile
            continue
        ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        resident += pages * PAGE_BYTES
    return ticks / CLOCK_TICKS, resident


def ended_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tmp_usage(tmp_fd: int) -> tuple[int, int]:
    """(bytes, files) held in the private /tmp (an fd opened at start: renaming paths cannot point the check
    elsewhere)."""
    stats = os.fstatvfs(tmp_fd)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize, stats.f_files - stats.f_ffree


def shared_memory_bytes() -> int:
    """Resident bytes of the run's SysV shared memory segments (its own IPC namespace), mapped or not (a mapped one is
    in a resident set too: counted twice, on the safe side)."""
    try:
        with open("/proc/sysvipc/shm", "rb") as handle:
            rows = handle.read().splitlines()[1:]
    except OSError:
        return 0
    columns = [row.split() for row in rows]  # key shmid perms size cpid lpid nattch uid gid cuid cgid atime ... rss
    return sum(int(c[14]) for c in columns if len(c) > 14)


def reap(main_pid: int, statuses: dict) -> None:
    """Collect every ended child (orphans come to PID 1); the main process's status is kept."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid == main_pid:
            statuses["main"] = status


def kill_program() -> None:
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_step(step: dict, header: dict, workdir: str, tmp_fd: int) -> dict:
    limits = step["limits"]
    cpu_start = ended_cpu_seconds()
    files_start = tmp_usage(tmp_fd)[1]
    pid = os.fork()
    if pid == 0:
        try:
            for ignored in (*IGNORED_BY_PID_1, signal.SIGPIPE):  # ignored dispositions survive exec: the defaults
                signal.signal(ignored, signal.SIG_DFL)
            if not step["reads_stdin"]:
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(2, 1)  # a compiler's messages go to stderr
            os.chdir(workdir)
            set_limits(limits)
            os.execve(step["argv"][0], step["argv"], header["env"])
        except BaseException as error:  # noqa: BLE001 - reported, then the child dies
            os.write(2, f"sandbox: cannot start {step['argv'][0]}: {error}\n".encode())
        os._exit(127)
    process = os.pidfd_open(pid)
    statuses, stopped, peak = {}, None, 0
    memory_bytes = int(limits["memory_mb"]) * 2**20
    while "main" not in statuses:
        select.select([process], [], [], POLL_SECONDS)
        reap(pid, statuses)
        cpu, resident = live_usage()
        cpu += ended_cpu_seconds() - cpu_start
        tmp_bytes, files = tmp_usage(tmp_fd)
        held = resident + tmp_bytes + shared_memory_bytes()
        peak = max(peak, held)
        if cpu >= float(limits["cpu_seconds"]):
            stopped = "cpu"
        elif held > memory_bytes:
            stopped = "memory"
        elif files - files_start > int(limits["max_files"]):
            stopped = "files"
        if stopped:
            break
    os.close(process)
    # Whatever the program left running dies with its step; every process is reaped, so its CPU time is counted.
    # (Leaving PID 1 would kill them too, but a compiled program's run step comes after its compiler's.)
    kill_program()
    while True:
        try:
            waited, status = os.wait()
        except ChildProcessError:
            break
        if waited == pid:
            statuses["main"] = status
    status = statuses["main"]
    return {
        "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "cpu_seconds": ended_cpu_seconds() - cpu_start,
        "peak_memory_mb": peak / 2**20,
        "stopped": stopped,
    }


def main() -> None:
    # A handled signal could still be sent to PID 1 from inside; none is handled.
    for handled in IGNORED_BY_PID_1:
        signal.signal(handled, signal.SIG_IGN)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # the program (same user) cannot ptrace this process or open its fds
    header = read_header()
    status = os.fdopen(int(header["status_fd"]), "w")
    os.set_inheritable(status.fileno(), False)
    try:
        workdir = header["workdir"]
        os.makedirs(workdir, exist_ok=True)
        tmp_fd = os.open(os.path.dirname(workdir), os.O_RDONLY | os.O_DIRECTORY)
        for name, text in header["files"].items():
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        status.write(json.dumps({"started": True}) + "\n")
        status.flush()
        for index, step in enumerate(header["steps"]):
            result = run_step(step, header, workdir, tmp_fd)
            status.write(json.dumps({"step": index, **result}) + "\n")
            status.flush()
            if result["exit"] != 0 or result["stopped"]:
                break
    except Exception as error:  # noqa: BLE001 - the launcher's own failure, reported as the sandbox's
        status.write(json.dumps({"error": f"{type(error).__name__}: {error}"}) + "\n")
    status.close()
    sys.exit(0)


if __name__ == "__main__":
    if sys.argv[1:] == ["--seccomp-filter"]:
        write_seccomp_filter(sys.stdout.buffer)
    else:
        main()
