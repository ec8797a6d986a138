# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The local sandbox contains hostile programs: each case runs through the real sandbox (bubblewrap, the launcher's
whole-run limits) and checks that nothing escapes, that the run ends within its limits, and that the reward batch
carrying all of them returns (training goes on). The attacks of #32 run as root (programs as uid 61000) and, where the
test machine lets it switch users, with the trainer itself as an unprivileged uid."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from open_r1.code.providers import LocalProvider
from open_r1.code.rewards import get_code_reward
from open_r1.code.sandbox import SANDBOX_UID, LocalSandbox, SandboxLimits, SlotCgroup

from .conftest import needs_sandbox


pytestmark = needs_sandbox
REPO = Path(__file__).resolve().parents[1]

LIMITS = SandboxLimits(cpu_seconds=1, wall_seconds=3, memory_mb=256, max_output_bytes=1 << 16)


@pytest.fixture(scope="module")
def sandbox():
    return LocalSandbox(LIMITS, parallel=2)


def processes_of_uid_range(low: int, high: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
                uid = int(status.split("Uid:")[1].split()[0])
            except (OSError, IndexError):
                continue
            if low <= uid < high:
                pids.append(int(entry.name))
    return pids


def test_a_plain_program_runs_and_reads_its_input(sandbox):
    result = sandbox.run("import sys\nprint(sys.stdin.read()[::-1])", stdin="abc")
    assert result.status == "ok" and result.stdout == "cba\n"


def test_an_infinite_loop_is_stopped_by_its_cpu_limit(sandbox):
    result = sandbox.run("while True:\n    pass")
    assert result.status == "timeout"
    assert result.wall_seconds < LIMITS.cpu_seconds + 2


def test_a_program_that_sleeps_and_never_reads_a_huge_input_does_not_hang_the_harness(sandbox):
    started = time.perf_counter()
    result = sandbox.run("import time\ntime.sleep(60)", stdin="x" * 10_000_000)
    assert result.status == "timeout"
    assert time.perf_counter() - started < LIMITS.wall_seconds + 2


def test_a_fork_bomb_is_capped_and_leaves_no_process_behind(sandbox):
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = sandbox.run(bomb)
    assert result.status in ("timeout", "error", "signal", "memory_limit")
    assert result.wall_seconds < LIMITS.wall_seconds + 2
    time.sleep(0.2)
    assert processes_of_uid_range(SANDBOX_UID, SANDBOX_UID + 1) == []
    # The machine still runs programs.
    assert sandbox.run("print(1)").stdout == "1\n"


def test_a_memory_bomb_fails_inside_its_limit(sandbox):
    result = sandbox.run("x = bytearray(2**30)\nprint('allocated')")
    assert result.status == "error" and "MemoryError" in result.stderr and "allocated" not in result.stdout


def test_writes_outside_the_work_dir_do_not_land(sandbox, tmp_path):
    name = f"escaped-{uuid.uuid4().hex}"
    targets = [Path("/tmp") / name, Path("/var/tmp") / name, Path("/dev/shm") / name, tmp_path / name]
    program = "\n".join(
        f"try:\n    open({str(t)!r}, 'w').write('x')\n    print('wrote', {str(t)!r})\nexcept OSError as e:\n"
        f"    print('refused', e.errno)"
        for t in targets
    )
    program += "\nopen('inside.txt', 'w').write('fine')\nprint(open('inside.txt').read())"
    result = sandbox.run(program)
    assert result.status == "ok" and result.stdout.strip().endswith("fine")
    assert not any(t.exists() for t in targets)
    # Even a file it "wrote" to its private /tmp is gone with the run, and the next run's /tmp is empty.
    assert sandbox.run(f"import os\nprint(os.path.exists({str(targets[0])!r}))").stdout == "False\n"


def test_the_parents_secrets_are_not_visible(sandbox, monkeypatch):
    monkeypatch.setenv("OPEN_R1_TEST_SECRET", "hunter2-sandbox")
    program = (
        "import os, glob\nprint(sorted(os.environ))\nfound = []\n"
        "for path in glob.glob('/proc/*/environ'):\n    try:\n        found.append(b'hunter2' in open(path, 'rb').read())\n"
        "    except OSError:\n        pass\nprint('visible' if any(found) else 'hidden', len(glob.glob('/proc/[0-9]*')))"
    )
    result = sandbox.run(program)
    assert result.status == "ok"
    assert "hunter2" not in result.stdout and "OPEN_R1_TEST_SECRET" not in result.stdout
    assert "hidden" in result.stdout
    # Its PID namespace shows only its own processes (it and the launcher).
    assert int(result.stdout.split()[-1]) <= 3


def test_no_socket_reaches_a_server_on_the_parents_loopback(sandbox):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True)
    thread.start()
    port = server.getsockname()[1]
    program = (
        f"import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', {port}))\nprint('connected')"
    )
    result = sandbox.run(program)
    thread.join()
    server.close()
    assert result.status == "error" and "connected" not in result.stdout
    assert "ConnectionRefusedError" in result.stderr  # its own loopback, where nothing listens
    assert accepted == [None]


