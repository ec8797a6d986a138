# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""DAPO's dynamic sampling (Yu et al., 2025): train only on prompt groups whose rewards differ.

A group whose completions all get the same reward gives no gradient (its advantages are zero up to the rounding of
TRL's group mean, which the division by `std + 1e-4` blows up to ~1e-3) but still dilutes the batch. Whether a group
is informative is therefore decided from the rewards themselves, never from the advantages: DAPO's rule ("accuracy
all 0 or all 1") generalised to any set of weighted rewards. These helpers find the informative groups of one
generation round and assemble rows from several rounds into one batch of TRL's generation outputs.
"""

import torch
import torch.nn.functional as F


# Per-row tensors TRL pads on the left (prompts) and on the right (completions and their per-token values).
LEFT_PADDED = ("prompt_ids", "prompt_mask")
RIGHT_PADDED = (
    "completion_ids",
    "completion_mask",
    "old_per_token_logps",
    "ref_per_token_logps",
    "sampling_per_token_logps",
    "importance_sampling_ratio",
    "tool_mask",
)
# Rewards closer than this (relative to the group's largest magnitude, at least 1) count as equal.
REWARD_TOLERANCE = 1e-6


def informative_groups(
    rewards_per_func: torch.Tensor,
    reward_weights: torch.Tensor,
    num_generations: int,
    aggregation: str = "sum_then_normalize",
) -> torch.Tensor:
    """Boolean per group of `num_generations` consecutive rows: True when the group's rewards differ.

    `rewards_per_func` is TRL's (rows, reward functions) matrix, NaN where a reward returned None. With TRL's
    `sum_then_normalize` the advantage is a function of the weighted sum of the rewards, so a group is informative
    when that sum differs between its completions; with `normalize_then_sum` each weighted reward is normalised
    within the group first, so a group is informative when any weighted reward differs. Completions no reward could
    score (all NaN) are left out; a group with fewer than two scored completions is not informative.
    """
    weighted = rewards_per_func * reward_weights.to(rewards_per_func).unsqueeze(0)
    unscorable = torch.isnan(rewards_per_func).all(dim=1, keepdim=True)
    if aggregation == "sum_then_normalize":
        values = weighted.nansum(dim=1, keepdim=True)
    elif aggregation == "normalize_then_sum":
        values = weighted
    else:
        raise ValueError(f"Unknown multi_objective_aggregation {aggregation!r}.")
    values = values.masked_fill(unscorable, float("nan")).view(-1, num_generations, values.shape[-1])
    missing = torch.isnan(values)
    highest = values.masked_fill(missing, float("-inf")).amax(dim=1)
    lowest = values.masked_fill(missing, float("inf")).amin(dim=1)
    scale = values.nan_to_num(0.0).abs().amax(dim=1).clamp(min=1.0)
    return ((highest - lowest) > REWARD_TOLERANCE * scale).any(dim=-1)


def prompt_keys(output: dict) -> list[tuple[int, ...]]:
    """The prompt of each row of a generation output, as its unpadded token ids."""
    return [tuple(ids[mask.bool()].tolist()) for ids, mask in zip(output["prompt_ids"], output["prompt_mask"])]


def take_rows(outputs: list[dict], picks: list[torch.Tensor], pad_token_id: int) -> dict:
    """One batch made of rows `picks[i]` of `outputs[i]`, re-padded to common lengths.

    Only per-row tensors are taken; other entries (e.g. `num_items_in_batch`) come from the first output and must be
    recomputed by the caller.
    """
    merged = {}
    n_rows = outputs[0]["advantages"].shape[0]
    for key, value in outputs[0].items():
        if not (isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == n_rows):
            merged[key] = value
            continue
        parts = [out[key][rows] for out, rows in zip(outputs, picks)]
        if key in LEFT_PADDED or key in RIGHT_PADDED:
            length = max(part.shape[1] for part in parts)
            fill = pad_token_id if key in ("prompt_ids", "completion_ids") else 0
            side = (lambda gap: (gap, 0)) if key in LEFT_PADDED else (lambda gap: (0, gap))
            parts = [F.pad(part, side(length - part.shape[1]), value=fill) for part in parts]
        merged[key] = torch.cat(parts)
    return merged
