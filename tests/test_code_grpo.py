# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The tiny code RL recipes through the real entry points: the SFT warm-up on the world's programming tasks, then
GRPO whose `code` reward runs every sampled program in the local sandbox."""

import json

from .conftest import accelerate_cmd, needs_sandbox, run_cli


pytestmark = needs_sandbox


def test_tiny_code_grpo_recipe_trains_with_sandboxed_rewards(world, tmp_path):
    warm = tmp_path / "code_sft"
    run_cli(
        accelerate_cmd(
            "--num_processes", "1", "--cpu", "src/open_r1/sft.py", "--config", "recipes/tiny/sft/config_code_sft.yaml",
            "--model_name_or_path", str(world.base_model), "--dataset_name", str(world.code), "--output_dir", str(warm),
        )
    )  # fmt: skip
    out = tmp_path / "grpo_code"
    run_cli(
        accelerate_cmd(
            "--num_processes", "1", "--cpu", "src/open_r1/grpo.py", "--config", "recipes/tiny/grpo/config_grpo_code.yaml",
            "--model_name_or_path", str(warm), "--dataset_name", str(world.code), "--output_dir", str(out),
            "--max_steps", "6", "--logging_steps", "1",
        )
    )  # fmt: skip
    log = json.loads((out / "trainer_state.json").read_text())["log_history"]
    rewards = [entry["rewards/code_reward/mean"] for entry in log if "rewards/code_reward/mean" in entry]
    assert len(rewards) == 6
    # The warmed-up model writes programs that sometimes print the right value: the sandbox ran and passed some.
    assert 0.0 < max(rewards) <= 1.0
    assert (out / "model.safetensors").exists()
