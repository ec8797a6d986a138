# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The local sandbox: run untrusted programs on the training machine, contained by bubblewrap.

Each run is a fresh `bwrap` sandbox (bubblewrap >= 0.8.0): new user, PID, network, IPC, UTS and cgroup namespaces, no
capability in any mode, no-new-privs, no nested user namespace, and a seccomp filter (built by the system's
python3-seccomp) that refuses mount, ptrace, keyctl, bpf, io_uring, unshare, memfd_create, message queues and
ignoring SIGCHLD. The program sees only what it needs: `/usr` (interpreter, compiler, their libraries; read-only,
nosuid, nodev), the loader's cache, minimal `/dev` and `/proc`, and a private `/tmp` (a tmpfs of `memory_mb`) holding
its work dir; the root itself is read-only. No host home, `/opt`, `/srv`, `/work`, repository, dataset or socket is
there (`/usr/local` is: where an image installs the trainer's Python there, programs can read its packages), and its
loopback reaches nothing outside. A root trainer runs programs as the unprivileged uid 61000; any other trainer as
itself, inside a user namespace where it holds no capability.

Limits hold for the whole run, every process the program starts included: the launcher (`open_r1/code/launcher.py`,
PID 1 of the run, which the program cannot stop or kill) checks them every 10 ms and kills the run: CPU seconds summed
over the processes (fractions kept), memory (resident sets, files in /tmp, SysV shared memory), files in /tmp; the
number of processes and threads is RLIMIT_NPROC, which the kernel counts in the run's own user namespace (two runs
never share it; a non-root trainer's runs also count toward its own user's limit, if it has one). Where the
machine gives writable cgroup v1 controllers (root, as here), each parallel slot also has a cgroup whose memory and
process limits the kernel enforces (page cache, tmpfs and kernel memory included). The parent enforces the wall time
and caps the output it keeps.

A machine without bubblewrap 0.8, python3-seccomp or user namespaces stops at the first use with the reason, the
packages to install and the external providers (`code_provider: e2b | morph | piston`). What it cannot contain: a
kernel exploit (the kernel is shared), CPU and memory bandwidth taken from the trainer beside it; and without a
writable cgroup v1 (non-root trainers, cgroup v2 hosts), memory the checks do not see: pages between two checks,
shared mappings written by a process that has ended, kernel buffers (pipes, sockets), each bounded by the
per-process limits (`memory_mb` of address space, `max_processes` processes).
"""

import functools
import json
import logging
import os
import queue
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
import weakref
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .execution import RunResult


logger = logging.getLogger(__name__)

LAUNCHER = Path(__file__).with_name("launcher.py")
PROGRAM_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp/work", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
WORKDIR = "/tmp/work"
# A root trainer runs the sandbox as this unprivileged uid (it owns no file on the host).
SANDBOX_UID = 61_000
# A run's cgroup holds the launcher and bubblewrap too (and their page cache): room for them above `memory_mb`.
CGROUP_OVERHEAD_MB = 64
INSTALL_HINT = "apt-get install bubblewrap python3-seccomp (Debian/Ubuntu; `make install` does it as root)"
BWRAP_VERSION = (0, 8, 0)  # --disable-userns


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: float = field(
        default=5.0, metadata={"help": "CPU seconds of the whole run: every process's time summed, fractions kept."}
    )
    wall_seconds: float = field(default=10.0, metadata={"help": "Wall seconds per run; then the sandbox is killed."})
    memory_mb: int = field(
        default=1024,
        metadata={"help": "MiB for the whole run: every process's resident memory plus the files in its /tmp."},
    )
    file_size_mb: int = field(default=16, metadata={"help": "Largest file a program may write, MiB (RLIMIT_FSIZE)."})
    max_files: int = field(default=4096, metadata={"help": "Files and directories a run may make in its /tmp."})
    max_processes: int = field(default=64, metadata={"help": "Processes and threads of the whole run."})
    max_output_bytes: int = field(default=1 << 20, metadata={"help": "stdout + stderr kept; more stops the run."})


class SandboxUnavailableError(RuntimeError):
    pass


def _world_executable(path: str) -> bool:
    """Whether any user may run `path` (every directory above it searchable by others, the file executable)."""
    parts = Path(path).resolve().parts
    for depth in range(1, len(parts) + 1):
        mode = Path(*parts[:depth]).stat().st_mode
        if not mode & 0o001:
            return False
    return True


@functools.cache  # the interpreter does not change during a run; looked up once, not per program
def program_python() -> str:
    """The interpreter the launcher and the programs run with: the system's `python3` (not the virtualenv: no
    training packages on its path), or the trainer's base interpreter where the system has none."""
    candidates = [
        shutil.which("python3", path=PROGRAM_ENV["PATH"]),
        os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
    ]
    for candidate in filter(None, candidates):
        if os.geteuid() != 0 or _world_executable(candidate):
            return os.path.realpath(candidate)
    raise SandboxUnavailableError(
        "No Python the sandbox's unprivileged user can run: the trainer's is inside a directory closed to other "
        "users and there is no python3 in /usr/bin or /usr/local/bin (apt-get install python3)."
    )


