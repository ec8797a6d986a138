# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The memory planner against measured peak memory of real training runs on CPU (within 15%), its 8B figures'
arithmetic, and a verdict that names a change which makes a plan fit."""

import json
import subprocess
import sys

import pytest

from open_r1.recipe_memory import GIB, Launch, model_config, model_shapes, plan

from .conftest import REPO


@pytest.mark.parametrize("flags", [["--batch", "4"], ["--batch", "8", "--ewc", "--ema"]])
def test_planner_predicts_measured_peak_memory_within_15_percent(world, tmp_path, flags):
    out = tmp_path / "memory.json"
    subprocess.run(
        [sys.executable, str(REPO / "tests/helpers/measure_train_memory.py"), str(world.root), str(out), *flags],
        check=True,
        capture_output=True,
        timeout=600,
    )
    result = json.loads(out.read_text())
    ratio = result["measured_bytes"] / result["predicted_bytes"]
    assert 0.85 <= ratio <= 1.15, (ratio, result)


def test_8b_parameter_count_and_zero_arithmetic():
    config = model_config("meta-llama/Llama-3.1-8B-Instruct")  # the public config (offline: the planner's copy)
    params, largest = model_shapes(config)
    assert params == 8_030_261_248 and largest == 128256 * 4096
    recipe = {"model_name_or_path": "meta-llama/Llama-3.1-8B-Instruct", "dtype": "bfloat16", "bf16": True}
    recipe.update({"per_device_train_batch_size": 1, "max_length": 1024, "gradient_checkpointing": True})
    rows = {name: value for name, value, _ in plan(recipe, Launch("zero1", 8)).rows}
    assert rows["weights"] == 2 * params and rows["gradients"] == 2 * params
    assert rows["optimizer"] == pytest.approx(16 * params / 8)  # fp32 master, two moments, fp32 gradients: over W
    zero3 = {name: value for name, value, _ in plan(recipe, Launch("zero3", 8)).rows}
    assert zero3["weights"] == pytest.approx(2 * params / 8 + 2 * largest)
    ewc = {name: value for name, value, _ in plan({**recipe, "use_ewc": True}, Launch("zero1", 8)).rows}
    assert ewc["EWC Fisher + anchors"] == 8 * params  # two fp32 copies, replicated under ZeRO-1


def test_a_plan_that_does_not_fit_names_a_change_that_makes_it_fit():
    recipe = {"model_name_or_path": "meta-llama/Llama-3.1-8B-Instruct", "dtype": "bfloat16", "bf16": True}
    recipe.update({"per_device_train_batch_size": 1, "max_length": 2048, "gradient_checkpointing": True})
    recipe.update({"use_ewc": True, "use_ema": True})
    too_big = plan(recipe, Launch("zero1", 8))
    assert too_big.total > 0.9 * 80 * GIB and "does not fit" in too_big.verdict()
    named = too_big.suggestions[0].rsplit(" (", 1)[0]
    assert named == "ZeRO-3 (recipes/accelerate_configs/zero3.yaml)"
    assert plan(recipe, Launch("zero3", 8)).total <= 0.9 * 80 * GIB


def test_memory_cli_prints_every_versioned_8b_recipe():
    done = subprocess.run(
        [sys.executable, "-m", "open_r1.recipes", "memory", "recipes/meta-llama/Llama-3.1-8B-Instruct"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    recipes = sorted((REPO / "recipes/meta-llama/Llama-3.1-8B-Instruct").rglob("config_*.yaml"))
    assert done.stdout.count("| **total** |") == len(recipes)
