import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from open_r1.eval.judges import get_judge, keyword_judge, parse_wildguard
from open_r1.eval.run import collect_results, expand_tasks, lighteval_command, summary_table
from open_r1.eval.tasks import TASKS, gpqa_choices, gpqa_gold, gpqa_prompt
from open_r1.eval.tasks import score_replies as score_task_replies

from .conftest import REPO, cpu_sft_args, tiny_trainer


def user_judge(prompts, replies):
    return [reply.startswith("No") for reply in replies]


def test_judges_are_pluggable():
    assert get_judge("keyword") is keyword_judge
    assert keyword_judge(["p", "p"], ["I can't help with that.", "I can't believe how easy this is: 2 + 2 = 4."]) == [
        True,
        False,
    ]
    judge = get_judge("tests.test_evaluate:user_judge")
    assert judge(["p"], ["No."]) == [True]
    with pytest.raises(ValueError, match="`judge`: unknown refusal judge 'wildgard'"):
        get_judge("wildgard")
    with pytest.raises(ValueError, match="`judge`: cannot import 'tests.test_evaluate:nope'"):
        get_judge("tests.test_evaluate:nope")
    assert parse_wildguard("Harmful request: yes\nResponse refusal: yes\nHarmful response: no") is True
    assert parse_wildguard("Harmful request: yes\nResponse refusal: no\nHarmful response: yes") is False
    with pytest.raises(ValueError, match="without a 'Response refusal' verdict"):
        parse_wildguard("Harmful request: yes")


def test_gpqa_order_is_fixed_by_the_question_and_the_gold_letter_points_at_the_answer():
    row = {
        "Question": "Which is a noble gas?",
        "Correct Answer": "Neon",
        "Incorrect Answer 1": "Iron",
        "Incorrect Answer 2": "Sodium",
        "Incorrect Answer 3": "Carbon",
    }
    choices, gold_index = gpqa_choices(row)
    assert sorted(choices) == ["Carbon", "Iron", "Neon", "Sodium"] and choices[gold_index] == "Neon"
    assert gpqa_choices(dict(row)) == (choices, gold_index)
    assert f"{gpqa_gold(row)}) Neon" in gpqa_prompt(row)
    positions = {gpqa_choices({**row, "Question": f"Question {i}?"})[1] for i in range(40)}
    assert positions == {0, 1, 2, 3}  # the correct answer is not always in one place


def test_task_groups_and_command_lines(tmp_path, monkeypatch):
    # a world with instruction prompts (a directory of them; the default world may not be built here)
    monkeypatch.setitem(TASKS, "testbed:instructions", replace(TASKS["testbed:instructions"], hf_repo=str(tmp_path)))
    assert expand_tasks("testbed,math_500") == [
        "testbed:harmful",
        "testbed:benign",
        "testbed:update",
        "testbed:instructions",
        "math_500",
    ]
    with pytest.raises(ValueError, match="unknown task"):
        expand_tasks("math500")
    # a world without instruction prompts: the group leaves the task out, naming it alone is checked as any task
    monkeypatch.setitem(TASKS, "testbed:instructions", replace(TASKS["testbed:instructions"], hf_repo="no/such/dir"))
    assert expand_tasks("testbed") == ["testbed:harmful", "testbed:benign", "testbed:update"]
    assert expand_tasks("testbed:instructions") == ["testbed:instructions"]
    from open_r1.eval.run import evaluation_job_commands

    submitted = [command[command.index("--task") + 1] for command in evaluation_job_commands("org/m", ["all"])]
    assert "ifeval" in submitted and "ifeval:fixture" not in submitted
    testbed = lighteval_command("data/tiny/sft", ["testbed:harmful"], "out", "/tmp/c", "accelerate")
    model_args = testbed[testbed.index("accelerate") + 1]
    assert "device=cpu" in model_args and "cache_dir=/tmp/c" in model_args
    assert model_args.endswith("generation_parameters={temperature:0.0}")  # greedy, the task's own length
    assert testbed[testbed.index("accelerate") + 2] == "testbed:harmful|0"
    vllm = lighteval_command("org/model", ["math_500"], "out", "/tmp/c", "vllm", "data", 8, num_samples=4)
    model_args = vllm[vllm.index("vllm") + 1]
    assert "data_parallel_size=8" in model_args and "max_model_length=32768" in model_args
    assert "generation_parameters={max_new_tokens:32768,temperature:0.6,top_p:0.95}" in model_args
    assert vllm[vllm.index("vllm") + 2] == "math_500@n=4|0"
    assert "--max-samples" not in vllm
    limited = lighteval_command("org/model", ["safety:harmbench"], "out", "/tmp/c", "vllm", max_samples=50)
    assert limited[limited.index("--max-samples") + 1] == "50"


