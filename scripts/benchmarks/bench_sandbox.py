# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The local code sandbox: what it returns for each hostile program and how long that takes, and its throughput.

    python scripts/benchmarks/bench_sandbox.py [--runs 40]

Throughput: trivial programs (`print(1)`) run back to back with 1 and with 2 parallel slots, and the `code` reward on
completions of 4 test cases each; a bare `subprocess.run([python, -c, ...])` is timed beside them, interleaved, so
the ratio is the sandbox's own cost (bubblewrap, the launcher and its checks, the run's cgroup where there is one).
"""

import argparse
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from open_r1.code.providers import LocalProvider
from open_r1.code.rewards import get_code_reward
from open_r1.code.sandbox import LocalSandbox, SandboxLimits, program_python


HOSTILE = {
    "infinite loop": ("while True:\n    pass", ""),
    "fork bomb": ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", ""),
    "memory bomb (4 GiB)": ("x = bytearray(4 * 2**30)", ""),
    "write /tmp and the repo": ("open('/tmp/escape', 'w').write('x')\nopen('escape', 'w').write('x')", ""),
    "read parent env": ("import os\nprint(len(os.environ), sorted(os.environ))", ""),
    "socket to 127.0.0.1:22": ("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=2)", ""),
    "huge output": ("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", ""),
    "non-UTF-8 output": ("import sys\nsys.stdout.buffer.write(bytes(range(256)))", ""),
    "os._exit(7)": ("import os\nos._exit(7)", ""),
    "SIGSEGV itself": ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", ""),
    "never reads 10 MB stdin, sleeps": ("import time\ntime.sleep(600)", "x" * 10_000_000),
    "3 forked spinners (CPU of the run)": (
        "import os\nfor _ in range(3):\n    if os.fork() == 0:\n        while True:\n            pass\nos.wait()",
        "",
    ),
    "6 forked 300 MiB holders (memory of the run)": (
        "import os, time\nfor _ in range(6):\n    if os.fork() == 0:\n        x = b'x' * (300 * 2**20)\n"
        "        time.sleep(9)\ntime.sleep(9)",
        "",
    ),
    "empty files in /tmp until stopped": (
        "import os\nos.mkdir('/tmp/f')\nfor i in range(10**7):\n    open(f'/tmp/f/{i}', 'w').close()",
        "",
    ),
    "SysV shared memory, 4 x 300 MiB, detached": (
        "import ctypes, time\nlibc = ctypes.CDLL(None)\nlibc.shmat.restype = ctypes.c_void_p\nfor k in range(4):\n"
        "    segment = libc.shmget(0x0BADC0DE + k, 300 * 2**20, 0o1000 | 0o666)\n"
        "    address = libc.shmat(segment, None, 0)\n    ctypes.memset(address, 1, 300 * 2**20)\n"
        "    libc.shmdt(ctypes.c_void_p(address))\ntime.sleep(9)",
        "",
    ),
    "read /etc/passwd and the repository": (
        "import os\nprint(os.path.exists('/etc/passwd'), os.path.exists(os.environ.get('REPO', '/work')))",
        "",
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40, help="Programs per throughput measurement.")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    limits = SandboxLimits(cpu_seconds=2, wall_seconds=5, memory_mb=1024)

    sandbox = LocalSandbox(limits, parallel=1)
    print(
        f"limits: {limits}\n\n| hostile program | status | exit / signal | output kept | CPU s | peak MiB | wall s |\n"
        "|---|---|---|---|---|---|---|"
    )
    for name, (program, stdin) in HOSTILE.items():
        result = sandbox.run(program, stdin=stdin)
        code = result.exit_code if result.signal is None else f"signal {result.signal}"
        kept = f"{len(result.stdout)} + {len(result.stderr)} chars"
        print(
            f"| {name} | {result.status} | {code} | {kept} | {result.cpu_seconds:.2f} | {result.peak_memory_mb:.0f} | "
            f"{result.wall_seconds:.2f} |",
            flush=True,
        )

    def run_many(parallel: int, runner) -> float:
        started = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(lambda _: runner(), range(args.runs)))
        return args.runs / (time.perf_counter() - started)

    python = program_python()
    bare = lambda: subprocess.run([python, "-I", "-c", "print(1)"], capture_output=True)  # noqa: E731
    rates = {}
    for parallel in (1, 2):
        boxed = LocalSandbox(limits, parallel=parallel)
        for _ in range(args.repeats):  # interleaved
            rates.setdefault(f"sandbox x{parallel}", []).append(run_many(parallel, lambda b=boxed: b.run("print(1)")))
            rates.setdefault(f"bare x{parallel}", []).append(run_many(parallel, bare))
    print("\n| programs/s (print(1)) | median | min | max |\n|---|---|---|---|")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |")
    for parallel in (1, 2):
        ratio = statistics.median(rates[f"sandbox x{parallel}"]) / statistics.median(rates[f"bare x{parallel}"])
        print(f"sandbox / bare subprocess at {parallel} slot(s): {ratio:.2f}x")

    reward = get_code_reward(LocalProvider(num_parallel=2, limits=limits))
    info = {
        "language": "python",
        "test_cases": [{"type": "stdin_stdout", "input": f"{n}\n", "output": f"{2 * n}\n"} for n in range(4)],
    }
    completions = [[{"role": "assistant", "content": "```python\nprint(2 * int(input()))\n```"}]] * 16
    started = time.perf_counter()
    scores = reward(completions, verification_info=[info] * len(completions))
    seconds = time.perf_counter() - started
    print(
        f"\n`code` reward, 16 completions x 4 tests, 2 slots: {seconds:.2f} s "
        f"({16 * 4 / seconds:.1f} programs/s, mean reward {sum(scores) / len(scores):.2f})"
    )


if __name__ == "__main__":
    main()
