# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""How much of a testbed score's spread is the held-out set's size, and how much the training seed?

    python scripts/held_out_size.py [--root data/testbed] [--methods sft_tuned recommended] [--problems 1000]

Scores the saved runs of `compare` (ROOT/compare/runs/METHOD/seedN) on the world's held-out word problems and on a
larger held-out set: the world's own problems followed by more drawn the same way after them (`make_update_splits`
with a larger test size: the training problems are the same, and every new one is disjoint from them and from the
validation problems). Prints, per
method and set size, the update accuracy per seed, its mean +- standard error over seeds, the binomial standard
error of one seed's score (sqrt(p (1 - p) / n)), and the paired difference of the first two methods per seed.
"""

import argparse
import json
import math
from pathlib import Path

from open_r1.eval.tasks import TASKS, user_message
from open_r1.eval.tasks import score_replies as score_task_replies
from open_r1.testbed.data import make_update_splits
from open_r1.testbed.scoring import generate_replies
from open_r1.testbed.world import WorldPaths


def mean_and_se(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))


def main() -> None:
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data/testbed")
    parser.add_argument("--runs", help="Directory of compare's runs (default: ROOT/compare/runs).")
    parser.add_argument("--methods", nargs="+", default=["sft_tuned", "recommended"])
    parser.add_argument("--problems", type=int, default=1000, help="Size of the larger held-out set.")
    args = parser.parse_args()

    world = WorldPaths(Path(args.root))
    config = json.loads(world.manifest.read_text())["config"]
    rows = make_update_splits(config["seed"], config["update_train_size"], 0, args.problems)["test"]
    update = load_from_disk(str(world.update))
    world_rows = list(update["test"])
    n_world = len(world_rows)
    if [user_message(r) for r in rows[:n_world]] != [user_message(r) for r in world_rows]:
        raise SystemExit(f"{world.update}: the world's held-out problems are not the first {n_world} drawn here")
    # The world draws its validation problems after its test ones: the larger test set leaves them out.
    validation = {user_message(row) for row in update["validation"]} if "validation" in update else set()
    rows = [row for row in rows if user_message(row) not in validation]
    prompts = [user_message(row) for row in rows]
    runs = Path(args.runs or world.root / "compare" / "runs")

    correct = {}  # method -> seed -> per-problem 0/1
    for method in args.methods:
        correct[method] = {}
        for run in sorted((runs / method).glob("seed*")):
            tokenizer = AutoTokenizer.from_pretrained(run)
            model = AutoModelForCausalLM.from_pretrained(run)
            replies = generate_replies(model, tokenizer, prompts)
            correct[method][run.name] = score_task_replies(TASKS["testbed:update"], rows, replies)
            print(
                f"{method} {run.name}: {sum(correct[method][run.name][:n_world]) / n_world:.3f} on {n_world}, "
                f"{sum(correct[method][run.name]) / len(rows):.3f} on {len(rows)}",
                flush=True,
            )

    print()
    print("| method | problems | per seed | mean +- s.e. over seeds | binomial s.e. of one seed |")
    print("|---|---|---|---|---|")
    for method, per_seed in correct.items():
        for n in (n_world, len(rows)):
            scores = [sum(c[:n]) / n for c in per_seed.values()]
            mean, se = mean_and_se(scores)
            binomial = math.sqrt(mean * (1 - mean) / n)
            print(
                f"| {method} | {n} | {' '.join(f'{s:.3f}' for s in scores)} | {mean:.3f} +- {se:.3f} | {binomial:.3f} |"
            )
    if len(args.methods) >= 2:
        first, second = args.methods[:2]
        seeds = sorted(set(correct[first]) & set(correct[second]))
        for n in (n_world, len(rows)):
            diffs = [(sum(correct[second][s][:n]) - sum(correct[first][s][:n])) / n for s in seeds]
            mean, se = mean_and_se(diffs)
            print(
                f"{second} - {first}, {n} problems, paired over {len(seeds)} seeds: {mean:+.3f} +- {se:.3f} "
                f"({' '.join(f'{d:+.3f}' for d in diffs)})"
            )


if __name__ == "__main__":
    main()
