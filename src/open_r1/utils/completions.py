# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Reading completions: the text of one in any of TRL's forms, and a linear-time line-end search (used by the math
and code rewards alike)."""


def completion_text(completion) -> str:
    """The text of a completion: a string, bytes, or a conversational list of messages (the last one's content)."""
    if isinstance(completion, bytes):
        return completion.decode("utf-8", errors="replace")
    if isinstance(completion, list):
        completion = completion[-1].get("content", "") if completion and isinstance(completion[-1], dict) else ""
    if not isinstance(completion, str):
        return ""
    # Lone surrogates (undecodable bytes smuggled through) break regexes and encoders downstream.
    return completion.encode("utf-8", errors="replace").decode("utf-8")


def ends_a_line_after(text: str, piece: str, start: int) -> bool:
    """Whether `piece` occurs at or after `start` with a line's end (or the text's) right after it: the `piece$` of an
    Open R1 regex under re.MULTILINE, found in linear time."""
    found = text.find(piece, start)
    while found >= 0:
        end = found + len(piece)
        if end == len(text) or text[end] == "\n":
            return True
        found = text.find(piece, found + 1)
    return False