def test_summary_table_and_plot_from_fixture_results(tmp_path):
    def write(model, stamp, results):
        path = tmp_path / "evals" / model / "results" / model / f"results_{stamp}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"config_general": {"model_name": model}, "results": results}))

    write("base", "2026-01-01", {"testbed:harmful|0": {"refusal": 1.0}, "testbed:update|0": {"pass@k": 0.0}})
    write("base", "2026-01-02", {"testbed:benign|0": {"compliance": 0.9}, "testbed:update|0": {"pass@k": 0.05}})
    write("sft", "2026-01-01", {"testbed:harmful|0": {"refusal": 0.2, "pass@k": 0.0}, "math_500|0": {"pass@k": 0.5}})
    models = collect_results([tmp_path / "evals"])
    assert models == {
        "base": {"testbed:harmful": 1.0, "testbed:update": 0.05, "testbed:benign": 0.9},
        "sft": {"testbed:harmful": 0.2, "math_500": 0.5},
    }
    table = summary_table(models).splitlines()
    assert table[0] == (
        "| model | testbed:harmful (safety) | testbed:benign (over-refusal) | math_500 (math) | testbed:update (math) |"
    )
    assert table[2] == "| base | 1.000 | 0.900 | - | 0.050 |"
    assert table[3] == "| sft | 0.200 | - | 0.500 | - |"

    from open_r1.eval.run import main

    assert main(["summarize", str(tmp_path / "evals"), "--output", str(tmp_path / "summary")]) == 0
    assert (tmp_path / "summary" / "summary.md").read_text().splitlines() == table
    from PIL import Image

    with Image.open(tmp_path / "summary" / "learning_vs_forgetting.png") as image:
        assert image.size[0] > 500


def test_instruction_following_is_a_column_and_a_panel_of_the_summary(tmp_path):
    """IFEval's strict prompt-level accuracy is the `instructions` side: a column of the table, and a second panel
    (instruction following against the learned skill) beside the refusal one in the plot."""
    from PIL import Image

    from open_r1.eval.run import main

    widths = {}
    for name, extra in (("without", {}), ("with", {"ifeval|0": {"prompt_level_strict_acc": 0.25}})):
        path = tmp_path / name / "m" / "results" / "m" / "results_2026-01-01.json"
        path.parent.mkdir(parents=True)
        results = {"testbed:harmful|0": {"refusal": 0.5}, "testbed:update|0": {"pass@k": 0.2}, **extra}
        path.write_text(json.dumps({"config_general": {"model_name": "m"}, "results": results}))
        assert main(["summarize", str(tmp_path / name), "--output", str(tmp_path / name / "summary")]) == 0
        with Image.open(tmp_path / name / "summary" / "learning_vs_forgetting.png") as image:
            widths[name] = image.size[0]
    table = (tmp_path / "with" / "summary" / "summary.md").read_text().splitlines()
    assert table[0].endswith("| ifeval (instructions) |") and table[2].endswith("| 0.250 |")
    assert widths["with"] > 1.6 * widths["without"]


EVAL_PYTHON = os.environ.get("OPEN_R1_EVAL_PYTHON", str(REPO / ".venv-eval" / "bin" / "python"))


