import math
from types import SimpleNamespace

import pytest
import torch
from datasets import load_from_disk
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config
from trl import SFTTrainer

from open_r1.configs import SFTConfig
from open_r1.continual.ewc import add_ewc_gradient, ewc_penalty, penalty_value, recompute_steps
from open_r1.continual.fisher import (
    compute_fisher,
    compute_fisher_partitioned,
    per_sample_parameter_grads,
    sample_model_labels,
    supports_layerwise,
)

from .conftest import cpu_sft_args, tiny_trainer, torchrun


def _model(world):
    # Eager attention: the reference below and the batched path then run the same kernels.
    return AutoModelForCausalLM.from_pretrained(world.base_model, attn_implementation="eager")


def _batches(world, n_rows=12, batch_size=4):
    """Retain rows tokenised and masked by TRL exactly as SFT does (assistant tokens only), padded per batch."""
    tokenizer = AutoTokenizer.from_pretrained(world.base_model)
    args = SFTConfig(
        output_dir="/tmp/unused",
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        assistant_only_loss=True,
        report_to="none",
    )
    rows = load_from_disk(str(world.retain))["train"].select(range(n_rows)).select_columns(["messages"])
    trainer = SFTTrainer(model=_model(world), args=args, train_dataset=rows, processing_class=tokenizer)
    data = [trainer.train_dataset[i] for i in range(n_rows)]
    return [trainer.data_collator(data[i : i + batch_size]) for i in range(0, n_rows, batch_size)]


def _brute_force(model, batches, labels_of, normalization="token"):
    """Loop over single sequences: autograd of the completion log-likelihood (its per-token mean under "token"),
    squared, averaged."""
    fisher = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    count = 0
    for batch in batches:
        labels = labels_of(batch)
        for row in range(batch["input_ids"].shape[0]):
            keep = batch["attention_mask"][row].bool()
            ids, lab = batch["input_ids"][row, keep][None], labels[row, keep][None]
            model.zero_grad()
            logits = model(input_ids=ids).logits[:, :-1]
            target = lab[:, 1:]
            mask = target != -100
            log_probs = torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0)[..., None])[..., 0]
            ((log_probs * mask).sum() / (mask.sum() if normalization == "token" else 1)).backward()
            for n, p in model.named_parameters():
                fisher[n] += p.grad.pow(2)
            count += 1
    return {n: f / count for n, f in fisher.items()}


def _assert_relative(fisher, reference, tol):
    for name, ref in reference.items():
        error = (fisher[name] - ref).abs().max() / ref.abs().max()
        assert error < tol, (name, error.item())


@pytest.mark.parametrize("chunk_size", [None, 1])
def test_empirical_per_sample_matches_brute_force(world, chunk_size):
    model, batches = _model(world), _batches(world)
    fisher = compute_fisher(model, batches, kind="empirical", estimator="per_sample", chunk_size=chunk_size)
    reference = _brute_force(model, batches, lambda b: b["labels"])
    assert set(fisher) == {n for n, _ in model.named_parameters()}
    _assert_relative(fisher, reference, 1e-4)
    assert not any(f.requires_grad for f in fisher.values())  # plain data: a penalty's backward must stop there


def _squared_hf_loss_gradients(model, batches):
    """The fork's Fisher: the mean over batches of the squared gradient of the model's own mean token loss."""
    fisher = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for batch in batches:
        model.zero_grad()
        model(**{k: batch[k] for k in ("input_ids", "attention_mask", "labels")}).loss.backward()
        for n, p in model.named_parameters():
            fisher[n] += p.grad.pow(2) / len(batches)
    return fisher


