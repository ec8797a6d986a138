# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Recipe validation: every recipe parses into its entry point's dataclasses before any job is submitted.

    python -m open_r1.recipes check [PATHS ...] [--version v00.24] [--accelerate-config recipes/accelerate_configs/zero3.yaml]
                                    [--num-processes N] [--allow-missing data/] [--allow-missing-packages]
    python -m open_r1.recipes migrate SRC... (--out DIR | --in-place)
    python -m open_r1.recipes smoke RECIPE... [--accelerate-config CFG] [--steps 2] [--processes 2]

PATHS are recipe files or directories (default: `recipes/`, every `config_*.yaml` below it). Each recipe is rendered
(`${VERSION}` from `--version`, else from the file name `..._vXX.YY.yaml`, else v00.00), then parsed by `TrlParser`
into `sft.py`'s or `grpo.py`'s dataclasses (GRPO when the path has a `grpo/` directory or the recipe names
`reward_funcs`). Reported, all of a file's problems together, one line each as `file: key: problem`:
- unknown keys (with the new name for a renamed one, or a close match) and values of the wrong type;
- every rule group of the configs (each method's keys, the Trainer's values, `dtype`, the dataset source) and of
  the entry points (callback, reward and benchmark names, GRPO's cross-checks), each run on its own, so one broken
  rule does not hide the others; GRPO's batch arithmetic at the job's process count (`--num-processes`, else the
  accelerate config's);
- placeholders of the fork's sweep scripts (`${EPOCHS}`, ...), named as such;
- packages a recipe needs that are not importable here (liger-kernel, flash-attn, vllm, bitsandbytes), unless
  `--allow-missing-packages`;
- methods the accelerate config cannot run (the KL trust region under ZeRO-3 or FSDP);
- local model and data paths that do not exist (paths under an `--allow-missing` prefix are outputs of other
  commands, such as the testbed world under `data/`);
- versioned recipes whose `output_dir` or `run_name` lacks `${VERSION}`.
bf16 recipes are checked with bf16 off on a machine without a GPU, where TrainingArguments would refuse them.
The exit status is 1 when any recipe has a problem. `migrate` rewrites fork and Open R1 recipes (see
`open_r1.recipe_migration`).
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

    from .configs import GRPOConfig, GRPOScriptArguments, ScriptArguments, SFTConfig

    if kind == "pass_rate":
        from .pass_rate_filtering import PassRateScriptArguments

        return PassRateScriptArguments, GRPOConfig, ModelConfig
    return (
        (GRPOScriptArguments, GRPOConfig, ModelConfig) if kind == "grpo" else (ScriptArguments, SFTConfig, ModelConfig)
    )


def recipe_parser(kind: str):
    """The `TrlParser` of the entry point (`sft`, `grpo` or `pass_rate`) that a recipe is for."""
    from .utils.recipe_yaml import RecipeParser

    return RecipeParser(_dataclasses(kind))


def _fields(kind: str) -> set[str]:
    import dataclasses

    return {f.name for cls in _dataclasses(kind) for f in dataclasses.fields(cls)}


def _unknown_key_problem(key: str, fields: set[str]) -> str:
    import difflib

    from .recipe_migration import suggestion

    hint = suggestion(key)
    migrate = " (`python -m open_r1.recipes migrate` rewrites it)" if hint else ""
    if hint is None:
        close = difflib.get_close_matches(key, sorted(fields), n=1, cutoff=0.8)
        hint = f"did you mean `{close[0]}`?" if close else None
    return f"unknown key{'; ' + hint if hint else ''}{migrate}"


@contextlib.contextmanager
def _world_size(num_processes: int):
    """TrainingArguments' world size as the job will have it (TRL checks GRPO's batch arithmetic with it)."""
    from unittest import mock

    from transformers import TrainingArguments

    with mock.patch.object(
        TrainingArguments, "world_size", new_callable=mock.PropertyMock, return_value=num_processes
    ):
        yield


def _parse(kind: str, config: dict, num_processes: int) -> tuple[tuple | None, str | None]:
    """The parsed dataclasses with this project's checks deferred, or the parser's complaint (a wrong type, or a rule
    of TRL/transformers)."""
    import torch

    from .configs import deferred_checks

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


def _check_benchmarks(benchmarks: list[str]) -> None:
    from .eval.run import TASK_GROUPS
    from .eval.tasks import TASKS

    unknown = [b for b in benchmarks if b not in TASKS and b not in TASK_GROUPS and b != "all"]
    if unknown:
        raise ValueError(f"`benchmarks`: unknown {unknown}; choose from {list(TASKS)}, {list(TASK_GROUPS)} or all.")


def _check_groups(kind: str, script_args, training_args, model_args) -> list:
    """Every rule group of the configs and the entry point, each to run alone."""
    from .callbacks import check_callbacks
    from .configs import check_grpo_arguments, check_training_values
    from .utils.model_utils import check_model_args

    groups = [*script_args.checks(), lambda: check_training_values(training_args), *training_args.continual_checks()]
    groups += [lambda: check_model_args(model_args), lambda: check_callbacks(training_args.callbacks)]
    groups.append(lambda: _check_benchmarks(training_args.benchmarks))
    if kind in ("grpo", "pass_rate"):
        from .rewards import get_reward_funcs

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
    from .recipe_smoke import REPO

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
    from .continual import enabled_methods
    from .utils.data import looks_like_local_path
    from .utils.recipe_yaml import RecipeError, load_recipe_yaml

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
    fields = _fields(kind)
    problems += [f"{path}: {key}: {_unknown_key_problem(key, fields)}" for key in config if key not in fields]
    known = {k: v for k, v in config.items() if k in fields}
    if not allow_missing_packages:
        problems += [f"{path}: {problem}" for problem in _missing_packages(known)]
    processes = num_processes or _num_processes(accelerate_config) or 1
    parsed, complaint = _parse(kind, known, processes)
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


def launch_of(path: Path, accelerate_config: Path | None, processes: int | None) -> tuple[Path | None, int | None]:
    """The accelerate config and process count a recipe runs under: the ones given, else its header's launch line
    (`--config_file ...`, `--num_processes N`), else the config's own count."""
    from .recipe_smoke import REPO

    text = path.read_text()
    if accelerate_config is None and (named := re.search(r"--config_file\s+(\S+\.yaml)", text)):
        accelerate_config = REPO / named.group(1)
    if accelerate_config is not None and not Path(accelerate_config).exists():
        raise ValueError(f"the accelerate config {accelerate_config} does not exist")
    header = re.search(r"--num_processes[= ](\d+)", text)
    return accelerate_config, processes or (int(header.group(1)) if header else None)


def memory_verdict(
    path: Path,
    accelerate_config: Path | None,
    processes: int | None,
    gpu_bytes: float,
    bindings: dict[str, str] | None = None,
):
    """(problem, note) of a recipe's per-GPU peak under its launch: a problem with the planner's table and suggestions
    when it does not fit, a note when its model cannot be sized here (no local config, offline): named, not guessed.
    A pass-rate filtering recipe only generates: the planner, which plans training, says nothing of it."""
    from .recipe_memory import GIB, plan_recipe

    if entry_point(path, _recipe_keys(path)) == "pass_rate":
        return None, f"{path}: memory not planned: pass-rate filtering only generates (one GPU, vLLM)"
    try:
        accelerate_config, processes = launch_of(path, accelerate_config, processes)
        memory_plan = plan_recipe(path, accelerate_config, processes, gpu_bytes, bindings)
    except ValueError as error:
        if str(error).startswith("`model_name_or_path`: no config"):  # cannot be sized offline: named, not guessed
            return None, f"{path}: memory not planned: {error}"
        return f"{path}: memory: {error}", None
    if memory_plan.total <= 0.9 * gpu_bytes:
        assumed = "; ".join(memory_plan.notes)
        return None, (f"{path}: memory fits, assuming {assumed}" if assumed else None)
    where = f"{accelerate_config or 'one process'} x {processes or 1} on {gpu_bytes / GIB:.0f} GiB GPUs"
    return f"{path}: memory: {memory_plan.verdict()} ({where})\n{memory_plan.table()}", None


def _recipe_keys(path: Path) -> dict:
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


def _memory(args) -> int:
    from .recipe_memory import parse_size, plan_recipe

    status = 0
    for path in recipe_files(args.paths):
        try:
            accelerate_config, processes = launch_of(path, args.accelerate_config, args.num_processes)
            memory_plan = plan_recipe(path, accelerate_config, processes, parse_size(args.gpu_memory))
        except ValueError as error:
            print(f"{path}: {error}")
            status = 1
            continue
        print(f"\n{path} under {accelerate_config or 'one process'}:\n{memory_plan.table()}")
        if memory_plan.total > 0.9 * memory_plan.gpu_bytes:
            status = 1
    return status


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
        "--num-processes",
        type=int,
        help="Processes of the job, for batch arithmetic (default: the accelerate config's).",
    )
    check.add_argument(
        "--allow-missing",
        action="append",
        default=[],
        help="Path prefix whose missing paths are outputs of other commands (repeatable).",
    )
    check.add_argument(
        "--gpu-memory",
        default="80GB",
        help="Memory of one GPU: a recipe whose planned peak does not fit (10%% margin) under its launch (the "
        "header's, or --accelerate-config / --num-processes) fails (default: %(default)s; `none` skips the plan).",
    )
    check.add_argument(
        "--set",
        dest="bindings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="A sweep template's placeholder ${NAME} bound to VALUE for the check (repeatable; unbound ones take a "
        "stand-in, and are named).",
    )
    check.add_argument(
        "--allow-missing-packages",
        action="store_true",
        help="Do not report packages (liger-kernel, flash-attn, vllm, bitsandbytes) missing on this machine, e.g. on a "
        "login node without a GPU.",
    )
    migrate = commands.add_parser("migrate", help="Rewrite fork and Open R1 recipes to this project's keys.")
    migrate.add_argument("paths", nargs="+", help="Recipe files or directories.")
    where = migrate.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="Write the migrated recipes under this directory.")
    where.add_argument("--in-place", action="store_true", help="Rewrite the files themselves.")
    smoke = commands.add_parser("smoke", help="Run recipes for real on CPU stand-ins: train, save, resume, train.")
    smoke.add_argument("paths", nargs="+", help="Recipe files or directories.")
    smoke.add_argument("--accelerate-config", type=Path, help="Default: the one the recipe's header launches with.")
    smoke.add_argument("--steps", type=int, default=2, help="Steps before the checkpoint (one more after resuming).")
    smoke.add_argument("--processes", type=int, default=2, help="CPU processes (gloo); 1 runs without a backend.")
    smoke.add_argument("--workdir", type=Path, default=Path("data/smoke"), help="Where stand-ins and runs go.")
    memory = commands.add_parser("memory", help="Per-GPU memory of recipes under an accelerate config, and a verdict.")
    memory.add_argument("paths", nargs="+", help="Recipe files or directories.")
    memory.add_argument("--accelerate-config", type=Path, help="Default: the one the recipe's header launches with.")
    memory.add_argument("--num-processes", type=int, help="Processes (default: the accelerate config's).")
    memory.add_argument("--gpu-memory", default="80GB", help="Memory of one GPU (default: %(default)s).")
    args = parser.parse_args(argv)

    if args.command == "memory":
        return _memory(args)
    if args.command == "migrate":
        return _migrate(args)
    if args.command == "smoke":
        return _smoke(args)
    files = recipe_files(args.paths)
    bindings = {}
    for binding in args.bindings:
        name, equals, value = binding.partition("=")
        if not equals or not re.fullmatch(r"\w+", name):
            parser.error(f"--set {binding!r}: expected NAME=VALUE")
        bindings[name] = value
    problems = [
        p
        for f in files
        for p in check_recipe(
            f,
            args.version,
            args.accelerate_config,
            tuple(args.allow_missing),
            args.num_processes,
            args.allow_missing_packages,
            bindings,
        )
    ]
    for path in files:
        for name in unbound_placeholders(path, bindings):
            print(
                f"note: {path}: ${{{name}}}: a sweep template's placeholder, checked with a stand-in value; bind it "
                f"with `--set {name}=...`, and render it before launching (the entry points refuse it)"
            )
    if str(args.gpu_memory).lower() != "none":
        from .recipe_memory import parse_size

        for path in files:
            problem, note = memory_verdict(
                path, args.accelerate_config, args.num_processes, parse_size(args.gpu_memory), bindings
            )
            problems += [problem] if problem else []
            if note:
                print(f"note: {note}")
    for problem in problems:
        print(problem)
    print(f"{len(files)} recipes checked, {len(problems)} problems")
    return 1 if problems else 0