def _accept(server):
    try:
        return server.accept()
    except OSError:
        return None


def test_huge_output_is_cut_at_the_cap_quickly(sandbox):
    result = sandbox.run("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)")
    assert result.status == "output_limit"
    assert len(result.stdout) <= LIMITS.max_output_bytes and result.wall_seconds < 2


def test_non_utf8_output_is_decoded_with_replacement(sandbox):
    result = sandbox.run("import sys\nsys.stdout.buffer.write(b'\\xff\\xfe ok\\n')")
    assert result.status == "ok" and result.stdout == "\ufffd\ufffd ok\n"


@pytest.mark.parametrize(
    "program, status, field, value",
    [
        ("import os\nos._exit(3)", "error", "exit_code", 3),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", "signal", "signal", 11),
        (
            "import os, signal\nos.kill(1, signal.SIGSTOP)\nos.kill(1, signal.SIGKILL)\nprint('tried')",
            None,
            None,
            None,
        ),
    ],
)
def test_exits_and_signals_are_reported(sandbox, program, status, field, value):
    result = sandbox.run(program)
    if status is None:  # its launcher is the PID namespace's init: signals from inside do not reach it
        assert result.status == "ok" and result.stdout == "tried\n"
    else:
        assert result.status == status and getattr(result, field) == value


def test_a_reward_batch_of_hostile_completions_scores_zero_and_returns():
    hostile = [
        "while True:\n    pass",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        "x = bytearray(2**30)",
        "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)",
        "import os\nos._exit(0)",
        "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)",
    ]
    completions = [[{"role": "assistant", "content": f"```python\n{code}\n```"}] for code in hostile]
    completions.append([{"role": "assistant", "content": "no code block at all"}])
    completions.append([{"role": "assistant", "content": "```python\nprint(int(input()) * 2)\n```"}])
    info = {"language": "python", "test_cases": [{"type": "stdin_stdout", "input": "21", "output": "42"}]}
    reward = get_code_reward(LocalProvider(num_parallel=2, limits=LIMITS, time_budget_seconds=5))
    started = time.perf_counter()
    scores = reward(completions, verification_info=[info] * len(completions))
    assert scores == [0.0] * (len(completions) - 1) + [1.0]
    assert time.perf_counter() - started < 4 * (LIMITS.wall_seconds + 2)


def test_a_machine_without_bubblewrap_is_refused_naming_the_package_and_the_providers(monkeypatch):
    import open_r1.code.sandbox as sandbox_module

    monkeypatch.setitem(sandbox_module._PROBED, "bwrap", "bubblewrap (`bwrap`) is not installed")
    with pytest.raises(
        sandbox_module.SandboxUnavailableError, match=r"not installed.*apt-get install bubblewrap.*code_provider: e2b"
    ):
        LocalSandbox(LIMITS)


@pytest.mark.skipif(os.geteuid() != 0, reason="cpp through g++ checked as root only")
def test_cpp_programs_compile_and_run_and_compile_errors_are_named(sandbox):
    import shutil

    if shutil.which("g++") is None:
        pytest.skip("no g++")
    ok = sandbox.run('#include <cstdio>\nint main(){int a;scanf("%d",&a);printf("%d\\n",a*3);}', "cpp", "5")
    assert ok.status == "ok" and ok.stdout == "15\n"
    broken = sandbox.run("int main( {", "cpp")
    assert broken.status == "compile_error" and "error" in broken.stderr


# --- #32: the attacks a review ran against the namespace sandbox, each contained now. -------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="sets up host files, mounts and setuid binaries as root")


def _status_field(stdout: str, name: str) -> str:
    return stdout.split(f"{name}:")[1].split()[0]


