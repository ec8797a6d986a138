# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Diagonal Fisher information of a causal LM over a data set (the retain set, for EWC).

For a sequence s with prompt x and completion y of T_s trained tokens (labels != -100: the same masking SFT trains
on), let g_s be the gradient of its log-likelihood, normalised as the training loss is (`normalization`):

- "token" (default): g_s = d/dtheta (1 / T_s) sum_t log p(y_t | x, y_<t), the gradient of the per-token mean that
  SFT's loss is. This is the fork's Fisher (it squared the gradient of the model's mean token loss at batch 1), so
  its `ewc_lambda` values mean here what they meant there, whatever the retain sequences' length.
- "sequence": g_s = d/dtheta sum_t log p(y_t | x, y_<t), the textbook per-sequence Fisher. Against a per-token mean
  loss the penalty then grows with retain length (~T for the model Fisher, ~T^2 for the empirical one).

Two kinds, two estimators:

- kind="empirical": y is the data's own completion.
- kind="model" (the "true" Fisher): each completion token is replaced by a token sampled from the model's own
  next-token distribution at that position (teacher-forced on the data prefix: one forward pass, then sampling),
  and g_s is the gradient of the log-likelihood of the samples. (The gradient of KL(p_ref || p) at p = p_ref is
  identically zero, so it is no Fisher estimate.)
- estimator="per_sample": F = mean over sequences of g_s ** 2 (elementwise). Exact, and computed layer by layer
  from one batched forward and backward: each module that owns parameters has its input x and the gradient g of
  the log-likelihood with respect to its output recorded, and a sequence's gradient of the module's parameters is
  formed from that sequence's (x, g) alone (a Linear weight's is sum_t g_t x_t^T; an Embedding's scatters g onto
  the looked-up rows; any other leaf module's is the vector-Jacobian product of its own forward, vmapped over
  sequences). Only one parameter's per-sample gradients exist at a time, `chunk_size` sequences of them, so the
  memory is chunk_size x the largest parameter, not x the model. A parameter used by several modules (tied input
  and output embeddings) has its per-sample contributions summed before squaring. (A model where some module owns
  both parameters and submodules falls back to one gradient per sequence.)
- estimator="batched": F = mean over mini-batches b of (g_b) ** 2, g_b the gradient of the mini-batch's mean: over
  its trained tokens ("token", the training loss of the batch) or over its sequences ("sequence"). One gradient per
  mini-batch, cheaper, but near an optimum (where the mean gradient vanishes) it is about F / B for mini-batches
  of B. Named as what it is; the per-sample estimator is the Fisher.

Gradients are taken on fp32, detached copies of the local parameters, so no data-parallel hook reduces them: under
DDP and ZeRO-1/2 each rank squares its own samples' gradients, and the sums are all-reduced once at the end
(squaring gradients that were already averaged across ranks would be the batched quantity, not the Fisher).
Padding is moved to the right of each row, so causal attention needs no mask and every real token keeps the
position it has unpadded. Under ZeRO-3 and FSDP2, where no rank holds whole parameters, `compute_fisher_partitioned`
gives the same numbers for each rank's partitions.
"""

import logging
from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import nn
from torch.func import functional_call, grad, vjp, vmap

from .base import eval_mode
from .sharding import (
    local_fp32_param,
    local_grad,
    local_part_of_rows,
    local_row_range,
    trainable_named_parameters,
)


logger = logging.getLogger(__name__)

FISHER_KINDS = ("empirical", "model")
FISHER_ESTIMATORS = ("per_sample", "batched")
FISHER_NORMALIZATIONS = ("token", "sequence")


def check_fisher_options(kind: str, estimator: str, normalization: str) -> None:
    for key, value, choices in (
        ("fisher_kind", kind, FISHER_KINDS),
        ("fisher_estimator", estimator, FISHER_ESTIMATORS),
        ("fisher_normalization", normalization, FISHER_NORMALIZATIONS),
    ):
        if value not in choices:
            raise ValueError(f"`{key}` must be one of {choices}, got {value!r}.")


def right_pad(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, labels) with every row's real tokens moved to the front; padding labels are -100."""
    input_ids, labels = batch["input_ids"], batch["labels"]
    mask = batch.get("attention_mask")
    if mask is None:
        return input_ids, labels
    out_ids = torch.zeros_like(input_ids)
    out_labels = torch.full_like(labels, -100)
    for row in range(input_ids.shape[0]):
        keep = mask[row].bool()
        n = int(keep.sum())
        out_ids[row, :n] = input_ids[row, keep]
        out_labels[row, :n] = labels[row, keep]
    return out_ids, out_labels


