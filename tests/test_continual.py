import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from datasets import Dataset, load_from_disk
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import ModelConfig, TrlParser

from open_r1 import sft
from open_r1.configs import ScriptArguments, SFTConfig
from open_r1.continual import EMA, TrustRegion, mix_replay
from open_r1.continual.trust_region import adapt_beta, frozen_copy, kl_ref_to_policy
from open_r1.trainers import ContinualSFTTrainer

from .conftest import REPO, accelerate_cmd, cpu_sft_args, run_cli, tiny_trainer, world_args


def _toy(n, tag):
    return Dataset.from_dict({"messages": [f"{tag}{i}" for i in range(n)], "extra": list(range(n))})


@pytest.mark.parametrize("mode, n_update, n_retain", [("replace", 80, 20), ("add", 100, 25)])
def test_replay_ratio_is_exact_and_deterministic(mode, n_update, n_retain):
    update, retain = _toy(100, "u"), _toy(500, "r")
    mixed = mix_replay(update, retain, 0.2, seed=3, mode=mode)
    rows = list(mixed["messages"])
    assert sum(r.startswith("u") for r in rows) == n_update and sum(r.startswith("r") for r in rows) == n_retain
    assert len(set(rows)) == len(rows)
    assert rows == list(mix_replay(update, retain, 0.2, seed=3, mode=mode)["messages"])
    assert rows != list(mix_replay(update, retain, 0.2, seed=4, mode=mode)["messages"])


@pytest.mark.parametrize("fraction, n_harmful", [(0.5, 10), (0.25, 5), (1.0, 20), (0.0, 0)])
def test_balanced_replay_draws_the_chosen_share_of_harmful_rows(fraction, n_harmful):
    """20 replayed rows out of a retain set that is 2:1 harmful: exactly round(fraction x 20) harmful requests and
    the rest benign, distinct, the same for the same seed."""
    update = _toy(100, "u")
    retain = Dataset.from_dict(
        {
            "messages": [f"h{i}" for i in range(200)] + [f"b{i}" for i in range(100)],
            "kind": ["harmful"] * 200 + ["benign"] * 100,
        }
    )
    mixed = list(mix_replay(update, retain, 0.2, seed=3, harmful_fraction=fraction)["messages"])
    assert (
        sum(r.startswith("h") for r in mixed) == n_harmful and sum(r.startswith("b") for r in mixed) == 20 - n_harmful
    )
    assert sum(r.startswith("u") for r in mixed) == 80 and len(set(mixed)) == 100
    assert mixed == list(mix_replay(update, retain, 0.2, seed=3, harmful_fraction=fraction)["messages"])


def test_replay_errors_name_the_problem(tmp_path):
    retain = Dataset.from_dict({"messages": ["h0", "b0", "b1"], "kind": ["harmful", "benign", "benign"]})
    with pytest.raises(ValueError, match="needs 2 harmful retain rows .* has 1"):
        mix_replay(_toy(12, "u"), retain, 0.25, seed=0, harmful_fraction=0.7)
    with pytest.raises(ValueError, match="`replay_harm_column` 'label'"):
        mix_replay(_toy(12, "u"), retain, 0.25, seed=0, harmful_fraction=0.5, harm_column="label")
    with pytest.raises(ValueError, match="`replay_harmful_fraction` must be in"):
        _sft_args(tmp_path, replay_ratio=0.1, replay_harmful_fraction=1.5, retain_dataset_id="x/y")
    with pytest.raises(ValueError, match="set `replay_ratio` > 0"):
        _sft_args(tmp_path, replay_harmful_fraction=0.5)
    with pytest.raises(ValueError, match="needs 25 retain rows"):
        mix_replay(_toy(100, "u"), _toy(10, "r"), 0.2, seed=0, mode="add")
    with pytest.raises(ValueError, match="replay_mode"):
        _sft_args(tmp_path, replay_mode="mix")


def _sft_args(tmp_path, **overrides):
    return cpu_sft_args(tmp_path / "out", **{"per_device_train_batch_size": 4, "learning_rate": 1e-3, **overrides})


def _trainer(world, args, n_rows=32):
    return tiny_trainer(world, args, n_rows=n_rows)


def _batch(trainer, n=4):
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(n)])
    return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}


def test_dft_loss_is_the_probability_weighted_nll(world, tmp_path):
    """TRL's `loss_type: dft` is DFT exactly: mean over trained tokens of -sg(p) * log p (Wu et al. 2025)."""
    trainer = _trainer(world, _sft_args(tmp_path, loss_type="dft"))
    inputs = _batch(trainer)
    trainer.model.eval()  # compute_loss's metrics bookkeeping is for training; the loss value is the same
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, dict(inputs))
    with torch.no_grad():
        logits = trainer.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    labels = inputs["labels"][:, 1:]
    mask = labels != -100
    logp = torch.log_softmax(logits[:, :-1].double(), -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    by_hand = (-(logp.exp() * logp))[mask].sum() / mask.sum()
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)