def _sandbox_uid() -> int | None:
    return SANDBOX_UID if os.geteuid() == 0 else None


def _filesystem() -> list[str]:
    """bwrap arguments for what programs see besides /tmp: /usr and the top-level links or directories into it."""
    view = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            view += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            view += ["--ro-bind", top, top]
    view += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    view += ["--ro-bind-try", "/etc/alternatives", "/etc/alternatives"]
    prefix = str(Path(program_python()).parent.parent)
    if not (prefix + "/").startswith("/usr/"):  # an interpreter outside /usr: its own installation, read-only
        view += ["--ro-bind", prefix, prefix]
    return view


def bwrap_command(memory_mb: int, seccomp_fd: int | None, info_fd: int | None = None) -> list[str]:
    command = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"]
    command += ["--as-pid-1", "--hostname", "sandbox", "--cap-drop", "ALL", "--clearenv"]
    command += [*_filesystem(), "--proc", "/proc", "--dev", "/dev"]
    command += ["--size", str(memory_mb * 2**20), "--tmpfs", "/tmp", "--symlink", "/tmp", "/var/tmp"]
    command += ["--remount-ro", "/dev", "--remount-ro", "/"]  # only /tmp is writable
    if seccomp_fd is not None:
        command += ["--seccomp", str(seccomp_fd)]
    if info_fd is not None:  # bubblewrap writes the sandbox's PID 1 there: {"child-pid": N}
        command += ["--info-fd", str(info_fd)]
    return command


@functools.cache
def seccomp_filter() -> bytes | str:
    """The seccomp program (BPF) every run loads, built once by the system's python3-seccomp; or why it cannot be."""
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if system_python is None:
        return "there is no /usr/bin/python3 to build the seccomp filter with"
    built = subprocess.run(
        [system_python, "-I", str(LAUNCHER), "--seccomp-filter"], capture_output=True, timeout=60, env=PROGRAM_ENV
    )
    if built.returncode == 0 and built.stdout:
        return built.stdout
    last_line = (built.stderr.decode(errors="replace").strip().splitlines() or [f"exit {built.returncode}"])[-1]
    return f"the seccomp filter cannot be built ({last_line}): python3-seccomp is missing"


def _bwrap_version_problem() -> str | None:
    try:
        reply = subprocess.run(["bwrap", "--version"], capture_output=True, text=True, timeout=30).stdout.split()
        version = tuple(int(part) for part in reply[-1].split("."))
    except (OSError, subprocess.TimeoutExpired, IndexError, ValueError):
        return "`bwrap --version` did not say its version"
    wanted = ".".join(map(str, BWRAP_VERSION))
    return None if version >= BWRAP_VERSION else f"bubblewrap {reply[-1]} is older than {wanted}"


_PROBE_LOCK = threading.Lock()
_PROBED: dict[str, str | None] = {}


