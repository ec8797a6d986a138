# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""LiveCodeBench: the fixture in the Hub's row format decodes to the right tests, right and wrong solutions score
1 and 0 through the sandbox (project scorer and the lighteval metric in the evaluation environment), and
`make evaluate TASK=lcb` runs on the fixture."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import needs_sandbox


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "helpers"))
from lcb_fixture import PROBLEMS, reply, row, write_fixture  # noqa: E402


EVAL_PYTHON = os.environ.get("OPEN_R1_EVAL_PYTHON", str(REPO / ".venv-eval/bin/python"))


def test_private_tests_decode_and_refuse_anything_but_a_string():
    import base64
    import pickle
    import zlib

    from open_r1.code.livecodebench import private_tests, test_cases

    cases = test_cases(row(PROBLEMS[1]))
    assert cases[0] == {"type": "function_call", "fn_name": "maxPairSum", "input": [[1, 5, 3]], "output": 8}
    assert len(cases) == 3 and test_cases(row(PROBLEMS[0]))[2]["input"] == "0 0\n"
    hostile = base64.b64encode(zlib.compress(pickle.dumps(os.system))).decode()
    with pytest.raises(pickle.UnpicklingError, match="only hold a string"):
        private_tests(hostile)


@needs_sandbox
def test_right_and_wrong_solutions_score_one_and_zero(tmp_path, monkeypatch):
    from open_r1.code.livecodebench import extract_code
    from open_r1.eval import tasks

    monkeypatch.setenv("OPEN_R1_LCB_DIR", str(write_fixture(tmp_path / "lcb")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    task = tasks.lcb_task()
    assert task.hf_repo == str(tmp_path / "lcb")
    rows = [row(p) for p in PROBLEMS] * 2
    replies = [reply(p["right"]) for p in PROBLEMS] + [reply(p["wrong"]) for p in PROBLEMS]
    assert tasks.score_replies(task, rows, replies) == [1.0, 1.0, 0.0, 0.0]
    assert tasks.score_replies(task, rows[:1], ["no code at all"]) == [0.0]
    assert "```python\n# YOUR CODE HERE" in task.prompt(rows[0]) and "starter code" in task.prompt(rows[1])
    assert extract_code("a\n```python\nx = 1\n```\nb") == "x = 1"


EVAL_SCRIPT = """
import json, sys
from lighteval.models.model_output import ModelResponse
from lighteval.tasks.requests import Doc
from open_r1.eval.lighteval_tasks import code_passes
gold, replies = json.loads(sys.stdin.read())
print(json.dumps([code_passes(Doc(query="", choices=[gold], gold_index=0), ModelResponse(text=[r])) for r in replies]))
"""


@needs_sandbox
@pytest.mark.skipif(not Path(EVAL_PYTHON).exists(), reason="no evaluation environment (make install-eval)")
def test_make_evaluate_lcb_runs_on_the_fixture_and_its_metric_scores_solutions(world, tmp_path):
    from open_r1.code.livecodebench import gold

    fixture = write_fixture(tmp_path / "lcb")
    env = {**os.environ, "OPEN_R1_LCB_DIR": str(fixture), "HF_HUB_OFFLINE": "1"}
    problem = PROBLEMS[1]
    scored = subprocess.run(
        [EVAL_PYTHON, "-c", EVAL_SCRIPT],
        input=json.dumps([gold(row(problem)), [reply(problem["right"]), reply(problem["wrong"])]]),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(scored.stdout.strip().splitlines()[-1]) == [1.0, 0.0]

    output = tmp_path / "evals"
    done = subprocess.run(
        [
            "make",
            "evaluate",
            f"MODEL={world.base_model}",
            "TASK=lcb",
            f"OUTPUT_DIR={output}",
            f"EVAL_VENV={Path(EVAL_PYTHON).parents[1]}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(next(output.rglob("results_*.json")).read_text())["results"]
    scores = {name: metrics for name, metrics in results.items() if "lcb" in name}
    # The tiny model writes no program: every problem fails (the metric ran: its key is there).
    assert scores and all(m.get("pass@k") == 0.0 for m in scores.values() if "pass@k" in m), scores
