# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The local sandbox contains hostile programs: each case runs through the real sandbox (namespaces + rlimits) and
checks that nothing escapes, that the run ends within its limits, and that the reward batch carrying all of them
returns (training goes on)."""

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from open_r1.code.providers import LocalProvider
from open_r1.code.rewards import get_code_reward
from open_r1.code.sandbox import LocalSandbox, SandboxLimits, namespaces_available


pytestmark = pytest.mark.skipif(namespaces_available() is not None, reason=f"no namespaces: {namespaces_available()}")

LIMITS = SandboxLimits(cpu_seconds=1, wall_seconds=3, memory_mb=256, max_output_bytes=1 << 16)


@pytest.fixture(scope="module")
def sandbox():
    return LocalSandbox(LIMITS, parallel=2)


def processes_of_uid_range(low: int, high: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                uid = int((entry / "status").read_text().split("Uid:")[1].split()[0])
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
    assert result.status in ("timeout", "error", "signal")
    assert result.wall_seconds < LIMITS.wall_seconds + 2
    time.sleep(0.2)
    assert processes_of_uid_range(61_000, 61_000 + 400 * 64) == []
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
    assert "Network is unreachable" in result.stderr
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
        ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('parent killed')", None, None, None),
    ],
)
def test_exits_and_signals_are_reported(sandbox, program, status, field, value):
    result = sandbox.run(program)
    if status is None:  # its parent (the launcher, PID 1 of its namespace) belongs to another user
        assert result.status == "error" and "PermissionError" in result.stderr
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


def test_an_unisolated_machine_is_refused_with_the_reason(monkeypatch):
    import open_r1.code.sandbox as sandbox_module

    monkeypatch.setitem(sandbox_module._PROBED, "namespaces", "`unshare ...` failed: Operation not permitted")
    with pytest.raises(
        sandbox_module.SandboxUnavailableError, match="Operation not permitted.*code_sandbox_unisolated"
    ):
        LocalSandbox(LIMITS)
    # The explicit opt-out runs with limits only.
    assert LocalSandbox(LIMITS, unisolated=True).run("print(6 * 7)").stdout == "42\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="cpp through g++ checked as root only")
def test_cpp_programs_compile_and_run_and_compile_errors_are_named(sandbox):
    import shutil

    if shutil.which("g++") is None:
        pytest.skip("no g++")
    ok = sandbox.run('#include <cstdio>\nint main(){int a;scanf("%d",&a);printf("%d\\n",a*3);}', "cpp", "5")
    assert ok.status == "ok" and ok.stdout == "15\n"
    broken = sandbox.run("int main( {", "cpp")
    assert broken.status == "compile_error" and "error" in broken.stderr
