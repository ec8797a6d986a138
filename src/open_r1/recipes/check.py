# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The recipe checker (`python -m open_r1.recipes check`, see `open_r1.recipes.cli` for what it reports): a recipe's
problems, all of them, one line each as `file: key: problem`."""

import re
from pathlib import Path

import yaml

from .reading import REPO, VERSION_IN_NAME, bound_text, entry_point, launch_of, parse_recipe, recipe_fields


PATH_KEYS = ("model_name_or_path", "dataset_name", "retain_dataset_id")


def _unknown_key_problem(key: str, fields: set[str]) -> str:
    import difflib

    from .migrate import suggestion

    hint = suggestion(key)
    migrate = " (`python -m open_r1.recipes migrate` rewrites it)" if hint else ""
    if hint is None:
        close = difflib.get_close_matches(key, sorted(fields), n=1, cutoff=0.8)
        hint = f"did you mean `{close[0]}`?" if close else None
    return f"unknown key{'; ' + hint if hint else ''}{migrate}"


def _check_benchmarks(benchmarks: list[str]) -> None:
    from ..eval.run import TASK_GROUPS
    from ..eval.tasks import TASKS

    unknown = [b for b in benchmarks if b not in TASKS and b not in TASK_GROUPS and b != "all"]
    if unknown:
        raise ValueError(f"`benchmarks`: unknown {unknown}; choose from {list(TASKS)}, {list(TASK_GROUPS)} or all.")


def _check_groups(kind: str, script_args, training_args, model_args) -> list:
    """Every rule group of the configs and the entry point, each to run alone."""
    from ..callbacks import check_callbacks
    from ..configs import check_grpo_arguments, check_training_values
    from ..utils.model_utils import check_model_args

    groups = [*script_args.checks(), lambda: check_training_values(training_args), *training_args.continual_checks()]
    groups += [lambda: check_model_args(model_args), lambda: check_callbacks(training_args.callbacks)]
    groups.append(lambda: _check_benchmarks(training_args.benchmarks))
    if kind in ("grpo", "pass_rate"):
        from ..rewards import get_reward_funcs

        groups += [lambda: check_grpo_arguments(script_args, training_args), lambda: get_reward_funcs(script_args)]
    return groups


# (recipe key, test on the recipe, module, what to install): packages a recipe needs that the base install lacks.
PACKAGES = (
    ("use_liger_kernel", lambda c: c["use_liger_kernel"] is True, "liger_kernel", "liger-kernel (.[liger], GPU only)"),
    (
        "attn_implementation",
        lambda c: str(c["attn_implementation"]).startswith("flash_attention"),
        "flash_attn",
        "flash-attn (.[flash], GPU only)",
    ),
    (
        "optim",
        lambda c: "8bit" in str(c["optim"]) or "bnb" in str(c["optim"]),
        "bitsandbytes",
        "bitsandbytes (.[bnb])",
    ),
    ("use_vllm", lambda c: c["use_vllm"] is True, "vllm", "vllm (pip install -e '.[vllm]', CUDA only)"),
    (
        "code_provider",
        lambda c: c["code_provider"] == "e2b" and not c.get("e2b_router_url"),
        "e2b_code_interpreter",
        "e2b-code-interpreter (pip install -e '.[code]'; or set e2b_router_url)",
    ),
    (
        "code_provider",
        lambda c: c["code_provider"] == "morph" and not c.get("morph_router_url"),
        "morphcloud",
        "morphcloud (pip install -e '.[code]'; or set morph_router_url)",
    ),
)


def _missing_packages(config: dict) -> list[str]:
    import importlib.util

    return [
        f"{key}: needs {name}, which is not importable here"
        for key, test, module, name in PACKAGES
        if key in config and test(config) and importlib.util.find_spec(module) is None
    ]


def _accelerate_sharding(accelerate_config: Path | None) -> str | None:
    if accelerate_config is None:
        return None
    config = yaml.safe_load(accelerate_config.read_text())
    if config.get("distributed_type") == "FSDP":
        return "FSDP"
    if config.get("distributed_type") == "DEEPSPEED":
        return "ZeRO-3" if config.get("deepspeed_config", {}).get("zero_stage") == 3 else "ZeRO-1/2"
    return None


def _num_processes(accelerate_config: Path | None) -> int | None:
    if accelerate_config is None:
        return None
    return int(yaml.safe_load(accelerate_config.read_text()).get("num_processes", 1))


def unbound_placeholders(path: Path, bindings: dict[str, str] | None = None) -> list[str]:
    """The sweep placeholders of a recipe (`${NAME}`, not ${VERSION}) that `bindings` leave unset."""
    return sorted(set(re.findall(r"\$\{(\w+)\}", path.read_text())) - {"VERSION"} - set(bindings or {}))


def _is_project_recipe(path: Path) -> bool:
    return (REPO / "recipes") in Path(path).resolve().parents


def check_recipe(
    path: Path,
    version: str | None = None,
    accelerate_config: Path | None = None,
    allow_missing: tuple[str, ...] = (),
    num_processes: int | None = None,
    allow_missing_packages: bool = False,
    bindings: dict[str, str] | None = None,
) -> list[str]:
    """Problems of one recipe, each as 'file: key: problem' (empty when it is fine): all of them, not the first.
    A sweep template's placeholders (`${RUN_NAME}`) take their `bindings` (`check --set RUN_NAME=x`), else a stand-in
    value, so that every other rule is checked (`unbound_placeholders` names them; the entry points refuse a recipe
    with any left). The naming rule of versioned recipes (${VERSION} in output_dir and run_name) is this project's:
    it applies to the recipes under its `recipes/` folder, not to a user's or another project's."""
    from ..continual import enabled_methods
    from ..utils.data import looks_like_local_path
    from ..utils.recipe_yaml import RecipeError, load_recipe_yaml

    raw = path.read_text()
    try:  # the launch the recipe runs under: the one given, else its header's
        accelerate_config, num_processes = launch_of(path, accelerate_config, num_processes)
    except ValueError as error:
        return [f"{path}: {error}"]
    match = VERSION_IN_NAME.search(path.name)
    version = version or (match.group(1) if match else "v00.00")
    problems = []
    if _is_project_recipe(path):  # this project's recipes carry no sweep placeholder
        problems += [
            f"{path}: ${{{name}}}: a sweep script's placeholder in a shipped recipe; render it"
            for name in unbound_placeholders(path, bindings)
        ]
    try:
        config = load_recipe_yaml(bound_text(path, version, bindings), str(path))
    except RecipeError as error:
        return [str(error)]
    if not isinstance(config, dict):
        return [f"{path}: not a YAML mapping"]
    if match and _is_project_recipe(path):
        raw_config = load_recipe_yaml(raw, str(path)) or {}
        for key in ("output_dir", "run_name"):
            if key in raw_config and "VERSION" not in str(raw_config[key]):
                problems.append(f"{path}: {key}: a versioned recipe must put ${{VERSION}} in it")

    kind = entry_point(path, config)
    fields = recipe_fields(kind)
    problems += [f"{path}: {key}: {_unknown_key_problem(key, fields)}" for key in config if key not in fields]
    known = {k: v for k, v in config.items() if k in fields}
    if not allow_missing_packages:
        problems += [f"{path}: {problem}" for problem in _missing_packages(known)]
    processes = num_processes or _num_processes(accelerate_config) or 1
    parsed, complaint = parse_recipe(kind, known, processes)
    if complaint is not None:
        return problems + [f"{path}: {complaint}"]
    script_args, training_args, model_args = parsed
    for check in _check_groups(kind, script_args, training_args, model_args):
        try:
            check()
        except (ValueError, TypeError, KeyError) as error:
            problems.append(f"{path}: {error}")
        except ImportError as error:  # a package the recipe needs (reported above by key, unless allowed)
            if not allow_missing_packages and not _missing_packages(known):
                problems.append(f"{path}: {error}")

    sharding = _accelerate_sharding(accelerate_config)
    for method in enabled_methods(training_args):
        if sharding in method.unsupported_sharding:
            problems.append(
                f"{path}: {method.enable_key}: {method.name} is not supported under {sharding} ({accelerate_config}); "
                f"use {method.supported_sharding()}"
            )

    paths = [(key, config[key]) for key in PATH_KEYS if isinstance(config.get(key), str)]
    mixture = config.get("dataset_mixture") or {}
    paths += [
        (f"dataset_mixture.datasets[{i}].id", d.get("id"))
        for i, d in enumerate(mixture.get("datasets", []) if isinstance(mixture, dict) else [])
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
