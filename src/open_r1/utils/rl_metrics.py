# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Cheap metrics logged during RL: pass@k of a verifiable reward and rates of reasoning behaviours."""

import math
import re


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of a group of n samples with c correct (Chen et al., 2021): 1 - C(n - c, k) / C(n, k)."""
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}, n={n}.")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def group_pass_at_k(correct: list[list[bool]], ks: list[int]) -> dict[int, float]:
    """Mean over groups (one per prompt, each of its sampled completions' correctness) of pass@k, for each k."""
    return {k: sum(pass_at_k(len(group), sum(group), k) for group in correct) / len(correct) for k in ks}


# Phrases that mark backtracking and self-verification (SimpleRL-Zoo's behaviours, matched as whole words).
REASONING_BEHAVIOURS = {
    "backtracking": re.compile(r"\b(wait|hmm|actually|alternatively|let me try again|on second thought)\b", re.I),
    "verification": re.compile(r"\b(let me check|let me verify|double[- ]check|verify|to confirm)\b", re.I),
}


def reasoning_behaviour_rates(texts: list[str]) -> dict[str, float]:
    """Share of texts showing each behaviour at least once."""
    if not texts:
        return {name: 0.0 for name in REASONING_BEHAVIOURS}
    return {
        name: sum(bool(pattern.search(t)) for t in texts) / len(texts)
        for name, pattern in REASONING_BEHAVIOURS.items()
    }
