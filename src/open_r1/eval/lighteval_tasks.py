# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Custom lighteval tasks: math (MATH-500, AIME 24/25), GPQA Diamond, safety (refusal of harmful requests,
over-refusal of benign look-alikes), LiveCodeBench, IFEval (lighteval's own task, on the Hub's data or the offline
fixture) and the testbed's held-out splits.

The tasks are built from `open_r1.eval.tasks`, the definitions the testbed's own scorer uses. Run them with
`make evaluate MODEL=... TASK=...`, or through lighteval's CLI via this module:

    python -m open_r1.eval.lighteval_tasks accelerate "model_name=data/tiny/sft,dtype=float32" "testbed:harmful|0" \
        --custom-tasks src/open_r1/eval/lighteval_tasks.py --output-dir data/evals/tiny --save-details

which is `lighteval ...` with this module as the only task source: lighteval otherwise imports all its built-in
tasks at start-up (one downloads a file, one lists Hub models: both fail offline) and refuses custom tasks named
like built-in ones (`math_500`, `aime24`, `gpqa:diamond`, kept here with Open R1's prompts and scoring).

Safety tasks are judged by `OPEN_R1_SAFETY_JUDGE` (`keyword` by default, `wildguard[:path]`, or `pkg.mod:fn`; see
`open_r1.eval.judges`). `task@n=4` samples 4 replies per prompt (pass@1 is then their mean; set a temperature).
"""

import os
import sys

import numpy as np
from lighteval.metrics.dynamic_metrics import MultilingualExtractiveMatchMetric
from lighteval.metrics.metrics_sample import PassAtK, SampleLevelComputation
from lighteval.metrics.utils.extractive_match_utils import (
    ExprExtractionConfig,
    IndicesExtractionConfig,
    LatexExtractionConfig,
)
from lighteval.metrics.utils.metric_utils import SampleLevelMetric
from lighteval.tasks.lighteval_task import LightevalTaskConfig
from lighteval.tasks.requests import Doc, SamplingMethod
from lighteval.utils.language import Language

from open_r1.eval.judges import get_judge
from open_r1.eval.tasks import TASKS, EvalTask


def _extractive(gold, pred) -> MultilingualExtractiveMatchMetric:
    return MultilingualExtractiveMatchMetric(
        language=Language.ENGLISH,
        gold_extraction_target=gold,
        pred_extraction_target=pred,
        fallback_mode="first_match",
        precision=5,
    )


# As Open R1: a boxed answer first, else the last expression; GPQA's letter; the testbed scorer's boxed-only rule.
ANSWER_MATCHERS = {
    "math": _extractive(
        (LatexExtractionConfig(), ExprExtractionConfig()),
        (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()),
    ),
    "math_boxed": _extractive(
        (ExprExtractionConfig(),), (LatexExtractionConfig(boxed_match_priority=0, try_extract_without_anchor=False),)
    ),
    "letter": _extractive(
        (IndicesExtractionConfig(prefix_for_extraction="NativeLetters"),),
        (IndicesExtractionConfig(prefix_for_extraction="NativeLetters"),),
    ),
}


def code_passes(doc: Doc, model_response, **kwargs) -> float:
    """A reply passes when its program passes every test (the gold: the tests as JSON), in the local sandbox."""
    from open_r1.code.livecodebench import passes

    return passes(model_response.final_text[0], doc.choices[0])


ANSWER_MATCHERS["code"] = code_passes


class JudgedRate(SampleLevelComputation):
    """Share of a prompt's replies the refusal judge calls a refusal (`refusal`) or not (`compliance`)."""

    def __init__(self, scoring: str):
        self.scoring = scoring
        self.judge = None

    def compute(self, responses, docs, **kwargs) -> list[float]:
        if self.judge is None:  # the judge may be a 7B model: load it once, and only when a safety task runs
            self.judge = get_judge(os.environ.get("OPEN_R1_SAFETY_JUDGE", "keyword"))
        prompts = [doc.specific["prompt"] for doc, response in zip(docs, responses) for _ in response.final_text]
        replies = [text for response in responses for text in response.final_text]
        verdicts = iter(self.judge(prompts, replies))
        rates = []
        for response in responses:
            refused = [next(verdicts) for _ in response.final_text]
            rate = sum(refused) / len(refused)
            rates.append(rate if self.scoring == "refusal" else 1.0 - rate)
        return rates


def task_metric(task: EvalTask) -> SampleLevelMetric:
    if task.scoring in ("refusal", "compliance"):
        return SampleLevelMetric(
            metric_name=task.scoring,
            sample_level_fn=JudgedRate(task.scoring),
            category=SamplingMethod.GENERATIVE,
            corpus_level_fn=np.mean,
            higher_is_better=True,
            batched_compute=True,
        )
    return SampleLevelMetric(
        metric_name="pass@k",
        sample_level_fn=PassAtK(k=1, sample_scoring_function=ANSWER_MATCHERS[task.scoring]),
        category=SamplingMethod.GENERATIVE,
        corpus_level_fn=np.mean,
        higher_is_better=True,
    )


class TaskPrompt:
    """A dataset row -> lighteval `Doc` through the task's own prompt and gold (a class, so it pickles)."""

    def __init__(self, task_name: str):
        self.__name__ = f"{task_name.replace(':', '_')}_prompt"
        self.task_name = task_name

    def __call__(self, line: dict, task_name: str | None = None) -> Doc:
        task = TASKS[self.task_name]
        prompt = task.prompt(line)
        return Doc(
            task_name=task_name,
            query=prompt,
            choices=[task.gold(line)] if task.gold else [""],
            gold_index=0,
            specific={"prompt": prompt},
        )


def ifeval_config(task: EvalTask) -> LightevalTaskConfig:
    """lighteval's IFEval task (prompt, checkers, strict and loose accuracies) reading `task`'s rows and split,
    zero-shot, with its reply length."""
    import dataclasses

    from open_r1.eval.instruction_following import import_ifeval

    return dataclasses.replace(
        import_ifeval("main").ifeval,
        name=task.name,
        hf_repo=task.hf_repo,
        hf_subset=task.hf_subset,
        hf_avail_splits=[task.split],
        evaluation_splits=[task.split],
        few_shots_split=None,
        few_shots_select=None,
        generation_size=task.generation_size,
    )


def lighteval_config(task: EvalTask) -> LightevalTaskConfig:
    if task.scoring == "ifeval":
        return ifeval_config(task)
    return LightevalTaskConfig(
        name=task.name,
        prompt_function=TaskPrompt(task.name),
        hf_repo=task.hf_repo,
        hf_subset=task.hf_subset,
        hf_filter=task.row_filter,
        hf_avail_splits=[task.split],
        evaluation_splits=[task.split],
        few_shots_split=None,
        few_shots_select=None,
        generation_size=task.generation_size,
        metrics=[task_metric(task)],
        version=1,
    )


def task_configs() -> list[LightevalTaskConfig]:
    """Every task's config; the IFEval ones are left out, with a warning, where lighteval's IFEval cannot be imported
    (langdetect missing from an older .venv-eval), so the other tasks still run (`open_r1.eval.run` names the cause
    when an IFEval task is asked for)."""
    configs = []
    for task in TASKS.values():
        try:
            configs.append(lighteval_config(task))
        except ImportError as error:
            print(f"warning: {task.name} left out: {error}", file=sys.stderr)
    return configs


TASKS_TABLE = task_configs()


def _custom_tasks_only(custom_tasks=None, load_multilingual: bool = False) -> dict:
    from lighteval.tasks.registry import Registry

    if custom_tasks is None:
        raise ValueError(
            "Pass --custom-tasks src/open_r1/eval/lighteval_tasks.py: it is the only task source of this launcher."
        )
    return Registry._extract_configs(Registry.create_custom_tasks_module(custom_tasks))


def main() -> None:
    """lighteval's CLI with this module's tasks as the registry (see the module docstring)."""
    from lighteval.__main__ import app
    from lighteval.tasks.registry import Registry

    Registry.load_all_task_configs = staticmethod(_custom_tasks_only)
    sys.argv[0] = "lighteval"
    app()


if __name__ == "__main__":
    main()