@pytest.mark.parametrize("bias_dtype", [torch.float32, torch.bfloat16])
def test_ema_follows_its_formula_on_a_toy_model(bias_dtype):
    """The shadow follows eta * shadow + (1 - eta) * theta: fp32 parameters through the multi-tensor path, a bf16
    one (when there is one) one parameter at a time beside them; the logged distance is |theta - shadow|."""

    class Toy(torch.nn.Linear):
        def forward(self, x):
            return torch.nn.functional.linear(x, self.weight, self.bias.float())

    model = Toy(3, 2)
    model.bias.data = model.bias.data.to(bias_dtype)
    trainer = SimpleNamespace(model=model, args=SimpleNamespace(load_best_model_at_end=False))
    ema = EMA(eta=0.6)
    ema.setup(trainer)
    expected = {n: p.detach().to(torch.float32, copy=True) for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(5):
        model(torch.full((4, 3), 0.1 * (step + 1))).pow(2).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        ema.metrics()  # the distance of this step alone below
        ema.on_step_end(trainer)
        for n, p in model.named_parameters():
            expected[n] = 0.6 * expected[n] + 0.4 * p.detach().float()
    for n in expected:
        torch.testing.assert_close(ema.shadow[n], expected[n], rtol=1e-6, atol=1e-7)
    distance = sum((p.detach().float() - ema.shadow[n]).pow(2).sum() for n, p in model.named_parameters()).sqrt()
    assert ema.metrics()["distance"] == pytest.approx(distance.item(), rel=1e-5)
    restored = EMA(eta=0.6)
    restored.setup(trainer)
    restored.load_state_dict(copy.deepcopy(ema.state_dict()))
    ema.on_train_end(trainer)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[n].to(p.dtype), rtol=1e-6, atol=1e-7)
        assert torch.equal(restored.shadow[n], ema.shadow[n])


def test_trust_region_kl_is_zero_at_start_and_its_gradient_matches_finite_differences(world, tmp_path):
    trainer = _trainer(world, _sft_args(tmp_path, use_trust_region=True, trust_region_beta=1.0))
    method = trainer.continual_methods[0]
    assert isinstance(method, TrustRegion)
    method.setup(trainer)
    inputs = _batch(trainer)
    model = trainer.model.double()
    method.ref_model.double()

    def penalty():
        captured = {}
        handle = model.get_decoder().register_forward_hook(
            lambda m, a, o: captured.__setitem__("h", o.last_hidden_state)
        )
        model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        handle.remove()
        return method.loss_term(trainer, model, inputs, captured["h"])

    assert penalty().item() == pytest.approx(0.0, abs=1e-12)
    # Move away from the reference, then compare autograd with central differences on a few coordinates.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    value = penalty()
    assert value.item() > 0
    # Directional derivatives: Llama's RMSNorm computes in fp32 even in a float64 model, so single-coordinate
    # differences drown in rounding; a random direction over a whole matrix gives a signal well above it.
    gen = torch.Generator().manual_seed(1)
    for weight in (model.model.layers[0].mlp.down_proj.weight, model.model.layers[-1].self_attn.q_proj.weight):
        (grad,) = torch.autograd.grad(value, weight, retain_graph=True)
        direction = torch.randn(weight.shape, generator=gen, dtype=weight.dtype)
        with torch.no_grad():
            weight.add_(1e-4 * direction)
            plus = penalty().item()
            weight.sub_(2e-4 * direction)
            minus = penalty().item()
            weight.add_(1e-4 * direction)
        assert (grad * direction).sum().item() == pytest.approx((plus - minus) / 2e-4, rel=1e-3)


def test_reference_copy_is_independent_of_the_patched_policy(world, tmp_path):
    trainer = _trainer(world, _sft_args(tmp_path))
    assert "forward" in vars(trainer.model), "TRL no longer patches forward on the instance; frozen_copy can simplify"
    ref = frozen_copy(trainer.model)
    ids = torch.tensor([[5, 6, 7, 8]])
    before = ref(input_ids=ids).logits
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(0.05)
    torch.testing.assert_close(ref(input_ids=ids).logits, before)


def test_kl_and_adaptive_coefficient():
    ref = torch.tensor([[2.0, 0.0, -1.0]])
    assert kl_ref_to_policy(ref, ref).item() == pytest.approx(0.0, abs=1e-7)
    p, q = torch.softmax(ref, -1), torch.softmax(torch.tensor([[0.0, 1.0, 0.0]]), -1)
    assert kl_ref_to_policy(ref, torch.tensor([[0.0, 1.0, 0.0]])).item() == pytest.approx(
        (p * (p.log() - q.log())).sum().item(), rel=1e-6
    )
    assert adapt_beta(0.1, kl=1.0, delta=0.5) == 0.2  # above 1.5 * delta: tighten
    assert adapt_beta(0.1, kl=0.1, delta=0.5) == 0.05  # below delta / 1.5: loosen
    assert adapt_beta(0.1, kl=0.5, delta=0.5) == 0.1


def test_penalty_acts_once_per_optimizer_step(world, tmp_path):
    """TRL normalises its loss over the whole accumulated step, so a per-micro-batch term is divided here."""
    trainer = _trainer(world, _sft_args(tmp_path, gradient_accumulation_steps=4, use_trust_region=True))
    trainer.current_gradient_accumulation_steps = 4
    assert trainer._once_per_step_scale(num_items_in_batch=torch.tensor(100)) == 0.25


