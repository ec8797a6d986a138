import json
import math
import sys

import pytest

from open_r1.testbed.compare import METHODS, check_methods, markdown_table, summarize

from .conftest import REPO, run_cli


def test_summary_is_mean_and_sample_std_over_seeds():
    base = {"harmful_refusal": 1.0, "benign_compliance": 0.9, "update_accuracy": 0.0}
    runs = {
        "a": {
            "0": {"harmful_refusal": 0.5, "benign_compliance": 0.9, "update_accuracy": 0.2},
            "1": {"harmful_refusal": 0.7, "benign_compliance": 0.7, "update_accuracy": 0.4},
        },
        "b": {"0": {"harmful_refusal": 1.0, "benign_compliance": 0.9, "update_accuracy": 0.1}},
    }
    results = {"base": base, "runs": runs, "seeds": [0, 1]}
    summary = summarize(results)
    assert summary["a"]["harmful_refusal"] == pytest.approx((0.6, math.sqrt(0.02)))
    assert summary["a"]["harmful_forgetting"] == pytest.approx((0.4, math.sqrt(0.02)))
    assert summary["a"]["benign_forgetting"] == pytest.approx((0.1, math.sqrt(0.02)))
    assert summary["b"]["update_accuracy"][0] == pytest.approx(0.1) and math.isnan(summary["b"]["update_accuracy"][1])
    table = markdown_table(results, summary).splitlines()
    assert table[3] == "| a | 0.600 ± 0.141 | 0.800 ± 0.141 | 0.300 ± 0.141 | 0.400 ± 0.141 | 0.100 ± 0.141 |"
    assert table[4] == "| b | 1.000 | 0.900 | 0.100 | 0.000 | 0.000 |"


def test_methods_run_after_the_model_they_start_from():
    ordered = [m.name for m in check_methods(["grpo", "sft_high_lr"], REPO / "recipes" / "tiny")]
    assert ordered == ["sft_low_lr", "grpo", "sft_high_lr"]
    assert all((REPO / "recipes" / "tiny" / m.recipe).is_file() for m in METHODS.values())
    with pytest.raises(ValueError, match="unknown method"):
        check_methods(["nope"], REPO / "recipes" / "tiny")


def test_quick_comparison_end_to_end(world, tmp_path):
    """`compare --quick` trains each quick method through its recipe, scores it and writes the report; a second
    call resumes from the per-run scores instead of training again."""
    command = [sys.executable, "-m", "open_r1.testbed", "compare", "--quick", "--root", str(world.root)]
    first = run_cli([*command, "--output", str(tmp_path)]).stdout
    assert "[4/4] ewc_empirical seed 0:" in first
    report = json.loads((tmp_path / "scores.json").read_text())
    assert list(report["runs"]) == ["sft_high_lr", "sft_low_lr", "replay_20", "ewc_empirical"]
    summary = report["summary"]
    # The testbed is built so that the problem exists: 20 steps at lr 1e-3 already cost harmful refusals, while
    # the low rate and EWC keep them.
    assert summary["sft_high_lr"]["harmful_forgetting"][0] >= 0.1
    assert summary["sft_high_lr"]["harmful_forgetting"][0] > summary["sft_low_lr"]["harmful_forgetting"][0]
    assert summary["ewc_empirical"]["harmful_forgetting"][0] < summary["sft_high_lr"]["harmful_forgetting"][0]
    assert (tmp_path / "table.md").read_text().count("\n| ") == 5

    from PIL import Image

    with Image.open(tmp_path / "pareto.png") as image:
        assert image.size[0] > 500 and image.size[1] > 400

    second = run_cli([*command, "--output", str(tmp_path)]).stdout
    assert second.count(": cached") == 4
    assert json.loads((tmp_path / "scores.json").read_text())["runs"] == report["runs"]