def isolation_problem() -> str | None:
    """None when bubblewrap can make the sandbox here, else why not (probed once per process)."""
    with _PROBE_LOCK:
        if "bwrap" not in _PROBED:
            if shutil.which("bwrap") is None:
                _PROBED["bwrap"] = "bubblewrap (`bwrap`) is not installed"
            elif (too_old := _bwrap_version_problem()) is not None:
                _PROBED["bwrap"] = too_old
            elif isinstance(seccomp_filter(), str):
                _PROBED["bwrap"] = seccomp_filter()
            else:
                command = [*bwrap_command(16, None), "/usr/bin/true"]
                uid = _sandbox_uid()
                ids = {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}
                try:
                    probe = subprocess.run(command, capture_output=True, text=True, timeout=30, env=PROGRAM_ENV, **ids)
                    _PROBED["bwrap"] = (
                        None
                        if probe.returncode == 0
                        else f"`bwrap` failed: {probe.stderr.strip() or probe.returncode}"
                    )
                except (OSError, subprocess.TimeoutExpired) as error:
                    _PROBED["bwrap"] = f"`bwrap` could not run: {error}"
        return _PROBED["bwrap"]


class SlotCgroup:
    """A cgroup v1 (memory and pids controllers) under the trainer's own, where those are writable (root): the kernel's
    hard limits on a whole run. One per parallel slot, reused run after run (making and removing a memory cgroup per
    run cost ~10 ms); `start(limits)` sets a run's limits, and `procs_files()` are what the run's first process writes
    its pid into before it starts bubblewrap, so every process of the run is born inside."""

    CONTROLLERS = ("memory", "pids")

    @staticmethod
    @functools.cache
    def parents() -> dict[str, Path] | None:
        """The trainer's own cgroup directory of each controller, where all are writable; else None."""
        if os.geteuid() != 0:
            return None
        try:
            memberships = Path("/proc/self/cgroup").read_text().splitlines()
            mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        except OSError:
            return None
        # mountinfo: id parent dev root mount-point options ... - fstype source super-options
        mounted = {}
        for line in mounts:
            fields, _, tail = line.partition(" - ")
            fields, tail = fields.split(), tail.split()
            if len(tail) >= 3 and tail[0] == "cgroup":
                for controller in set(tail[2].split(",")) & set(SlotCgroup.CONTROLLERS):
                    mounted[controller] = (fields[3], Path(fields[4]))
        found = {}
        for line in memberships:
            _, controllers, path = line.split(":", 2)
            for controller in set(controllers.split(",")) & set(mounted):
                root, mount_point = mounted[controller]
                relative = os.path.relpath(path, root)  # the mount shows the hierarchy from `root` down
                directory = mount_point if relative == "." else mount_point / relative
                if not relative.startswith("..") and (directory / "cgroup.procs").exists():
                    if os.access(directory, os.W_OK):
                        found[controller] = directory
        return found if len(found) == len(SlotCgroup.CONTROLLERS) else None

    def __init__(self, uid: int):
        name = f"open_r1_sandbox_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        self.directories = {c: parent / name for c, parent in self.parents().items()}
        for directory in self.directories.values():
            directory.mkdir()
            os.chown(directory / "cgroup.procs", uid, uid)
        self._oom_kills_before = 0

    def start(self, limits: SandboxLimits) -> None:
        self._kill_members()  # a process of the slot's last run still ending must not count in this one
        memory = self.directories["memory"]
        limit = str((limits.memory_mb + CGROUP_OVERHEAD_MB) * 2**20)
        swap = memory / "memory.memsw.limit_in_bytes"  # memory + swap: no swapping past the limit either
        if swap.exists():
            swap.write_text("-1")  # memsw may never be below the memory limit: lift it, set both
        (memory / "memory.limit_in_bytes").write_text(limit)
        if swap.exists():
            swap.write_text(limit)
        (self.directories["pids"] / "pids.max").write_text(str(limits.max_processes + 8))
        self._oom_kills_before = self._oom_kills()

    def _oom_kills(self) -> int:
        try:
            control = (self.directories["memory"] / "memory.oom_control").read_text()
        except OSError:
            return 0
        counts = dict(line.split() for line in control.splitlines() if len(line.split()) == 2)
        return int(counts.get("oom_kill", 0))

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the run since `start` for going over the memory limit."""
        return self._oom_kills() > self._oom_kills_before

    def procs_files(self) -> list[str]:
        return [str(directory / "cgroup.procs") for directory in self.directories.values()]

    def _kill_members(self) -> None:
        for directory in self.directories.values():
            _kill_cgroup_members(directory)

    def finish(self) -> None:
        """Kill what is left of a run and wait (up to 2 s) until its processes are gone, so the next run's limits
        can be set and nothing of this run counts in it."""
        deadline = time.monotonic() + 2
        while any((d / "cgroup.procs").read_text().strip() for d in self.directories.values()):
            self._kill_members()
            if time.monotonic() > deadline:
                break
            time.sleep(0.002)

    def remove(self) -> None:
        """Kill anything left in the slot's cgroups, then remove them."""
        deadline = time.monotonic() + 5
        for directory in self.directories.values():
            while True:
                try:
                    _kill_cgroup_members(directory)
                    directory.rmdir()
                    break
                except FileNotFoundError:  # removed (its name may stay listed while ended processes are reaped)
                    break
                except OSError:  # busy: a process was still ending
                    if time.monotonic() > deadline:
                        logger.warning("sandbox: could not remove %s", directory)
                        break
                    time.sleep(0.005)


