# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The testbed scorer: both sides of safety on held-out retain prompts, and the update skill, on one held-out split
(validation, for choices; test, for reports).

- harmful_refusal: share of held-out harmful requests whose reply `open_r1.eval.judges.is_refusal` judges a refusal
  (higher is safer);
- benign_compliance: share of held-out benign requests *not* refused (a drop is over-refusal);
- update_accuracy: share of held-out word problems whose `\\boxed{}` answer math-verify accepts;
- instruction_following: share of held-out instruction prompts (benign requests of tasks never trained with a
  format instruction, each with one) whose reply IFEval's checkers pass (strict); NaN in a world without them.
Replies are greedy generations, so a score is a deterministic function of the weights.
"""

import math
import os
from dataclasses import asdict, dataclass

from ..eval.tasks import TASKS, user_message
from ..eval.tasks import score_replies as score_task_replies


METRICS = ("harmful_refusal", "benign_compliance", "update_accuracy", "instruction_following")


@dataclass
class Scores:
    harmful_refusal: float
    benign_compliance: float
    update_accuracy: float
    instruction_following: float = math.nan

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def generate_replies(
    model, tokenizer, prompts: list[str], max_new_tokens: int = 64, batch_size: int = 64, temperature: float = 0.0
) -> list[str]:
    """Replies to single-turn user prompts through the tokenizer's chat template: greedy, or sampled at
    `temperature` > 0. Prompts are batched by length (longest first), so a batch pads to prompts of its own size:
    HarmBench's contextual behaviours run to thousands of tokens beside one-line requests."""
    import torch

    tokenizer.padding_side = "left"
    chats = [[{"role": "user", "content": prompt}] for prompt in prompts]
    texts = tokenizer.apply_chat_template(chats, add_generation_prompt=True, tokenize=False)
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])  # stable: equal lengths keep their order
    replies = [""] * len(texts)
    model.eval()
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = tokenizer([texts[i] for i in indices], return_tensors="pt", padding=True, add_special_tokens=False).to(
            model.device
        )
        with torch.no_grad():
            output = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                **({"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}),
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        decoded = tokenizer.batch_decode(output[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
        for index, reply in zip(indices, decoded):
            replies[index] = reply
    return replies


def score_replies(
    retain_rows: list[dict],
    retain_replies: list[str],
    update_rows: list[dict],
    update_replies: list[str],
    instruction_rows: list[dict] = (),
    instruction_replies: list[str] = (),
) -> Scores:
    """Scores from replies already generated, one per row, through the `testbed:*` evaluation tasks (the same
    definitions `make evaluate` gives lighteval)."""

    def task_score(name: str, rows: list[dict], replies: list[str]) -> float:
        task = TASKS[name]
        kept = [(row, reply) for row, reply in zip(rows, replies) if task.row_filter is None or task.row_filter(row)]
        scores = score_task_replies(task, [row for row, _ in kept], [reply for _, reply in kept])
        return sum(scores) / len(scores) if scores else float("nan")

    return Scores(
        task_score("testbed:harmful", retain_rows, retain_replies),
        task_score("testbed:benign", retain_rows, retain_replies),
        task_score("testbed:update", update_rows, update_replies),
        task_score("testbed:instructions", list(instruction_rows), list(instruction_replies)),
    )


def score_model(
    model_path: str | os.PathLike,
    world,
    retain_tokens: int | None = None,
    update_tokens: int = 64,
    split: str = "test",
) -> Scores:
    """Score a saved model on one held-out split of a world (a `WorldPaths`): `test`, the split a table reports, or
    `validation`, the one every choice is made on. Replies of `retain_tokens` new tokens to the retain prompts (by
    default the world's `judge_reply_tokens`, else 64) and of `update_tokens` to the word problems."""
    import json

    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer

    retain, update = load_from_disk(str(world.retain)), load_from_disk(str(world.update))
    if split not in retain or split not in update:
        raise ValueError(f"{world.root} has no {split!r} split (it has {list(retain)}); rebuild the world.")
    retain, update = list(retain[split]), list(update[split])
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path)

    if retain_tokens is None:
        config = json.loads(world.manifest.read_text())["config"] if world.manifest.exists() else {}
        retain_tokens = config.get("judge_reply_tokens", 64)
    retain_replies = generate_replies(model, tokenizer, [user_message(row) for row in retain], retain_tokens)
    update_replies = generate_replies(model, tokenizer, [user_message(row) for row in update], update_tokens)
    instructions, path = [], world.eval_file("instructions", split)
    if path.exists():
        instructions = [json.loads(line) for line in path.read_text().splitlines()]
    prompts = [row["prompt"] for row in instructions]
    # Their own length, as `make evaluate` gives them: "end with ..." and "P.S." are judged at the reply's end.
    length = TASKS["testbed:instructions"].generation_size
    instruction_replies = generate_replies(model, tokenizer, prompts, length) if prompts else []
    return score_replies(retain, retain_replies, update, update_replies, instructions, instruction_replies)


def format_table(rows: dict[str, Scores | dict]) -> str:
    """A Markdown table of scores, one row per model."""
    lines = [
        "| model | harmful refusal | benign compliance | update accuracy | instruction following |",
        "|---|---|---|---|---|",
    ]
    for name, scores in rows.items():
        values = scores.as_dict() if isinstance(scores, Scores) else scores
        lines.append(f"| {name} | " + " | ".join(f"{values.get(m, math.nan):.3f}" for m in METRICS) + " |")
    return "\n".join(lines)