PRIVILEGE_PROBE = """import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
status = open('/proc/self/status').read()
for name in ('CapEff', 'NoNewPrivs', 'Seccomp'):
    print(name + ':', status.split(name + ':')[1].split()[0])
MS_REMOUNT, MS_BIND, MS_RDONLY = 32, 4096, 1
print('remount:', libc.mount(None, b'/', None, MS_REMOUNT | MS_BIND, None), ctypes.get_errno())
print('umount:', libc.umount2(b'/tmp', 2), ctypes.get_errno())
print('unshare:', libc.unshare(0x10000000), ctypes.get_errno())
print('euid:', os.geteuid())
"""


@needs_root
def test_root_mode_drops_every_privilege_and_setuid_binaries_are_inert():
    """Programs of a root trainer: no capability, no-new-privs, a seccomp filter, and a setuid-root binary under /usr
    (the only host tree they see) runs as the sandbox's user, not as root."""
    python = os.path.realpath("/usr/bin/python3")
    setuid_copy = Path(f"/usr/local/bin/open_r1_setuid_probe_{uuid.uuid4().hex[:8]}")
    shutil.copy(python, setuid_copy)
    try:
        os.chmod(setuid_copy, 0o4755)
        program = PRIVILEGE_PROBE + (
            f"import subprocess\nprint('setuid euid:', subprocess.run([{str(setuid_copy)!r}, '-c', "
            "'import os; print(os.geteuid())'], capture_output=True, text=True).stdout.strip())"
        )
        result = LocalSandbox(LIMITS).run(program)
    finally:
        setuid_copy.unlink()
    assert result.status == "ok", result
    out = result.stdout
    assert _status_field(out, "CapEff") == "0000000000000000"
    assert _status_field(out, "NoNewPrivs") == "1" and _status_field(out, "Seccomp") == "2"
    for call in ("remount", "umount", "unshare"):
        assert _status_field(out, call) == "-1", out
    assert _status_field(out, "setuid euid") != "0" and _status_field(out, "euid") != "0"


@pytest.fixture
def host_secrets(tmp_path_factory):
    """World-readable files, a listening unix socket and a 1777 scratch tmpfs, as a cluster node has them: under
    /opt (root) or the test's temp dir."""
    base = (
        Path(f"/opt/open_r1_sandbox_probe_{uuid.uuid4().hex[:8]}")
        if os.geteuid() == 0
        else tmp_path_factory.mktemp("h")
    )
    base.mkdir(mode=0o755, exist_ok=True)
    os.chmod(base, 0o755)
    token = base / "token"
    token.write_text("hf_secret_token")
    os.chmod(token, 0o644)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(base / "agent.sock"))
    os.chmod(base / "agent.sock", 0o777)
    server.listen(1)
    scratch = base / "scratch"
    scratch.mkdir()
    mounted = os.geteuid() == 0 and os.system(f"mount -t tmpfs -o size=8m,mode=1777 tmpfs {scratch} 2>/dev/null") == 0
    try:
        yield {"base": base, "token": token, "socket": base / "agent.sock", "scratch": scratch if mounted else None}
    finally:
        server.close()
        if mounted:
            os.system(f"umount {scratch}")
        shutil.rmtree(base, ignore_errors=True)


def test_no_host_file_socket_or_mount_is_reachable(host_secrets):
    """The program finds no host file (a planted 0644 token, /etc/passwd, the repository), no unix socket, and writes
    nothing to another world-writable mount."""
    scratch = host_secrets["scratch"]
    targets = [host_secrets["token"], Path("/etc/passwd"), REPO / "setup.py", Path.home() / ".bashrc"]
    program = "import os, socket\n" + "".join(
        f"try:\n    print('READ', {str(t)!r}, len(open({str(t)!r}).read()))\nexcept OSError as e:\n    print('no', e.errno)\n"
        for t in targets
    )
    program += (
        f"s = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect({str(host_secrets['socket'])!r})\n    print('CONNECTED')\n"
        "except OSError as e:\n    print('no socket', e.errno)\n"
    )
    if scratch is not None:
        program += (
            f"try:\n    open({str(scratch / 'left')!r}, 'w').write('x')\n    print('wrote scratch')\n"
            "except OSError as e:\n    print('no scratch', e.errno)\n"
        )
    result = LocalSandbox(LIMITS).run(program)
    assert result.status == "ok", result
    assert "READ" not in result.stdout and "CONNECTED" not in result.stdout, result.stdout
    if scratch is not None:
        assert not (scratch / "left").exists()


