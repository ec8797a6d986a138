# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The local sandbox: run untrusted programs on the training machine, contained.

Each run is a fresh set of Linux namespaces made by util-linux's `unshare` (network: only a loopback that is down,
so no socket reaches anything, 127.0.0.1 included; mount: fresh tmpfs over /tmp, /var/tmp, /dev/shm, the rest
read-only; PID: the program's processes die with it, `/proc` shows only them). Inside, `open_r1/code/launcher.py`
runs the program as an unprivileged user of its own (one uid per parallel slot) under `setrlimit` limits on CPU
time, address space, file size, process count and open files, in a throw-away work dir, with an environment of a few
fixed variables (nothing of the trainer's: no tokens, no keys). The parent enforces the wall-time limit (the whole
namespace is SIGKILLed) and caps the output it keeps.

A machine where namespaces cannot be made (no root and no unprivileged user namespaces) gets a clear error at the
first use; `unisolated=True` (recipe key `code_sandbox_unisolated`) runs with the resource limits, the clean
environment and a temporary work dir only: no network isolation, shared /tmp, processes that call setsid may outlive
the run. Use an external provider (`code_provider: e2b | morph | piston`) there instead.
"""

import functools
import json
import os
import queue
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .execution import RunResult


LAUNCHER = Path(__file__).with_name("launcher.py")
# The launcher runs as (namespace) root with the trainer's own interpreter.
LAUNCHER_PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
PROGRAM_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp/work", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
# Sandboxed programs run as these uids (root parent only): one per parallel slot, so the process limit is per run.
UID_BASE = 61_000


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: float = field(default=5.0, metadata={"help": "CPU seconds per program run (RLIMIT_CPU)."})
    wall_seconds: float = field(default=10.0, metadata={"help": "Wall seconds per run; then the namespace is killed."})
    memory_mb: int = field(default=1024, metadata={"help": "Address space per process, MiB (RLIMIT_AS)."})
    file_size_mb: int = field(default=16, metadata={"help": "Largest file a program may write, MiB (RLIMIT_FSIZE)."})
    max_processes: int = field(default=64, metadata={"help": "Processes (threads too) of the run's user."})
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
    """The interpreter the programs run with: a system `python3` the sandbox's unprivileged user can execute (not
    the virtualenv: no training packages on its path); the trainer's own when it runs unprivileged anyway."""
    candidates = [shutil.which("python3", path=PROGRAM_ENV["PATH"]), LAUNCHER_PYTHON]
    for candidate in filter(None, candidates):
        if os.geteuid() != 0 or _world_executable(candidate):
            return os.path.realpath(candidate)
    raise SandboxUnavailableError(
        f"No Python the sandbox's unprivileged user can run: {LAUNCHER_PYTHON} is inside a directory closed to other "
        "users and there is no python3 in /usr/bin or /usr/local/bin (apt-get install python3)."
    )


def _namespace_prefix() -> list[str]:
    base = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
    return base if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", *base[1:]]


_PROBE_LOCK = threading.Lock()
_PROBED: dict[str, str | None] = {}


def namespaces_available() -> str | None:
    """None when `unshare` can make the sandbox's namespaces here, else why not (probed once per process)."""
    with _PROBE_LOCK:
        if "namespaces" not in _PROBED:
            if shutil.which("unshare") is None:
                _PROBED["namespaces"] = "the `unshare` command (util-linux) is not installed"
            else:
                try:
                    probe = subprocess.run(
                        [*_namespace_prefix(), "true"], capture_output=True, text=True, timeout=30, env=PROGRAM_ENV
                    )
                    _PROBED["namespaces"] = (
                        None
                        if probe.returncode == 0
                        else f"`{' '.join(_namespace_prefix())} true` failed: "
                        f"{probe.stderr.strip() or probe.returncode}"
                    )
                except (OSError, subprocess.TimeoutExpired) as error:
                    _PROBED["namespaces"] = f"`unshare` could not run: {error}"
        return _PROBED["namespaces"]


