# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Command line of the testbed.

python -m open_r1.testbed build [--world tiny|smollm2] [--root DIR] [--preset default|small] [--seed N] [--force]
python -m open_r1.testbed score --root DIR --model NAME=PATH [--model NAME=PATH ...] [--json FILE]
python -m open_r1.testbed compare [--root DIR] [--methods M ...] [--seeds N ...] [--max-steps N] [--quick] [--sweep]

`compare` reports the test split. `compare --sweep` runs each selected method over its grid (`compare.SWEEPS`: learning
rate, lambda, replay ratio, eta, beta, gamma), in ROOT/sweep by default, and marks the Pareto frontier of (update
accuracy, min(harmful refusal, benign compliance)) on the validation split, where it chooses each method's
configuration, `sft_tuned` and `recommended` (selection.json); the table then gives the chosen ones' test scores. `--world smollm2` builds the SmolLM2 world (`open_r1.testbed.smollm2`, in data/smollm2): a real pretrained chat model
and real harmful prompts, offline; `compare --root data/smollm2` runs its own methods and recipes.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from .compare import WORLDS, check_methods, run_comparison, sweep_methods, world_name, write_report
from .scoring import format_table, score_model
from .world import DEFAULT_ROOT, WorldConfig, WorldPaths, build_world


def _named_model(value: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if not sep:
        name, path = Path(value).name, value
    return name, path


def seed(text: str) -> int:
    """An argparse type: a training seed, 0 to 2**32 - 1 (numpy's range), refused before any run folder is made."""
    value = int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"a seed must be in [0, 2**32), got {value}")
    return value


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m open_r1.testbed", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="Build (or reuse) the testbed world.")
    build.add_argument("--world", default="tiny", choices=["tiny", "smollm2"], help="Which world (default: tiny).")
    build.add_argument("--root", help="Directory of the world (default: data/testbed, or data/smollm2).")
    build.add_argument("--preset", default="default", help="tiny world: default or small (faster, for tests).")
    build.add_argument("--seed", type=int, default=42)
    build.add_argument("--force", action="store_true", help="Rebuild even if a world is already there.")
    score = commands.add_parser("score", help="Score models on the world's held-out splits.")
    score.add_argument("--root", default=str(DEFAULT_ROOT), help="Directory of the world (default: %(default)s).")
    score.add_argument(
        "--model",
        action="append",
        type=_named_model,
        required=True,
        metavar="NAME=PATH",
        help="A model directory to score, optionally named; repeat for several.",
    )
    score.add_argument("--json", help="Also write the scores to this JSON file.")
    compare = commands.add_parser("compare", help="Train and score every continual-learning method, several seeds.")
    compare.add_argument("--root", default=str(DEFAULT_ROOT), help="Directory of the world (default: %(default)s).")
    compare.add_argument("--output", help="Output directory (default: ROOT/compare, or ROOT/compare-quick).")
    compare.add_argument("--recipes", help="The world's recipes (default: recipes/tiny, or recipes/smollm2).")
    compare.add_argument("--methods", nargs="+", help="Methods to run (default: all of the world's).")
    compare.add_argument("--seeds", nargs="+", type=seed, help="Training seeds (default: 0 1 2; --quick: 0).")
    compare.add_argument("--max-steps", type=positive, help="Cap every run at this many optimizer steps.")
    compare.add_argument(
        "--quick",
        action="store_true",
        help="A short run: the world's quick methods, one seed (tiny world: 20 steps). Each option still overrides.",
    )
    compare.add_argument(
        "--sweep",
        action="store_true",
        help="Run every selected method over its grid (compare.SWEEPS) and mark the Pareto frontier (output: ROOT/sweep).",
    )
    compare.add_argument(
        "--splits",
        nargs="+",
        choices=["validation", "test"],
        help="Held-out splits to score every run on, test among them (default: validation, where the world has one, "
        "and test). A comparison reported on test can skip validation, about half of each run's cost on the SmolLM2 "
        "world; --sweep needs both.",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if args.command == "build":
        start = time.perf_counter()
        if args.world == "smollm2":
            from .smollm2 import DEFAULT_ROOT as SMOLLM2_ROOT
            from .smollm2 import SmolWorldConfig, build_smollm2_world

            config = SmolWorldConfig(seed=args.seed)
            paths = build_smollm2_world(args.root or SMOLLM2_ROOT, config, force=args.force)
        else:
            config = WorldConfig.preset(args.preset, seed=args.seed)
            paths = build_world(args.root or DEFAULT_ROOT, config, force=args.force)
        manifest = json.loads(paths.manifest.read_text())
        print(f"Testbed world at {paths.root} ({time.perf_counter() - start:.0f} s)")
        if "scores" in manifest:
            print(format_table(manifest["scores"]))
        elif "base_scores" in manifest:
            print(format_table({"base": manifest["base_scores"]}))
        return 0

    world = WorldPaths(Path(args.root or DEFAULT_ROOT))
    if not world.manifest.exists():
        parser.error(f"--root {args.root}: no testbed world there; run `python -m open_r1.testbed build` first")
    if args.command == "compare":
        return compare_methods(args, world, parser)
    for name, path in args.model:
        if not Path(path).is_dir():
            parser.error(f"--model {name}={path}: no such model directory")
    scores = {name: score_model(path, world) for name, path in args.model}
    print(format_table(scores))
    if args.json:
        Path(args.json).write_text(json.dumps({k: v.as_dict() for k, v in scores.items()}, indent=2) + "\n")
    return 0


def compare_methods(args, world: WorldPaths, parser: argparse.ArgumentParser) -> int:
    import datasets
    import transformers

    from ..utils.run_utils import hold_output_dir

    # One progress line per run; each run's own output goes to its train.log.
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    name = world_name(world)
    all_methods, quick_methods, recipes = WORLDS[name]
    recipes = Path(args.recipes or recipes)
    methods = check_methods(args.methods or list(quick_methods if args.quick else all_methods), recipes, all_methods)
    if args.sweep and not world.has_validation:
        raise SystemExit(f"--sweep: the world at {world.root} has no validation split to select on; rebuild it.")
    if args.splits:
        args.splits = list(dict.fromkeys(args.splits))
        if "test" not in args.splits:
            parser.error("--splits must include test, the split the comparison reports")
        if args.sweep and "validation" not in args.splits:
            parser.error("--sweep selects on the validation split: --splits must include validation")
        if "validation" in args.splits and not world.has_validation:
            parser.error(f"--splits validation: the world at {world.root} has none; rebuild it")
    if args.sweep:
        methods = sweep_methods(methods, recipes)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    max_steps = args.max_steps or (20 if args.quick and name == "tiny" else None)
    default_output = "sweep" if args.sweep else "compare-quick" if args.quick else "compare"
    output = Path(args.output or world.root / default_output)
    try:  # a second comparison on one folder deleted and retrained the first's runs under it
        hold_output_dir(str(output), key="--output")
    except (RuntimeError, ValueError) as error:
        raise SystemExit(str(error)) from None
    print(f"Comparing {len(methods)} methods x {len(seeds)} seeds on {world.root}; results in {output}", flush=True)
    start = time.perf_counter()
    results = run_comparison(
        world,
        output,
        methods,
        seeds,
        recipes,
        max_steps,
        progress=lambda line: print(line, flush=True),
        splits=args.splits,
    )
    files = write_report(results, output, sweep=args.sweep)
    print(files["table"].read_text())
    print(f"Done in {(time.perf_counter() - start) / 60:.1f} min: " + ", ".join(str(p) for p in files.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