@pytest.mark.skipif(
    not Path(EVAL_PYTHON).exists() and "OPEN_R1_EVAL_PYTHON" not in os.environ,
    reason="no evaluation environment: run `make install-eval` (make test does)",
)
def test_make_evaluate_on_the_testbed_matches_the_project_scorer(world, tmp_path):
    """lighteval (transformers backend, CPU) runs the testbed tasks from `open_r1.eval.lighteval_tasks` on a briefly trained
    tiny model; its per-sample and corpus scores equal the project's own scorer on the same generations."""
    import pandas as pd
    from datasets import load_from_disk

    trainer = tiny_trainer(
        world, cpu_sft_args(tmp_path / "run", max_steps=150, learning_rate=1e-3, per_device_train_batch_size=16), 600
    )
    trainer.train()
    model_dir = tmp_path / "model"
    trainer.save_model(model_dir)

    output = tmp_path / "evals"
    subprocess.run(
        [
            "make",
            "evaluate",
            f"MODEL={model_dir}",
            "TASK=testbed",
            f"TESTBED_DIR={world.root}",
            f"OUTPUT_DIR={output}",
            f"EVAL_VENV={Path(EVAL_PYTHON).parents[1]}",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=600,
    )
    results = json.loads(next(output.rglob("results_*.json")).read_text())["results"]
    checked = {}
    for task_name, split, metric in [
        ("testbed:harmful", "retain", "refusal"),
        ("testbed:benign", "retain", "compliance"),
        ("testbed:update", "update", "pass@k"),
    ]:
        task = TASKS[task_name]
        test_rows = [
            r for r in load_from_disk(str(world.root / split))["test"] if not task.row_filter or task.row_filter(r)
        ]
        by_prompt = {task.prompt(row): row for row in test_rows}
        details = pd.read_parquet(next(output.rglob(f"details_{task_name}|0_*.parquet")))
        assert len(details) == len(test_rows), task_name
        replies = [response["text"][0] for response in details["model_response"]]
        ours = score_task_replies(task, [by_prompt[doc["specific"]["prompt"]] for doc in details["doc"]], replies)
        assert [m[metric] for m in details["metric"]] == ours, task_name
        assert results[f"{task_name}|0"][metric] == pytest.approx(sum(ours) / len(ours))
        checked[task_name] = sum(ours) / len(ours)
    # Instruction following: lighteval's IFEval task on the world's held-out instruction prompts, per prompt equal to
    # the project scorer (the same checkers, strict) on the same replies.
    instructions = TASKS["testbed:instructions"]
    rows = {row["prompt"]: row for row in map(json.loads, world.instructions_eval.read_text().splitlines())}
    details = pd.read_parquet(next(output.rglob("details_testbed:instructions|0_*.parquet")))
    assert len(details) == len(rows)
    replies = [response["text"][0] for response in details["model_response"]]
    ours = score_task_replies(instructions, [rows[doc["query"]] for doc in details["doc"]], replies)
    assert [m["prompt_level_strict_acc"] for m in details["metric"]] == ours
    assert results["testbed:instructions|0"]["prompt_level_strict_acc"] == pytest.approx(sum(ours) / len(ours))
    # The model learned something and still refuses, so both outcomes of each grader are exercised.
    assert 0 < checked["testbed:update"] < 1 and 0 < checked["testbed:harmful"] < 1, checked


@pytest.mark.skipif(
    not Path(EVAL_PYTHON).exists() and "OPEN_R1_EVAL_PYTHON" not in os.environ,
    reason="no evaluation environment: run `make install-eval` (make test does)",
)
def test_ifeval_runs_offline_on_the_fixture_and_scores_as_the_project_checker(world, tmp_path):
    """`make evaluate TASK=ifeval` with the Hub off and google/IFEval not cached: lighteval's IFEval task runs on
    the fixture under its own name, `ifeval:fixture` (and says so), and its per-prompt strict verdicts are
    `prompt_follows` on the same replies."""
    import pandas as pd

    from open_r1.eval.instruction_following import prompt_follows

    output = tmp_path / "evals"
    done = subprocess.run(
        [
            "make",
            "evaluate",
            f"MODEL={world.root / 'base_model'}",
            "TASK=ifeval",
            "MAX_NEW_TOKENS=48",
            f"OUTPUT_DIR={output}",
            f"EVAL_VENV={Path(EVAL_PYTHON).parents[1]}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "no_cache")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "running `ifeval:fixture` instead" in done.stderr
    details = pd.read_parquet(next(output.rglob("details_ifeval:fixture|0_*.parquet")))
    assert len(details) == 30

    def plain(kwargs):  # the parquet holds lists as numpy arrays
        return {key: value.tolist() if hasattr(value, "tolist") else value for key, value in kwargs.items()}

    ours = [
        int(
            prompt_follows(
                doc["query"],
                response["text"][0],
                list(doc["specific"]["instructions_id_list"]),
                [plain(kwargs) for kwargs in doc["specific"]["kwargs"]],
            )
        )
        for doc, response in zip(details["doc"], details["model_response"])
    ]
    assert [metric["prompt_level_strict_acc"] for metric in details["metric"]] == ours
    results = json.loads(next(output.rglob("results_*.json")).read_text())["results"]
    assert results["ifeval:fixture|0"]["prompt_level_strict_acc"] == pytest.approx(sum(ours) / len(ours))
    models = collect_results([output])
    assert list(models.values()) == [{"ifeval:fixture": pytest.approx(sum(ours) / len(ours))}]
    assert "ifeval:fixture (instructions)" in summary_table(models)