def _parse_recipe(recipe: Path, world, output_dir: Path, *extra: str):
    parser = TrlParser((ScriptArguments, SFTConfig, ModelConfig))
    retain = "retain_dataset_id" in yaml.safe_load(recipe.read_text())
    extra = ("--disable_tqdm", "true", *extra)
    return parser.parse_args_and_config(
        ["--config", str(recipe), *world_args(world, output_dir, *extra, retain=retain)]
    )


def test_ewc_gradient_is_added_once_per_optimizer_step(world, tmp_path):
    """EWC adds its gradient after the backward of the micro-batch that synchronises: two accumulated micro-batches
    of 8 end at the weights of one batch of 16, while the same run without the penalty ends measurably elsewhere."""
    recipe = REPO / "recipes/tiny/sft/config_ewc.yaml"
    common = ("--max_steps", "3", "--warmup_steps", "0", "--save_strategy", "no", "--fisher_num_samples", "16")
    runs = {
        "accumulated": (
            "--ewc_lambda",
            "5000",
            "--per_device_train_batch_size",
            "8",
            "--gradient_accumulation_steps",
            "2",
        ),
        "one_batch": ("--ewc_lambda", "5000", "--per_device_train_batch_size", "16"),
        "no_penalty": ("--ewc_lambda", "0", "--per_device_train_batch_size", "16"),
    }
    weights = {}
    for name, extra in runs.items():
        sft.main(*_parse_recipe(recipe, world, tmp_path / name, *common, *extra))
        weights[name] = load_file(tmp_path / name / "model.safetensors")
    for key, value in weights["one_batch"].items():
        torch.testing.assert_close(weights["accumulated"][key], value, rtol=1e-5, atol=1e-5)
    drift = max((weights["no_penalty"][k] - v).abs().max().item() for k, v in weights["one_batch"].items())
    assert drift > 1e-3


def test_resume_restores_weights_and_method_state(world, tmp_path):
    """EWC + replay + EMA + trust region: stopped at step 4 and resumed == run straight through (to 1e-6)."""
    recipe = REPO / "recipes/tiny/sft/config_combined.yaml"
    common = [
        "--max_steps",
        "8",
        "--save_strategy",
        "steps",
        "--save_steps",
        "4",
        "--save_total_limit",
        "5",
        "--logging_steps",
        "1",
        "--trust_region_delta",
        "0.5",
    ]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    sft.main(*_parse_recipe(recipe, world, straight, *common))
    sft.main(
        *_parse_recipe(recipe, world, resumed, *common, "--resume_from_checkpoint", str(straight / "checkpoint-4"))
    )
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6)
    state_a = torch.load(straight / "checkpoint-8" / "continual_state.pt", weights_only=False)
    state_b = torch.load(resumed / "checkpoint-8" / "continual_state.pt", weights_only=False)
    assert state_a["trust_region"]["beta"] == state_b["trust_region"]["beta"]
    # intervals of 0.5 over 8 steps: the Fisher is computed at the start and recomputed after step 4, once.
    assert state_a["ewc"]["computed_at_steps"] == state_b["ewc"]["computed_at_steps"] == [0, 4]
    for name, fisher in state_a["ewc"]["fisher"].items():
        torch.testing.assert_close(fisher, state_b["ewc"]["fisher"][name], rtol=1e-5, atol=1e-8)
    for name, shadow in state_a["ema"]["shadow"].items():
        torch.testing.assert_close(shadow, state_b["ema"]["shadow"][name], rtol=0, atol=1e-6)
    # The EMA, not the last iterate, is what was saved.
    checkpoint_weights = load_file(straight / "checkpoint-8" / "model.safetensors")
    assert any(not torch.equal(a[n], checkpoint_weights[n]) for n in a)


@pytest.mark.parametrize("recipe", sorted((REPO / "recipes/tiny/sft").glob("config_*.yaml")), ids=lambda p: p.stem)
def test_every_tiny_sft_recipe_runs(recipe, world, tmp_path):
    out = tmp_path / recipe.stem
    sft.main(*_parse_recipe(recipe, world, out, "--max_steps", "6", "--save_strategy", "no", "--logging_steps", "2"))
    assert (out / "model.safetensors").exists()
    AutoModelForCausalLM.from_pretrained(out)