def _smoke(args) -> int:
    import shutil
    import time

    from .recipe_smoke import smoke

    failures = 0
    for recipe in recipe_files(args.paths):
        workdir = args.workdir / recipe.stem
        shutil.rmtree(workdir, ignore_errors=True)
        start = time.perf_counter()
        try:
            smoke(recipe, workdir, args.accelerate_config, args.steps, args.processes)
            print(f"ok      {recipe} ({time.perf_counter() - start:.0f} s)", flush=True)
        except (RuntimeError, ValueError) as error:
            failures += 1
            print(f"FAILED  {recipe}: {error}", flush=True)
    return 1 if failures else 0


def _migrate(args) -> int:
    from .recipe_migration import migrate_file

    failed = []
    for item in args.paths:
        root = Path(item)
        files = sorted(root.rglob("*.yaml")) if root.is_dir() else [root]
        for source in files:
            relative = source.relative_to(root) if root.is_dir() else Path(source.name)
            target = source if args.in_place else args.out / relative
            try:
                changed, unmapped = migrate_file(source, target)
            except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:  # name it, go on with the rest
                failed.append(source)
                print(f"{source}: not migrated: {type(error).__name__}: {error}".replace("\n", " "), file=sys.stderr)
                continue
            print(f"{source} -> {target}")
            for line in changed:
                print(f"  changed: {line}")
            for line in unmapped:
                print(f"  not mapped: {line}")
    if failed:
        print(f"{len(failed)} file(s) not migrated: {', '.join(map(str, failed))}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
