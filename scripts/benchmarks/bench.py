# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""`make bench` / `make bench-quick`: every benchmark in one run, written to data/bench/bench.md and bench.json.

    python scripts/benchmarks/bench.py [--quick] [--out data/bench] [--update-readme]

1. the trainers (`bench_trainer.py`): plain TRL `SFTTrainer`, this project's trainer with no method, and with each
   method alone: tokens/s and peak memory, alternating runs, medians and ranges, ratios to TRL;
2. the Fisher paths and EWC's step cost (`bench_fisher.py`);
3. DAdamW against `torch.optim.AdamW` (`bench_dadamw.py`);
4. the local code sandbox (`bench_sandbox.py`).

`--quick` (under 5 minutes on 2 CPU cores): five trainer configurations x 3 rounds of 45 steps, and smaller Fisher,
optimizer and sandbox runs. `--update-readme` replaces the README's performance section with the tables. The machine
(CPU model, cores, GPU if any, torch) is written beside every table.
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
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


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


def run_script(name: str, args: list[str], progress) -> str:
    progress(f"running {name} {' '.join(args)}")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(HERE / name), *args], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr[-2000:]}")
    progress(f"{name}: {time.perf_counter() - started:.0f} s")
    return "\n".join(line for line in done.stdout.strip().splitlines() if "[WARNING]" not in line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--world", type=Path, default=REPO / "data/testbed")
    parser.add_argument("--out", type=Path, default=REPO / "data/bench")
    parser.add_argument("--update-readme", action="store_true", help="Write the tables into README.md.")
    args = parser.parse_args()
    started = time.perf_counter()

    def progress(line: str) -> None:
        print(f"[{time.perf_counter() - started:5.0f} s] {line}", flush=True)

    if not (args.world / "world.json").exists():
        progress(f"building the testbed world at {args.world}")
        subprocess.run([sys.executable, "-m", "open_r1.testbed", "build", "--root", str(args.world)], check=True)
    if args.quick:
        trainer = compare(args.world, steps=45, batch=16, repeats=3, configs=QUICK_CONFIGS, progress=progress)
        fisher = run_script("bench_fisher.py", ["--world", str(args.world), "--rows", "32", "--steps", "30"], progress)
        dadamw = run_script("bench_dadamw.py", ["--hidden", "256", "--layers", "4", "--repeats", "3"], progress)
        sandbox = run_script("bench_sandbox.py", ["--runs", "10", "--repeats", "1"], progress)
    else:
        from bench_trainer import CONFIGS

        trainer = compare(args.world, steps=80, batch=16, repeats=3, configs=list(CONFIGS), progress=progress)
        fisher = run_script("bench_fisher.py", ["--world", str(args.world)], progress)
        dadamw = run_script("bench_dadamw.py", [], progress)
        sandbox = run_script("bench_sandbox.py", [], progress)
    seconds = time.perf_counter() - started
    where = machine()
    mode = "quick" if args.quick else "full"
    report = f"""Measured by `make bench{"-quick" if args.quick else ""}` ({mode}, {seconds:.0f} s) on {where}.

Trainers on the testbed's tiny model (batch 16; throughput: the configurations in turn in one process, ratios
to TRL within each round; peak memory: one process each):

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
"""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.md").write_text(report)
    (args.out / "bench.json").write_text(
        json.dumps({"machine": where, "mode": mode, "seconds": seconds, "trainer": trainer}, indent=2) + "\n"
    )
    progress(f"wrote {args.out / 'bench.md'} and bench.json ({seconds:.0f} s)")
    if args.update_readme:
        readme = REPO / "README.md"
        text = readme.read_text()
        head, rest = text.split(README_START, 1)
        _, tail = rest.split(README_END, 1)
        readme.write_text(f"{head}{README_START}\n{report}\n{README_END}{tail}")
        progress("README.md performance section updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
