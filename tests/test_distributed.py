"""The conformance matrix: every continual-learning method under every sharding it claims, on 2 CPU processes.

For each method (plain SFT too) and each sharding its class does not list in `unsupported_sharding`, through the real
entry point (`open_r1.sft`, launched by accelerate, gloo):
- the replicas end with identical weights (ZeRO-3: gathered);
- where the method's mathematics makes it defined, they equal one process at the global batch (see ONE_PROCESS);
- a run whose rank 1 dies while the step-4 checkpoint is written (its RNG file half written, rank 0 done) restarts
  from the complete step-2 checkpoint and ends at the uninterrupted run's weights and method states.
Each sharding a method lists is refused at start, before the model loads, naming the method.

FSDP through the Trainer does not run on CPU (accelerate falls back to DDP with `use_cpu`, to independent ranks
without): the FSDP column is the refusals here and the `fully_shard` harness in test_fisher.py (EWC on gradient
shards). CI runs plain SFT and the methods that change the gradients (EWC, LwF, A-GEM, the trust region) under DDP,
EWC and the trust region under ZeRO, and every refusal; `make test-distributed` (OPEN_R1_FULL_MATRIX=1) runs every
cell. ARCHITECTURE.md has the table.
"""

import os
import subprocess

import pytest
import torch
from safetensors.torch import load_file

from open_r1.continual import METHODS

from .conftest import REPO, aborted_after_its_work, accelerate_cmd, world_args


FULL_MATRIX = os.environ.get("OPEN_R1_FULL_MATRIX") == "1"

# method -> (tiny recipe, overrides that keep its retain work small)
RECIPES = {
    "sft": ("config_sft.yaml", ()),
    "replay": ("config_replay.yaml", ()),
    "ewc": ("config_ewc.yaml", ("--fisher_num_samples", "16")),
    "lwf": ("config_lwf.yaml", ("--distill_num_samples", "32", "--distill_batch_size", "4")),
    "agem": ("config_agem.yaml", ("--agem_num_samples", "32", "--agem_retain_batch_size", "4")),
    "trust_region": ("config_trust_region.yaml", ()),
    "ema": ("config_ema.yaml", ()),
    "wise_ft": ("config_wise_ft.yaml", ()),
}
# Methods whose result is a function of the global batch alone, so 2 ranks at batch 4 equal 1 process at batch 8: the
# update loss is a token mean over the global batch (TRL counts the step's tokens over ranks), EWC's Fisher is over
# the whole retain sample, replay only changes the rows, EMA and WiSE-FT are functions of the weights, LwF's and
# A-GEM's retain gradients are token means over every rank's retain rows (the ranks' shares of one seeded order: at
# twice the retain batch, one process takes the same rows). Not the trust region: its KL is each rank's token mean
# over its own micro-batch, averaged over ranks by DDP, another estimator than one token mean over the global batch.
ONE_PROCESS = {"sft", "replay", "ewc", "ema", "wise_ft", "lwf", "agem"}
# What one process needs to take the rows both ranks take.
GLOBAL_RETAIN_BATCH = {"lwf": ("--distill_batch_size", "8"), "agem": ("--agem_retain_batch_size", "8")}
# The cells CI runs: plain SFT and the methods that change the gradients, under DDP, and those that support ZeRO under
# ZeRO-2 and ZeRO-3. Replay (data only), EMA and WiSE-FT (functions of the weights) run in the full matrix.
CI_DDP = {"sft", "ewc", "lwf", "agem", "trust_region"}
CI_SHARDED = {"ewc", "trust_region"}

SHARDINGS = {
    "DDP": ["--multi_gpu", "--num_processes", "2"],
    "ZeRO-1/2": ["--config_file", "tests/helpers/zero2_cpu.yaml"],
    "ZeRO-3": ["--config_file", "tests/helpers/zero3_cpu.yaml"],
}
# On CPU DeepSpeed needs the training args below (tests/helpers/zero*_cpu.yaml say why).
DEEPSPEED_ARGS = ("--use_cpu", "false", "--ddp_backend", "gloo")
FSDP_CONFIG = "tests/helpers/fsdp_cpu.yaml"


