# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Checks of the training data that run right after it is opened and before the model loads, so that bad data
fails in seconds with the dataset, split, row and column named, not minutes later deep inside TRL.

Nothing is tokenised: local text files are decoded line by line, and chats are walked as Arrow-backed Python
objects in batches (0.25-0.6 s per 100k two-turn chats here).
"""

import codecs
import json
from pathlib import Path


TEXT_DATA_FILES = (".json", ".jsonl", ".csv")
# Chats are read in batches of this many rows.
BATCH = 4096


def check_data_file(path: str, key: str) -> None:
    """A local data file exists, is not empty and, for text formats, is valid UTF-8 (the line is named)."""
    local = Path(path).expanduser()
    if not local.is_file():
        return
    if local.stat().st_size == 0:
        raise ValueError(f"`{key}`: the data file '{path}' is empty.")
    if local.suffix not in TEXT_DATA_FILES:
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(local, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError as error:
                raise ValueError(f"`{key}`: '{path}' line {number} is not valid UTF-8 ({error.reason}).") from None


def check_saved_dataset(path: str, key: str) -> None:
    """A `save_to_disk` directory whose splits all hold data files (`load_from_disk` fails with a raw IndexError on an
    empty split)."""
    local = Path(path).expanduser()
    splits = {}
    if (local / "dataset_dict.json").exists():
        for split in json.loads((local / "dataset_dict.json").read_text())["splits"]:
            splits[split] = local / split / "state.json"
    elif (local / "state.json").exists():
        splits["(the dataset)"] = local / "state.json"
    for split, state in splits.items():
        if state.exists() and not json.loads(state.read_text()).get("_data_files"):
            raise ValueError(f"`{key}`: '{path}' split '{split}' has no rows (save_to_disk wrote no data for it).")


def check_rows(dataset, what: str) -> None:
    if len(dataset) == 0:
        raise ValueError(f"{what} has no rows.")


def check_columns(dataset, what: str, columns, needed_by: str) -> None:
    missing = [column for column in columns if column not in dataset.column_names]
    if missing:
        raise ValueError(f"{what} has no column {missing} ({needed_by}); its columns are {dataset.column_names}.")


def _chat_problem(chat, need_assistant: bool) -> str | None:
    if not isinstance(chat, list) or not chat:
        return f"is not a non-empty list of messages ({type(chat).__name__})"
    for turn, message in enumerate(chat):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return f"message {turn} has no `role`"
        if not isinstance(message.get("content"), str):
            return f"message {turn} ({message['role']}) has no text `content`"
    roles = [message["role"] for message in chat]
    if "user" not in roles:
        return f"has no user turn (roles {roles})"
    if need_assistant and roles[-1] != "assistant":
        return f"does not end with an assistant reply to train on (roles {roles})"
    return None


def check_chats(dataset, what: str, column: str = "messages", need_assistant: bool = True) -> None:
    """Every row's `column` is a chat of {role, content} messages with a user turn (and, to train on, ending with an
    assistant reply); the first bad row is named."""
    for start in range(0, len(dataset), BATCH):
        for offset, chat in enumerate(dataset[start : start + BATCH][column]):
            problem = _chat_problem(chat, need_assistant)
            if problem:
                raise ValueError(f"{what}, row {start + offset}, column `{column}`: the chat {problem}.")


def check_prompts(dataset, what: str, column: str) -> None:
    """GRPO prompts: a non-empty string or a chat with a user turn, in every row."""
    for start in range(0, len(dataset), BATCH):
        for offset, prompt in enumerate(dataset[start : start + BATCH][column]):
            if isinstance(prompt, str):
                problem = None if prompt.strip() else "is empty"
            else:
                problem = _chat_problem(prompt, need_assistant=False)
            if problem:
                raise ValueError(f"{what}, row {start + offset}, column `{column}`: the prompt {problem}.")


def check_list_of_strings(dataset, what: str, column: str, needed_by: str) -> None:
    """Every row's `column` is a list of strings (e.g. a reward's `keywords`, which a bare string would turn into
    letters)."""
    for start in range(0, len(dataset), BATCH):
        for offset, value in enumerate(dataset[start : start + BATCH][column]):
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ValueError(
                    f"{what}, row {start + offset}, column `{column}` ({needed_by}): expected a list of strings, got "
                    f"{type(value).__name__} {value!r:.60}."
                )
