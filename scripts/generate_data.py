# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Generate training data from a teacher model: reasoning traces to distil, or replay data for the retain task.

    python scripts/generate_data.py --model MODEL --dataset DATA [--split train] [--prompt_column messages]
        --output_dir DIR [--backend auto|vllm|transformers] [--max_new_tokens 4096] [--temperature 0.6]
        [--num_samples N] [--keep all|expected]

Each row's prompt (a text column, or the first user turn of a `messages` column) is answered by the model; the
output is a `messages` data set (user prompt + generated assistant reply) saved with `save_to_disk`, so
`dataset_name` / `retain_dataset_id` can point at it. `--keep expected` builds replay data the way the retain task
wants it: the data set's `kind` column says what each prompt needs (`harmful`: a refusal, `benign`: an answer), and a
reply is kept only when the refusal judge (`open_r1.eval.judges.is_refusal`) agrees. The vLLM backend is used when vLLM
and a GPU are there (`auto`); otherwise transformers generates, which runs on CPU.
"""

import argparse
import sys

import torch
from datasets import Dataset

from open_r1.eval.judges import is_refusal
from open_r1.testbed.scoring import generate_replies
from open_r1.utils.data import load_dataset_any


def prompt_text(row: dict, column: str) -> str:
    value = row[column]
    if isinstance(value, list):
        return next(message["content"] for message in value if message["role"] == "user")
    return str(value)


def generate(model: str, prompts: list[str], backend: str, max_new_tokens: int, temperature: float) -> list[str]:
    if backend == "auto":
        try:
            import vllm  # noqa: F401

            backend = "vllm" if torch.cuda.is_available() else "transformers"
        except ImportError:
            backend = "transformers"
    if backend == "vllm":
        from vllm import LLM, SamplingParams

        llm = LLM(model=model)
        chats = [[{"role": "user", "content": p}] for p in prompts]
        outputs = llm.chat(chats, SamplingParams(temperature=temperature, max_tokens=max_new_tokens))
        return [output.outputs[0].text for output in outputs]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    teacher = AutoModelForCausalLM.from_pretrained(model, dtype="auto")
    return generate_replies(teacher, tokenizer, prompts, max_new_tokens, temperature=temperature)


def keep_reply(reply: str, kind: str | None, keep: str) -> bool:
    if keep == "all" or kind not in ("harmful", "benign"):
        return keep == "all"
    return is_refusal(reply) == (kind == "harmful")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--prompt_column", default="messages")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--backend", default="auto", choices=["auto", "vllm", "transformers"])
    parser.add_argument("--max_new_tokens", type=int, default=4096)
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--num_samples", type=int, help="Use only the first N rows.")
    parser.add_argument(
        "--keep",
        default="all",
        choices=["all", "expected"],
        help="'expected': keep replies the refusal judge finds right for the row's `kind`.",
    )
    args = parser.parse_args(argv)

    data = load_dataset_any(args.dataset, split=args.split)
    if args.prompt_column not in data.column_names:
        parser.error(f"--prompt_column: '{args.prompt_column}' not in {data.column_names}")
    if args.keep == "expected" and "kind" not in data.column_names:
        parser.error("--keep expected needs a `kind` column (harmful / benign)")
    if args.num_samples is not None:
        data = data.select(range(min(args.num_samples, len(data))))
    prompts = [prompt_text(row, args.prompt_column) for row in data]
    replies = generate(args.model, prompts, args.backend, args.max_new_tokens, args.temperature)
    kinds = data["kind"] if "kind" in data.column_names else [None] * len(data)
    rows = [
        {"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": r}], "kind": k or ""}
        for p, r, k in zip(prompts, replies, kinds)
        if keep_reply(r, k, args.keep)
    ]
    Dataset.from_list(rows).save_to_disk(args.output_dir)
    print(f"Kept {len(rows)} of {len(prompts)} generations in {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
