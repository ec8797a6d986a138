# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Dataset loading for the entry points: hub ids and local paths alike, single datasets and weighted mixtures."""

import logging
import os
from pathlib import Path

import datasets
from datasets import DatasetDict, concatenate_datasets

from .data_checks import check_chats, check_data_file, check_rows, check_saved_dataset


logger = logging.getLogger(__name__)

_DATA_FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv", ".arrow": "arrow"}


def looks_like_local_path(path: str) -> bool:
    """Whether `path` is meant as a filesystem path rather than a hub id ("org/name")."""
    return (
        Path(path).exists()
        or path.startswith(("/", "./", "../", "~"))
        or path.count("/") >= 2
        or Path(path).suffix in _DATA_FILE_BUILDERS
    )


def check_source(path: str, key: str, kind: str = "dataset") -> None:
    """Fail early, naming the config key, when a local path is missing or the hub is unreachable for a hub id."""
    if Path(path).expanduser().exists():
        return
    if looks_like_local_path(path):
        raise FileNotFoundError(f"`{key}`: the {kind} path '{path}' does not exist.")
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise FileNotFoundError(
            f"`{key}`: '{path}' is not a local path and HF_HUB_OFFLINE is set, so it cannot be loaded from the Hub."
        )


def dataset_sources(script_args) -> list[tuple[str, str]]:
    """(config key, dataset id or path) for every dataset the script arguments name."""
    if script_args.dataset_mixture is not None:
        return [
            (f"dataset_mixture.datasets[{i}].id", d.id) for i, d in enumerate(script_args.dataset_mixture.datasets)
        ]
    return [("dataset_name", script_args.dataset_name)]


def load_dataset_any(path: str, config: str | None = None, split: str | None = None, key: str = "dataset_name"):
    """`load_from_disk` for `save_to_disk` directories, the file builders for data files (checked first: not empty,
    valid UTF-8), else `load_dataset`. `key` is the recipe key that names `path`, for error messages."""
    check_data_file(path, key)
    local = Path(path).expanduser()
    if local.is_dir() and ((local / "dataset_dict.json").exists() or (local / "state.json").exists()):
        check_saved_dataset(path, key)
        loaded = datasets.load_from_disk(str(local))
        return loaded[split] if split is not None and isinstance(loaded, DatasetDict) else loaded
    if local.is_file() and local.suffix in _DATA_FILE_BUILDERS:
        loaded = datasets.load_dataset(_DATA_FILE_BUILDERS[local.suffix], data_files=str(local))
        return loaded[split or "train"] if split is not None else loaded
    return datasets.load_dataset(path, config, split=split)


def get_dataset(args) -> DatasetDict:
    """The training data as a `DatasetDict`, following Open R1's `get_dataset`.

    A mixture keeps the first `weight` fraction of each dataset's rows after a seeded shuffle, concatenates them,
    shuffles again, and splits off `test_split_size` if given.
    """
    for key, path in dataset_sources(args):
        check_source(path, key)
    if args.dataset_mixture is None:
        logger.info("Loading dataset: %s", args.dataset_name)
        return load_dataset_any(args.dataset_name, args.dataset_config)

    mixture = args.dataset_mixture
    parts = []
    for index, entry in enumerate(mixture.datasets):
        part = load_dataset_any(entry.id, entry.config, split=entry.split, key=f"dataset_mixture.datasets[{index}].id")
        if entry.columns is not None:
            part = part.select_columns(entry.columns)
        if entry.weight is not None:
            part = part.shuffle(seed=mixture.seed).select(range(int(len(part) * entry.weight)))
        logger.info("Mixture: %d rows of %s (weight %s)", len(part), entry.id, entry.weight)
        parts.append(part)
    combined = concatenate_datasets(parts).shuffle(seed=mixture.seed)
    if mixture.test_split_size is not None:
        return combined.train_test_split(test_size=mixture.test_split_size, seed=mixture.seed)
    return DatasetDict({"train": combined})


def add_system_prompt(dataset, system_prompt: str | None):
    """Prepend `system_prompt` to every conversation of a `messages` dataset that has no system turn yet."""
    if system_prompt is None:
        return dataset

    def prepend(example):
        messages = example["messages"]
        if messages and messages[0]["role"] == "system":
            return {"messages": messages}
        return {"messages": [{"role": "system", "content": system_prompt}, *messages]}

    return dataset.map(prepend)


def split_name(args, split: str) -> str:
    """How an error names a split of the training data."""
    source = f"`dataset_name` '{args.dataset_name}'" if args.dataset_mixture is None else "the `dataset_mixture`"
    return f"{source} split '{split}'"


def get_split(dataset: DatasetDict, args, split: str, key: str):
    """One split of the training data, which must exist and have rows (`key`: the recipe key that names it)."""
    if split not in dataset:
        raise KeyError(f"`{key}`: split '{split}' not in {list(dataset)}.")
    check_rows(dataset[split], split_name(args, split))
    return dataset[split]


def eval_splits(args, training_args) -> dict[str, str]:
    """The splits to evaluate on, by the recipe key that names each: none without evaluation, `dataset_eval_splits`
    when set, else `dataset_test_split`."""
    if training_args.eval_strategy == "no":
        return {}
    if args.dataset_eval_splits:
        return {f"dataset_eval_splits[{i}]": split for i, split in enumerate(args.dataset_eval_splits)}
    return {"dataset_test_split": args.dataset_test_split}


def eval_dataset_of(dataset: DatasetDict, splits: dict[str, str]):
    """What the trainer evaluates: one split, several by name (`dataset_eval_splits`), or None."""
    names = list(splits.values())
    if not names:
        return None
    return dataset[names[0]] if list(splits) == ["dataset_test_split"] else {name: dataset[name] for name in names}


def check_sft_rows(data, what: str) -> None:
    """SFT data in one of TRL's formats: `messages` chats ending with an assistant reply, prompt/completion, text."""
    if "messages" in data.column_names:
        check_chats(data, what)
    elif not ({"prompt", "completion"} <= set(data.column_names) or "text" in data.column_names):
        raise ValueError(
            f"{what} has none of SFT's formats (a `messages` column, `prompt` and `completion`, or `text`); its "
            f"columns are {data.column_names}."
        )
