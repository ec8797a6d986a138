import json

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaForSequenceClassification
from trl import ModelConfig, TrlParser

from open_r1 import grpo
from open_r1.configs import GRPOConfig, GRPOScriptArguments

from .conftest import accelerate_cmd, run_cli


RECIPE = "recipes/tiny/grpo/config_grpo.yaml"


def _overrides(world, out, *extra):
    return [
        "--model_name_or_path",
        str(world.base_model),
        "--dataset_name",
        str(world.update),
        "--output_dir",
        str(out),
        "--max_steps",
        "3",
        "--logging_steps",
        "1",
        "--max_completion_length",
        "16",
        *extra,
    ]


def _log(out):
    return json.loads((out / "trainer_state.json").read_text())["log_history"]


def test_make_conversation_keeps_turns_up_to_the_last_user_turn():
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert grpo.make_conversation({"m": messages}, "m", None) == {"prompt": messages[:1]}
    assert grpo.make_conversation({"p": "q"}, "p", "sys") == {
        "prompt": [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}]
    }


def test_grpo_end_to_end_with_a_reward_model_verifier(world, tmp_path):
    # A tiny sequence-classification verifier, as SafeWork-R1's safety/value/knowledge models, mixed by weight.
    verifier = tmp_path / "verifier"
    config = AutoConfig.from_pretrained(world.base_model, num_labels=1)
    torch.manual_seed(0)
    LlamaForSequenceClassification(config).save_pretrained(verifier)
    AutoTokenizer.from_pretrained(world.base_model).save_pretrained(verifier)
    out = tmp_path / "grpo"
    run_cli(
        accelerate_cmd(
            "--num_processes",
            "1",
            "--cpu",
            "src/open_r1/grpo.py",
            "--config",
            RECIPE,
            *_overrides(
                world,
                out,
                "--reward_funcs",
                "accuracy",
                "format",
                f"model:{verifier}",
                "--reward_weights",
                "1.0",
                "0.2",
                "0.5",
            ),
        )
    )
    log = _log(out)
    assert all(
        key in log[0]
        for key in (
            "pass@1",
            "pass@4",
            "reasoning/backtracking",
            "rewards/accuracy_reward/mean",
            "rewards/format_reward/mean",
        )
    )
    verifier_means = [e[k] for e in log for k in e if k.startswith("rewards/verifier") and k.endswith("/mean")]
    assert verifier_means and any(v != 0 for v in verifier_means)
    AutoModelForCausalLM.from_pretrained(out)


def test_grpo_two_processes_with_ewc(world, tmp_path):
    out = tmp_path / "grpo_ewc"
    run_cli(
        accelerate_cmd(
            "--multi_gpu",
            "--num_processes",
            "2",
            "src/open_r1/grpo.py",
            "--config",
            RECIPE,
            *_overrides(
                world,
                out,
                "--use_ewc",
                "true",
                "--retain_dataset_id",
                str(world.retain),
                "--fisher_num_samples",
                "16",
                "--ewc_lambda",
                "10",
                "--per_device_train_batch_size",
                "4",
            ),
        )
    )
    log = _log(out)
    assert any("ewc/fisher_mean" in e for e in log) and any("ewc/penalty" in e for e in log)
    AutoModelForCausalLM.from_pretrained(out)


def test_bad_rewards_fail_before_loading(world, tmp_path):
    parser = TrlParser((GRPOScriptArguments, GRPOConfig, ModelConfig))
    args = parser.parse_args_and_config(
        ["--config", RECIPE, *_overrides(world, tmp_path / "o"), "--reward_funcs", "accuracy", "formatt"]
    )
    with pytest.raises(ValueError, match="unknown reward 'formatt'"):
        grpo.main(*args)
    args = parser.parse_args_and_config(
        ["--config", RECIPE, *_overrides(world, tmp_path / "o"), "--reward_weights", "1.0"]
    )
    with pytest.raises(ValueError, match="reward_weights"):
        grpo.main(*args)
    with pytest.raises(ValueError, match="replay"):
        parser.parse_args_and_config(["--config", RECIPE, "--replay_ratio", "0.1", "--retain_dataset_id", "x/y"])
