# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Recipe validation: every recipe parses into its entry point's dataclasses before any job is submitted.

    python -m open_r1.recipes check [PATHS ...] [--version v00.24] [--accelerate-config recipes/accelerate_configs/zero3.yaml]
                                    [--num-processes N] [--allow-missing data/] [--allow-missing-packages]
    python -m open_r1.recipes migrate SRC... (--out DIR | --in-place)
    python -m open_r1.recipes smoke RECIPE... [--accelerate-config CFG] [--steps 2] [--processes 2]

PATHS are recipe files or directories (default: `recipes/`, every `config_*.yaml` below it). Each recipe is rendered
(`${VERSION}` from `--version`, else from the file name `..._vXX.YY.yaml`, else v00.00), then parsed by `TrlParser`
into `sft.py`'s or `grpo.py`'s dataclasses (GRPO when the path has a `grpo/` directory or the recipe names
`reward_funcs`). Reported, all of a file's problems together, one line each as `file: key: problem`:
- unknown keys (with the new name for a renamed one, or a close match) and values of the wrong type;
- every rule group of the configs (each method's keys, the Trainer's values, `dtype`, the dataset source) and of
  the entry points (callback, reward and benchmark names, GRPO's cross-checks), each run on its own, so one broken
  rule does not hide the others; GRPO's batch arithmetic at the job's process count (`--num-processes`, else the
  accelerate config's);
- placeholders of the fork's sweep scripts (`${EPOCHS}`, ...), named as such;
- packages a recipe needs that are not importable here (liger-kernel, flash-attn, vllm, bitsandbytes), unless
  `--allow-missing-packages`;
- methods the accelerate config cannot run (the KL trust region under ZeRO-3 or FSDP);
- local model and data paths that do not exist (paths under an `--allow-missing` prefix are outputs of other
  commands, such as the testbed world under `data/`);
- versioned recipes whose `output_dir` or `run_name` lacks `${VERSION}`.
bf16 recipes are checked with bf16 off on a machine without a GPU, where TrainingArguments would refuse them.
The exit status is 1 when any recipe has a problem. `migrate` rewrites fork and Open R1 recipes (see
`open_r1.recipes.migrate`).
"""

import argparse
import re
import sys
from pathlib import Path

import yaml

from ..memory import parse_size
from .check import check_recipe, unbound_placeholders
from .memory import memory_verdict, plan_recipe
from .reading import launch_of, recipe_files


def _memory(args) -> int:
    status = 0
    for path in recipe_files(args.paths):
        try:
            accelerate_config, processes = launch_of(path, args.accelerate_config, args.num_processes)
            memory_plan = plan_recipe(path, accelerate_config, processes, parse_size(args.gpu_memory))
        except ValueError as error:
            print(f"{path}: {error}")
            status = 1
            continue
        print(f"\n{path} under {accelerate_config or 'one process'}:\n{memory_plan.table()}")
        if memory_plan.total > 0.9 * memory_plan.gpu_bytes:
            status = 1
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m open_r1.recipes", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="Validate recipes.")
    check.add_argument("paths", nargs="*", default=["recipes"])
    check.add_argument("--version", help="Value of ${VERSION} (default: from the file name, else v00.00).")
    check.add_argument("--accelerate-config", type=Path, help="Also check the methods against this config.")
    check.add_argument(
        "--num-processes",
        type=int,
        help="Processes of the job, for batch arithmetic (default: the accelerate config's).",
    )
    check.add_argument(
        "--allow-missing",
        action="append",
        default=[],
        help="Path prefix whose missing paths are outputs of other commands (repeatable).",
    )
    check.add_argument(
        "--gpu-memory",
        default="80GB",
        help="Memory of one GPU: a recipe whose planned peak does not fit (10%% margin) under its launch (the "
        "header's, or --accelerate-config / --num-processes) fails (default: %(default)s; `none` skips the plan).",
    )
    check.add_argument(
        "--set",
        dest="bindings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="A sweep template's placeholder ${NAME} bound to VALUE for the check (repeatable; unbound ones take a "
        "stand-in, and are named).",
    )
    check.add_argument(
        "--allow-missing-packages",
        action="store_true",
        help="Do not report packages (liger-kernel, flash-attn, vllm, bitsandbytes) missing on this machine, e.g. on a "
        "login node without a GPU.",
    )
    migrate = commands.add_parser("migrate", help="Rewrite fork and Open R1 recipes to this project's keys.")
    migrate.add_argument("paths", nargs="+", help="Recipe files or directories.")
    where = migrate.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="Write the migrated recipes under this directory.")
    where.add_argument("--in-place", action="store_true", help="Rewrite the files themselves.")
    smoke = commands.add_parser("smoke", help="Run recipes for real on CPU stand-ins: train, save, resume, train.")
    smoke.add_argument("paths", nargs="+", help="Recipe files or directories.")
    smoke.add_argument("--accelerate-config", type=Path, help="Default: the one the recipe's header launches with.")
    smoke.add_argument("--steps", type=int, default=2, help="Steps before the checkpoint (one more after resuming).")
    smoke.add_argument("--processes", type=int, default=2, help="CPU processes (gloo); 1 runs without a backend.")
    smoke.add_argument("--workdir", type=Path, default=Path("data/smoke"), help="Where stand-ins and runs go.")
    memory = commands.add_parser("memory", help="Per-GPU memory of recipes under an accelerate config, and a verdict.")
    memory.add_argument("paths", nargs="+", help="Recipe files or directories.")
    memory.add_argument("--accelerate-config", type=Path, help="Default: the one the recipe's header launches with.")
    memory.add_argument("--num-processes", type=int, help="Processes (default: the accelerate config's).")
    memory.add_argument("--gpu-memory", default="80GB", help="Memory of one GPU (default: %(default)s).")
    args = parser.parse_args(argv)

    if args.command == "memory":
        return _memory(args)
    if args.command == "migrate":
        return _migrate(args)
    if args.command == "smoke":
        return _smoke(args)
    files = recipe_files(args.paths)
    bindings = {}
    for binding in args.bindings:
        name, equals, value = binding.partition("=")
        if not equals or not re.fullmatch(r"\w+", name):
            parser.error(f"--set {binding!r}: expected NAME=VALUE")
        bindings[name] = value
    problems = [
        p
        for f in files
        for p in check_recipe(
            f,
            args.version,
            args.accelerate_config,
            tuple(args.allow_missing),
            args.num_processes,
            args.allow_missing_packages,
            bindings,
        )
    ]
    for path in files:
        for name in unbound_placeholders(path, bindings):
            print(
                f"note: {path}: ${{{name}}}: a sweep template's placeholder, checked with a stand-in value; bind it "
                f"with `--set {name}=...`, and render it before launching (the entry points refuse it)"
            )
    if str(args.gpu_memory).lower() != "none":
        for path in files:
            problem, note = memory_verdict(
                path, args.accelerate_config, args.num_processes, parse_size(args.gpu_memory), bindings
            )
            problems += [problem] if problem else []
            if note:
                print(f"note: {note}")
    for problem in problems:
        print(problem)
    print(f"{len(files)} recipes checked, {len(problems)} problems")
    return 1 if problems else 0


def _smoke(args) -> int:
    import shutil
    import time

    from .smoke import smoke

    failures = 0
    for recipe in recipe_files(args.paths):
        workdir = args.workdir / recipe.stem
        shutil.rmtree(workdir, ignore_errors=True)
        start = time.perf_counter()
        try:
            smoke(recipe, workdir, args.accelerate_config, args.steps, args.processes)
            print(f"ok      {recipe} ({time.perf_counter() - start:.0f} s)", flush=True)
        except (RuntimeError, ValueError) as error:
            failures += 1
            print(f"FAILED  {recipe}: {error}", flush=True)
    return 1 if failures else 0


def _migrate(args) -> int:
    from .migrate import migrate_file

    failed = []
    for item in args.paths:
        root = Path(item)
        files = sorted(root.rglob("*.yaml")) if root.is_dir() else [root]
        for source in files:
            relative = source.relative_to(root) if root.is_dir() else Path(source.name)
            target = source if args.in_place else args.out / relative
            try:
                changed, unmapped = migrate_file(source, target)
            except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:  # name it, go on with the rest
                failed.append(source)
                print(f"{source}: not migrated: {type(error).__name__}: {error}".replace("\n", " "), file=sys.stderr)
                continue
            print(f"{source} -> {target}")
            for line in changed:
                print(f"  changed: {line}")
            for line in unmapped:
                print(f"  not mapped: {line}")
    if failed:
        print(f"{len(failed)} file(s) not migrated: {', '.join(map(str, failed))}", file=sys.stderr)
    return 1 if failed else 0
