# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The retain data (what must not be forgotten): its recipe fields, loading, and its preparation as labelled
sequences for the Fisher and the retain-NLL probe.

The retain split is loaded once per run (`get_retain_dataset`) and shared by every method that needs it (replay
mixes its rows into the training data, EWC estimates its Fisher on them), formatted as the update data is (the
recipe's `system_prompt`). For the Fisher it is labelled exactly as training labels data: under SFT by TRL's own
pipeline (assistant tokens only when the recipe trains on those), under GRPO by the chat template's assistant tokens.
"""

from dataclasses import dataclass, field

import torch

from ..utils.data import add_system_prompt, check_source, load_dataset_any
from ..utils.data_checks import check_chats, check_columns, check_rows


@dataclass
class RetainDataConfig:
    """The retain data set, shared by replay and EWC."""

    retain_dataset_id: str | None = field(
        default=None,
        metadata={
            "help": "The retain data set (what must not be forgotten): hub id or local path. Used by replay "
            "and as the Fisher data of EWC."
        },
    )
    retain_dataset_config: str | None = field(default=None, metadata={"help": "Config name of the retain set."})
    retain_dataset_split: str = field(default="train", metadata={"help": "Split of the retain data set."})
    retain_dataset_column: str = field(
        default="messages", metadata={"help": "The retain set's column of chats (read as `messages`)."}
    )


def get_retain_dataset(args):
    """The retain split the recipe names (`retain_dataset_id`, `_config`, `_split`), checked (rows, and chats that
    end with a reply: replay trains on them, the Fisher differentiates them) and formatted as the update data is (the
    recipe's `system_prompt`), for replay and the Fisher alike."""
    check_source(args.retain_dataset_id, "retain_dataset_id")
    retain = load_dataset_any(
        args.retain_dataset_id, args.retain_dataset_config, split=args.retain_dataset_split, key="retain_dataset_id"
    )
    what = f"`retain_dataset_id` '{args.retain_dataset_id}' split '{args.retain_dataset_split}'"
    check_rows(retain, what)
    column = args.retain_dataset_column
    check_columns(retain, what, [column], "`retain_dataset_column`: replay and the Fisher read chats")
    if column != "messages":
        retain = retain.select_columns([column]).rename_column(column, "messages")
    check_chats(retain, what)
    return add_system_prompt(retain, args.system_prompt)


def assistant_labels(example: dict, tokenizer) -> dict:
    """input_ids of a `messages` chat and labels that keep only the assistant tokens (-100 elsewhere).

    The assistant tokens are those the chat template marks with `{% generation %}`. A template without the markers
    (the stock Llama-3.1-Instruct one) gets the tokens of the last reply instead: everything after the prompt the
    template renders for the turns before it, with the generation prompt (the reply, its end-of-turn token and
    whatever else the template writes after it).
    """
    messages = example["messages"]
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    input_ids, mask = list(encoded["input_ids"]), encoded["assistant_masks"]
    if not any(mask):
        if not messages or messages[-1]["role"] != "assistant":
            raise ValueError(f"A retain chat must end with an assistant reply; this one ends with {messages[-1:]}.")
        prompt = tokenizer.apply_chat_template(
            messages[:-1], tokenize=True, return_dict=True, add_generation_prompt=True
        )["input_ids"]
        if input_ids[: len(prompt)] != list(prompt):
            raise ValueError(
                "The chat template marks no assistant tokens ({% generation %} missing) and the chat does not start "
                "with its own generation prompt, so the reply's tokens cannot be found: set a `chat_template` with "
                "{% generation %} markers."
            )
        mask = [0] * len(prompt) + [1] * (len(input_ids) - len(prompt))
    labels = [t if m else -100 for t, m in zip(input_ids, mask)]
    return {"input_ids": input_ids, "labels": labels}


def collate_right_padded(examples: list[dict], pad_token_id: int) -> dict:
    """One row per sequence, padded on the right: never packed (a packed batch would make the per-sample Fisher a
    per-batch one)."""
    length = max(len(e["input_ids"]) for e in examples)
    batch = {"input_ids": [], "labels": [], "attention_mask": []}
    for e in examples:
        pad = length - len(e["input_ids"])
        batch["input_ids"].append(list(e["input_ids"]) + [pad_token_id] * pad)
        batch["labels"].append(list(e["labels"]) + [-100] * pad)
        batch["attention_mask"].append([1] * len(e["input_ids"]) + [0] * pad)
    return {key: torch.tensor(value) for key, value in batch.items()}


def labelled_batches(rows, tokenizer, batch_size: int) -> list[dict]:
    """`messages` rows as right-padded batches with assistant-only labels: Fisher input built without a Trainer."""
    examples = [assistant_labels(row, tokenizer) for row in rows]
    return [
        collate_right_padded(examples[i : i + batch_size], tokenizer.pad_token_id)
        for i in range(0, len(examples), batch_size)
    ]


def labelled_retain_rows(retain, trainer, num_samples: int, seed: int):
    """`num_samples` seeded rows of the retain split as (`input_ids`, `labels`), labelled as `trainer` trains: by TRL's
    SFT pipeline (it folds the assistant/completion masks into `labels`, -100 where SFT does not train), or, under
    GRPO, which has no such pipeline, by the chat template's assistant tokens."""
    # The chats alone: TRL would read a retain set's own `prompt` column (wildguardmix has one) as prompt-completion data.
    data = retain.select_columns(["messages"]).shuffle(seed=seed)
    data = data.select(range(min(num_samples, len(data))))
    if hasattr(trainer, "_prepare_dataset"):
        drawn = len(data)
        data = trainer._prepare_dataset(
            data, trainer.processing_class, trainer.args, packing=False, formatting_func=None, dataset_name="fisher"
        )
        if drawn and len(data) == 0:  # TRL drops rows that max_length leaves without a labelled token
            raise ValueError(
                f"The retain set: none of its {drawn} drawn rows has a labelled (assistant) token within `max_length` "
                f"{trainer.args.max_length}: raise `max_length`, or use shorter retain chats."
            )
        return data.select_columns(["input_ids", "labels"])
    tokenizer = trainer.processing_class
    return data.map(assistant_labels, fn_kwargs={"tokenizer": tokenizer}, remove_columns=data.column_names)


class RetainBatches:
    """Labelled retain batches taken in turn, cycled, for methods that take one retain batch every `every_steps`
    optimizer steps (A-GEM, retain distillation): `num_samples` seeded rows labelled as the trainer trains, each rank
    its own share, right-padded batches of `batch_size`. Its state (steps counted, batches taken) goes in the
    method's checkpoint state."""

    def __init__(self, retain, trainer, num_samples: int, batch_size: int, every_steps: int, seed: int, key: str):
        rows = labelled_retain_rows(retain, trainer, num_samples, seed)
        rank, world = trainer.args.process_index, trainer.args.world_size
        rows = rows.select(range(rank, len(rows), world))
        if len(rows) == 0:
            raise ValueError(f"`{key}`: no retain rows for rank {rank} (fewer samples than processes).")
        pad = trainer.processing_class.pad_token_id
        self.batches = [
            collate_right_padded([rows[j] for j in range(i, min(i + batch_size, len(rows)))], pad)
            for i in range(0, len(rows), batch_size)
        ]
        self.every_steps = every_steps
        self.taken = 0
        self.steps_seen = 0

    def next_if_due(self, device) -> dict | None:
        """Counts an optimizer step; the next batch on `device` when the step is due (the 1st, then every
        `every_steps`), else None."""
        self.steps_seen += 1
        if (self.steps_seen - 1) % self.every_steps:
            return None
        batch = self.batches[self.taken % len(self.batches)]
        self.taken += 1
        return {key: value.to(device) for key, value in batch.items()}

    def state_dict(self) -> dict:
        return {"batches_taken": self.taken, "steps_seen": self.steps_seen}

    def load_state_dict(self, state: dict) -> None:
        self.taken, self.steps_seen = state["batches_taken"], state["steps_seen"]
