# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Replay: mix rows of the retain data set into the update data.

`replay_ratio` is the share of retain rows in the mixed training set, in both modes:
- `replace` (default, as the fork did): a seeded random `replay_ratio` of the update rows are replaced by retain
  rows, so the data set size (and the number of steps per epoch) stays the same;
- `add`: all update rows are kept and retain rows are added until they make up `replay_ratio` of the total.
Retain rows are drawn without replacement, seeded by the training seed; the result is shuffled with it.
Balanced replay (`replay_harmful_fraction`): the replayed rows are that share of harmful requests (rows whose
`replay_harm_column` is "harmful": the testbed's `kind`, wildguardmix's `prompt_harm_label`) and the rest benign ones,
whatever the retain set's own mix (the testbed's was 2:1 harmful before its instruction rows, and replaying refusals in that proportion teaches
over-refusal: benign compliance fell with replay on the testbed and in the fork at 8B). Both sets
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

    replay_harmful_fraction: float | None = field(
        default=None,
        metadata={
            "help": "Balanced replay: the share of harmful-request rows among the replayed ones, in [0, 1] (the rest "
            "benign), whatever the retain set's own mix. Unset: drawn as they come."
        },
    )
    replay_harm_column: str = field(
        default="kind",
        metadata={"help": "Retain column that marks a harmful request with the value 'harmful' (balanced replay)."},
    )

    def check_replay_args(self) -> None:
        if self.replay_harmful_fraction is not None and not 0.0 <= self.replay_harmful_fraction <= 1.0:
            raise ValueError(f"`replay_harmful_fraction` must be in [0, 1], got {self.replay_harmful_fraction}.")
        if self.replay_harmful_fraction is not None and self.replay_ratio == 0:
            raise ValueError("`replay_harmful_fraction` balances replayed rows: set `replay_ratio` > 0 too.")
        if not 0.0 <= self.replay_ratio < 1.0:
            raise ValueError(f"`replay_ratio` must be in [0, 1), got {self.replay_ratio}.")
        if self.replay_mode not in REPLAY_MODES:
            raise ValueError(f"`replay_mode` must be one of {REPLAY_MODES}, got {self.replay_mode!r}.")
        if self.replay_ratio > 0 and self.retain_dataset_id is None:
            raise ValueError("`replay_ratio` > 0 needs `retain_dataset_id`.")


# The column that tells replayed retain rows from update rows, so that what survives tokenisation can be counted.
REPLAYED = "replayed"


def mix_replay(
    update: Dataset,
    retain: Dataset,
    ratio: float,
    seed: int,
    mode: str = "replace",
    harmful_fraction: float | None = None,
    harm_column: str = "kind",
) -> Dataset:
    # Mixed on the chats alone: the update and retain sets have other columns of their own (OpenR1-Math's problem and
    # solution, wildguardmix's labels), which SFT on `messages` does not read.
    for name, data in (("update", update), ("retain", retain)):
        if "messages" not in data.column_names:
            raise ValueError(f"Replay mixes `messages` chats: the {name} data set has none ({data.column_names}).")
    if mode == "replace":
        n_retain = round(ratio * len(update))
        kept = update.select_columns(["messages"]).shuffle(seed=seed).select(range(len(update) - n_retain))
    else:
        n_retain = round(ratio * len(update) / (1.0 - ratio))
        kept = update.select_columns(["messages"])
    if n_retain > len(retain):
        raise ValueError(
            f"`replay_ratio` {ratio} needs {n_retain} retain rows but the retain data set has {len(retain)}."
        )
    if harmful_fraction is None:
        replayed = retain.select_columns(["messages"]).shuffle(seed=seed).select(range(n_retain))
    else:
        replayed = _balanced(retain, n_retain, harmful_fraction, harm_column, seed)
    logger.info("Replay (%s): %d update rows + %d retain rows", mode, len(kept), n_retain)
    kept = kept.add_column(REPLAYED, [False] * len(kept))
    replayed = replayed.add_column(REPLAYED, [True] * len(replayed))
    return concatenate_datasets([kept, replayed.cast(kept.features)]).shuffle(seed=seed)


def _balanced(retain: Dataset, n_rows: int, harmful_fraction: float, harm_column: str, seed: int) -> Dataset:
    """`n_rows` retain chats, round(harmful_fraction * n_rows) of them harmful requests, the rest benign."""
    if harm_column not in retain.column_names:
        raise ValueError(
            f"`replay_harmful_fraction` needs the retain column `replay_harm_column` '{harm_column}' (which rows are "
            f"harmful requests); the retain set has {retain.column_names}."
        )
    is_harmful = [value == "harmful" for value in retain[harm_column]]
    n_harmful = round(harmful_fraction * n_rows)
    parts = []
    for harmful, wanted in ((True, n_harmful), (False, n_rows - n_harmful)):
        rows = retain.select([i for i, flag in enumerate(is_harmful) if flag == harmful]).select_columns(["messages"])
        if wanted > len(rows):
            kind = "harmful" if harmful else "benign"
            raise ValueError(
                f"Balanced replay needs {wanted} {kind} retain rows (`replay_harmful_fraction` {harmful_fraction} of "
                f"{n_rows}) but the retain set has {len(rows)}."
            )
        parts.append(rows.shuffle(seed=seed).select(range(wanted)))
    return concatenate_datasets(parts)


class Replay(ContinualMethod):
    name = "replay"
    enable_key = "replay_ratio"
    config_class = ReplayConfig
    needs_retain_data = True

    @classmethod
    def from_args(cls, args, retain=None) -> "Replay":
        return cls(
            retain,
            ratio=args.replay_ratio,
            seed=args.seed,
            mode=args.replay_mode,
            harmful_fraction=args.replay_harmful_fraction,
            harm_column=args.replay_harm_column,
        )

    def __init__(self, retain: Dataset, **mix_options):
        """`mix_options`: `mix_replay`'s arguments after the two data sets."""
        self.retain, self.mix_options = retain, mix_options

    def prepare_train_dataset(self, dataset: Dataset) -> Dataset:
        self.mixed = mix_replay(dataset, self.retain, **self.mix_options)
        return self.mixed

    def on_trainer_init(self, trainer) -> None:
        """How many rows of each source survive tokenisation (TRL drops rows that `max_length` cuts to no labelled
        token): logged, and a replay that lost every row stops the run (it trained on update rows alone)."""
        data = trainer.train_dataset
        if REPLAYED not in (getattr(data, "column_names", None) or []):  # packed: rows are no longer rows
            return
        before = sum(self.mixed[REPLAYED])
        replayed = sum(data[REPLAYED])
        update, update_before = len(data) - replayed, len(self.mixed) - before
        # A warning when rows were dropped: the mix the recipe asked for is not the one trained on.
        logger.log(
            logging.WARNING if (replayed, update) != (before, update_before) else logging.INFO,
            "Replay after tokenisation: %d of %d update rows, %d of %d replayed retain rows (max_length %s)",
            update,
            update_before,
            replayed,
            before,
            trainer.args.max_length,
        )
        if replayed == 0:
            raise ValueError(
                f"`replay_ratio`: none of the {before} replayed retain rows survives tokenisation: each has no "
                f"labelled token within `max_length` {trainer.args.max_length} (TRL drops such rows). Raise "
                "`max_length`, or replay shorter retain chats."
            )
