# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Replay: mix rows of the retain data set into the update data.

`replay_ratio` is the share of retain rows in the mixed training set, in both modes:
- `replace` (default, as the fork did): a seeded random `replay_ratio` of the update rows are replaced by retain
  rows, so the data set size (and the number of steps per epoch) stays the same;
- `add`: all update rows are kept and retain rows are added until they make up `replay_ratio` of the total.
Retain rows are drawn without replacement, seeded by the training seed; the result is shuffled with it. Both sets
are mixed on their `messages` column only (the mixed set has no other column); the retain rows arrive formatted as
the update rows (the recipe's `system_prompt`, by `get_retain_dataset`). SFT only: GRPO prompts need verifiable
answers.
"""

import logging
from dataclasses import dataclass, field

from datasets import Dataset, concatenate_datasets

from .base import ContinualMethod


logger = logging.getLogger(__name__)

REPLAY_MODES = ("replace", "add")


@dataclass
class ReplayConfig:
    replay_ratio: float = field(
        default=0.0,
        metadata={"help": "Share of retain rows in the training set (0 = no replay), in [0, 1)."},
    )
    replay_mode: str = field(
        default="replace",
        metadata={
            "help": "'replace': retain rows replace update rows, the data set size stays the same (as the "
            "fork); 'add': retain rows are added to all update rows.",
            "choices": list(REPLAY_MODES),
        },
    )

    def check_replay_args(self) -> None:
        if not 0.0 <= self.replay_ratio < 1.0:
            raise ValueError(f"`replay_ratio` must be in [0, 1), got {self.replay_ratio}.")
        if self.replay_mode not in REPLAY_MODES:
            raise ValueError(f"`replay_mode` must be one of {REPLAY_MODES}, got {self.replay_mode!r}.")
        if self.replay_ratio > 0 and self.retain_dataset_id is None:
            raise ValueError("`replay_ratio` > 0 needs `retain_dataset_id`.")


def mix_replay(update: Dataset, retain: Dataset, ratio: float, seed: int, mode: str = "replace") -> Dataset:
    # Mixed on the chats alone: the update and retain sets have other columns of their own (OpenR1-Math's problem and
    # solution, wildguardmix's labels), which SFT on `messages` does not read.
    for name, data in (("update", update), ("retain", retain)):
        if "messages" not in data.column_names:
            raise ValueError(f"Replay mixes `messages` chats: the {name} data set has none ({data.column_names}).")
    update, retain = update.select_columns(["messages"]), retain.select_columns(["messages"])
    if mode == "replace":
        n_retain = round(ratio * len(update))
        kept = update.shuffle(seed=seed).select(range(len(update) - n_retain))
    else:
        n_retain = round(ratio * len(update) / (1.0 - ratio))
        kept = update
    if n_retain > len(retain):
        raise ValueError(
            f"`replay_ratio` {ratio} needs {n_retain} retain rows but the retain data set has {len(retain)}."
        )
    replayed = retain.shuffle(seed=seed).select(range(n_retain))
    logger.info("Replay (%s): %d update rows + %d retain rows", mode, len(kept), n_retain)
    return concatenate_datasets([kept, replayed.cast(kept.features)]).shuffle(seed=seed)


class Replay(ContinualMethod):
    name = "replay"
    enable_key = "replay_ratio"
    needs_retain_data = True

    @classmethod
    def from_args(cls, args, retain=None) -> "Replay":
        return cls(retain, args.replay_ratio, args.seed, args.replay_mode)

    def __init__(self, retain: Dataset, ratio: float, seed: int, mode: str = "replace"):
        self.retain, self.ratio, self.seed, self.mode = retain, ratio, seed, mode

    def prepare_train_dataset(self, dataset: Dataset) -> Dataset:
        return mix_replay(dataset, self.retain, self.ratio, self.seed, self.mode)
