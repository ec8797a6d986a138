import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM

from open_r1.optims import DAdamW
from open_r1.trainers import ContinualSFTTrainer, SFTTrainerWithDAdamW
from open_r1.utils.run_utils import FINISHED

from .conftest import REPO, aborted_after_its_work, accelerate_cmd, cpu_sft_args, run_cli, tiny_trainer, world_args


def _args(tmp_path, **overrides):
    return cpu_sft_args(tmp_path / "out", **overrides)


def _trainer(world, args, trainer_cls=ContinualSFTTrainer):
    return tiny_trainer(world, args, trainer_cls=trainer_cls)


@pytest.mark.parametrize("trainer_cls, custom_optim", [(ContinualSFTTrainer, "dadamw"), (SFTTrainerWithDAdamW, None)])
def test_dadamw_is_built_with_recipe_settings_groups_and_scheduler(world, tmp_path, trainer_cls, custom_optim):
    args = _args(
        tmp_path,
        custom_optim=custom_optim,
        preconditioner_power=0.75,
        learning_rate=1e-4,
        adam_epsilon=1e-6,
        weight_decay=0.1,
        lr_scheduler_type="linear",
        max_steps=4,
    )
    trainer = _trainer(world, args, trainer_cls)
    trainer.train()
    optimizer = trainer.optimizer.optimizer  # accelerate wraps the optimizer
    assert isinstance(optimizer, DAdamW)
    assert {g["preconditioner_power"] for g in optimizer.param_groups} == {0.75}
    assert {g["eps"] for g in optimizer.param_groups} == {1e-6}
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    no_decay = [names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0.0 for p in g["params"]]
    decay = [names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0.1 for p in g["params"]]
    assert no_decay and all("norm" in n for n in no_decay), no_decay
    assert decay and not any("norm" in n for n in decay)
    # The recipe's linear schedule, not a constant one, drives the learning rate.
    lrs = [e["learning_rate"] for e in trainer.state.log_history if "learning_rate" in e]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > lrs[-1]


def test_no_custom_optim_keeps_the_trainers_own(world, tmp_path):
    trainer = _trainer(world, _args(tmp_path, max_steps=1))
    trainer.train()
    assert not isinstance(trainer.optimizer.optimizer, DAdamW)


def test_unknown_custom_optim_names_the_key(tmp_path):
    with pytest.raises(ValueError, match="custom_optim"):
        _args(tmp_path, custom_optim="adamw2")
    with pytest.raises(ValueError, match="preconditioner_power"):
        _args(tmp_path, preconditioner_power=1.5)


def test_tiny_dadamw_recipe_trains_end_to_end(world, tmp_path):
    recipe = REPO / "recipes/tiny/sft/config_dadamw.yaml"
    assert yaml.safe_load(recipe.read_text())["custom_optim"] == "dadamw"
    out = tmp_path / "dadamw"
    run_cli(
        accelerate_cmd(
            "--num_processes",
            "1",
            "--cpu",
            "src/open_r1/sft.py",
            "--config",
            str(recipe),
            *world_args(world, out),
            "--max_steps",
            "30",
            "--logging_steps",
            "5",
            "--save_strategy",
            "no",
        )
    )
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    assert losses[-1] < 0.5 * losses[0], losses
    AutoModelForCausalLM.from_pretrained(out)


def test_dadamw_and_ewc_under_deepspeed_zero2_match_ddp(world, tmp_path):
    """DeepSpeed takes DAdamW as a client optimizer over its ZeRO-2 partitions; with EWC's penalty the weights after
    4 steps equal those of 2-process DDP."""
    pytest.importorskip("deepspeed")
    import torch

    common = [
        "tests/helpers/sft_dump_rank_weights.py",
        "--config",
        "recipes/tiny/sft/config_ewc.yaml",
        *world_args(world, None, retain=True),
        "--max_steps",
        "4",
        "--save_strategy",
        "no",
        "--per_device_train_batch_size",
        "8",
        "--custom_optim",
        "dadamw",
        "--use_ewc",
        "true",
        "--fisher_num_samples",
        "32",
        "--logging_steps",
        "1",
    ]
    zero2, ddp = tmp_path / "zero2", tmp_path / "ddp"
    # On CPU, DeepSpeed needs use_cpu false and the gloo backend (see tests/helpers/zero2_cpu.yaml).
    run_cli(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            "tests/helpers/zero2_cpu.yaml",
            *common,
            "--output_dir",
            str(zero2),
            "--use_cpu",
            "false",
            "--ddp_backend",
            "gloo",
        ]
    )
    run_cli(accelerate_cmd("--multi_gpu", "--num_processes", "2", *common, "--output_dir", str(ddp)))
    a, b = torch.load(zero2 / "rank0_weights.pt"), torch.load(ddp / "rank0_weights.pt")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    state = json.loads((zero2 / "trainer_state.json").read_text())
    assert [e["ewc/penalty"] for e in state["log_history"] if "ewc/penalty" in e][-1] > 0


def _ewc_comparison_args(world) -> list[str]:
    """The tiny EWC recipe for 4 logged steps at a lambda large enough that EWC visibly moves the weights."""
    return [
        "tests/helpers/sft_dump_rank_weights.py",
        "--config",
        "recipes/tiny/sft/config_ewc.yaml",
        *world_args(world, None, retain=True),
        *("--fisher_num_samples", "16", "--ewc_lambda", "5000"),
        *("--max_steps", "4", "--warmup_steps", "0", "--save_strategy", "no", "--logging_steps", "1"),
    ]


