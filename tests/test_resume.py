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


def _trainer_state(checkpoint):
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": int(checkpoint.name.split("-")[1])}))


def test_fsdp_sharded_checkpoints_are_complete_and_rotate(tmp_path):
    """FSDP's SHARDED_STATE_DICT (recipes/accelerate_configs/fsdp.yaml) writes `pytorch_model_fsdp_0/`, a distributed
    checkpoint, and no `model.safetensors`: such a checkpoint is complete (it was 'no model weights' for every one, so
    a pre-empted FSDP job restarted at step 0 and `save_total_limit` deleted nothing), a missing or cut-off shard is
    named, and the rotation deletes the older ones (#30 item 2)."""
    import torch.distributed.checkpoint as dcp

    from open_r1.utils.checkpoints import rotate_complete_checkpoints

    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Linear(64, 8))
    for step in (2, 4, 6):
        checkpoint = tmp_path / f"checkpoint-{step}"
        _trainer_state(checkpoint)
        dcp.save(model.state_dict(), checkpoint_id=str(checkpoint / "pytorch_model_fsdp_0"))
        assert checkpoint_problems(str(checkpoint)) == []
    assert newest_complete_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-6")
    rotate_complete_checkpoints(str(tmp_path), 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4", "checkpoint-6"]

    shards = tmp_path / "checkpoint-6" / "pytorch_model_fsdp_0"
    (data,) = shards.glob("*.distcp")
    data.write_bytes(data.read_bytes()[:100])
    assert any(f"pytorch_model_fsdp_0/{data.name} is truncated" in p for p in checkpoint_problems(str(shards.parent)))
    assert newest_complete_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-4")
    data.unlink()
    assert any(f"pytorch_model_fsdp_0/{data.name} is missing" in p for p in checkpoint_problems(str(shards.parent)))
    (shards / ".metadata").unlink()
    assert any("pytorch_model_fsdp_0/.metadata cannot be read" in p for p in checkpoint_problems(str(shards.parent)))


def test_every_shard_of_a_sharded_safetensors_checkpoint_is_checked(world, tmp_path):
    """A large model's checkpoint is `model.safetensors.index.json` and its shards: a missing or truncated shard makes
    the checkpoint incomplete, named (only the index was looked at)."""
    from transformers import AutoModelForCausalLM

    checkpoint = tmp_path / "checkpoint-2"
    _trainer_state(checkpoint)
    AutoModelForCausalLM.from_pretrained(world.base_model).save_pretrained(checkpoint, max_shard_size="200KB")
    shards = sorted(checkpoint.glob("model-*.safetensors"))
    assert len(shards) > 2 and (checkpoint / "model.safetensors.index.json").exists()
    assert checkpoint_problems(str(checkpoint)) == []
    shards[1].write_bytes(shards[1].read_bytes()[:-10])
    assert any(f"{shards[1].name} is truncated" in p for p in checkpoint_problems(str(checkpoint)))
    shards[2].unlink()
    assert any(
        f"{shards[2].name} (listed in model.safetensors.index.json) is missing" in p
        for p in checkpoint_problems(str(checkpoint))
    )


def test_a_restart_skips_a_newest_checkpoint_without_the_methods_states(world, tmp_path, uninterrupted):
    """A newest checkpoint whose `continual_state.pt` is missing is incomplete for a run with methods: a plain restart
    resumes from the one before it and ends at the uninterrupted run's weights (it stopped every restart, naming the
    earlier checkpoint, and `resume_fallback` did not apply on this path) (#30 item 3)."""
    out = tmp_path / "run"
    for step in (4, 6):
        _copy(uninterrupted / f"checkpoint-{step}", tmp_path)
    (out / "checkpoint-6" / "continual_state.pt").unlink()
    restart = _train(world, out)
    assert f"Skipping incomplete checkpoint {out / 'checkpoint-6'}: continual_state.pt is missing" in (
        restart.stdout + restart.stderr
    )
    final, reference = load_file(out / "model.safetensors"), load_file(uninterrupted / "model.safetensors")
    for name, value in reference.items():
        torch.testing.assert_close(final[name], value, rtol=0, atol=0)


def test_checkpoints_of_a_run_without_these_methods_stop_a_restart_by_name(world, tmp_path, uninterrupted):
    """Checkpoints with no state for the run's methods (written by a run without them) stop the restart naming the
    checkpoint and the missing states, instead of a silent start from step 0 over that run."""
    from open_r1.utils.run_utils import resume_checkpoint

    from .conftest import cpu_sft_args, tiny_trainer

    _copy(uninterrupted / "checkpoint-6", tmp_path)
    (tmp_path / "run" / "checkpoint-6" / "continual_state.pt").unlink()
    trainer = tiny_trainer(world, cpu_sft_args(tmp_path / "run", use_ema=True))
    with pytest.raises(ValueError, match=r"none has the states .*checkpoint-6: continual_state.pt is missing"):
        resume_checkpoint(trainer.args, **trainer.checkpoint_requirements())


def test_deepspeed_checkpoints_without_consolidated_weights_are_complete(tmp_path):
    """ZeRO-3 without `zero3_save_16bit_model` writes no model file, only DeepSpeed's `latest` and the model states it
    names: such a checkpoint is complete, a cut-off model-state file is named."""
    checkpoint = tmp_path / "checkpoint-2"
    _trainer_state(checkpoint)
    (checkpoint / "latest").write_text("global_step2")
    (checkpoint / "global_step2").mkdir()
    states = checkpoint / "global_step2" / "zero_pp_rank_0_mp_rank_00_model_states.pt"
    torch.save({"module": {"w": torch.zeros(1000)}}, states)
    assert checkpoint_problems(str(checkpoint)) == []
    states.write_bytes(states.read_bytes()[:200])
    assert any(
        "global_step2/zero_pp_rank_0_mp_rank_00_model_states.pt is truncated" in p
        for p in checkpoint_problems(str(checkpoint))
    )
    (checkpoint / "latest").write_text("global_step9")
    assert any("latest names 'global_step9'" in p for p in checkpoint_problems(str(checkpoint)))