def _unsupported(method: str) -> tuple[str, ...]:
    return next((m.unsupported_sharding for m in METHODS if m.name == method), ())


def _cells():
    for method in RECIPES:
        for sharding in SHARDINGS:
            if sharding in _unsupported(method):
                continue
            in_ci = method in (CI_DDP if sharding == "DDP" else CI_SHARDED)
            marks = () if in_ci or FULL_MATRIX else pytest.mark.skip(reason="the full matrix: make test-distributed")
            yield pytest.param(method, sharding, id=f"{method}-{sharding}", marks=marks)


def _run(world, method, out, launch, *extra, kill_at=None, check=True):
    recipe, overrides = RECIPES[method]
    command = [
        *accelerate_cmd(*launch),
        "tests/helpers/sft_dump_rank_weights.py",
        "--config",
        f"recipes/tiny/sft/{recipe}",
        *world_args(world, out, retain=True),
        *overrides,
        *("--max_steps", "4", "--warmup_steps", "0", "--logging_steps", "1", "--learning_rate", "3e-3"),
        *("--save_strategy", "steps", "--save_steps", "2", "--save_total_limit", "2", "--disable_tqdm", "true"),
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **({"OPEN_R1_KILL_AT": kill_at} if kill_at else {})}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if kill_at is not None:
        assert result.returncode != 0, "the run was to be killed"
    elif result.returncode != 0 and not aborted_after_its_work(
        result, out / "model.safetensors", *(out / f"rank{r}_state.pt" for r in (0, 1))
    ):
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-8000:]}")
    return result


def _base_weights(world, tmp_path):
    from transformers import AutoModelForCausalLM

    path = tmp_path / "base_weights.pt"
    model = AutoModelForCausalLM.from_pretrained(world.base_model)
    torch.save({name: p.detach() for name, p in model.named_parameters()}, path)
    return path


def _ranks(out):
    return [
        (torch.load(out / f"rank{r}_weights.pt"), torch.load(out / f"rank{r}_state.pt", weights_only=False))
        for r in (0, 1)
    ]


# Reduction noise relative to the update, ‖two processes - one process‖ / ‖one process - base‖ over all weights:
# 3e-7 (EWC, A-GEM DDP) to 2.6e-6 (EWC ZeRO-3) measured; an averaging error of 1% would be 1e-2.
UPDATE_NOISE = 1e-4


def _assert_same(a, b, atol, what):
    assert a.keys() == b.keys(), what
    for name in a:
        gap = (a[name].float() - b[name].float()).abs().max().item()
        torch.testing.assert_close(
            a[name],
            b[name],
            rtol=0 if atol == 0 else 1e-5,
            atol=atol,
            msg=f"{what}: {name}: max |difference| {gap:.3g}",
        )


