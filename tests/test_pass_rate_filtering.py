# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Pass-rate filtering (Open R1's scripts/pass_rate_filtering) through its real entry point on the tiny world: each
row's completions rescored by hand, the pass rate their mean, the kept rows exactly those strictly inside the
interval; Open R1's path and recipes; bad input stopped before the model loads."""

import math
import subprocess
import sys

import pytest
from datasets import load_from_disk

from open_r1.rewards import accuracy_reward

from .conftest import REPO


RECIPE = REPO / "recipes/tiny/dataset_filtering/config_pass_rate.yaml"


def coin_reward(completions, **kwargs):
    """0 or 1 by the completion's text, so that pass rates fall inside and outside the interval."""
    return [float(sum(map(ord, c[-1]["content"])) % 2) for c in completions]


def _run(world, out, *extra, script="src/open_r1/pass_rate_filtering.py"):
    command = [sys.executable, str(REPO / script), "--config", str(RECIPE), "--output_dir", str(out)]
    command += ["--model_name_or_path", str(world.base_model), "--dataset_name", str(world.root / "update"), *extra]
    env = {**__import__("os").environ, "PYTHONPATH": f"{REPO}:{REPO / 'src'}", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_pass_rates_are_the_mean_weighted_reward_and_the_interval_is_strict(world, tmp_path):
    out = tmp_path / "filtered"
    rewards = ("--reward_funcs", "tests.test_pass_rate_filtering:coin_reward", "accuracy")
    done = _run(
        world,
        out,
        *rewards,
        "--reward_weights",
        "1.0",
        "0.5",
        "--pass_rate_min",
        "0.25",
        "--pass_rate_max",
        "0.75",
        "--dataset_start_index",
        "4",
        "--dataset_end_index",
        "14",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    generated, kept = load_from_disk(out / "generations"), load_from_disk(out / "filtered")
    source = load_from_disk(str(world.root / "update"))["train"].select(range(4, 14))
    assert generated["solution"] == source["solution"] and len(generated) == 10
    for row in generated:
        texts = row["pass_rate_generations"]
        assert len(texts) == 4
        chats = [[{"role": "assistant", "content": text}] for text in texts]
        accuracy = accuracy_reward(chats, [row["solution"]] * 4)
        by_hand = [c + 0.5 * (math.nan if a is None else a) for c, a in zip(coin_reward(chats), accuracy)]
        assert row["pass_rate_rewards"] == pytest.approx(by_hand, nan_ok=True)
        scored = [r for r in by_hand if not math.isnan(r)]
        assert row["pass_rate"] == pytest.approx(sum(scored) / len(scored))
    inside = [row["solution"] for row in generated if 0.25 < row["pass_rate"] < 0.75]
    assert kept["solution"] == inside


def test_the_interval_is_open_and_an_unscored_row_is_dropped():
    from open_r1.pass_rate_filtering import PassRateScriptArguments, kept, pass_rate

    args = PassRateScriptArguments(dataset_name="x", pass_rate_min=0.25, pass_rate_max=0.75)
    assert [kept(rate, args) for rate in (0.25, 0.2500001, 0.5, 0.7499999, 0.75)] == [False, True, True, True, False]
    assert pass_rate([1.0, math.nan, 0.0]) == 0.5 and math.isnan(pass_rate([math.nan] * 3))
    assert not kept(pass_rate([math.nan] * 3), args)


def test_open_r1s_path_runs_the_same_program(world, tmp_path):
    out = tmp_path / "upstream_path"
    done = _run(world, out, "--dataset_end_index", "2", script="scripts/pass_rate_filtering/compute_pass_rate.py")
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(load_from_disk(out / "generations")) == 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--pass_rate_min", "0.8", "--pass_rate_max", "0.2"), "`pass_rate_min` (0.8) must be below `pass_rate_max`"),
        (
            ("--dataset_start_index", "600", "--dataset_end_index", "800"),
            "`dataset_start_index` (600) is past the 600",
        ),
        (("--dataset_split", "dev"), "has no split 'dev'"),  # the world has train, validation and test
        (("--reward_funcs", "acuracy"), "unknown reward 'acuracy'"),
    ],
)
def test_bad_input_stops_before_the_model_loads(world, tmp_path, extra, message):
    done = _run(world, tmp_path / "bad", *extra)
    assert done.returncode != 0 and message in done.stderr, done.stderr[-3000:]
    assert "Loading weights" not in done.stderr
    assert not (tmp_path / "bad" / "generations").exists()


def test_open_r1s_filtering_recipes_pass_the_checker_and_are_not_planned_as_training():
    """The memory planner plans training: a filtering recipe (generation only) would be refused on a node that can
    size its model (116.7 GiB 'training step' for filter_dapo's 7B), so the Slurm job stopped before generating."""
    from open_r1.recipes.check import check_recipe
    from open_r1.recipes.memory import memory_verdict
    from open_r1.recipes.reading import recipe_files

    recipes = recipe_files([str(REPO / "recipes/dataset_filtering")])
    assert [r.name for r in recipes] == ["config_demo.yaml", "filter_dapo.yaml", "filter_python.yaml"]
    for recipe in recipes:
        assert check_recipe(recipe, allow_missing_packages=True) == [], recipe
    problem, note = memory_verdict(RECIPE, None, None, 80 * 2**30)
    assert problem is None and "pass-rate filtering only generates" in note


def test_a_reward_only_training_can_feed_is_refused_before_the_model_loads(world, tmp_path):
    done = _run(world, tmp_path / "out", "--reward_funcs", "tests.test_pass_rate_filtering:needs_trainer_state")
    assert done.returncode != 0 and "needs ['trainer_state'], which only training has" in done.stderr
    assert "Loading weights" not in done.stderr


def needs_trainer_state(completions, trainer_state, **kwargs):
    return [0.0] * len(completions)