def test_fisher_is_normalised_like_the_training_loss_by_default(world):
    """By default the Fisher squares the gradient of each sequence's per-token mean log-likelihood, as the fork did
    (the model's own loss at batch 1), so `ewc_lambda` does not change meaning with retain length (review item 5);
    the batched estimator squares the gradient of the batch's mean token loss, as the fork did at larger batches.
    `fisher_normalization: sequence` keeps the textbook sum over tokens."""
    model = _model(world)
    singles, fours = _batches(world, n_rows=8, batch_size=1), _batches(world, n_rows=8, batch_size=4)
    _assert_relative(compute_fisher(model, singles), _squared_hf_loss_gradients(model, singles), 1e-4)
    _assert_relative(compute_fisher(model, fours), _squared_hf_loss_gradients(model, singles), 1e-4)
    _assert_relative(compute_fisher(model, fours, estimator="batched"), _squared_hf_loss_gradients(model, fours), 1e-4)
    summed = compute_fisher(model, fours, normalization="sequence")
    _assert_relative(summed, _brute_force(model, fours, lambda b: b["labels"], normalization="sequence"), 1e-4)


class _ScaledHead(torch.nn.Module):
    """A module that owns a parameter and a submodule: the per-sample path cannot split it by layers."""

    def __init__(self, head):
        super().__init__()
        self.head, self.scale = head, torch.nn.Parameter(torch.tensor(0.8))

    def forward(self, hidden_states):
        return self.head(hidden_states) * self.scale


def _untied_model_with_biases(world):
    config = Qwen2Config(
        vocab_size=len(AutoTokenizer.from_pretrained(world.base_model)),
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, attn_implementation="eager")


def _llama_with_a_parameter_owner_that_has_submodules(world):
    model = _model(world)
    model.lm_head = _ScaledHead(model.lm_head)  # still tied to the input embedding
    return model


@pytest.mark.parametrize("build", [_untied_model_with_biases, _llama_with_a_parameter_owner_that_has_submodules])
def test_per_sample_fisher_of_other_architectures_matches_brute_force(world, build):
    model, batches = build(world), _batches(world, n_rows=6, batch_size=3)
    # The untied model goes layer by layer (biases, separate head), the other one loops over sequences.
    assert supports_layerwise(model) == (build is _untied_model_with_biases)
    fisher = compute_fisher(model, batches, chunk_size=2)
    assert set(fisher) == {n for n, _ in model.named_parameters()}
    _assert_relative(fisher, _brute_force(model, batches, lambda b: b["labels"]), 1e-4)


def test_model_fisher_matches_brute_force_with_the_same_samples(world):
    model, batches = _model(world), _batches(world)
    fisher = compute_fisher(
        model, batches, kind="model", estimator="per_sample", generator=torch.Generator().manual_seed(0)
    )
    # The same sampling, redone on the same right-padded batches with the same generator state.
    generator = torch.Generator().manual_seed(0)

    def sampled(batch):
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"]).logits
        return sample_model_labels(logits, batch["labels"], generator)

    reference = _brute_force(model, batches, sampled)
    _assert_relative(fisher, reference, 1e-4)
    empirical = compute_fisher(model, batches, kind="empirical")
    assert any(not torch.allclose(fisher[n], empirical[n]) for n in fisher), "model Fisher must differ"


def test_sampled_labels_only_replace_completion_tokens():
    logits = torch.zeros(1, 5, 4)
    logits[..., 2] = 50.0  # the model is certain of token 2 everywhere
    labels = torch.tensor([[-100, -100, 1, 3, -100]])
    sampled = sample_model_labels(logits, labels, torch.Generator().manual_seed(0))
    assert sampled.tolist() == [[-100, -100, 2, 2, -100]]


def test_batched_estimator_is_the_squared_mean_gradient(world):
    model, batches = _model(world), _batches(world, n_rows=8, batch_size=1)
    per_sample = compute_fisher(model, batches, estimator="per_sample")
    batched_singletons = compute_fisher(model, batches, estimator="batched")
    _assert_relative(batched_singletons, per_sample, 1e-4)  # batches of one: the two coincide
    batched = compute_fisher(model, _batches(world, n_rows=8, batch_size=8), estimator="batched")
    total = sum(t.sum() for t in batched.values())
    assert 0 < total < sum(t.sum() for t in per_sample.values())


def test_right_padding_makes_no_difference(world):
    model, batches = _model(world), _batches(world)
    left = []
    for batch in batches:
        mask = batch["attention_mask"]
        flipped = {
            k: torch.stack([torch.cat([row[m.bool() == 0], row[m.bool()]]) for row, m in zip(v, mask)])
            for k, v in batch.items()
            if k in ("input_ids", "labels", "attention_mask")
        }
        left.append(flipped)
    _assert_relative(compute_fisher(model, left), compute_fisher(model, batches), 1e-5)