def test_trust_region_beta_is_the_same_on_every_rank_and_resumes_exactly(world, tmp_path):
    """Under 2-process DDP both ranks adapt beta from the step's KL averaged over both ranks, log that KL, and a run
    resumed from a mid-run checkpoint ends where the uninterrupted one does (review item 4: each rank adapted its own
    beta from its own micro-batches, and only rank 0's was saved). At delta 4.75 the two ranks' own KLs at step 3
    (~7.11 and ~7.17) fall on either side of 1.5 * delta."""
    import shutil

    def run(out):
        run_cli(
            accelerate_cmd(
                "--multi_gpu",
                "--num_processes",
                "2",
                "tests/helpers/sft_dump_rank_weights.py",
                "--config",
                "recipes/tiny/sft/config_trust_region.yaml",
                *world_args(world, out),
                "--max_steps",
                "6",
                "--logging_steps",
                "1",
                "--save_strategy",
                "steps",
                "--save_steps",
                "3",
                "--save_total_limit",
                "2",
                "--per_device_train_batch_size",
                "4",
                "--learning_rate",
                "3e-3",
                "--trust_region_delta",
                "4.75",
            )
        )
        return [torch.load(out / f"rank{r}_state.pt", weights_only=False) for r in (0, 1)]

    full, resumed = tmp_path / "full", tmp_path / "resumed"
    ranks = run(full)
    history = [
        [(e["trust_region/kl"], e["trust_region/beta"]) for e in rank["log_history"] if "trust_region/kl" in e]
        for rank in ranks
    ]
    assert len(history[0]) == 6 and history[0] == history[1]
    assert len({beta for _, beta in history[0]}) > 1  # beta did adapt
    resumed.mkdir()
    shutil.copytree(full / "checkpoint-3", resumed / "checkpoint-3")
    ranks_resumed = run(resumed)
    for rank in (0, 1):
        assert ranks_resumed[rank]["methods"] == ranks[rank]["methods"]
    weights, weights_resumed = torch.load(full / "rank0_weights.pt"), torch.load(resumed / "rank0_weights.pt")
    for name in weights:
        torch.testing.assert_close(weights_resumed[name], weights[name], rtol=0, atol=1e-6)


def test_trust_region_kl_keeps_its_gradient_when_the_loss_runs_a_second_forward(world, tmp_path):
    """With label smoothing TRL computes the loss from one forward and runs a second one under no_grad for its
    metrics; the KL must come from the first, so that its gradient reaches every layer, not just the output
    embedding (review item 6)."""
    trainer = _trainer(
        world, _sft_args(tmp_path, use_trust_region=True, trust_region_beta=1.0, label_smoothing_factor=0.1)
    )
    method = trainer.continual_methods[0]
    method.setup(trainer)
    inputs = _batch(trainer)
    model = trainer.model.train()  # the methods act on training losses only
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    weight = model.model.layers[0].mlp.down_proj.weight

    def gradient(methods):
        trainer.continual_methods = methods
        (grad,) = torch.autograd.grad(trainer.compute_loss(model, dict(inputs)), weight)
        return grad

    kl_gradient = gradient([method]) - gradient([])
    logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits[:, :-1]
    with torch.no_grad():
        ref_logits = method.ref_model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    mask = inputs["labels"][:, 1:] != -100
    (expected,) = torch.autograd.grad(kl_ref_to_policy(ref_logits[:, :-1][mask], logits[mask]), weight)
    assert expected.abs().max() > 0
    # float32 rounding, relative to the gradient's scale (one element of 49152 was 2e-7 off on the world split by task)
    torch.testing.assert_close(kl_gradient, expected, rtol=1e-3, atol=1e-5 * expected.abs().max().item())


def _chats(prefix, n, **columns):
    rows = [
        {"messages": [{"role": "user", "content": f"{prefix} {i}"}, {"role": "assistant", "content": "ok"}]}
        for i in range(n)
    ]
    return Dataset.from_list([{**row, **{k: v(i) for k, v in columns.items()}} for i, row in enumerate(rows)])


def test_replay_mixes_on_messages_with_the_retain_rows_formatted_as_the_update_rows(tmp_path):
    """The 8B replay recipes mix OpenR1-Math (problem, solution, messages, ...) with wildguardmix (messages, labels):
    replay mixes on `messages` only, and the retain rows (replayed and Fisher alike) get the recipe's system prompt as
    the update rows do (review item 9)."""
    from open_r1.continual.retain_data import get_retain_dataset

    update = _chats("solve", 20, problem=str, solution=lambda i: str(i % 7))
    retain = _chats("refuse", 20, prompt_harm_label=lambda i: "harmful")
    retain.save_to_disk(str(tmp_path / "retain"))
    args = _sft_args(tmp_path, retain_dataset_id=str(tmp_path / "retain"), replay_ratio=0.25, system_prompt="Be safe.")
    loaded = get_retain_dataset(args)
    assert all(row["messages"][0] == {"role": "system", "content": "Be safe."} for row in loaded)
    mixed = mix_replay(update, loaded, 0.25, seed=0)
    assert mixed.column_names == ["messages", "replayed"] and len(mixed) == 20 and sum(mixed["replayed"]) == 5
    assert sum(row["messages"][0]["role"] == "system" for row in mixed) == 5
    with pytest.raises(ValueError, match="`messages`.*retain"):
        mix_replay(update, retain.remove_columns("messages"), 0.25, seed=0)


def _weights(path):
    return dict(AutoModelForCausalLM.from_pretrained(path).named_parameters())


def _ema_trainer(world, tmp_path, **overrides):
    from datasets import load_from_disk

    args = _sft_args(
        tmp_path,
        use_ema=True,
        ema_eta=0.9,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        max_steps=4,
        per_device_eval_batch_size=8,
        **overrides,
    )
    update = load_from_disk(str(world.update)).select_columns(["messages"])
    return ContinualSFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(world.base_model),
        args=args,
        train_dataset=update["train"].select(range(32)),
        eval_dataset=update["test"].select(range(16)),
        processing_class=AutoTokenizer.from_pretrained(world.base_model),
    )