class LocalSandbox:
    """Runs programs contained (module docstring). Thread-safe: `parallel` runs at once, each in a slot of its own."""

    LANGUAGES = ("python", "cpp")

    def __init__(self, limits: SandboxLimits | None = None, parallel: int = 2, unisolated: bool = False):
        self.limits = limits or SandboxLimits()
        self.unisolated = unisolated
        if not unisolated:
            reason = namespaces_available()
            if reason is not None:
                raise SandboxUnavailableError(
                    f"The local code sandbox cannot isolate programs on this machine: {reason}. It needs Linux "
                    "namespaces (run as root, or enable unprivileged user namespaces: sysctl "
                    "kernel.unprivileged_userns_clone=1). Use an external provider (`code_provider: e2b`, `morph` "
                    "or `piston`), or set `code_sandbox_unisolated: true` to run with resource limits only (no "
                    "network isolation, shared /tmp)."
                )
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(max(1, parallel)):
            self._slots.put(slot)

    def _uid(self, slot: int) -> int | None:
        if os.geteuid() != 0:
            return None  # an unprivileged parent runs programs as itself (its user namespace's root)
        return UID_BASE + (os.getpid() % 400) * 64 + slot

    def steps(self, language: str) -> list[list[str]]:
        if language == "python":
            return [[program_python(), "-I", "main.py"]]
        if language == "cpp":
            compiler = shutil.which("g++")
            if compiler is None:
                raise SandboxUnavailableError("C++ programs need g++ on this machine (apt-get install g++).")
            return [[compiler, "-O2", "-std=gnu++17", "-o", "main", "main.cpp"], ["./main"]]
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
        steps = self.steps(language)
        steps[-1] = [*steps[-1], *arguments]
        files = {("main.py" if language == "python" else "main.cpp"): source, **(extra_files or {})}
        slot = self._slots.get()
        try:
            return self._run(files, steps, stdin, slot, limits or self.limits, compiled=len(steps) > 1)
        finally:
            self._slots.put(slot)

    def _run(
        self, files: dict, steps: list, stdin: str, slot: int, limits: SandboxLimits, compiled: bool
    ) -> RunResult:
        if compiled:  # compilers need more room than the programs they build
            limits = SandboxLimits(**{**asdict(limits), "memory_mb": max(limits.memory_mb, 2048)})
        status_read, status_write = os.pipe()
        workdir = None if not self.unisolated else tempfile.mkdtemp(prefix="open_r1_sandbox_")
        uid = self._uid(slot)
        if workdir is not None and uid is not None:
            os.chown(workdir, uid, uid)
        header = json.dumps(
            {
                "files": files,
                "steps": steps,
                "limits": asdict(limits),
                "uid": uid,
                "private_tmp": not self.unisolated,
                "workdir": workdir,
                "status_fd": status_write,
                "env": PROGRAM_ENV,
            }
        ).encode()
        prefix = [] if self.unisolated else _namespace_prefix()
        started = time.perf_counter()
        try:
            process = subprocess.Popen(
                [*prefix, LAUNCHER_PYTHON, "-I", "-S", str(LAUNCHER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(status_write,),
                start_new_session=True,
                env=PROGRAM_ENV,
            )
        except OSError as error:
            os.close(status_read)
            os.close(status_write)
            return RunResult("sandbox_error", stderr=f"cannot start the sandbox: {error}")
        os.close(status_write)
        try:
            out, err, reason = self._communicate(
                process, f"{len(header)}\n".encode() + header + stdin.encode(), limits
            )
        finally:
            if process.poll() is None:
                self._kill(process)
            process.wait()
            with os.fdopen(status_read) as status_file:
                statuses = [json.loads(line) for line in status_file.read().splitlines() if line.strip()]
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
        result = RunResult(
            "ok",
            stdout=out.decode("utf-8", errors="replace"),
            stderr=err.decode("utf-8", errors="replace"),
            wall_seconds=time.perf_counter() - started,
            cpu_seconds=sum(s["cpu_seconds"] for s in statuses),
        )
        last = statuses[-1] if statuses else None
        if reason is not None:
            result.status = reason
        elif last is None:
            result.status = "sandbox_error"
        elif compiled and last["step"] == 0 and last["exit"] != 0:
            result.status, result.exit_code = "compile_error", last["exit"]
        elif last["signal"] is not None:
            result.status, result.signal = "signal", last["signal"]
            # SIGXCPU: the soft CPU limit; SIGKILL near it: the hard one (a program that ignored SIGXCPU).
            cpu_limit_hit = last["signal"] == signal.SIGKILL and result.cpu_seconds >= 0.9 * limits.cpu_seconds
            if last["signal"] == signal.SIGXCPU or cpu_limit_hit:
                result.status = "timeout"
        elif last["exit"] != 0:
            result.status, result.exit_code = "error", last["exit"]
        else:
            result.exit_code = 0
        return result

    @staticmethod
    def _kill(process: subprocess.Popen) -> None:
        # The session holds `unshare` and (unisolated) the program; in namespaces, unshare's death kills PID 1
        # (--kill-child) and PID 1's death everything in its namespace.
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