def test_ewc_penalty_value_and_gradient_by_hand():
    """`ewc_penalty` (autograd, the ZeRO-1/2 path), `add_ewc_gradient` (added after the backward, every other path)
    and `penalty_value` (the log) give the hand-computed gradient and value; the gradient is added on top of the
    existing one, times the fp16 loss scale when there is one, and also where the loss created none."""
    model = torch.nn.Linear(2, 1, bias=True)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0]]))
        model.bias.fill_(0.5)
    fisher = {"weight": torch.tensor([[2.0, 3.0]]), "bias": torch.tensor([4.0])}
    anchors = {"weight": torch.tensor([[0.0, -1.0]]), "bias": torch.tensor([0.0])}
    penalty = ewc_penalty(model, fisher, anchors, ewc_lambda=10.0)
    # (10 / 2) * (2 * 1^2 + 3 * (-1)^2 + 4 * 0.5^2) = 5 * 6 = 30
    assert penalty.item() == pytest.approx(30.0)
    penalty.backward()
    # d/dtheta = lambda * F * (theta - theta*)
    expected = {"weight": torch.tensor([[20.0, -30.0]]), "bias": torch.tensor([20.0])}
    torch.testing.assert_close(model.weight.grad, expected["weight"])
    torch.testing.assert_close(model.bias.grad, expected["bias"])

    model.weight.grad = torch.ones_like(model.weight)  # a data gradient the penalty's is added to
    model.bias.grad = None  # not reached by this step's loss
    add_ewc_gradient(list(model.named_parameters()), fisher, anchors, ewc_lambda=10.0, grad_scale=4.0)
    assert penalty_value(list(model.named_parameters()), fisher, anchors, ewc_lambda=10.0).item() == pytest.approx(30)
    torch.testing.assert_close(model.weight.grad, 1 + 4 * expected["weight"])
    torch.testing.assert_close(model.bias.grad, 4 * expected["bias"])


def _grads_after_add_ewc_gradient(model, fisher, anchors, seed):
    generator = torch.Generator().manual_seed(seed)
    for param in model.parameters():
        param.grad = torch.randn(param.shape, generator=generator).to(param.dtype)
    model[1].bias.grad = None  # not reached by this step's loss
    add_ewc_gradient(list(model.named_parameters()), fisher, anchors, ewc_lambda=3.0, grad_scale=2.0)
    return {name: param.grad.clone() for name, param in model.named_parameters()}


@pytest.mark.parametrize("group_numel", [1, 7, 1 << 24])
def test_add_ewc_gradient_multi_tensor_path_is_the_per_parameter_path_bit_for_bit(monkeypatch, group_numel):
    """Whole fp32 parameters go through `torch._foreach_*` kernels in groups of bounded size; the result is the one
    parameter at a time path's, bit for bit, whatever the grouping, and a parameter that is not fp32 (here bf16)
    still takes the per-parameter path beside the others."""
    from open_r1.continual import sharding

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    fisher = {n: torch.rand_like(p) for n, p in model.named_parameters()}
    anchors = {n: p.detach() + 0.1 * torch.randn_like(p) for n, p in model.named_parameters()}
    monkeypatch.setattr(sharding, "FOREACH_GROUP_NUMEL", group_numel)
    grouped = _grads_after_add_ewc_gradient(model, fisher, anchors, seed=1)
    monkeypatch.setattr(sharding, "is_plain_fp32", lambda *tensors: False)  # every parameter one at a time
    one_at_a_time = _grads_after_add_ewc_gradient(model, fisher, anchors, seed=1)
    for name in grouped:
        assert torch.equal(grouped[name], one_at_a_time[name]), name
    monkeypatch.undo()

    model[0].weight.data = model[0].weight.data.bfloat16()
    mixed = _grads_after_add_ewc_gradient(model, fisher, anchors, seed=1)
    weight = model[0].weight.detach().float()
    start = torch.randn(model[0].weight.shape, generator=torch.Generator().manual_seed(1)).bfloat16()  # drawn first
    expected = (start.float() + 6.0 * fisher["0.weight"] * (weight - anchors["0.weight"])).bfloat16()
    assert mixed["0.weight"].dtype == torch.bfloat16
    torch.testing.assert_close(mixed["0.weight"], expected, rtol=1e-2, atol=1e-2)
    assert torch.equal(mixed["1.weight"], one_at_a_time["1.weight"])


