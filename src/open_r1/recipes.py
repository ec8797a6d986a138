# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Recipe validation: every recipe parses into its entry point's dataclasses before any job is submitted.

    python -m open_r1.recipes check [PATHS ...] [--version v00.24] [--accelerate-config recipes/accelerate_configs/zero3.yaml]
                                    [--allow-missing data/]

PATHS are recipe files or directories (default: `recipes/`, every `config_*.yaml` below it). Each recipe is rendered
(`${VERSION}` from `--version`, else from the file name `..._vXX.YY.yaml`, else v00.00), then parsed by `TrlParser`
into `sft.py`'s or `grpo.py`'s dataclasses (GRPO when the path has a `grpo/` directory or the recipe names
`reward_funcs`). Reported, one line each as `file: key: problem`:
- unknown keys and values of the wrong type;
- invalid values and combinations the configs reject (e.g. `replay_ratio` without `retain_dataset_id`);
- methods the accelerate config cannot run (the KL trust region under ZeRO-3 or FSDP);
- local model and data paths that do not exist (paths under an `--allow-missing` prefix are outputs of other
  commands, such as the testbed world under `data/`);
- versioned recipes whose `output_dir` or `run_name` lacks `${VERSION}`.
bf16 recipes are checked with bf16 off on a machine without a GPU, where TrainingArguments would refuse them.
The exit status is 1 when any recipe has a problem.
"""

import argparse
import contextlib
import io
import re
import sys
import tempfile
from pathlib import Path

import yaml


VERSION_IN_NAME = re.compile(r"_(v\d+\.\d+)\.yaml$")
PATH_KEYS = ("model_name_or_path", "dataset_name", "retain_dataset_id")


def render(text: str, version: str) -> str:
    return text.replace("${VERSION}", version).replace("$VERSION", version)


def entry_point(path: Path, config: dict) -> str:
    return "grpo" if "grpo" in path.parts or "reward_funcs" in config else "sft"


def recipe_parser(kind: str):
    """The `TrlParser` of the entry point (`sft` or `grpo`) that a recipe is for."""
    from trl import ModelConfig, TrlParser

    from .configs import GRPOConfig, GRPOScriptArguments, ScriptArguments, SFTConfig

    dataclasses = (
        (GRPOScriptArguments, GRPOConfig, ModelConfig) if kind == "grpo" else (ScriptArguments, SFTConfig, ModelConfig)
    )
    return TrlParser(dataclasses)


def _parse(kind: str, rendered: str, config: dict) -> tuple[tuple | None, str | None]:
    """The parsed dataclasses, or the parser's complaint."""
    import torch

    extra = []
    if not torch.cuda.is_available():
        extra += [f"--{key}" for key in ("bf16", "fp16") if config.get(key)]
        extra = [item for key in extra for item in (key, "false")]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        handle.write(rendered)
        handle.flush()
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                return recipe_parser(kind).parse_args_and_config(["--config", handle.name, *extra]), None
        except SystemExit:  # argparse: a value of the wrong type
            line = stderr.getvalue().strip().splitlines()[-1]
            return None, re.sub(r"^.*?error: argument ", "", line)
        except (ValueError, TypeError, KeyError) as error:
            message = str(error)
            unknown = re.search(r"Unknown arguments from config file: \[(.*?)\]", message)
            if unknown:
                keys = [k.strip("'\" -") for k in unknown.group(1).split(",") if k.strip().startswith("'--")]
                return None, "unknown key(s): " + ", ".join(keys)
            return None, message


def _accelerate_sharding(accelerate_config: Path | None) -> str | None:
    if accelerate_config is None:
        return None
    config = yaml.safe_load(accelerate_config.read_text())
    if config.get("distributed_type") == "FSDP":
        return "FSDP"
    if config.get("distributed_type") == "DEEPSPEED" and config.get("deepspeed_config", {}).get("zero_stage") == 3:
        return "ZeRO-3"
    return None


def check_recipe(
    path: Path, version: str | None = None, accelerate_config: Path | None = None, allow_missing: tuple[str, ...] = ()
) -> list[str]:
    """Problems of one recipe, each as 'file: key: problem' (empty when it is fine)."""
    from .utils.data import looks_like_local_path

    raw = path.read_text()
    match = VERSION_IN_NAME.search(path.name)
    version = version or (match.group(1) if match else "v00.00")
    try:
        config = yaml.safe_load(render(raw, version))
    except yaml.YAMLError as error:
        return [f"{path}: not valid YAML ({error})"]
    if not isinstance(config, dict):
        return [f"{path}: not a YAML mapping"]
    problems = []
    if match:
        raw_config = yaml.safe_load(raw) or {}
        for key in ("output_dir", "run_name"):
            if key in raw_config and "VERSION" not in str(raw_config[key]):
                problems.append(f"{path}: {key}: a versioned recipe must put ${{VERSION}} in it")

    parsed, complaint = _parse(entry_point(path, config), render(raw, version), config)
    if complaint is not None:
        return problems + [f"{path}: {complaint}"]
    script_args, training_args, model_args = parsed
    from .utils.model_utils import check_model_args

    try:
        check_model_args(model_args)
    except ValueError as error:
        problems.append(f"{path}: {error}")
    if entry_point(path, config) == "grpo":
        from .configs import check_grpo_arguments

        try:
            check_grpo_arguments(script_args, training_args)
        except ValueError as error:
            problems.append(f"{path}: {error}")

    sharding = _accelerate_sharding(accelerate_config)
    from .continual import enabled_methods

    for method in enabled_methods(training_args):
        if sharding in method.unsupported_sharding:
            problems.append(
                f"{path}: {method.enable_key}: {method.name} is not supported under {sharding} ({accelerate_config}); "
                "use ZeRO-1/2 or DDP"
            )

    paths = [(key, config[key]) for key in PATH_KEYS if isinstance(config.get(key), str)]
    mixture = config.get("dataset_mixture") or {}
    paths += [
        (f"dataset_mixture.datasets[{i}].id", d.get("id"))
        for i, d in enumerate(mixture.get("datasets", []))
        if isinstance(d, dict) and isinstance(d.get("id"), str)
    ]
    for key, value in paths:
        if (
            looks_like_local_path(value)
            and not Path(value).expanduser().exists()
            and not value.startswith(allow_missing)
        ):
            problems.append(f"{path}: {key}: local path '{value}' does not exist")
    return problems


def recipe_files(paths: list[str]) -> list[Path]:
    files = []
    for item in paths:
        item = Path(item)
        if item.is_dir():
            files += sorted(p for p in item.rglob("config_*.yaml"))
        elif item.is_file():
            files.append(item)
        else:
            raise FileNotFoundError(f"No recipe or directory at {item}")
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m open_r1.recipes", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="Validate recipes.")
    check.add_argument("paths", nargs="*", default=["recipes"])
    check.add_argument("--version", help="Value of ${VERSION} (default: from the file name, else v00.00).")
    check.add_argument("--accelerate-config", type=Path, help="Also check the methods against this config.")
    check.add_argument(
        "--allow-missing",
        action="append",
        default=[],
        help="Path prefix whose missing paths are outputs of other commands (repeatable).",
    )
    args = parser.parse_args(argv)

    files = recipe_files(args.paths)
    problems = [
        p for f in files for p in check_recipe(f, args.version, args.accelerate_config, tuple(args.allow_missing))
    ]
    for problem in problems:
        print(problem)
    print(f"{len(files)} recipes checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