def test_a_program_that_searches_the_disk_for_its_expected_output_finds_nothing(host_secrets):
    """The reward hack of #32: the dataset's JSONL (with the expected outputs) lies on the host, world-readable; a
    program that walks the filesystem for it finds nothing, and the reward gives it nothing."""
    case = {"input": f"query-{uuid.uuid4().hex}", "output": "the answer nobody computed"}
    dataset = host_secrets["base"] / "train.jsonl"
    dataset.write_text(json.dumps(case) + "\n")
    os.chmod(dataset, 0o644)
    cheat = """import json, os, sys
query = sys.stdin.read().strip()
for root in ('/', '/opt', '/work', '/tmp'):
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith('.jsonl'):
                try:
                    for line in open(os.path.join(folder, name)):
                        row = json.loads(line)
                        if row.get('input') == query:
                            print(row['output'])
                            sys.exit(0)
                except (OSError, ValueError):
                    pass
print('not found')
"""
    walked = LocalSandbox(SandboxLimits(cpu_seconds=20, wall_seconds=30)).run(cheat, stdin=case["input"])
    assert walked.status == "ok" and walked.stdout == "not found\n", walked
    info = {"language": "python", "test_cases": [{"type": "stdin_stdout", **case}]}
    generous = SandboxLimits(cpu_seconds=20, wall_seconds=30)
    reward = get_code_reward(LocalProvider(num_parallel=1, limits=generous, time_budget_seconds=60))
    completion = [{"role": "assistant", "content": f"```python\n{cheat}\n```"}]
    assert reward([completion], verification_info=[info]) == [0.0]


def test_shared_memory_does_not_outlive_a_run_or_pass_between_runs():
    """SysV shared memory lives in the run's own IPC namespace: a segment run 1 makes is gone for run 2 and for the
    host."""
    shm = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.shmget.restype = ctypes.c_int\n"
        "key = 0x0BADC0DE\n"
    )
    make = shm + "print('made', libc.shmget(key, 1 << 20, 0o1000 | 0o666) >= 0)"
    find = shm + "print('found', libc.shmget(key, 0, 0) >= 0)"
    sandbox = LocalSandbox(LIMITS, parallel=2)
    assert sandbox.run(make).stdout == "made True\n"
    assert sandbox.run(find).stdout == "found False\n"
    ipcs = subprocess.run(["ipcs", "-m"], capture_output=True, text=True)
    if ipcs.returncode == 0:
        assert "0x0badc0de" not in ipcs.stdout


@pytest.fixture(params=["kernel cgroup", "launcher only"])
def whole_run(request, monkeypatch):
    """How the whole-run limits are held: with a cgroup per slot (root here) and with the launcher's checks alone (a
    non-root trainer or a cgroup v2 host): each limit test runs both ways, and the launcher must catch it alone."""
    if request.param == "kernel cgroup" and SlotCgroup.parents() is None:
        pytest.skip("no writable cgroup v1 here")
    if request.param == "launcher only":
        monkeypatch.setattr(SlotCgroup, "parents", staticmethod(lambda: None))
    return lambda limits, parallel=1: LocalSandbox(limits, parallel=parallel)


FORK_AND_HOLD = """import os, sys, time
for index in range(6):
    if os.fork() == 0:
        block = b'x' * ({mb} * 2**20)  # written: resident
        print('held', index, flush=True)
        time.sleep(5)
        os._exit(0)
time.sleep(5)
"""

FORK_AND_BURN = """import os, time
for _ in range(3):
    if os.fork() == 0:
        while True:
            pass
while True:
    time.sleep(1)
"""


def test_forked_processes_share_one_memory_limit(whole_run):
    """6 children of 60 MiB each under a 200 MiB run: stopped at the run's limit (they held 845 MiB under a
    per-process limit)."""
    result = whole_run(SandboxLimits(cpu_seconds=4, wall_seconds=6, memory_mb=200)).run(FORK_AND_HOLD.format(mb=60))
    assert result.status == "memory_limit", result
    assert result.stdout.count("held") < 4


def test_shared_memory_a_program_detaches_still_counts(whole_run):
    """SysV segments outlive the processes that map them: their pages count in the run's memory (3 x 128 MiB kept
    host memory after the run)."""
    detached = (
        "import ctypes\nlibc = ctypes.CDLL(None)\nlibc.shmat.restype = ctypes.c_void_p\nfor k in range(4):\n"
        "    segment = libc.shmget(0x0BADC0DE + k, 100 * 2**20, 0o1000 | 0o666)\n"
        "    address = libc.shmat(segment, None, 0)\n    ctypes.memset(address, 1, 100 * 2**20)\n"
        "    libc.shmdt(ctypes.c_void_p(address))\nimport time\ntime.sleep(2)\nprint('kept 400 MiB')"
    )
    result = whole_run(SandboxLimits(cpu_seconds=4, wall_seconds=6, memory_mb=256)).run(detached)
    assert result.status == "memory_limit" and "kept" not in result.stdout, result
    assert result.peak_memory_mb > 256  # the launcher saw it, whatever the kernel did