def test_foreach_groups_bound_the_elements_of_each_group():
    from open_r1.continual.sharding import foreach_groups

    rows = [(torch.zeros(n), n) for n in (3, 4, 10, 1, 1, 2)]
    groups = [sizes for _, sizes in foreach_groups(rows, max_numel=5)]
    assert groups == [(3,), (4,), (10,), (1, 1, 2)]  # 3+4 > 5; 10 alone; 1+1+2 <= 5


def test_ewc_penalty_graph_keeps_only_the_parameters():
    """Plain autograd would keep theta - theta* (and F copied to the device when offloaded) for every parameter from
    the forward to the backward; the penalty's graph saves nothing but the parameters, and its gradient is exact."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 2))
    fisher = {name: torch.rand_like(param) for name, param in model.named_parameters()}
    anchors = {name: torch.randn_like(param) for name, param in model.named_parameters()}
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        penalty = ewc_penalty(model, fisher, anchors, ewc_lambda=3.0)
    assert len(saved) == 4
    assert {t.data_ptr() for t in saved} == {param.data_ptr() for param in model.parameters()}
    penalty.backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, 3.0 * fisher[name] * (param.detach() - anchors[name]))
    expected = 1.5 * sum((fisher[n] * (p.detach() - anchors[n]).pow(2)).sum() for n, p in model.named_parameters())
    torch.testing.assert_close(penalty.detach(), expected)


def test_interval_schedule():
    assert recompute_steps("intervals", 0.25, 100) == [25, 50, 75]
    assert recompute_steps("intervals", 0.5, 7) == [4]
    assert recompute_steps("never", 0.25, 100) == []


@pytest.mark.parametrize(
    "build, loss_scale",
    [(_model, None), (_model, 1024.0), (_llama_with_a_parameter_owner_that_has_submodules, 1024.0)],
)
def test_partitioned_fisher_of_a_whole_model_equals_compute_fisher(world, build, loss_scale):
    """The building block ZeRO-3 and FSDP2 use, on one process (each 'partition' is a whole parameter), layer by
    layer and, for a module owning parameters and submodules, one sequence at a time; with a backward that scales
    the loss as DeepSpeed's fp16 does and says so."""
    model, batches = build(world), _batches(world, n_rows=6, batch_size=3)

    def backward(loss):
        (loss * (loss_scale or 1.0)).backward()
        return loss_scale

    def zero_grad():
        model.zero_grad(set_to_none=True)

    partitioned = compute_fisher_partitioned(model, batches, chunk_size=2, backward=backward, zero_grad=zero_grad)
    expected = {name: f.flatten() for name, f in compute_fisher(model, batches).items()}
    _assert_relative(partitioned, expected, 1e-4)