def _ewc_logs(run: Path) -> list[dict]:
    history = json.loads((run / "trainer_state.json").read_text())["log_history"]
    return [{k: v for k, v in e.items() if k.startswith("ewc/")} for e in history if "loss" in e]


def test_ewc_under_deepspeed_zero3_matches_one_process(world, tmp_path):
    """Under ZeRO-3 (2 CPU processes) EWC keeps Fisher and anchors as local partitions and adds its gradient to
    the local gradient partitions: the weights after 4 steps, the Fisher statistics and the penalty equal those of
    one process at the same global batch, while the same run without EWC ends measurably elsewhere."""
    pytest.importorskip("deepspeed")
    import torch

    common = _ewc_comparison_args(world)
    zero3, single, no_ewc = tmp_path / "zero3", tmp_path / "single", tmp_path / "no_ewc"
    command = [
        *accelerate_cmd("--config_file", "tests/helpers/zero3_cpu.yaml"),
        *common,
        *("--per_device_train_batch_size", "8", "--output_dir", str(zero3)),
        *("--use_cpu", "false", "--ddp_backend", "gloo"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    outputs = (zero3 / "rank0_weights.pt", zero3 / "trainer_state.json")  # what is compared below
    if result.returncode != 0 and not aborted_after_its_work(result, *outputs):
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-8000:]}")
    # each rank says it is past the final barrier, which is what tells an exit-time abort from a failure
    assert all(FINISHED.format(rank=rank, world=2) in result.stderr for rank in (0, 1))
    one_process = accelerate_cmd("--num_processes", "1", "--cpu", *common, "--per_device_train_batch_size", "16")
    run_cli([*one_process, "--output_dir", str(single)])
    run_cli([*one_process, "--output_dir", str(no_ewc), "--ewc_lambda", "0"])

    sharded, reference, free = (torch.load(d / "rank0_weights.pt") for d in (zero3, single, no_ewc))
    for name in reference:
        torch.testing.assert_close(sharded[name], reference[name], rtol=1e-5, atol=1e-5)
    assert max((free[n] - reference[n]).abs().max().item() for n in reference) > 1e-3  # EWC moved the weights

    logs = _ewc_logs(zero3)
    assert logs[-1]["ewc/penalty"] > 0
    for got, expected in zip(logs, _ewc_logs(single)):
        assert got.keys() == expected.keys()
        for key in got:
            assert got[key] == pytest.approx(expected[key], rel=1e-4), key


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (CI machines have none)")
def test_ewc_under_the_zero3_recipe_config_on_a_gpu(world, tmp_path):
    """The GPU check: EWC under the accelerate config the recipes use (`recipes/accelerate_configs/zero3.yaml`,
    zero.Init, one GPU) ends at the weights of plain one-GPU training in fp32, and trains in bf16 as the recipes
    do."""
    pytest.importorskip("deepspeed")
    common = [*_ewc_comparison_args(world), "--use_cpu", "false", "--per_device_train_batch_size", "16"]
    zero3, single, bf16 = tmp_path / "zero3", tmp_path / "single", tmp_path / "bf16"
    zero3_launch = ["--config_file", "recipes/accelerate_configs/zero3.yaml", "--num_processes", "1"]
    run_cli([*accelerate_cmd(*zero3_launch), *common, "--output_dir", str(zero3)])
    run_cli([*accelerate_cmd("--num_processes", "1"), *common, "--output_dir", str(single)])
    sharded, reference = (torch.load(d / "rank0_weights.pt") for d in (zero3, single))
    for name in reference:
        torch.testing.assert_close(sharded[name], reference[name], rtol=1e-4, atol=1e-4)
    for got, expected in zip(_ewc_logs(zero3), _ewc_logs(single)):
        assert got == pytest.approx(expected, rel=1e-3)

    # As the recipes run: the config's bf16 mixed precision (not overridden to fp32 here).
    launch = [sys.executable, "-m", "accelerate.commands.launch", *zero3_launch]
    run_cli([*launch, *common, "--bf16", "true", "--output_dir", str(bf16)])
    history = json.loads((bf16 / "trainer_state.json").read_text())["log_history"]
    losses = [e["loss"] for e in history if "loss" in e]
    assert len(losses) == 4 and all(loss == loss and loss < 1e4 for loss in losses)
    assert _ewc_logs(bf16)[-1]["ewc/penalty"] > 0


def test_fisher_preset_is_ewc_with_the_recipes_keys(world, tmp_path):
    """The seed's named `SFTTrainerWithFisher` runs EWC whatever the recipe's `use_ewc`, with the recipe's EWC keys."""
    from open_r1.continual import EWC
    from open_r1.trainers import SFTTrainerWithFisher

    args = cpu_sft_args(tmp_path / "out", retain_dataset_id=str(world.retain), ewc_lambda=7.0, fisher_num_samples=8)
    trainer = tiny_trainer(world, args, trainer_cls=SFTTrainerWithFisher)
    (ewc,) = trainer.continual_methods
    assert isinstance(ewc, EWC) and ewc.config.ewc_lambda == 7.0 and args.use_ewc