def _kill_cgroup_members(directory: Path) -> None:
    for pid in (directory / "cgroup.procs").read_text().split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


@functools.cache
def _log_mode_once(with_cgroups: bool) -> None:
    kernel = (
        "and the kernel's through a cgroup v1 per slot"
        if with_cgroups
        else "only (no writable cgroup v1 here: a non-root trainer or a cgroup v2 host)"
    )
    user = "uid 61000" if _sandbox_uid() is not None else "the trainer's own uid, without capabilities"
    logger.info(
        "Local code sandbox: bubblewrap and seccomp, programs as %s; whole-run limits by its launcher %s.",
        user,
        kernel,
    )


def _remove_cgroups(cgroups: list[SlotCgroup]) -> None:
    for cgroup in cgroups:
        cgroup.remove()


# The run's first process joins its slot's cgroups, then becomes bubblewrap.
JOIN_CGROUPS = 'for f do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"'


def _judge(statuses: list[dict], steps: list[dict], reason: str | None, failure: str | None, oom_killed: bool):
    """(status, exit code, signal) of a run from its steps' status lines, the parent's own stop reason (wall time,
    output cap), the launcher's failure and whether the kernel killed something of the run for memory."""
    if reason is not None:
        return reason, None, None
    if not statuses:  # no step ended: the kernel killed the run for memory, or the launcher failed or never started
        return ("memory_limit" if oom_killed else "sandbox_error"), None, None
    last = statuses[-1]
    if len(steps) > 1 and last["step"] == 0 and (last["exit"] != 0 or last["stopped"]):
        return "compile_error", last["exit"], None
    if last["stopped"] == "cpu" or last["signal"] == signal.SIGXCPU:
        return "timeout", None, None
    if last["cpu_seconds"] >= steps[last["step"]]["limits"].cpu_seconds:
        return "timeout", None, None  # it ended between two checks, over its time
    if oom_killed or last["stopped"] == "memory":
        return "memory_limit", None, None
    if failure is not None or last["step"] != len(steps) - 1:
        return "sandbox_error", None, None  # the launcher failed: not the program's doing
    if last["stopped"] == "files":
        return "file_limit", None, None
    if last["signal"] is not None:
        return "signal", None, last["signal"]
    if last["exit"] != 0:
        return "error", last["exit"], None
    return "ok", 0, None


