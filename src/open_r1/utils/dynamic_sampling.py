# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""DAPO's dynamic sampling (Yu et al., 2025): train only on prompt groups whose rewards differ.

A group whose completions all get the same reward has zero advantage for every completion (whatever the reward
scaling), so it gives no gradient but still dilutes the batch. These helpers find the informative groups of one
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


def informative_groups(advantages: torch.Tensor, num_generations: int) -> torch.Tensor:
    """Boolean per group of `num_generations` consecutive rows: True when some advantage in it is non-zero."""
    return (advantages.view(-1, num_generations) != 0).any(dim=1)


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