@torch.no_grad()
def sample_model_labels(logits: torch.Tensor, labels: torch.Tensor, generator=None) -> torch.Tensor:
    """Labels where each completion token is drawn from the model's next-token distribution (`logits`) there."""
    logits = logits.float()
    sampled = labels.clone()
    # Token t is predicted by the logits at t - 1.
    probs = torch.softmax(logits[:, :-1], dim=-1)
    flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator).view(probs.shape[:-1])
    positions = labels[:, 1:] != -100
    sampled[:, 1:][positions] = flat[positions]
    return sampled


def completion_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(label_t | tokens_<t), mask of trained positions) for a batch: token t is predicted at t - 1."""
    targets = labels[:, 1:]
    log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    token_log_probs = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return token_log_probs, targets != -100


def normalized_log_likelihood(
    token_log_probs: torch.Tensor, mask: torch.Tensor, normalization: str, batch_mean: bool = False
) -> torch.Tensor:
    """The log-likelihood whose gradient the Fisher squares (see the module docstring): the sum over rows of each
    row's completion log-likelihood, divided by its trained-token count under "token"; with `batch_mean`, the
    batch's mean instead (over its trained tokens under "token", over its rows under "sequence")."""
    per_row = (token_log_probs * mask).sum(-1)
    tokens = mask.sum(-1).clamp(min=1)
    if batch_mean:
        return per_row.sum() / (tokens.sum() if normalization == "token" else per_row.shape[0])
    return (per_row / tokens).sum() if normalization == "token" else per_row.sum()


def sequence_log_likelihood(
    model, params: dict, input_ids: torch.Tensor, labels: torch.Tensor, normalization: str, batch_mean: bool = False
) -> torch.Tensor:
    """`normalized_log_likelihood` of one row or a batch under `functional_call(model, params)`."""
    if input_ids.dim() == 1:
        input_ids, labels = input_ids.unsqueeze(0), labels.unsqueeze(0)
    token_log_probs, mask = completion_log_probs(functional_call(model, params, (input_ids,)).logits, labels)
    return normalized_log_likelihood(token_log_probs, mask, normalization, batch_mean)


def parameter_owners(model) -> list[nn.Module]:
    return [module for module in model.modules() if next(module.parameters(recurse=False), None) is not None]


def supports_layerwise(model) -> bool:
    """Whether every module that owns parameters is a leaf, so that its own forward gives their gradients."""
    return all(next(module.children(), None) is None for module in parameter_owners(model))


class ParameterCalls:
    """Records each call of the given modules (those that directly own parameters) during a forward, and the
    gradient of its output in the backward that follows: `calls[i] = [module, input, output gradient, weights]`.

    `weights` snapshots the module's own parameters, in fp32, for modules whose per-sample gradients need them (all
    but Linear and Embedding); the hooks run before any other forward hook, while DeepSpeed ZeRO-3 and FSDP2 still
    hold those parameters whole. With detached parameters the first call (the input embedding) returns an output
    that does not require grad; it is made a leaf that does, so that the backward reaches every recorded output.
    """

    def __init__(self, modules: Iterable[nn.Module]):
        self.calls: list[list] = []
        self._handles = [module.register_forward_hook(self._record, prepend=True) for module in modules]

    def _record(self, module, args, output):
        if not (args and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor)):
            raise NotImplementedError(
                f"Per-sample Fisher by layers needs {type(module).__name__} to map one tensor to one tensor. "
                "`fisher_estimator: batched` with `fisher_batch_size: 1` gives the same Fisher, a row at a time."
            )
        weights = None
        if type(module) not in (nn.Linear, nn.Embedding):
            weights = {name: p.detach().float().clone() for name, p in module.named_parameters(recurse=False)}
        call = [module, args[0].detach(), None, weights]  # the input as data: nothing differentiates it
        self.calls.append(call)
        if not output.requires_grad:
            output = output.detach().requires_grad_()
        output.register_hook(lambda grad: call.__setitem__(2, grad))
        return output

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()