@pytest.mark.parametrize("method, sharding", list(_cells()))
def test_method_is_correct_on_two_processes(world, tmp_path, method, sharding):
    launch = SHARDINGS[sharding]
    extra = ("--per_device_train_batch_size", "4", *(DEEPSPEED_ARGS if sharding != "DDP" else ()))
    full, killed = tmp_path / "full", tmp_path / "killed"
    _run(world, method, full, launch, *extra)
    (w0, s0), (w1, s1) = _ranks(full)
    # Replicas: bit-identical under DDP; under ZeRO each rank steps its own partition, gathered here.
    _assert_same(w0, w1, 0.0 if sharding == "DDP" else 1e-7, f"{method} under {sharding}: rank 1 drifted from rank 0")
    base = torch.load(_base_weights(world, tmp_path))
    assert max((w0[n] - base[n]).abs().max().item() for n in base) > 1e-3, "training did not move the weights"

    if method in ONE_PROCESS:
        single = tmp_path / "single"
        one_process = ["--num_processes", "1", "--cpu"]
        _run(
            world,
            method,
            single,
            one_process,
            "--per_device_train_batch_size",
            "8",
            *GLOBAL_RETAIN_BATCH.get(method, ()),
        )
        # The saved models, what a user gets (under ZeRO-3, gathered from the partitions: a test's own gather of the
        # module sees small "persistent" parameters as the last step left them, before the EMA or WiSE-FT acted).
        # Another reduction order than one process's sum: float noise, which Adam's normalised steps carry into the
        # weights of rarely-trained coordinates. Largest seen on the world with instruction rows: 1.7e-6 (LwF, DDP),
        # 1.5e-5 (EWC, ZeRO-3); the relative check below is the one a wrong average cannot pass.
        atol = 1e-5 if sharding == "DDP" else 5e-5
        saved, reference = (load_file(run / "model.safetensors") for run in (full, single))
        # DeepSpeed's ZeRO-1/2 save writes the tied output embedding as a tensor of its own: compare what both hold.
        assert reference.keys() <= saved.keys() and saved.keys() - reference.keys() <= {"lm_head.weight"}
        saved = {name: saved[name] for name in reference}
        _assert_same(saved, reference, atol, f"{method} under {sharding} vs one process at the global batch")
        # And the whole update: an averaging error of a few percent, which the elementwise tolerance could let through
        # in weights that moved little, moves the update by that share.
        gap = sum(((saved[n] - reference[n]).float() ** 2).sum() for n in base if n in reference) ** 0.5
        update = sum(((reference[n] - base[n]).float() ** 2).sum() for n in base if n in reference) ** 0.5
        assert gap / update < UPDATE_NOISE, f"{method} under {sharding}: the update differs by {gap / update:.3g}"

    # Rank 1 dies inside the step-4 checkpoint's save; the restart resumes from checkpoint-2.
    killed_run = _run(world, method, killed, launch, *extra, kill_at="rng@4")
    assert not (killed / "checkpoint-4" / "trainer_state.json").exists(), (
        "rank 0 wrote trainer_state.json while rank 1 had not finished its RNG file:\n" + killed_run.stderr[-3000:]
    )
    restart = _run(world, method, killed, launch, *extra)
    assert f"Skipping incomplete checkpoint {killed / 'checkpoint-4'}" in restart.stdout + restart.stderr
    saved, reference = (load_file(run / "model.safetensors") for run in (killed, full))
    _assert_same(saved, reference, 1e-6, f"{method} under {sharding}, the resumed run's saved model")
    for rank, (weights, state) in enumerate(_ranks(killed)):
        reference_weights, reference_state = _ranks(full)[rank]
        _assert_same(weights, reference_weights, 1e-6, f"{method} under {sharding}, rank {rank}, resumed")
        assert state["methods"].keys() == reference_state["methods"].keys()
        for name, method_state in state["methods"].items():
            _assert_states_close(method_state, reference_state["methods"][name], f"{name} state, rank {rank}")


def _assert_states_close(got, expected, what):
    if isinstance(expected, torch.Tensor):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6, msg=what)
    elif isinstance(expected, dict):
        assert got.keys() == expected.keys(), what
        for key in expected:
            _assert_states_close(got[key], expected[key], f"{what}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), what
        for i, (a, b) in enumerate(zip(got, expected)):
            _assert_states_close(a, b, f"{what}[{i}]")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-5), what
    else:
        assert got == expected, what


REFUSED = [
    pytest.param(method, sharding, id=f"{method}-{sharding}")
    for method in RECIPES
    for sharding in (*SHARDINGS, "FSDP")
    if sharding in _unsupported(method)
]


@pytest.mark.parametrize("method, sharding", REFUSED)
def test_an_unsupported_sharding_is_refused_before_the_model_loads(world, tmp_path, method, sharding):
    launch = ["--config_file", FSDP_CONFIG] if sharding == "FSDP" else SHARDINGS[sharding]
    recipe, overrides = RECIPES[method]
    command = [
        *accelerate_cmd(*launch),
        "src/open_r1/sft.py",
        "--config",
        f"recipes/tiny/sft/{recipe}",
        *world_args(world, tmp_path / "out", retain=True),
        *DEEPSPEED_ARGS,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert f"`{method}` (runs under" in result.stderr and f"do not support {sharding}" in result.stderr
    assert "Loading weights" not in result.stderr + result.stdout  # refused before the model loads
