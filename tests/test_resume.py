"""Crash-safe resume: a kill at any stage of a checkpoint save never blocks a restart, and damaged checkpoint files
are named before anything is loaded."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from open_r1.utils.checkpoints import checkpoint_problems, newest_complete_checkpoint

from .conftest import REPO, run_cli, world_args


# The tiny EWC recipe with LwF, A-GEM, EMA and WiSE-FT: each keeps state that a resume must restore exactly (the
# place of LwF and A-GEM in their retain batches, LwF's teacher is the start, not the checkpoint; WiSE-FT's start weights: a resumed run that took its checkpoint for the start would
# save other weights).
RUN = [
    "tests/helpers/sft_kill_at.py",
    "--config",
    "recipes/tiny/sft/config_ewc.yaml",
    *("--use_ema", "true", "--ema_eta", "0.9", "--fisher_num_samples", "16", "--max_steps", "6"),
    *("--wise_ft_alpha", "0.5", "--use_agem", "true", "--agem_num_samples", "32"),
    *("--use_retain_distillation", "true", "--distill_num_samples", "32"),
    *("--save_strategy", "steps", "--save_steps", "2", "--save_total_limit", "2", "--logging_steps", "1"),
    *("--disable_tqdm", "true"),
]


def _train(world, out, kill_at=None, extra=()):
    env = {"OPEN_R1_KILL_AT": kill_at} if kill_at else {}
    command = [sys.executable, *RUN, *extra, *world_args(world, out, retain=True)]
    if kill_at is None:
        return run_cli(command, env=env)
    result = subprocess.run(
        command,
        cwd=REPO,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO / "src"), **env},
        capture_output=True,
    )
    assert result.returncode == -9, result.stderr.decode()[-3000:]
    return result


@pytest.fixture(scope="module")
def uninterrupted(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    _train(world, out)
    return out


@pytest.mark.parametrize(
    "stage, step, resumes_from",
    [
        ("model", 4, "checkpoint-2"),
        ("state", 4, "checkpoint-2"),
        ("optimizer", 4, "checkpoint-2"),
        ("trainer_state", 4, "checkpoint-4"),
        ("rotation", 6, "checkpoint-6"),
    ],
)
def test_a_kill_at_any_save_stage_resumes_to_the_uninterrupted_weights(
    world, tmp_path, uninterrupted, stage, step, resumes_from
):
    """Killed (SIGKILL) at each stage of the step's checkpoint save, a plain restart resumes from the newest complete
    checkpoint (an incomplete newer one is reported, not deleted) and ends at the uninterrupted run's weights."""
    out = tmp_path / "run"
    _train(world, out, kill_at=f"{stage}@{step}")
    if resumes_from != f"checkpoint-{step}":
        assert checkpoint_problems(str(out / f"checkpoint-{step}")), "the killed checkpoint must be incomplete"
    assert newest_complete_checkpoint(str(out)) == str(out / resumes_from)
    restart = _train(world, out)
    if resumes_from != f"checkpoint-{step}":
        assert f"Skipping incomplete checkpoint {out / f'checkpoint-{step}'}" in restart.stdout + restart.stderr
    final, reference = load_file(out / "model.safetensors"), load_file(uninterrupted / "model.safetensors")
    for name, value in reference.items():
        torch.testing.assert_close(final[name], value, rtol=0, atol=0)
    assert _logged(out, "num_tokens") == _logged(uninterrupted, "num_tokens")  # the count continues, not from 0
    assert _logged(out, "ewc/penalty") == pytest.approx(_logged(uninterrupted, "ewc/penalty"), rel=1e-6)


def test_a_lora_run_resumes_to_the_uninterrupted_adapter(world, tmp_path):
    """LoRA (TRL's `use_peft`) with the same methods: checkpoints hold the adapter, count as complete, and a run killed
    before its step-4 checkpoint was whole resumes from step 2 to the uninterrupted run's adapter, bit for bit."""
    lora = ("--use_peft", "true", "--lora_r", "4", "--lora_target_modules", "q_proj", "v_proj")
    reference, out = tmp_path / "uninterrupted", tmp_path / "run"
    _train(world, reference, extra=lora)
    _train(world, out, kill_at="optimizer@4", extra=lora)
    assert newest_complete_checkpoint(str(out)) == str(out / "checkpoint-2")
    _train(world, out, extra=lora)
    final, expected = load_file(out / "adapter_model.safetensors"), load_file(reference / "adapter_model.safetensors")
    assert expected and final.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(final[name], value, rtol=0, atol=0)


def _logged(run, key):
    """The value of `key` logged at the last step."""
    history = json.loads((run / "trainer_state.json").read_text())["log_history"]
    return [entry[key] for entry in history if key in entry][-1]


def _copy(checkpoint, tmp_path):
    target = tmp_path / "run" / checkpoint.name
    shutil.copytree(checkpoint, target)
    return target


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "continual_state.pt is truncated"),
        (lambda p: p.write_bytes(b"\x80\x03garbage" * 100), "continual_state.pt is truncated or not a torch.save"),
    ],
    ids=["truncated", "random bytes"],
)
def test_damaged_state_files_are_named_before_loading(uninterrupted, tmp_path, damage, problem):
    from open_r1.configs import SFTConfig
    from open_r1.utils.run_utils import resume_checkpoint

    earlier, latest = _copy(uninterrupted / "checkpoint-4", tmp_path), _copy(uninterrupted / "checkpoint-6", tmp_path)
    damage(latest / "continual_state.pt")
    assert any(problem in p for p in checkpoint_problems(str(latest)))
    args = SFTConfig(output_dir=str(tmp_path / "run"), use_cpu=True, bf16=False, resume_from_checkpoint=str(latest))
    with pytest.raises(ValueError, match=f"{latest}.*{problem}.*earlier complete checkpoint is {earlier}"):
        resume_checkpoint(args)
    args.resume_fallback = True
    assert resume_checkpoint(args) == str(earlier)
    args.resume_from_checkpoint = None  # a plain restart skips the damaged newest one
    assert resume_checkpoint(args) == str(earlier)


def test_a_truncated_model_file_is_named(uninterrupted, tmp_path):
    latest = _copy(uninterrupted / "checkpoint-6", tmp_path)
    weights = latest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    assert any("model.safetensors is truncated" in p for p in checkpoint_problems(str(latest)))
    weights.write_bytes(b"not a safetensors file")
    assert any("model.safetensors is not a readable safetensors file" in p for p in checkpoint_problems(str(latest)))


def test_a_state_without_the_runs_methods_is_named(world, uninterrupted, tmp_path):
    """A readable state file written by a run with other methods stops the resume with the file and what it holds."""
    from .conftest import cpu_sft_args, tiny_trainer

    earlier, latest = _copy(uninterrupted / "checkpoint-4", tmp_path), _copy(uninterrupted / "checkpoint-6", tmp_path)
    torch.save({"trust_region": {"beta": 1.0}}, latest / "continual_state.pt")
    args = cpu_sft_args(tmp_path / "run", use_ema=True)
    trainer = tiny_trainer(world, args)
    with pytest.raises(ValueError, match=rf"continual_state.pt: has no state for \['ema'\].*is {earlier}"):
        trainer.load_checkpoint_state(str(latest))
