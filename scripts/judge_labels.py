# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The refusal judge against replies labelled by hand (`tests/fixtures/judge_labels.jsonl`).

    python scripts/judge_labels.py generate --out FILE [--tiny NAME=MODEL_DIR ...] [--smollm2-raw]
                                            [--smollm2 NAME=MODEL_DIR ...]
    python scripts/judge_labels.py agreement [FILE]

`generate` writes real replies of the worlds' models, unlabelled: the tiny world's held-out harmful and benign
prompts answered by each `--tiny` model (64 new tokens, as the world scores them); with `--smollm2-raw`,
SmolLM2-135M-Instruct's replies (imported from its PyPI wheel) to HarmBench test behaviours (either split of the
SmolLM2 world) and its validation benign requests, at 128 new tokens, with the verdict the judge gives their first 32
tokens (how the SmolLM2 world judged them); with `--smollm2`, each named model of the SmolLM2 world (its
safety-tuned base, runs of `compare --root data/smollm2`) answering the world's *validation* harmful (standard
behaviours) and benign prompts at its 128 tokens, so that labels read there can inform the judge without touching
the test split.
Each row: `id`, `source` (model), `kind` (harmful or benign prompt), `prompt`, `reply`, `reply_32` (SmolLM2 only),
`label` (null until a person reads the reply and writes `refusal` or `compliance`).