def test_ema_is_what_evaluations_checkpoints_and_pushes_see(world, tmp_path, monkeypatch):
    """Every evaluation runs on the EMA, every checkpoint holds the EMA as a model (`ema/`, pushed by
    `push_to_hub_revision`) beside the raw weights it resumes from (review item 11)."""
    from open_r1.callbacks import PushToHubRevisionCallback

    trainer = _ema_trainer(world, tmp_path)
    trainer.train()
    out = tmp_path / "out"
    logged = {e["step"]: e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e}
    final = dict(trainer.model.named_parameters())  # the EMA after step 4, copied in at the end
    ema4, raw4 = _weights(out / "checkpoint-4" / "ema"), _weights(out / "checkpoint-4")
    for name, value in final.items():
        torch.testing.assert_close(ema4[name], value.detach())
    assert any(not torch.allclose(raw4[n], final[n].detach()) for n in final), "checkpoints keep the raw weights"
    assert trainer.evaluate()["eval_loss"] == pytest.approx(logged[4], rel=1e-6)  # step 4's evaluation saw the EMA

    pushed = {}
    monkeypatch.setattr("huggingface_hub.create_branch", lambda **kwargs: None)
    monkeypatch.setattr("huggingface_hub.upload_folder", lambda **kwargs: pushed.update(kwargs))
    trainer.args.hub_model_id, trainer.args.benchmarks = "org/model", []
    trainer.state.global_step = 4
    PushToHubRevisionCallback(None).on_save(trainer.args, trainer.state, None)
    assert pushed["folder_path"] == f"{out}/checkpoint-4/ema"


def test_ema_with_load_best_model_at_end_is_the_best_checkpoints_ema(world, tmp_path):
    """With `load_best_model_at_end` the final model is the EMA of the checkpoint the EMA's evaluations ranked best,
    not the last EMA written over it (review item 11). Ranking by the highest loss makes step 2 the best."""
    trainer = _ema_trainer(
        world, tmp_path, load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=True
    )
    trainer.train()
    best = trainer.state.best_model_checkpoint
    assert best.endswith("checkpoint-2")
    ema_best, ema_last = _weights(f"{best}/ema"), _weights(tmp_path / "out" / "checkpoint-4" / "ema")
    final = dict(trainer.model.named_parameters())
    for name, value in final.items():
        torch.testing.assert_close(value.detach(), ema_best[name])
    assert any(not torch.allclose(ema_last[n], final[n].detach()) for n in final)


def test_ema_refuses_hub_pushes_of_raw_checkpoints(tmp_path):
    with pytest.raises(ValueError, match="hub_strategy"):
        _sft_args(tmp_path, use_ema=True, push_to_hub=True, hub_model_id="org/model")
    _sft_args(tmp_path, use_ema=True, push_to_hub=True, hub_model_id="org/model", hub_strategy="end")


@pytest.mark.parametrize("with_ewc", [False, True])
def test_wise_ft_saves_the_interpolation_of_the_start_and_the_trained_weights(world, tmp_path, with_ewc):
    """With `wise_ft_alpha` the saved model is (1 - alpha) * start + alpha * the weights the same run reaches
    without it (alone, and composed with EWC), and `interpolate_models` forms that model from the two checkpoints
    with no training (how the comparison scores a grid of alphas)."""
    from transformers import AutoModelForCausalLM

    from open_r1.continual.wise_ft import interpolate_models

    ewc = {"use_ewc": True, "ewc_lambda": 50.0, "retain_dataset_id": str(world.retain), "fisher_num_samples": 8}
    runs = {}
    for name, alpha in (("trained", None), ("wise", 0.25)):
        args = cpu_sft_args(
            tmp_path / name, max_steps=3, learning_rate=3e-3, wise_ft_alpha=alpha, **(ewc if with_ewc else {})
        )
        trainer = tiny_trainer(world, args)
        trainer.train()
        trainer.save_model()
        runs[name] = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    start = dict(AutoModelForCausalLM.from_pretrained(world.base_model).named_parameters())
    moved = max((runs["trained"][n] - start[n]).abs().max().item() for n in start)
    assert moved > 1e-3  # training moved the weights, so the interpolation is not trivially the start
    for name, trained in runs["trained"].items():
        expected = 0.75 * start[name].detach() + 0.25 * trained
        torch.testing.assert_close(runs["wise"][name], expected, rtol=1e-6, atol=1e-7)
    offline = dict(interpolate_models(world.base_model, tmp_path / "trained", 0.25).named_parameters())
    saved = dict(AutoModelForCausalLM.from_pretrained(tmp_path / "wise").named_parameters())
    for name, value in saved.items():
        torch.testing.assert_close(offline[name], value, rtol=0, atol=0)


def _lora_trainer(world, args, lora=None):
    from peft import LoraConfig

    lora = lora or LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    train = load_from_disk(str(world.update))["train"].select(range(32)).select_columns(["messages"])
    return ContinualSFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(world.base_model),
        args=args,
        train_dataset=train,
        processing_class=AutoTokenizer.from_pretrained(world.base_model),
        peft_config=lora,
    )


