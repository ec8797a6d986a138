import json

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import ModelConfig, TrlParser

from open_r1 import sft
from open_r1.configs import ScriptArguments, SFTConfig

from .conftest import REPO, accelerate_cmd, run_cli, world_args


RECIPE = "recipes/tiny/sft/config_sft.yaml"


def _overrides(world, output_dir, max_steps=12):
    return world_args(
        world, output_dir, "--max_steps", str(max_steps), "--logging_steps", "2", "--save_strategy", "no"
    )


def _losses(output_dir):
    state = json.loads((output_dir / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


def test_sft_recipe_end_to_end_writes_a_model_that_reloads(world, tmp_path):
    out = tmp_path / "sft"
    run_cli(
        accelerate_cmd(
            "--num_processes", "1", "--cpu", "src/open_r1/sft.py", "--config", RECIPE, *_overrides(world, out)
        )
    )
    losses = _losses(out)
    assert losses[-1] < losses[0], losses
    model = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(world.base_model)
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), base.parameters()))
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Tom has 2 cups and gets 3 more."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    assert model.generate(**prompt, max_new_tokens=4).shape[1] > prompt["input_ids"].shape[1]


def _parse(config: dict, tmp_path, *cli):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    parser = TrlParser((ScriptArguments, SFTConfig, ModelConfig))
    return parser.parse_args_and_config(["--config", str(path), *cli])


def _recipe():
    return yaml.safe_load((REPO / RECIPE).read_text())


def test_unknown_recipe_key_is_rejected_by_name(tmp_path):
    with pytest.raises(ValueError, match="ewc_lamda"):
        _parse({**_recipe(), "ewc_lamda": 50.0}, tmp_path)


def test_missing_dataset_path_fails_before_training(world, tmp_path):
    missing = str(tmp_path / "no" / "such" / "dataset")
    args = _parse(_recipe(), tmp_path, *world_args(world, tmp_path / "out"), "--dataset_name", missing)
    with pytest.raises(FileNotFoundError, match="dataset_name.*no/such/dataset"):
        sft.main(*args)
    assert not (tmp_path / "out").exists()


def test_missing_model_path_fails_before_loading(world, tmp_path):
    args = _parse(_recipe(), tmp_path, *world_args(world, tmp_path / "out", model=tmp_path / "nowhere" / "model"))
    with pytest.raises(FileNotFoundError, match="model_name_or_path.*nowhere/model"):
        sft.main(*args)


def test_bad_mixture_entry_names_its_key(tmp_path):
    recipe = {**_recipe(), "dataset_mixture": {"datasets": [{"id": "a", "wieght": 0.5}]}}
    with pytest.raises(ValueError, match=r"dataset_mixture.datasets\[0\].*wieght"):
        _parse(recipe, tmp_path)


def test_several_evaluation_splits_and_a_named_retain_column(world, tmp_path):
    """The fork's `dataset_eval_splits` evaluates each split under its own name, and `retain_dataset_column` reads
    the retain chats from another column (replay on)."""
    from datasets import load_from_disk

    retain = load_from_disk(str(world.retain))["train"].rename_column("messages", "chat")
    retain.save_to_disk(str(tmp_path / "retain"))
    overrides = [*world_args(world, tmp_path / "out"), "--max_steps", "2", "--eval_strategy", "steps"]
    overrides += ["--eval_steps", "2", "--dataset_eval_splits", "test", "train", "--save_strategy", "no"]
    overrides += ["--replay_ratio", "0.1", "--retain_dataset_id", str(tmp_path / "retain")]
    overrides += ["--retain_dataset_column", "chat", "--per_device_eval_batch_size", "64"]
    sft.main(*_parse(_recipe(), tmp_path, *overrides))
    history = json.loads((tmp_path / "out" / "trainer_state.json").read_text())["log_history"]
    logged = {key for entry in history for key in entry}
    assert {"eval_test_loss", "eval_train_loss"} <= logged
