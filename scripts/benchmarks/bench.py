# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""`make bench` / `make bench-quick`: every benchmark in one run, written to data/bench/bench.md and bench.json.

    python scripts/benchmarks/bench.py [--quick] [--device cpu|cuda] [--out data/bench] [--update-readme]

1. the trainers (`bench_trainer.py`): plain TRL `SFTTrainer`, this project's trainer with no method, and with each
   method alone: tokens/s and peak memory, alternating runs, medians and ranges, ratios to TRL;
2. the Fisher paths and EWC's step cost (`bench_fisher.py`);
3. DAdamW against `torch.optim.AdamW` (`bench_dadamw.py`);
4. the local code sandbox (`bench_sandbox.py`);
5. the memory planner's phases against measured peaks (`bench_memory_phases.py`; `--quick`: bf16 only).

`--quick` (under 5 minutes on 2 CPU cores): five trainer configurations x 3 rounds of 45 steps, and smaller Fisher,
optimizer and sandbox runs. `--device cuda` runs the trainers, the Fisher paths and the optimizers on the first GPU
(the sandbox is CPU work either way). `--update-readme` replaces docs/benchmarks.md's performance section for that device
with the tables. The machine (CPU model, cores, GPU if any, torch) is written beside every table. A part that fails
is reported in its place and the run exits 1 after writing the rest.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from bench_trainer import QUICK_CONFIGS, compare, table


HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# docs/benchmarks.md holds one performance section per device, each between its own markers.
README_MARKERS = {
    "cpu": ("<!-- bench:start -->", "<!-- bench:end -->"),
    "cuda": ("<!-- bench-cuda:start -->", "<!-- bench-cuda:end -->"),
}


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}"


def run_script(name: str, args: list[str], progress, failures: list[str]) -> str:
    progress(f"running {name} {' '.join(args)}")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(HERE / name), *args], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        failures.append(name)
        progress(f"{name} FAILED (exit {done.returncode})")
        return f"FAILED (exit {done.returncode}):\n{done.stderr[-2000:]}"
    progress(f"{name}: {time.perf_counter() - started:.0f} s")
    return "\n".join(line for line in done.stdout.strip().splitlines() if "[WARNING]" not in line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cuda: the first GPU.")
    parser.add_argument("--world", type=Path, default=REPO / "data/testbed")
    parser.add_argument("--out", type=Path, default=REPO / "data/bench")
    parser.add_argument("--update-readme", action="store_true", help="Write the tables into docs/benchmarks.md.")
    args = parser.parse_args()
    started = time.perf_counter()
    failures: list[str] = []
    device = ["--device", args.device]

    def progress(line: str) -> None:
        print(f"[{time.perf_counter() - started:5.0f} s] {line}", flush=True)

    if not (args.world / "world.json").exists():
        progress(f"building the testbed world at {args.world}")
        subprocess.run([sys.executable, "-m", "open_r1.testbed", "build", "--root", str(args.world)], check=True)
    if args.quick:
        trainer = compare(
            args.world, steps=45, batch=16, repeats=3, configs=QUICK_CONFIGS, progress=progress, device=args.device
        )
        fisher_args = ["--world", str(args.world), "--rows", "32", "--steps", "30", *device]
        fisher = run_script("bench_fisher.py", fisher_args, progress, failures)
        dadamw_args = ["--hidden", "256", "--layers", "4", "--repeats", "3", *device]
        dadamw = run_script("bench_dadamw.py", dadamw_args, progress, failures)
        sandbox = run_script("bench_sandbox.py", ["--runs", "10", "--repeats", "1"], progress, failures)
        phases = run_script("bench_memory_phases.py", ["--dtypes", "bfloat16", *device], progress, failures)
    else:
        from bench_trainer import CONFIGS

        trainer = compare(
            args.world, steps=80, batch=16, repeats=3, configs=list(CONFIGS), progress=progress, device=args.device
        )
        fisher = run_script("bench_fisher.py", ["--world", str(args.world), *device], progress, failures)
        dadamw = run_script("bench_dadamw.py", device, progress, failures)
        sandbox = run_script("bench_sandbox.py", [], progress, failures)
        phases = run_script("bench_memory_phases.py", device, progress, failures)
    seconds = time.perf_counter() - started
    where = machine()
    mode = "quick" if args.quick else "full"
    report = f"""Measured by `make bench{"-quick" if args.quick else ""}` ({mode}, {seconds:.0f} s) on {where}.

Trainers on the testbed's tiny model ({args.device}, batch 16; throughput: the configurations in one process, a shuffled
order each round, each step timed from its start to the next's (the methods' work inside), ratios to TRL paired within
each round; peak memory: one process each):

{table(trainer)}

Fisher paths and EWC's step cost (`bench_fisher.py`):

```
{fisher}
```

DAdamW against torch AdamW (`bench_dadamw.py`):

```
{dadamw}
```

Local code sandbox (`bench_sandbox.py`):

{sandbox}

The memory planner's phases against measured peaks (`bench_memory_phases.py`):

{phases}
"""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.md").write_text(report)
    (args.out / "bench.json").write_text(
        json.dumps(
            {"machine": where, "device": args.device, "mode": mode, "seconds": seconds, "trainer": trainer}, indent=2
        )
        + "\n"
    )
    progress(f"wrote {args.out / 'bench.md'} and bench.json ({seconds:.0f} s)")
    if args.update_readme:
        readme = REPO / "docs" / "benchmarks.md"
        text = readme.read_text()
        start, end = README_MARKERS[args.device]
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        readme.write_text(f"{head}{start}\n{report}\n{end}{tail}")
        progress(f"docs/benchmarks.md performance section ({args.device}) updated")
    if failures:
        progress(f"failed: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