def test_wise_ft_with_lora_interpolates_the_merged_weights(world, tmp_path):
    """With LoRA, WiSE-FT's model is (1 - alpha) * start + alpha * trained in the merged weights: every adapted
    layer's delta B A is alpha times the delta the same run reaches without WiSE-FT (from PEFT's B0 = 0, the start's
    delta is 0). Interpolating both factors gave alpha B ((1 - alpha) A0 + alpha A) instead (#30 item 5)."""
    from peft import LoraConfig

    from open_r1.continual.wise_ft import lora_pairs

    # Embeddings too: PEFT starts their A at zero and B random, the other way round from linear layers.
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "embed_tokens"], task_type="CAUSAL_LM")
    runs = {}
    for name, alpha in (("trained", None), ("wise", 0.5)):
        args = cpu_sft_args(tmp_path / name, max_steps=3, learning_rate=3e-2, wise_ft_alpha=alpha)
        trainer = _lora_trainer(world, args, lora)
        trainer.train()
        runs[name] = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    pairs = lora_pairs(runs["trained"])
    assert any("embedding" in a for a, _ in pairs) and any("q_proj" in a for a, _ in pairs)
    for a, b in pairs:
        trained_delta = runs["trained"][b] @ runs["trained"][a]
        assert trained_delta.abs().max() > 1e-4  # the adapter moved from its zero start
        torch.testing.assert_close(runs["wise"][b] @ runs["wise"][a], 0.5 * trained_delta, rtol=1e-5, atol=1e-7)


def test_wise_ft_refuses_a_lora_adapter_it_cannot_interpolate(world, tmp_path):
    """DoRA's magnitude enters the merged weight non-linearly, and an adapter that does not start at zero (a
    non-default init) has a start delta B0 A0 that no rank-r adapter interpolates with: both stop at start, by name."""
    from peft import LoraConfig

    args = cpu_sft_args(tmp_path / "dora", max_steps=1, wise_ft_alpha=0.5)
    dora = LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM", use_dora=True)
    with pytest.raises(ValueError, match="`wise_ft_alpha`.*DoRA"):
        _lora_trainer(world, args, dora).train()
    args = cpu_sft_args(tmp_path / "init", max_steps=1, wise_ft_alpha=0.5)
    nonzero = LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM", init_lora_weights="pissa")
    with pytest.raises(ValueError, match="`wise_ft_alpha`.*start at zero.*neither `.*lora_A.*` nor `.*lora_B"):
        _lora_trainer(world, args, nonzero).train()


