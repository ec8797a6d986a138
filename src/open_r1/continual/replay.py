# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Replay: mix rows of the retain data set into the update data.

`replay_ratio` is the share of retain rows in the mixed training set, in both modes:
- `replace` (default, as the fork did): a seeded random `replay_ratio` of the update rows are replaced by retain
  rows, so the data set size (and the number of steps per epoch) stays the same;
- `add`: all update rows are kept and retain rows are added until they make up `replay_ratio` of the total.
Retain rows are drawn without replacement, seeded by the training seed; the result is shuffled with it.
"""

import logging

from datasets import Dataset, concatenate_datasets


logger = logging.getLogger(__name__)

REPLAY_MODES = ("replace", "add")


def mix_replay(update: Dataset, retain: Dataset, ratio: float, seed: int, mode: str = "replace") -> Dataset:
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"`replay_ratio` must be in [0, 1), got {ratio}.")
    if mode not in REPLAY_MODES:
        raise ValueError(f"`replay_mode` must be one of {REPLAY_MODES}, got {mode!r}.")
    missing = set(update.column_names) - set(retain.column_names)
    if missing:
        raise ValueError(f"The retain data set lacks the update data's columns {sorted(missing)}.")
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
    replayed = retain.shuffle(seed=seed).select(range(n_retain)).select_columns(update.column_names)
    logger.info("Replay (%s): %d update rows + %d retain rows", mode, len(kept), n_retain)
    return concatenate_datasets([kept, replayed.cast(kept.features)]).shuffle(seed=seed)