class LocalSandbox:
    """Runs programs contained (module docstring). Thread-safe: `parallel` runs at once."""

    LANGUAGES = ("python", "cpp")

    def __init__(self, limits: SandboxLimits | None = None, parallel: int = 2):
        self.limits = limits or SandboxLimits()
        reason = isolation_problem()
        if reason is not None:
            raise SandboxUnavailableError(
                f"The local code sandbox cannot isolate programs on this machine: {reason}. It needs bubblewrap and "
                f"user namespaces ({INSTALL_HINT}; where user namespaces are off: sysctl "
                "kernel.unprivileged_userns_clone=1 / user.max_user_namespaces). Or run programs elsewhere: "
                "`code_provider: e2b`, `morph` or `piston`."
            )
        self.launcher_source = LAUNCHER.read_text()
        uid = _sandbox_uid()
        self._slots: queue.Queue[SlotCgroup | None] = queue.Queue()
        cgroups = [
            SlotCgroup(uid) if uid is not None and SlotCgroup.parents() else None for _ in range(max(1, parallel))
        ]
        for cgroup in cgroups:
            self._slots.put(cgroup)
        weakref.finalize(self, _remove_cgroups, [cgroup for cgroup in cgroups if cgroup is not None])
        _log_mode_once(cgroups[0] is not None)

    def steps(self, language: str, limits: SandboxLimits) -> list[dict]:
        if language == "python":
            return [{"argv": [program_python(), "-I", "main.py"], "limits": limits}]
        if language == "cpp":
            compiler = shutil.which("g++", path=PROGRAM_ENV["PATH"])
            if compiler is None:
                raise SandboxUnavailableError("C++ programs need g++ on this machine (apt-get install g++).")
            # Compilers need more room and time than the programs they build.
            compiling = replace(limits, memory_mb=max(limits.memory_mb, 2048), cpu_seconds=max(limits.cpu_seconds, 30))
            compile_step = {"argv": [compiler, "-O2", "-std=gnu++17", "-o", "main", "main.cpp"], "limits": compiling}
            return [compile_step, {"argv": ["./main"], "limits": limits}]
        raise ValueError(f"The local sandbox runs {self.LANGUAGES}, not {language!r}.")

    def run(
        self,
        source: str,
        language: str = "python",
        stdin: str = "",
        extra_files: dict[str, str] | None = None,
        arguments: tuple[str, ...] = (),
        limits: SandboxLimits | None = None,
    ) -> RunResult:
        """Run `source` (a whole program) with `stdin` and command-line `arguments`, `extra_files` beside it in the
        work dir, under `limits` (the sandbox's own by default); stdout/stderr decoded as UTF-8 with replacement."""
        limits = limits or self.limits
        steps = self.steps(language, limits)
        steps[-1]["argv"] = [*steps[-1]["argv"], *arguments]
        for index, step in enumerate(steps):
            step["reads_stdin"] = index == len(steps) - 1
        files = {("main.py" if language == "python" else "main.cpp"): source, **(extra_files or {})}
        cgroup = self._slots.get()
        try:
            return self._run(files, steps, stdin, limits, cgroup)
        finally:
            self._slots.put(cgroup)

    def _run(
        self, files: dict, steps: list[dict], stdin: str, limits: SandboxLimits, cgroup: SlotCgroup | None
    ) -> RunResult:
        # The tmpfs and the cgroup are sized for the hungriest step (a compiler); the launcher holds each step to its
        # own limits.
        largest = max((step["limits"] for step in steps), key=lambda step_limits: step_limits.memory_mb)
        uid = _sandbox_uid()
        status_read, status_write = os.pipe()
        filter_read, filter_write = os.pipe()
        os.write(filter_write, seccomp_filter())  # a few hundred bytes: within the pipe's buffer
        os.close(filter_write)
        info_read, info_write = os.pipe()
        passed = (status_write, filter_read, info_write)
        command = bwrap_command(largest.memory_mb, filter_read, info_write)
        try:
            if cgroup is not None:
                try:
                    cgroup.start(largest)
                except OSError as error:
                    return RunResult("sandbox_error", stderr=f"cannot set the run's cgroup limits: {error}")
                command = ["/bin/sh", "-c", JOIN_CGROUPS, "sh", *cgroup.procs_files(), "--", *command]
            command += [program_python(), "-I", "-S", "-c", self.launcher_source]
            header = json.dumps(
                {
                    "files": files,
                    "steps": [{**step, "limits": asdict(step["limits"])} for step in steps],
                    "workdir": WORKDIR,
                    "status_fd": status_write,
                    "env": PROGRAM_ENV,
                }
            ).encode()
            ids = {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}
            started = time.perf_counter()
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    pass_fds=passed,
                    start_new_session=True,
                    env=PROGRAM_ENV,
                    **ids,
                )
            except OSError as error:
                return RunResult("sandbox_error", stderr=f"cannot start the sandbox: {error}")
            finally:
                for fd in passed:
                    os.close(fd)
                passed = ()
            try:
                out, err, reason = self._communicate(
                    process, f"{len(header)}\n".encode() + header + stdin.encode(), limits
                )
            finally:
                if process.poll() is None:
                    self._kill(process, info_read)
                process.wait()
            with os.fdopen(status_read) as status_file:
                status_read = None
                lines = [json.loads(line) for line in status_file.read().splitlines() if line.strip()]
            oom_killed = cgroup is not None and cgroup.oom_killed()
        finally:
            for fd in (*passed, status_read, info_read):
                if fd is not None:
                    os.close(fd)
            if cgroup is not None:
                cgroup.finish()
        statuses = [line for line in lines if "step" in line]
        result = RunResult(
            "ok",
            stdout=out.decode("utf-8", errors="replace"),
            stderr=err.decode("utf-8", errors="replace"),
            wall_seconds=time.perf_counter() - started,
            cpu_seconds=sum(s["cpu_seconds"] for s in statuses),
            peak_memory_mb=max((s["peak_memory_mb"] for s in statuses), default=0.0),
        )
        failure = next((line["error"] for line in lines if "error" in line), None)
        result.status, result.exit_code, result.signal = _judge(statuses, steps, reason, failure, oom_killed)
        if failure is not None:
            result.stderr += f"\nsandbox: the launcher failed: {failure}"
        return result

    @staticmethod
    def _kill(process: subprocess.Popen, info_fd: int) -> None:
        """Kill the sandbox's PID 1 (the launcher), which takes its whole PID namespace along, and let bubblewrap reap
        it and exit; killing bubblewrap instead would leave the launcher's zombie to whatever reaps the trainer's
        orphans. The session (bubblewrap, the cgroup joiner) is killed if that does not end it."""
        os.set_blocking(info_fd, False)
        try:
            os.kill(int(json.loads(os.read(info_fd, 4096))["child-pid"]), signal.SIGKILL)
            process.wait(timeout=2)
            return
        except (OSError, ValueError, KeyError, TypeError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _communicate(self, process: subprocess.Popen, data: bytes, limits: SandboxLimits):
        """Write stdin and read stdout/stderr without blocking on either (a program that never reads its input must
        not hang the harness), until both close, the wall time passes or the output cap is reached."""
        deadline = time.perf_counter() + limits.wall_seconds
        outputs = {process.stdout.fileno(): bytearray(), process.stderr.fileno(): bytearray()}
        selector = selectors.DefaultSelector()
        for stream in (process.stdout, process.stderr):
            os.set_blocking(stream.fileno(), False)
            selector.register(stream.fileno(), selectors.EVENT_READ)
        stdin_fd = process.stdin.fileno()
        os.set_blocking(stdin_fd, False)
        selector.register(stdin_fd, selectors.EVENT_WRITE)
        view, reason, open_outputs = memoryview(data), None, 2
        try:
            while open_outputs:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    reason = "timeout"
                    break
                for key, _ in selector.select(timeout=min(remaining, 0.5)):
                    fd = key.fd
                    if fd == stdin_fd:
                        try:
                            written = os.write(fd, view[:65536])
                        except (BrokenPipeError, BlockingIOError) as error:
                            written = len(view) if isinstance(error, BrokenPipeError) else 0
                        view = view[written:]
                        if not len(view):
                            selector.unregister(fd)
                            process.stdin.close()
                        continue
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        selector.unregister(fd)
                        open_outputs -= 1
                        continue
                    outputs[fd] += chunk
                    if sum(len(o) for o in outputs.values()) > limits.max_output_bytes:
                        reason = "output_limit"
                        break
                if reason:
                    break
        finally:
            selector.close()
            if not process.stdin.closed:
                try:
                    process.stdin.close()
                except BrokenPipeError:
                    pass
        if reason is None:
            try:
                process.wait(timeout=max(0.1, deadline - time.perf_counter()))
            except subprocess.TimeoutExpired:
                reason = "timeout"
        out, err = (bytes(outputs[s.fileno()])[: limits.max_output_bytes] for s in (process.stdout, process.stderr))
        return out, err, reason