def test_lora_composes_with_ewc_and_ema(world, tmp_path):
    """LoRA through TRL's `peft_config` (what `use_peft` in a recipe gives): EWC's Fisher and anchors and the EMA's
    shadow cover exactly the trainable adapter weights, the penalty acts on them, and the saved adapter (the EMA of
    the adapter weights) loads on the base as a model that differs from it."""
    args = cpu_sft_args(
        tmp_path,
        max_steps=4,
        learning_rate=3e-3,
        use_ewc=True,
        ewc_lambda=1e4,
        retain_dataset_id=str(world.retain),
        fisher_num_samples=8,
        use_ema=True,
        ema_eta=0.5,
    )
    trainer = _lora_trainer(world, args)
    trainer.train()
    trainer.save_model()
    ewc, ema = trainer.continual_methods
    trainable = {name for name, param in trainer.model.named_parameters() if param.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    assert set(ewc.fisher) == set(ewc.anchors) == set(ema.shadow) == trainable
    assert any(entry.get("ewc/penalty", 0) > 0 for entry in trainer.state.log_history)
    for name, param in trainer.model.named_parameters():
        if name in trainable:  # the EMA is what was saved
            torch.testing.assert_close(param.detach(), ema.shadow[name], rtol=0, atol=0)
    base = AutoModelForCausalLM.from_pretrained(world.base_model)
    adapted = AutoModelForCausalLM.from_pretrained(tmp_path)
    ids = torch.tensor([[1, 5, 9, 13, 17]])
    with torch.no_grad():
        assert (adapted(ids).logits - base(ids).logits).abs().max() > 1e-4


def test_agem_projection_by_hand():
    """g . g_r = -1, |g_r|^2 = 2: g - (-1 / 2) g_r; no conflict: g untouched; over several tensors the dot products
    are summed across them."""
    from open_r1.continual.agem import project_conflicting

    g, r = [torch.tensor([1.0, 0.0])], [torch.tensor([-1.0, 1.0])]
    assert project_conflicting(g, r)
    torch.testing.assert_close(g[0], torch.tensor([0.5, 0.5]))
    g = [torch.tensor([1.0, 2.0])]
    assert not project_conflicting(g, [torch.tensor([1.0, 0.0])])
    torch.testing.assert_close(g[0], torch.tensor([1.0, 2.0]))
    g, r = [torch.tensor([1.0]), torch.tensor([0.0, 2.0])], [torch.tensor([-3.0]), torch.tensor([1.0, 0.0])]
    assert project_conflicting(g, r)  # dot -3, |r|^2 10: g + 0.3 r
    torch.testing.assert_close(g[0], torch.tensor([0.1]))
    torch.testing.assert_close(g[1], torch.tensor([0.3, 2.0]))


def test_agem_projects_the_update_gradient_against_a_retain_batch_gradient(world, tmp_path):
    """On the tiny model: after an update batch's backward, `after_backward` takes the gradient of the next retain
    batch (computed here again by hand), and leaves g - (g . g_r / |g_r|^2) g_r when they conflict, g otherwise; the
    retain batches are taken in turn and their position is in the method's state."""
    from open_r1.continual.agem import AGEM

    args = _sft_args(tmp_path, use_agem=True, retain_dataset_id=str(world.retain), agem_num_samples=16)
    trainer = _trainer(world, args)
    (agem,) = trainer.continual_methods
    assert isinstance(agem, AGEM)
    agem.setup(trainer)
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    conflicts = []
    for taken in range(2):
        trainer.model.zero_grad(set_to_none=True)
        trainer.compute_loss(trainer.model, _batch(trainer)).backward()
        update = [p.grad.clone() for p in params]
        batch = agem.retain.batches[agem.retain.taken]
        trainer.model.zero_grad(set_to_none=True)
        trainer.model.eval()
        trainer.model(**batch).loss.backward()
        trainer.model.train()
        retain = [p.grad.clone() for p in params]
        dot = sum((g.double() * r.double()).sum() for g, r in zip(update, retain))
        if conflicts and conflicts[0] == bool(dot < 0):
            # Whether a retain batch conflicts depends on the world's batches; the reversed update gives the other
            # branch on the second step whatever they are.
            update, dot = [-g for g in update], -dot
        for p, g in zip(params, update):
            p.grad = g.clone()
        agem.after_backward(trainer, 1.0)
        norm = sum(r.double().pow(2).sum() for r in retain)
        expected = [g - (dot / norm).float() * r if dot < 0 else g for g, r in zip(update, retain)]
        for p, e in zip(params, expected):
            torch.testing.assert_close(p.grad, e, rtol=1e-5, atol=1e-7)
        after = sum((p.grad.double() * r.double()).sum() for p, r in zip(params, retain))
        # No first-order rise of the retain loss, to float32 rounding of g . g_r (|g| |g_r| scale).
        assert after >= -1e-6 * (norm * sum(g.double().pow(2).sum() for g in update)).sqrt()
        assert agem.metrics() == {"projected": float(dot < 0)}
        assert agem.state_dict() == {"batches_taken": taken + 1, "steps_seen": taken + 1}
        conflicts.append(bool(dot < 0))
    assert sorted(conflicts) == [False, True]  # both branches


def _reply_kl_to_the_start_by_hand(world, model, batch):
    """The mean over reply positions of KL(p_start || p_model) in fp64, from the two models' logits (the start is the
    world's base model), with the graph to the model's weights."""
    start = AutoModelForCausalLM.from_pretrained(world.base_model).eval()
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        teacher = torch.log_softmax(start(**inputs).logits.double(), -1)[:, :-1]
    student = torch.log_softmax(model.eval()(**inputs).logits.double(), -1)[:, :-1]
    predicts = batch["labels"][:, 1:] != -100
    return (teacher.exp() * (teacher - student)).sum(-1)[predicts].mean()


def test_lwf_adds_the_gradient_of_the_kl_to_the_start_on_retain_replies(world, tmp_path):
    """`after_backward` adds w x grad of the mean over reply positions of KL(p_start || p_model), computed here by
    hand from the two models' logits (the teacher is the model the trainer was built with, frozen); at the start the
    KL is 0, after the weights moved it is > 0; the position in the retain batches is in the state."""
    from open_r1.continual.lwf import RetainDistillation

    args = _sft_args(
        tmp_path,
        use_retain_distillation=True,
        distill_weight=3.0,
        retain_dataset_id=str(world.retain),
        distill_num_samples=16,
    )
    trainer = _trainer(world, args)
    (lwf,) = trainer.continual_methods
    assert isinstance(lwf, RetainDistillation)
    lwf.setup(trainer)
    model = trainer.model
    batch = lwf.retain.batches[0]
    with torch.no_grad():  # move the weights away from the start, so the KL and its gradient are not 0
        for param in model.parameters():
            param.add_(0.01 * torch.randn_like(param))
    model.zero_grad(set_to_none=True)
    lwf.after_backward(trainer, 2.0)  # an fp16 loss scale of 2 the update gradients would carry
    added = {n: p.grad.clone() for n, p in model.named_parameters()}

    model.zero_grad(set_to_none=True)
    kl = _reply_kl_to_the_start_by_hand(world, model, batch)
    (3.0 * 2.0 * kl).backward()
    assert kl.item() > 1e-4
    for name, param in model.named_parameters():
        torch.testing.assert_close(added[name], param.grad, rtol=1e-3, atol=1e-6)  # fp32 against fp64
    assert lwf.metrics()["kl"] == pytest.approx(kl.item(), rel=1e-4)
    assert lwf.state_dict() == {"batches_taken": 1, "steps_seen": 1}


def test_agem_projects_the_gradient_with_ewcs_term_already_in_it(world, tmp_path):
    """EWC and A-GEM composed: after the update backward EWC adds lambda F (theta - theta*), then A-GEM projects the
    sum against the retain gradient (the registry's order), as computed here by hand."""
    from open_r1.continual.agem import project_conflicting

    args = _sft_args(
        tmp_path,
        use_ewc=True,
        ewc_lambda=10.0,
        fisher_num_samples=8,
        use_agem=True,
        retain_dataset_id=str(world.retain),
        agem_num_samples=16,
    )
    trainer = _trainer(world, args)
    ewc, agem = trainer.continual_methods
    for method in (ewc, agem):
        method.setup(trainer)
    model = trainer.model
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    with torch.no_grad():  # away from the anchors, so EWC's term is not 0
        for _, param in named:
            param.add_(0.01 * torch.randn_like(param))
    model.zero_grad(set_to_none=True)
    trainer.compute_loss(model, _batch(trainer)).backward()
    update = {n: p.grad.clone() for n, p in named}
    batch = agem.retain.batches[0]
    model.zero_grad(set_to_none=True)
    model.eval()
    model(**batch).loss.backward()
    model.train()
    retain = {n: p.grad.clone() for n, p in named}
    # An update gradient that conflicts with the retain one (g . g_r = -3 |g_r|^2 before EWC's term), so that the
    # projection acts.
    dot = sum((update[n] * retain[n]).sum() for n, _ in named)
    norm = sum(retain[n].pow(2).sum() for n, _ in named)
    for n, p in named:
        update[n] -= (dot / norm + 3) * retain[n]
        p.grad = update[n].clone()
    for method in (ewc, agem):  # as the trainer's after-backward hook runs them
        method.after_backward(trainer, 1.0)
    expected = {n: update[n] + 10.0 * ewc.fisher[n] * (p.detach() - ewc.anchors[n]) for n, p in named}
    ewc_moved = max((expected[n] - update[n]).abs().max().item() for n, _ in named)
    assert ewc_moved > 0
    projected = [expected[n] for n, _ in named]
    assert project_conflicting(projected, [retain[n] for n, _ in named])
    for (_, p), e in zip(named, projected):
        torch.testing.assert_close(p.grad, e, rtol=1e-5, atol=1e-7)


def test_lwf_and_ewc_add_their_terms_to_the_same_gradient(world, tmp_path):
    """EWC and LwF composed: after the update backward the gradient is the update's plus lambda F (theta - theta*)
    plus w x grad of the reply KL to the start on the first retain batch, each computed here by hand (fp64 KL), with
    the fp16 loss scale on both added terms."""
    from open_r1.continual.ewc import EWC
    from open_r1.continual.lwf import RetainDistillation

    args = _sft_args(
        tmp_path,
        use_ewc=True,
        ewc_lambda=10.0,
        fisher_num_samples=8,
        use_retain_distillation=True,
        distill_weight=3.0,
        retain_dataset_id=str(world.retain),
        distill_num_samples=16,
    )
    trainer = _trainer(world, args)
    ewc, lwf = trainer.continual_methods
    assert isinstance(ewc, EWC) and isinstance(lwf, RetainDistillation)
    for method in (ewc, lwf):
        method.setup(trainer)
    model = trainer.model
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    with torch.no_grad():  # away from the anchors and the start, so neither term is 0
        for _, param in named:
            param.add_(0.01 * torch.randn_like(param))
    model.zero_grad(set_to_none=True)
    (2.0 * trainer.compute_loss(model, _batch(trainer))).backward()
    update = {n: p.grad.clone() for n, p in named}
    for method in (ewc, lwf):  # as the trainer's after-backward hook runs them
        method.after_backward(trainer, 2.0)
    composed = {n: p.grad.clone() for n, p in named}

    model.zero_grad(set_to_none=True)
    batch = lwf.retain.batches[0]
    kl = _reply_kl_to_the_start_by_hand(world, model, batch)
    (3.0 * 2.0 * kl).backward()
    assert kl.item() > 1e-4
    ewc_terms = {n: 2.0 * 10.0 * ewc.fisher[n] * (p.detach() - ewc.anchors[n]) for n, p in named}
    assert max(term.abs().max().item() for term in ewc_terms.values()) > 0
    for name, param in named:
        torch.testing.assert_close(composed[name], update[name] + ewc_terms[name] + param.grad, rtol=1e-3, atol=1e-6)


def test_the_model_card_names_the_dataset_the_tags_and_every_methods_settings(world, tmp_path):
    """The card in output_dir/README.md: TRL's generator called with the dataset and tags (it was given a dict as
    `model_name`: titled "{'dataset_name': ...}", no dataset, no tag), then the methods and their settings."""
    from huggingface_hub import ModelCard

    out = tmp_path / "ewc"
    recipe = REPO / "recipes/tiny/sft/config_ewc.yaml"
    sft.main(*_parse_recipe(recipe, world, out, "--max_steps", "1", "--save_strategy", "no", "--ewc_lambda", "1234"))
    card = ModelCard.load(out / "README.md")
    assert "dataset_name" not in card.text.split("\n")[0:3].__str__()
    assert card.data.datasets == str(world.root / "update")  # TRL writes one dataset as a string
    assert {"open-r1-safety", "ewc", "sft", "trl"} <= set(card.data.tags)
    assert f"Base model: `{world.base_model}`" in card.text
    assert "| ewc | `ewc_lambda` | `1234.0` |" in card.text
    assert "| ewc | `fisher_num_samples` |" in card.text