def _zero3_param(shape, world_size, rank, monkeypatch):
    """A stand-in for a ZeRO-3 partitioned parameter: what `sharding` reads of one (rank `rank` of `world_size`)."""
    numel = math.prod(shape)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None: rank)
    return SimpleNamespace(
        ds_id=0, ds_shape=shape, ds_process_group=None, ds_tensor=SimpleNamespace(ds_numel=-(-numel // world_size))
    )


def _fsdp2_param(shape, world_size, rank):
    mesh = SimpleNamespace(size=lambda: world_size, get_local_rank=lambda: rank)
    return SimpleNamespace(device_mesh=mesh, shape=torch.Size(shape))


@pytest.mark.parametrize("sharding", ["zero3", "fsdp2"])
@pytest.mark.parametrize("shape, world_size", [((7, 5), 2), ((7, 5), 3), ((2, 3), 3), ((10,), 4), ((1, 9), 2)])
def test_local_part_from_the_rows_a_rank_touches_equals_it_from_the_whole(monkeypatch, sharding, shape, world_size):
    """Each rank's part of per-row tensors, cut from only the dim-0 rows its partition touches
    (`local_row_range`), equals the part cut from the whole tensors, and is the rank's slice of the flat parameter
    (ZeRO-3: a contiguous range, zero-padded at the end, which may begin and end inside a row; FSDP2: torch.chunk
    on dim 0); a rank holding only padding gets an empty range."""
    from open_r1.continual.sharding import local_part_of_rows, local_row_range

    rows = torch.randn(3, *shape)
    parts = []
    for rank in range(world_size):
        if sharding == "zero3":
            param = _zero3_param(shape, world_size, rank, monkeypatch)
        else:
            param = _fsdp2_param(shape, world_size, rank)
        first, end = local_row_range(param)
        whole = local_part_of_rows(param, rows)
        assert torch.equal(local_part_of_rows(param, rows[:, first:end], first), whole)
        parts.append(whole)
    flat = rows.reshape(3, -1)
    if sharding == "zero3":
        assert torch.equal(torch.cat(parts, 1)[:, : flat.shape[1]], flat)
        assert torch.all(torch.cat(parts, 1)[:, flat.shape[1] :] == 0)
    else:
        expected = [chunk.reshape(3, -1) for chunk in torch.chunk(rows, world_size, dim=1)]
        expected += [flat[:, :0]] * (world_size - len(expected))
        assert all(torch.equal(part, e) for part, e in zip(parts, expected))


@pytest.mark.parametrize("first, end", [(0, 6), (2, 5), (4, 4), (5, 6)])
def test_per_sample_grads_of_some_rows_are_those_rows_of_the_whole(first, end):
    """Asked for dim-0 rows first .. end, a Linear (weight, bias), an Embedding (padding row inside or outside the
    range, tokens outside it) and a generic module (vmapped vjp) give exactly those rows of their whole per-sample
    gradients."""
    torch.manual_seed(0)
    linear, embedding, norm = torch.nn.Linear(4, 6), torch.nn.Embedding(6, 3, padding_idx=4), torch.nn.LayerNorm(6)
    x, g = torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    ids, g_embedding = torch.randint(0, 6, (2, 5)), torch.randn(2, 5, 3)
    weights = {name: p.detach().clone() for name, p in norm.named_parameters()}
    for module, inputs, grad_output, recorded in (
        (linear, x, g, None),
        (embedding, ids, g_embedding, None),
        (norm, g, torch.randn(2, 5, 6), weights),
    ):
        whole = per_sample_parameter_grads(module, inputs, grad_output, recorded)
        ranges = {name: (first, end) for name in whole}
        some = per_sample_parameter_grads(module, inputs, grad_output, recorded, ranges)
        for name in whole:
            torch.testing.assert_close(some[name], whole[name][:, first:end], rtol=1e-6, atol=1e-7)
            assert some[name].shape[1] == end - first


def test_two_process_fisher_equals_one_process(world, tmp_path):
    """Each rank squares its own samples' gradients; the sums are reduced once, so 2 ranks == 1 process."""
    out = tmp_path / "fisher.pt"
    torchrun("tests/helpers/fisher_ddp.py", str(world.root), str(out))
    distributed = torch.load(out)
    single = compute_fisher(_model(world), _batches(world, n_rows=12, batch_size=2), kind="empirical")
    _assert_relative(distributed, single, 1e-5)


@pytest.mark.parametrize(
    "mode, extra, expected",
    [
        ("never", {}, [0]),
        ("intervals", {"recompute_fisher_intervals": 0.25}, [0, 2, 4, 6]),
        ("dynamically", {"fisher_drift_threshold": 1e9, "fisher_drift_check_steps": 2}, [0]),
        ("dynamically", {"fisher_drift_threshold": 0.0, "fisher_drift_check_steps": 2}, "rising"),
    ],
)
def test_recompute_modes_recompute_when_they_should(world, tmp_path, mode, extra, expected):
    args = cpu_sft_args(
        tmp_path / "out",
        max_steps=8,
        learning_rate=3e-3,
        use_ewc=True,
        ewc_lambda=1.0,
        retain_dataset_id=str(world.retain),
        fisher_num_samples=16,
        fisher_batch_size=8,
        recompute_fisher_mode=mode,
        **extra,
    )
    trainer = tiny_trainer(world, args, attn_implementation="eager")
    trainer.train()
    ewc = trainer.continual_methods[0]
    if expected == "rising":
        # Training on the update task raises the retain NLL: at least one recompute, only at check steps, and each
        # check after the first recompute decided by the rule (recompute iff NLL > reference, threshold 0).
        steps = ewc.computed_at_steps
        assert steps[0] == 0 and len(steps) > 1 and set(steps[1:]) <= {2, 4, 6, 8}
        nll = {e["step"]: e["ewc/retain_nll"] for e in trainer.state.log_history if "ewc/retain_nll" in e}
        reference = nll[steps[1]]
        for step in (s for s in (2, 4, 6, 8) if s > steps[1]):
            assert (step in steps) == (nll[step] > reference)
            reference = nll[step] if step in steps else reference
    else:
        assert ewc.computed_at_steps == expected
    logged = [e["ewc/recomputes"] for e in trainer.state.log_history if "ewc/recomputes" in e]
    assert logged[-1] == len(ewc.computed_at_steps) - 1


def test_grpo_fisher_data_masks_like_sft(world):
    """Without TRL's SFT pipeline (GRPO), the retain rows get the same assistant-token labels SFT trains on."""
    from open_r1.continual.retain_data import assistant_labels, collate_right_padded

    tokenizer = AutoTokenizer.from_pretrained(world.base_model)
    rows = load_from_disk(str(world.retain))["train"].select(range(4))
    ours = collate_right_padded([assistant_labels(r, tokenizer) for r in rows], tokenizer.pad_token_id)
    sft = _batches(world, n_rows=4, batch_size=4)[0]
    for key in ("input_ids", "labels"):
        assert torch.equal(ours[key], sft[key]), key


def test_ewc_under_fsdp2_matches_one_process(world, tmp_path):
    """Under FSDP2 `fully_shard` (2 gloo ranks, torchrun) each rank's Fisher is its shard of the one-process Fisher,
    and SGD steps with `add_ewc_gradient` on the gradient shards end at the weights of one process with the
    penalty in the loss; without the penalty they end measurably elsewhere."""
    from tests.helpers.ewc_fsdp2 import EWC_LAMBDA, LR, STEPS, update_loss
    from tests.helpers.tiny_batches import load_model, make_batches

    torchrun("tests/helpers/ewc_fsdp2.py", str(world.root), str(tmp_path))
    model = load_model(world.root)
    fisher = compute_fisher(model, make_batches(world.root, "retain", n_rows=12, batch_size=2))
    for rank in (0, 1):
        local = torch.load(tmp_path / f"fisher_rank{rank}.pt")
        for name, full in fisher.items():
            _assert_relative({name: local[name]}, {name: torch.chunk(full, 2, dim=0)[rank].flatten()}, 1e-4)

    def train(ewc_lambda):
        model = load_model(world.root)
        anchors = {name: param.detach().clone() for name, param in model.named_parameters()}
        optimizer = torch.optim.SGD(model.parameters(), lr=LR)
        for batch in make_batches(world.root, "update", n_rows=8 * STEPS, batch_size=8):
            loss = update_loss(model, (batch["input_ids"], batch["labels"]), 8)
            (loss + ewc_penalty(model, fisher, anchors, ewc_lambda)).backward()
            optimizer.step()
            optimizer.zero_grad()
        return {name: param.detach() for name, param in model.named_parameters()}

    sharded, reference, free = torch.load(tmp_path / "weights.pt"), train(EWC_LAMBDA), train(0.0)
    # Sharded and one-process SGD differ by float noise (~1e-4 here without EWC too); EWC moves weights by ~1e-2.
    for name in reference:
        torch.testing.assert_close(sharded[name], reference[name], rtol=1e-3, atol=3e-4)
    assert max((free[n] - reference[n]).abs().max().item() for n in reference) > 3e-3


@pytest.mark.parametrize("padding_free", [False, True])
def test_sft_fisher_and_retain_probe_see_only_the_assistant_tokens(world, tmp_path, padding_free):
    """The SFT Fisher and the `dynamically` mode's retain-NLL probe are computed on the labels SFT trains on
    (assistant tokens only), not on every token of the retain chats (review item 1), and per sequence even when
    the training collator packs a batch into one row (`padding_free`)."""
    from open_r1.continual.retain_data import labelled_batches

    args = cpu_sft_args(
        tmp_path / "out",
        max_steps=1,
        learning_rate=0.0,
        use_ewc=True,
        retain_dataset_id=str(world.retain),
        fisher_num_samples=8,
        fisher_batch_size=4,
        recompute_fisher_mode="dynamically",
        padding_free=padding_free,
        max_length=None if padding_free else 128,  # TRL: padding-free without packing does not truncate
    )
    trainer = tiny_trainer(world, args, attn_implementation="eager")
    trainer.train()
    ewc = trainer.continual_methods[0]
    tokenizer = trainer.processing_class
    rows = load_from_disk(str(world.retain))["train"].shuffle(seed=args.seed).select(range(8))
    batches = labelled_batches(rows, tokenizer, batch_size=4)
    assert all((b["labels"] == -100).sum() > (b["attention_mask"] == 0).sum() for b in batches)  # prompts masked
    _assert_relative(ewc.fisher, compute_fisher(_model(world), batches), 1e-4)

    total, tokens = 0.0, 0
    model = _model(world)
    with torch.no_grad():
        for batch in batches:  # the probe: the first 4 x fisher_batch_size of these rows
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
            target = batch["labels"][:, 1:]
            mask = target != -100
            log_probs = torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0)[..., None])[..., 0]
            total -= log_probs[mask].sum().item()
            tokens += int(mask.sum())
    assert ewc.reference_retain_nll == pytest.approx(total / tokens, rel=1e-5)