def test_forked_processes_share_one_cpu_limit_with_its_fraction(whole_run):
    """3 spinning children under cpu_seconds=1: the run stops at about 1 CPU-s in all (they used 2.7 with a limit per
    process), and a 0.5 s limit is half a second, not rounded up to one or two."""
    sandbox = whole_run(SandboxLimits(cpu_seconds=1, wall_seconds=6, memory_mb=256))
    burst = sandbox.run(FORK_AND_BURN)
    assert burst.status == "timeout" and 1.0 <= burst.cpu_seconds < 1.5, burst
    half = sandbox.run("while True:\n    pass", limits=SandboxLimits(cpu_seconds=0.5, wall_seconds=6, memory_mb=256))
    assert half.status == "timeout" and 0.5 <= half.cpu_seconds < 0.8, half


def test_the_cpu_time_of_children_is_counted(whole_run):
    """A child that burns 0.4 CPU-s and is never waited for is counted (its time was reported as 0.00)."""
    program = (
        "import os, time\nif os.fork() == 0:\n    end = time.process_time() + 0.4\n"
        "    while time.process_time() < end:\n        pass\n    os._exit(0)\ntime.sleep(3)\nprint('done')"
    )
    result = whole_run(SandboxLimits(cpu_seconds=2, wall_seconds=6, memory_mb=256)).run(program)
    assert result.status == "ok" and result.stdout == "done\n"
    assert result.cpu_seconds >= 0.35, result


def test_children_cannot_be_hidden_by_ignoring_sigchld(whole_run):
    """With SIGCHLD ignored, ended children vanish without their CPU time reaching anyone: the seccomp filter refuses
    it, so 3 children of 0.6 CPU-s one after another are over a 1 s limit."""
    program = (
        "import os, signal, time\ntry:\n    signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n    print('ignored', flush=True)\n"
        "except OSError:\n    print('refused', flush=True)\nfor _ in range(3):\n    pid = os.fork()\n    if pid == 0:\n"
        "        end = time.process_time() + 0.6\n        while time.process_time() < end:\n            pass\n"
        "        os._exit(0)\n    try:\n        os.waitpid(pid, 0)\n    except ChildProcessError:\n        pass\n"
        "print('done')"
    )
    result = whole_run(SandboxLimits(cpu_seconds=1, wall_seconds=6, memory_mb=256)).run(program)
    assert result.stdout.startswith("refused") and result.status == "timeout", result


def test_a_program_cannot_stop_its_judge(whole_run):
    """The launcher is PID 1 of the run: a program that sends it SIGSTOP (or SIGKILL) before going over a limit is
    still stopped (with the launcher as its sibling it paused every check and 3000 files passed a limit of 500)."""
    program = (
        "import os, signal\nfor sig in (signal.SIGSTOP, signal.SIGKILL, signal.SIGINT, signal.SIGTERM):\n"
        "    os.kill(1, sig)\nos.mkdir('/tmp/f')\nfor i in range(3000):\n    open(f'/tmp/f/{i}', 'w').close()\n"
        "os.kill(1, signal.SIGCONT)\nprint('made 3000')"
    )
    result = whole_run(SandboxLimits(cpu_seconds=4, wall_seconds=6, memory_mb=256, max_files=500)).run(program)
    assert result.status == "file_limit" and "made" not in result.stdout, result


def test_files_in_the_private_tmp_count_against_the_run(whole_run):
    """Empty files cost kernel memory (445k of them took ~440 MiB): a run stops at `max_files`; and the bytes it writes
    to /tmp count in its memory with its resident set (four 64 MiB tmpfs mounts per run were host memory outside the
    limit)."""
    many = "import os\nos.makedirs('/tmp/f')\nfor i in range(10**6):\n    open(f'/tmp/f/{i}', 'w').close()"
    files = whole_run(SandboxLimits(cpu_seconds=4, wall_seconds=6, memory_mb=256, max_files=500)).run(many)
    assert files.status == "file_limit", files
    both = (
        "import time\nopen('/tmp/big', 'wb').write(b'x' * (70 * 2**20))\nheld = b'y' * (50 * 2**20)\n"
        "time.sleep(2)\nprint('held 120 MiB')"
    )
    written = whole_run(SandboxLimits(cpu_seconds=4, wall_seconds=6, memory_mb=100, file_size_mb=80)).run(both)
    assert written.status == "memory_limit" and "held" not in written.stdout, written


