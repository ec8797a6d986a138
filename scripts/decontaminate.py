# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Decontaminate a data set against benchmark sets with word 8-grams (as Open R1, following s1).

A row is contaminated by a benchmark when one of the normalised word n-grams of its `--problem_column` text is an
n-gram of a benchmark problem. Each benchmark adds a boolean column `contaminated_<name>`; `--cleanup` drops the
contaminated rows (and those columns).

    python scripts/decontaminate.py --dataset open-r1/OpenR1-Math-220k --problem_column problem --cleanup \
        [--benchmark math_500=HuggingFaceH4/MATH-500:test:problem ...] [--output_dir DIR | --new_dataset_name NAME]

Benchmarks are `name=dataset[:split[:column]]` with a hub id or local path; the defaults are AIME 2024/2025,
MATH-500 and GPQA Diamond. Without `--output_dir`, the result is pushed to the Hub as `--new_dataset_name`
(default: `<dataset>_decontaminated`).
"""

import argparse
import re
import sys

from open_r1.utils.data import load_dataset_any


DEFAULT_BENCHMARKS = [
    "aime_2024=HuggingFaceH4/aime_2024:train:problem",
    "aime_2025=yentinglin/aime_2025:train:problem",
    "math_500=HuggingFaceH4/MATH-500:test:problem",
    "gpqa=Idavidrein/gpqa:train:Question",
]


def normalize_string(text: str) -> str:
    """Lower case, punctuation to spaces, whitespace collapsed."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def word_ngrams(text: str, n: int) -> set[str]:
    words = normalize_string(text).split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def build_ngram_lookup(documents: list[str], n: int) -> set[str]:
    return set().union(*(word_ngrams(doc, n) for doc in documents)) if documents else set()


def parse_benchmark(spec: str) -> tuple[str, str, str, str]:
    name, sep, rest = spec.partition("=")
    if not sep:
        raise ValueError(f"--benchmark {spec!r}: expected name=dataset[:split[:column]]")
    path, split, column = (rest.split(":") + ["test", "problem"])[:3] if ":" in rest else (rest, "test", "problem")
    return name, path, split, column


def decontaminate(
    dataset, problem_column: str, benchmarks: dict[str, list[str]], ngram_size: int = 8, cleanup: bool = False
):
    if problem_column not in dataset.column_names:
        raise ValueError(f"--problem_column: '{problem_column}' not in {dataset.column_names}")
    for name, problems in benchmarks.items():
        lookup = build_ngram_lookup(problems, ngram_size)
        column = f"contaminated_{name}"
        dataset = dataset.map(
            lambda row, lookup=lookup, column=column: {
                column: bool(word_ngrams(str(row[problem_column]), ngram_size) & lookup)
            }
        )
        print(f"{name}: {sum(dataset[f'contaminated_{name}'])} of {len(dataset)} rows contaminated")
    if cleanup:
        columns = [f"contaminated_{name}" for name in benchmarks]
        dataset = dataset.filter(lambda row: not any(row[c] for c in columns)).remove_columns(columns)
        print(f"{len(dataset)} rows kept")
    return dataset


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="Hub id or local path of the data set to check.")
    parser.add_argument("--split", default="train")
    parser.add_argument("--ngram_size", type=int, default=8)
    parser.add_argument("--problem_column", default="problem")
    parser.add_argument("--benchmark", action="append", help="name=dataset[:split[:column]] (repeatable).")
    parser.add_argument("--cleanup", action="store_true", help="Drop contaminated rows.")
    parser.add_argument("--output_dir", help="Save the result here instead of pushing it to the Hub.")
    parser.add_argument("--new_dataset_name", help="Hub name of the result (default: <dataset>_decontaminated).")
    args = parser.parse_args(argv)

    benchmarks = {}
    for spec in args.benchmark or DEFAULT_BENCHMARKS:
        name, path, split, column = parse_benchmark(spec)
        benchmarks[name] = [str(x) for x in load_dataset_any(path, split=split)[column]]
    dataset = decontaminate(
        load_dataset_any(args.dataset, split=args.split),
        args.problem_column,
        benchmarks,
        args.ngram_size,
        args.cleanup,
    )
    if args.output_dir:
        dataset.save_to_disk(args.output_dir)
    else:
        dataset.push_to_hub(args.new_dataset_name or f"{args.dataset}_decontaminated", split=args.split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
