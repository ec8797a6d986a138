# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Math answer checking with math-verify, shared by the testbed scorer and the rewards."""

from math_verify import LatexExtractionConfig, parse, verify


# Only the boxed answer counts: a completion without `\boxed{}` is never right.
_BOXED_ONLY = [LatexExtractionConfig(try_extract_without_anchor=False, boxed_match_priority=0)]


def parse_gold(solution: str) -> list:
    """Parse a gold answer; plain numbers ("6") and LaTeX ("$\\frac{1}{2}$", "\\boxed{3}") both parse.

    An empty list means the gold could not be parsed.
    """
    return parse(solution, extraction_mode="first_match")


def boxed_answer_is_correct(completion: str, gold: list) -> bool:
    """Whether the completion's `\\boxed{}` answer equals the parsed gold answer."""
    if "\\boxed" not in completion:
        return False
    return bool(verify(gold, parse(completion, extraction_config=_BOXED_ONLY)))