def test_two_sandboxes_never_share_a_process_limit():
    """A fork bomb in one provider's sandbox does not starve another's correct threaded program (their uids used to
    collide, and the process limit is per uid)."""
    bomb = "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)"
    threaded = (
        "import threading\nresults = []\nthreads = [threading.Thread(target=results.append, args=(i,)) for i in range(8)]"
        "\nfor t in threads:\n    t.start()\nfor t in threads:\n    t.join()\nprint(sum(results))"
    )
    limits = SandboxLimits(cpu_seconds=3, wall_seconds=4, memory_mb=512, max_processes=16)
    first, second = LocalSandbox(limits, parallel=1), LocalSandbox(limits, parallel=1)
    outcome = {}
    bomber = threading.Thread(target=lambda: outcome.update(bomb=first.run(bomb)))
    bomber.start()
    time.sleep(1.0)  # the bomb holds its process limit
    outcome["threaded"] = second.run(threaded)
    bomber.join()
    assert outcome["bomb"].status in ("timeout", "memory_limit"), outcome["bomb"]  # it ran to a limit meanwhile
    assert outcome["threaded"].status == "ok" and outcome["threaded"].stdout == "28\n", outcome["threaded"]


UNPRIVILEGED_UID = 1000
RUN_AS_TRAINER = """import json, sys
sys.path.insert(0, sys.argv[1])
from open_r1.code.sandbox import LocalSandbox, SandboxLimits
result = LocalSandbox(SandboxLimits(cpu_seconds=2, wall_seconds=5, memory_mb=256)).run(sys.stdin.read())
print(json.dumps(result.__dict__))
"""


@needs_root
def test_a_non_root_trainers_programs_hold_no_privilege_and_see_none_of_its_files(tmp_path_factory):
    """The trainer runs as an unprivileged uid (as most cluster users do): its programs have no capability, cannot
    remount or unmount anything, and see neither its home (tokens) nor the host's /tmp. They ran as root of their user
    namespace with every capability, remounted / read-write and wrote into the user's home."""
    if shutil.which("setpriv") is None or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs setpriv and /usr/bin/python3 to run the trainer side as another user")
    # The trainer side: this package's code on the system interpreter, in a folder the user may read.
    code = Path(tempfile.mkdtemp(prefix="open_r1_trainer_"))
    home = Path(tempfile.mkdtemp(prefix="open_r1_home_"))
    marker = Path(tempfile.mkdtemp(prefix="open_r1_host_tmp_")) / "marker"
    try:
        shutil.copytree(REPO / "src" / "open_r1" / "code", code / "open_r1" / "code")
        (code / "open_r1" / "__init__.py").write_text("")
        for path in [code, *code.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.chmod(home, 0o700)
        (home / ".cache").mkdir()
        (home / ".cache" / "hf_token").write_text("hf_secret")
        for path in (home, home / ".cache", home / ".cache" / "hf_token"):
            os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
        marker.write_text("host tmp")
        os.chmod(marker.parent, 0o755)
        os.chmod(marker, 0o644)
        program = PRIVILEGE_PROBE + "".join(
            f"try:\n    print('READ', len(open({str(p)!r}).read()))\nexcept OSError as e:\n    print('no', e.errno)\n"
            for p in (home / ".cache" / "hf_token", marker)
        )
        program += f"try:\n    open({str(home / 'planted')!r}, 'w').write('x')\nexcept OSError as e:\n    print('no', e.errno)\n"
        done = subprocess.run(
            ["setpriv", f"--reuid={UNPRIVILEGED_UID}", f"--regid={UNPRIVILEGED_UID}", "--clear-groups",
             "/usr/bin/python3", "-I", "-c", RUN_AS_TRAINER, str(code)],
            input=program, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["status"] == "ok", result
        out = result["stdout"]
        assert _status_field(out, "CapEff") == "0000000000000000" and _status_field(out, "NoNewPrivs") == "1"
        for call in ("remount", "umount", "unshare"):
            assert _status_field(out, call) == "-1", out
        assert "READ" not in out, out
        assert not (home / "planted").exists()
    finally:
        shutil.rmtree(code, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(marker.parent, ignore_errors=True)