def test_grpo_fisher_data_without_generation_markers_masks_the_last_reply(world):
    """A chat template without `{% generation %}` markers (the stock Llama-3.1-Instruct one, as GRPO recipe v00.04
    uses) still gives the GRPO Fisher its assistant tokens: those after the prompt the template renders for the
    turns before the reply (review item 10). They match the marked tokens, plus what the template writes after the
    turn's end (here a newline)."""
    from open_r1.continual.retain_data import assistant_labels

    marked = AutoTokenizer.from_pretrained(world.base_model)
    plain = AutoTokenizer.from_pretrained(world.base_model)
    plain.chat_template = marked.chat_template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    newline = plain.encode("\n", add_special_tokens=False)
    for row in load_from_disk(str(world.retain))["train"].select(range(4)):
        expected, derived = assistant_labels(row, marked), assistant_labels(row, plain)
        assert derived["input_ids"] == expected["input_ids"]
        assert derived["labels"] == expected["labels"][: -len(newline)] + newline


def test_sft_fisher_of_a_retain_set_with_its_own_prompt_column(world, tmp_path):
    """wildguardmix-style retain rows carry `prompt` and `response` columns beside `messages`; the Fisher reads the
    chats (TRL took such rows for prompt-completion data and failed with KeyError: 'completion', found by the smoke
    run of the EWC recipes)."""
    from open_r1.continual.retain_data import labelled_batches

    rows = load_from_disk(str(world.retain))["train"].select(range(8))
    rows = rows.map(lambda r: {"prompt": r["messages"][0]["content"], "response": r["messages"][1]["content"]})
    rows.save_to_disk(str(tmp_path / "retain"))
    args = cpu_sft_args(
        tmp_path / "out",
        max_steps=1,
        learning_rate=0.0,
        use_ewc=True,
        retain_dataset_id=str(tmp_path / "retain"),
        fisher_num_samples=8,
        fisher_batch_size=4,
    )
    trainer = tiny_trainer(world, args, attn_implementation="eager")
    trainer.train()
    batches = labelled_batches(rows.shuffle(seed=args.seed), trainer.processing_class, batch_size=4)
    _assert_relative(trainer.continual_methods[0].fisher, compute_fisher(_model(world), batches), 1e-4)
