# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Reading a recipe as its entry point will: which program it is for, its text with ${VERSION} and placeholders
bound, its fields and its parse by that program's own `TrlParser`, and the launch its header names. Shared by the
checker, the memory planner and the smoke runs."""

import contextlib
import io
import re
import tempfile
from pathlib import Path

import yaml


REPO = Path(__file__).resolve().parents[3]

VERSION_IN_NAME = re.compile(r"_(v\d+\.\d+)\.yaml$")


def render(text: str, version: str) -> str:
    return text.replace("${VERSION}", version).replace("$VERSION", version)


# Keys only a pass-rate filtering recipe has (Open R1's recipes/dataset_filtering).
FILTERING_KEYS = {"pass_rate_min", "pass_rate_max", "output_dataset_name"}


def entry_point(path: Path, config: dict) -> str:
    """`sft`, `grpo` or `pass_rate` (src/open_r1/pass_rate_filtering.py): the program a recipe is for, by its folder
    (as train.slurm picks it), else by its keys."""
    for folder, kind in (("grpo", "grpo"), ("dataset_filtering", "pass_rate"), ("sft", "sft")):
        if folder in path.parts:
            return kind
    if FILTERING_KEYS & set(config):
        return "pass_rate"
    return "grpo" if "reward_funcs" in config else "sft"


def bound_text(path: Path, version: str, bindings: dict[str, str] | None = None) -> str:
    """The recipe's text with ${VERSION} rendered, each placeholder of `bindings` bound, and a stand-in value for any
    other (so that every rule can be checked and the memory planned)."""
    text = render(path.read_text(), version)
    for name, value in (bindings or {}).items():
        text = text.replace(f"${{{name}}}", value)
    return re.sub(r"\$\{\w+\}", "1", text)


def _dataclasses(kind: str) -> tuple:
    from trl import ModelConfig

    from ..configs import GRPOConfig, GRPOScriptArguments, ScriptArguments, SFTConfig

    if kind == "pass_rate":
        from ..pass_rate_filtering import PassRateScriptArguments

        return PassRateScriptArguments, GRPOConfig, ModelConfig
    return (
        (GRPOScriptArguments, GRPOConfig, ModelConfig) if kind == "grpo" else (ScriptArguments, SFTConfig, ModelConfig)
    )


def recipe_parser(kind: str):
    """The `TrlParser` of the entry point (`sft`, `grpo` or `pass_rate`) that a recipe is for."""
    from ..utils.recipe_yaml import RecipeParser

    return RecipeParser(_dataclasses(kind))


def recipe_fields(kind: str) -> set[str]:
    import dataclasses

    return {f.name for cls in _dataclasses(kind) for f in dataclasses.fields(cls)}


@contextlib.contextmanager
def _world_size(num_processes: int):
    """TrainingArguments' world size as the job will have it (TRL checks GRPO's batch arithmetic with it)."""
    from unittest import mock

    from transformers import TrainingArguments

    with mock.patch.object(
        TrainingArguments, "world_size", new_callable=mock.PropertyMock, return_value=num_processes
    ):
        yield


def parse_recipe(kind: str, config: dict, num_processes: int) -> tuple[tuple | None, str | None]:
    """The parsed dataclasses with this project's checks deferred, or the parser's complaint (a wrong type, or a rule
    of TRL/transformers)."""
    import torch

    from ..configs import deferred_checks

    if not torch.cuda.is_available():  # TrainingArguments refuses bf16/fp16 (TRL's default bf16 too) without a GPU
        config = {**config, "bf16": False, "fp16": False}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        yaml.safe_dump(config, handle)
        handle.flush()
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr), deferred_checks(), _world_size(num_processes):
                return recipe_parser(kind).parse_args_and_config(["--config", handle.name]), None
        except SystemExit:  # argparse: a value of the wrong type
            line = stderr.getvalue().strip().splitlines()[-1]
            return None, re.sub(r"^.*?error: argument ", "", line)
        except (ValueError, TypeError, KeyError) as error:
            hint = (
                f" (judged at {num_processes} process(es): pass --num-processes)" if "divisible" in str(error) else ""
            )
            return None, f"{error}{hint}"


def launch_of(path: Path, accelerate_config: Path | None, processes: int | None) -> tuple[Path | None, int | None]:
    """The accelerate config and process count a recipe runs under: the ones given, else its header's launch line
    (`--config_file ...`, `--num_processes N`), else the config's own count."""
    text = path.read_text()
    if accelerate_config is None and (named := re.search(r"--config_file\s+(\S+\.yaml)", text)):
        accelerate_config = REPO / named.group(1)
    if accelerate_config is not None and not Path(accelerate_config).exists():
        raise ValueError(f"the accelerate config {accelerate_config} does not exist")
    header = re.search(r"--num_processes[= ](\d+)", text)
    return accelerate_config, processes or (int(header.group(1)) if header else None)


def recipe_keys(path: Path) -> dict:
    """The recipe's mapping with stand-ins for its placeholders, or {} where it does not parse (check says why)."""
    try:
        config = yaml.safe_load(bound_text(path, "v00.00"))
    except yaml.YAMLError:
        return {}
    return config if isinstance(config, dict) else {}


def recipe_files(paths: list[str]) -> list[Path]:
    files = []
    for item in paths:
        item = Path(item)
        if item.is_dir():
            files += sorted(
                p for p in item.rglob("*.yaml") if p.name.startswith("config_") or "dataset_filtering" in p.parts
            )
        elif item.is_file():
            files.append(item)
        else:
            raise FileNotFoundError(f"No recipe or directory at {item}")
    return files