class _WithoutHooks(nn.Module):
    """Runs `module.forward` directly: re-running a recorded module must not fire its hooks (under ZeRO-3 they
    fetch and release its parameters)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, inputs):
        return self.module.forward(inputs)


def per_sample_parameter_grads(
    module: nn.Module, inputs, grad_output, weights, row_ranges: dict | None = None
) -> dict[str, torch.Tensor]:
    """{local parameter name: (rows, k, *full shape[1:])}: each row's gradient of `module`'s own parameters, from that
    row's `inputs` and `grad_output` (the gradient with respect to the module output); `weights` as `ParameterCalls`.
    `row_ranges[name] = (first, end)` asks for the parameter's dim-0 rows first .. end only (k = end - first; all
    rows, k = dim 0, for a name not in it): a Linear's and an Embedding's are formed for those rows alone, so a rank
    that keeps 1/W of a parameter does 1/W of its products."""
    row_ranges = row_ranges or {}
    if type(module) is nn.Linear:
        x, g = inputs.flatten(1, -2), grad_output.flatten(1, -2)
        first, end = row_ranges.get("weight", (0, module.out_features))
        grads = {"weight": torch.einsum("bto,bti->boi", g[..., first:end], x)}
        if module.bias is not None:
            first, end = row_ranges.get("bias", (0, module.out_features))
            grads["bias"] = g[..., first:end].sum(1)
        return grads
    if type(module) is nn.Embedding and module.max_norm is None and not module.scale_grad_by_freq:
        rows, width = inputs.shape[0], module.embedding_dim
        first, end = row_ranges.get("weight", (0, module.num_embeddings))
        kept = end - first
        local_ids = inputs - first
        looked_up = (local_ids >= 0) & (local_ids < kept)  # tokens whose embedding row is among those asked for
        offsets = torch.arange(rows, device=inputs.device).view(-1, *([1] * (inputs.dim() - 1))) * kept
        flat = grad_output.new_zeros(rows * kept, width)
        flat.index_add_(0, (local_ids + offsets)[looked_up], grad_output[looked_up])
        weight = flat.view(rows, kept, width)
        if module.padding_idx is not None and first <= module.padding_idx < end:  # nn.Embedding made it >= 0
            weight[:, module.padding_idx - first] = 0  # autograd leaves the padding row's gradient at zero
        return {"weight": weight}
    if weights is None:
        raise ValueError(f"{type(module).__name__} needs its weights recorded (see ParameterCalls).")
    unhooked = _WithoutHooks(module)

    def one_row(x, g):
        def output(w):
            return functional_call(unhooked, {f"module.{name}": t for name, t in w.items()}, (x.unsqueeze(0),))

        return vjp(output, weights)[1](g.unsqueeze(0))[0]

    grads = vmap(one_row)(inputs, grad_output)  # small parameters (norms): whole, then the rows asked for
    for name, (first, end) in row_ranges.items():
        if grads[name].dim() > 1:
            grads[name] = grads[name][:, first:end]
    return grads


def add_per_sample_squares(
    sums: dict, calls, owners: dict, chunk_size=None, grad_scale=1.0, local_part=None, local_rows=None
):
    """sums[name] += sum over rows of (that row's gradient of parameter `name`) ** 2, for the parameters of the
    recorded `calls` (`owners[module]`: [(local name, name)]), `chunk_size` rows at a time (None: all at once).
    Output gradients are divided by `grad_scale` first. Under ZeRO-3 and FSDP2, `local_rows(name)` gives the dim-0
    rows (first, end) of the full parameter this rank holds part of (None: all), only those rows of each gradient
    are formed, and `local_part(name, rows, first)` keeps this rank's part of them (flat)."""
    uses = {}
    for module, *_ in calls:
        for _, name in owners[module]:
            uses[name] = uses.get(name, 0) + 1
    rows = calls[0][1].shape[0]
    chunk_size = chunk_size or rows
    ranges = {}
    if local_rows is not None:
        ranges = {name: local_rows(name) for name in sums}
        ranges = {name: rows_of_name for name, rows_of_name in ranges.items() if rows_of_name is not None}

    def add_squares(name, per_row):
        first = ranges[name][0] if name in ranges else 0
        sums[name].add_((local_part(name, per_row, first) if local_part else per_row).pow(2).sum(0))

    for start in range(0, rows, chunk_size):
        rows_slice = slice(start, start + chunk_size)
        shared = {}  # per-sample gradients of parameters used by several calls, summed before squaring
        for module, inputs, grad_output, weights in calls:
            if grad_output is None or not any(name in sums for _, name in owners[module]):
                continue  # an output the loss does not depend on, or a module with frozen parameters only
            grad_output = grad_output[rows_slice] / grad_scale if grad_scale != 1 else grad_output[rows_slice]
            wanted = {local: ranges[name] for local, name in owners[module] if name in ranges}
            grads = per_sample_parameter_grads(module, inputs[rows_slice], grad_output, weights, wanted)
            for local_name, name in owners[module]:
                if name not in sums:  # frozen
                    continue
                if uses[name] == 1:
                    add_squares(name, grads[local_name])
                else:
                    shared[name] = grads[local_name] + shared[name] if name in shared else grads[local_name]
        for name, per_row in shared.items():
            add_squares(name, per_row)


def parameter_owner_names(model) -> dict[nn.Module, list[tuple[str, str]]]:
    """{module: [(local name, name in model.named_parameters())]} for the modules that directly own parameters (a
    tied weight has one name, whichever module uses it)."""
    name_of = {id(param): name for name, param in model.named_parameters()}
    return {
        module: [(local, name_of[id(param)]) for local, param in module.named_parameters(recurse=False)]
        for module in parameter_owners(model)
    }


class _Fp32Copies:
    """Gradients on fp32, detached copies of the local weights, run through `functional_call`: no data-parallel hook
    sees them, so each rank squares its own sequences' gradients (used when parameters are not partitioned)."""

    def __init__(self, model, normalization: str):
        self.model, self.normalization = model, normalization
        self.params = {name: param.detach().float() for name, param in trainable_named_parameters(model)}
        # Frozen weights and buffers too, in fp32, so the whole forward runs in fp32 whatever the training dtype.
        self.others = {name: p.detach().float() for name, p in model.named_parameters() if name not in self.params}
        self.others.update(dict(model.named_buffers()))
        self.device = next(iter(self.params.values())).device

    def zeros(self) -> dict[str, torch.Tensor]:
        return {name: torch.zeros_like(p) for name, p in self.params.items()}

    def logits(self, input_ids):
        return functional_call(self.model, {**self.params, **self.others}, (input_ids,)).logits

    def _log_likelihood(self, params, input_ids, labels, batch_mean):
        return sequence_log_likelihood(
            self.model, {**params, **self.others}, input_ids, labels, self.normalization, batch_mean
        )

    def backward_recorded(self, input_ids, labels) -> float:
        """The backward of the summed (normalised) log-likelihood; the recording hooks alone see its gradients."""
        self._log_likelihood(self.params, input_ids, labels, False).backward()
        return 1.0

    def gradients(self, input_ids, labels, batch_mean: bool) -> dict[str, torch.Tensor]:
        return grad(self._log_likelihood)(self.params, input_ids, labels, batch_mean)

    local_part = local_rows = None  # whole parameters


class _ShardedBackward:
    """Gradients by the model's own sharded backward (ZeRO-3, FSDP2): `backward(loss)` reduce-scatters them into each
    rank's partitions and returns the factor they then carry (DeepSpeed's fp16 loss scale) or None for 1;
    `zero_grad()` clears them. Every rank must run the same sequences."""

    def __init__(self, model, backward, zero_grad, normalization: str):
        self.model, self._backward, self._zero_grad, self.normalization = model, backward, zero_grad, normalization
        self.named = trainable_named_parameters(model)
        self.params = dict(self.named)
        self.device = local_fp32_param(self.named[0][1]).device

    def zeros(self) -> dict[str, torch.Tensor]:
        return {name: torch.zeros_like(local_fp32_param(param)) for name, param in self.named}

    def logits(self, input_ids):
        return self.model(input_ids=input_ids).logits

    def _backward_of(self, input_ids, labels, batch_mean) -> float:
        token_log_probs, mask = completion_log_probs(self.logits(input_ids), labels)
        return self._backward(-normalized_log_likelihood(token_log_probs, mask, self.normalization, batch_mean)) or 1.0

    def backward_recorded(self, input_ids, labels) -> float:
        scale = self._backward_of(input_ids, labels, False)
        self._zero_grad()  # the recorded output gradients are what is used, not the partitions' sums
        return scale

    def gradients(self, input_ids, labels, batch_mean: bool) -> dict[str, torch.Tensor]:
        """This rank's part of the gradient (the average of identical gradients over ranks: exactly its part)."""
        scale = self._backward_of(input_ids, labels, batch_mean)
        grads = {name: local_grad(param).detach().float() / scale for name, param in self.named}
        self._zero_grad()
        return grads

    def local_rows(self, name) -> tuple[int, int] | None:
        return local_row_range(self.params[name])

    def local_part(self, name, rows, first_row: int = 0):
        return local_part_of_rows(self.params[name], rows, first_row).to(self.device)


def _squared_gradient_sums(model, batches, strategy, kind, estimator, generator, chunk_size):
    """(sums of squared gradients, number of terms) over `batches`: the one Fisher loop, whatever the strategy, with
    the model in eval mode (no dropout: the Fisher of the model as it predicts)."""
    with eval_mode(model):
        return _squared_gradient_sums_in_eval(model, batches, strategy, kind, estimator, generator, chunk_size)


def _squared_gradient_sums_in_eval(model, batches, strategy, kind, estimator, generator, chunk_size):
    owners = parameter_owner_names(model)
    layerwise = estimator == "per_sample" and supports_layerwise(model)
    if estimator == "per_sample" and not layerwise:
        logger.warning("A module owns parameters and submodules: the per-sample Fisher loops over sequences.")
    sums = strategy.zeros()
    count = 0
    for batch in batches:
        input_ids, labels = (t.to(strategy.device) for t in right_pad(batch))
        if estimator == "batched" or layerwise:
            groups = [(input_ids, labels)]
        else:  # one row at a time, its padding cut off
            lengths = (labels != -100).cumsum(1).argmax(1) + 1
            groups = [(input_ids[i : i + 1, :n], labels[i : i + 1, :n]) for i, n in enumerate(lengths.tolist())]
        for ids, lab in groups:
            if kind == "model":
                with torch.no_grad():
                    lab = sample_model_labels(strategy.logits(ids), lab, generator)
            if layerwise:
                with ParameterCalls(owners) as recorded:
                    grad_scale = strategy.backward_recorded(ids, lab)
                add_per_sample_squares(
                    sums, recorded.calls, owners, chunk_size, grad_scale, strategy.local_part, strategy.local_rows
                )
            else:
                for name, gradient in strategy.gradients(ids, lab, batch_mean=estimator == "batched").items():
                    sums[name].add_(gradient.to(sums[name].device).pow(2))
            count += 1 if estimator == "batched" else ids.shape[0]
    return sums, count


def compute_fisher(
    model,
    batches: Iterable[dict],
    kind: str = "empirical",
    estimator: str = "per_sample",
    normalization: str = "token",
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
    reduce_across_ranks: bool = True,
) -> dict[str, torch.Tensor]:
    """The diagonal Fisher `{param_name: tensor}` (fp32, shaped like each trainable parameter).

    `batches` yields HF-style dicts (`input_ids`, `labels` with -100 on untrained tokens, optional `attention_mask`)
    holding this rank's share of the data; the ranks' sums are all-reduced once. `chunk_size` bounds how many
    sequences' gradients of one parameter are materialised at once (memory: chunk_size x the largest parameter,
    fp32); None takes a whole batch.
    """
    check_fisher_options(kind, estimator, normalization)
    strategy = _Fp32Copies(model, normalization)
    sums, count = _squared_gradient_sums(model, batches, strategy, kind, estimator, generator, chunk_size)
    count = torch.tensor(float(count), dtype=torch.float64)
    if reduce_across_ranks and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for total in sums.values():
            dist.all_reduce(total)
        count = count.to(strategy.device)
        dist.all_reduce(count)
    if count.item() == 0:
        raise ValueError("compute_fisher got no data: the retain set (or this rank's share of it) is empty.")
    return {name: total / count.item() for name, total in sums.items()}


def compute_fisher_partitioned(
    model,
    batches: Iterable[dict],
    kind: str = "empirical",
    estimator: str = "per_sample",
    normalization: str = "token",
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
    *,
    backward,
    zero_grad,
) -> dict[str, torch.Tensor]:
    """The diagonal Fisher of each rank's parameter partitions (ZeRO-3, FSDP2) `{param_name: flat local tensor}`,
    never gathered; the same numbers as `compute_fisher` on one process.

    Every rank runs the *same* sequences (`batches` must be identical on all ranks), so that it can square its own
    part of each sequence's gradient with no communication. `per_sample`, layer by layer as `compute_fisher` (module
    inputs and output gradients are not partitioned): one sharded backward per batch, then each rank forms each
    row's gradient of the rows of each parameter its partition touches (1/W of each Linear and Embedding weight's
    products and memory on W ranks) and keeps its part. A model with a module owning both parameters and
    submodules, and `batched`, read the gradient partitions the backward's reduce-scatter leaves each rank instead,
    one backward per sequence or per batch. `backward(loss)` runs the sharded backward (`engine.backward` under
    DeepSpeed, `loss.backward()` under FSDP2) and returns the factor the gradients then carry (DeepSpeed's fp16 loss
    scale), or None for 1; `zero_grad()` clears the gradients after each read.
    """
    check_fisher_options(kind, estimator, normalization)
    strategy = _ShardedBackward(model, backward, zero_grad, normalization)
    sums, count = _squared_gradient_sums(model, batches, strategy, kind, estimator, generator, chunk_size)
    if count == 0:
        raise ValueError("compute_fisher_partitioned got no data: the retain set is empty.")
    return {name: total.div_(count) for name, total in sums.items()}


def fisher_stats(fisher: dict[str, torch.Tensor], partitioned_numel: int | None = None, device=None) -> dict:
    """Mean and max of F over all parameters. When `fisher` holds this rank's partitions (ZeRO-3, FSDP2), pass the
    full model's parameter count as `partitioned_numel`: sums and maxima are then reduced across ranks (on
    `device`), and ZeRO-3's zero padding of partitions does not count."""
    total = torch.tensor(sum(t.double().sum().item() for t in fisher.values()), device=device)
    peak = torch.tensor(max(t.max().item() for t in fisher.values()), device=device)
    numel = sum(t.numel() for t in fisher.values())
    if partitioned_numel is not None:
        numel = partitioned_numel
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(total)
            dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    return {"fisher_mean": total.item() / max(numel, 1), "fisher_max": peak.item()}