`agreement` prints, for the current judge (`open_r1.eval.judges.is_refusal`) and for the first-sentence judge it
replaced (`first_sentence_judge` column, recorded when the rows were generated), the share of labelled replies whose
verdict equals the label, the errors by kind (refusals missed, compliances counted as refusals, by prompt kind), and
how often reading 32 instead of 128 tokens changes the current judge's verdict.
"""

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILE = REPO / "tests" / "fixtures" / "judge_labels.jsonl"


def _world_prompts(
    world_root: Path, per_kind: dict[str, int], seed: int, split: str = "validation"
) -> list[tuple[str, str]]:
    """A sample of a world's held-out harmful and benign prompts of one split (HarmBench's contextual behaviours,
    pages of text before the request, left out: short to read)."""
    from datasets import load_from_disk

    rows = list(load_from_disk(str(world_root / "retain"))[split])
    rng = random.Random(seed)
    chosen = []
    for kind, count in per_kind.items():
        group = [row["messages"][0]["content"] for row in rows if row["kind"] == kind]
        group = [prompt for prompt in group if "\n---\n" not in prompt]
        chosen += [(kind, prompt) for prompt in rng.sample(group, min(count, len(group)))]
    return chosen


def _smollm2_prompts(per_kind: dict[str, int], seed: int) -> list[tuple[str, str]]:
    from open_r1.eval.safety_data import build
    from open_r1.testbed.data import REQUEST_TEMPLATES
    from open_r1.testbed.smollm2 import VALIDATION_TASKS, WHEEL_CACHE

    safety = REPO / "data" / "safety"
    if not (safety / "harmbench" / "test.jsonl").exists():
        build(safety, WHEEL_CACHE)
    harmful = [json.loads(line)["prompt"] for line in (safety / "harmbench" / "test.jsonl").read_text().splitlines()]
    harmful = [prompt for prompt in harmful if "\n---\n" not in prompt]  # standard behaviours: short to read
    benign = [template.format(task=task) for task in VALIDATION_TASKS for template in REQUEST_TEMPLATES]
    rng = random.Random(seed)
    return [("harmful", p) for p in rng.sample(harmful, per_kind["harmful"])] + [
        ("benign", p) for p in rng.sample(benign, per_kind["benign"])
    ]


def _first_tokens(tokenizer, reply: str, count: int) -> str:
    """The reply cut to its first `count` tokens: what a scorer generating `count` new tokens would have judged."""
    return tokenizer.decode(tokenizer(reply, add_special_tokens=False)["input_ids"][:count], skip_special_tokens=True)


def generate(args) -> int:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from open_r1.testbed.scoring import generate_replies

    sys.path.insert(0, str(Path(args.old_judge).parent))
    first_sentence_judge = __import__(Path(args.old_judge).stem).is_refusal

    def reply_rows(source, model, tokenizer, prompts, max_new_tokens, batch_size=64, cut_32=False) -> list[dict]:
        replies = generate_replies(model, tokenizer, [p for _, p in prompts], max_new_tokens, batch_size=batch_size)
        return [
            {"source": source, "kind": kind, "prompt": prompt, "reply": reply}
            | {"reply_32": _first_tokens(tokenizer, reply, 32) if cut_32 else None}
            for (kind, prompt), reply in zip(prompts, replies)
        ]

    def load(model_dir):
        return AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)

    rows = []
    for spec in args.tiny:
        name, _, model_dir = spec.partition("=")
        per_kind = {"harmful": args.tiny_harmful, "benign": args.tiny_benign}
        prompts = _world_prompts(Path(args.tiny_world), per_kind, 0, split="test")
        rows += reply_rows(f"tiny:{name}", *load(model_dir), prompts, 64)
    smollm2_per_kind = {"harmful": args.smollm2_harmful, "benign": args.smollm2_benign}
    if args.smollm2_raw:
        from open_r1.testbed.smollm2 import CHAT_TEMPLATE, import_raw_model

        raw = REPO / "data" / "smollm2_raw"
        if not (raw / "config.json").exists():
            import_raw_model(raw)
        model, tokenizer = load(raw)
        tokenizer.chat_template = CHAT_TEMPLATE
        prompts = _smollm2_prompts(smollm2_per_kind, 0)
        rows += reply_rows("smollm2:raw", model, tokenizer, prompts, 128, batch_size=16, cut_32=True)
    for spec in args.smollm2:
        name, _, model_dir = spec.partition("=")
        prompts = _world_prompts(Path(args.smollm2_world), smollm2_per_kind, 0)
        rows += reply_rows(f"smollm2:{name}", *load(model_dir), prompts, 128, batch_size=16, cut_32=True)
    with open(args.out, "w") as handle:
        for index, row in enumerate(rows):
            row = {"id": index, **row, "first_sentence_judge": first_sentence_judge(row["reply"]), "label": None}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} replies in {args.out}")
    return 0


def agreement_report(rows: list[dict]) -> dict:
    """Agreement of the current judge and the first-sentence judge with the labels, errors by kind, and the share
    of SmolLM2 replies whose current verdict changes between 32 and 128 tokens."""
    from open_r1.eval.judges import is_refusal

    labelled = [row for row in rows if row["label"] in ("refusal", "compliance")]
    report = {
        "labelled": len(labelled),
        "unclear": sum(row["label"] == "unclear" for row in rows),
        "labels": {
            f"{kind} prompt, {label}": n
            for (kind, label), n in sorted(Counter((r["kind"], r["label"]) for r in labelled).items())
        },
    }
    for judge, verdict in (
        ("whole_reply", lambda row: is_refusal(row["reply"])),
        ("first_sentence", lambda row: row["first_sentence_judge"]),
    ):
        errors = Counter()
        for row in labelled:
            said, truth = verdict(row), row["label"] == "refusal"
            if said != truth:
                errors[f"{'missed refusal' if truth else 'false refusal'} ({row['kind']} prompt)"] += 1
        report[judge] = {"agreement": 1 - sum(errors.values()) / len(labelled), "errors": dict(errors)}
    cut = [row for row in rows if row.get("reply_32") is not None]
    changed = [row for row in cut if is_refusal(row["reply_32"]) != is_refusal(row["reply"])]
    report["32_vs_128_tokens"] = {"replies": len(cut), "verdict_changed": len(changed)}
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("generate", help="Write unlabelled replies of the worlds' models.")
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--tiny", action="append", default=[], metavar="NAME=MODEL_DIR")
    make.add_argument("--tiny-world", default=str(REPO / "data" / "testbed"))
    make.add_argument("--tiny-harmful", type=int, default=30)
    make.add_argument("--tiny-benign", type=int, default=20)
    make.add_argument("--smollm2-raw", action="store_true")
    make.add_argument("--smollm2", action="append", default=[], metavar="NAME=MODEL_DIR")
    make.add_argument("--smollm2-world", default=str(REPO / "data" / "smollm2"))
    make.add_argument("--smollm2-harmful", type=int, default=60)
    make.add_argument("--smollm2-benign", type=int, default=40)
    make.add_argument("--old-judge", required=True, help="A copy of the judge module to record beside the labels.")
    report = commands.add_parser("agreement", help="The judges' agreement with the labels.")
    report.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    args = parser.parse_args(argv)
    if args.command == "generate":
        return generate(args)
    rows = [json.loads(line) for line in args.file.read_text().splitlines()]
    print(json.dumps(agreement_report(rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
