# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Elastic weight consolidation (Kirkpatrick et al., 2017) on the retain set's diagonal Fisher.

    penalty = (ewc_lambda / 2) * sum_i F_i * (theta_i - theta*_i) ** 2

exactly as the seed README states (lambda / 2, not lambda), once per optimizer step. theta* (the anchors) are the
weights training starts from; F comes from `open_r1.continual.fisher` on `fisher_num_samples` rows of the retain
set, tokenised and masked by the trainer exactly as SFT data (assistant tokens only when the recipe trains on those).
Logged: `ewc/penalty` (its value at the weights when the log is written), `ewc/fisher_mean`, `ewc/fisher_max`,
`ewc/recomputes` and, in the `dynamically` mode, `ewc/retain_nll`.

Where the penalty acts: its gradient, lambda * F * (theta - theta*), is added to the gradients after the backward
(and its data-parallel reduction): three multi-tensor kernels per group of whole fp32 parameters (a few
elementwise kernels per parameter otherwise), no graph and no backward pass through it (about half the cost of the
loss term on the tiny model; a GPU step of a small model is bound by kernel launches). Under ZeRO-3 and FSDP this
acts on each rank's gradient partition. Only under DeepSpeed ZeRO-1/2 is the penalty a loss term: there gradients
are reduced into DeepSpeed's flat partitions, whose only per-parameter accessors gather the whole gradient. Its
graph keeps only the parameters (`_FisherWeightedDistance`), where a plain autograd expression would keep
theta - theta* (and F copied to the device, when offloaded) for every parameter until the backward.

Recompute schedule (`recompute_fisher_mode`):
- `never`: F is computed once, at the start.
- `intervals`: F is recomputed every `recompute_fisher_intervals` of training (0.25: at 25%, 50% and 75% of
  `max_steps`).
- `dynamically`: every `fisher_drift_check_steps` steps the mean per-token NLL of a fixed probe of retain rows is
  measured; F is recomputed when it exceeds (1 + `fisher_drift_threshold`) times its value at the last computation.
On a recompute F is re-estimated at the current weights; with `ewc_online` the new estimate is added to the decayed
old one (F <- ewc_online_gamma * F + F_new, online EWC, Schwarz et al. 2018). The anchors stay at the starting
weights (what must be retained) unless `ewc_reanchor` is set, in which case they move to the current weights.
"""

import functools
import logging
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ..memory import ALL, FISHER, LOSS_BYTES_PER_LOGIT
from .base import ContinualMethod, after_backward_available, eval_mode
from .fisher import (
    FISHER_ESTIMATORS,
    FISHER_KINDS,
    FISHER_NORMALIZATIONS,
    check_fisher_options,
    completion_log_probs,
    compute_fisher,
    compute_fisher_partitioned,
    fisher_stats,
)
from .retain_data import collate_right_padded, labelled_retain_rows
from .sharding import (
    add_to_local_grad,
    foreach_groups,
    is_sharded,
    is_zero3,
    local_fp32_param,
    local_tensor,
    split_plain_fp32,
    trainable_named_parameters,
)


logger = logging.getLogger(__name__)

RECOMPUTE_MODES = ("never", "intervals", "dynamically")


@dataclass
class EWCConfig:
    """EWC's recipe keys (the seed's `custom_optim: fisher` turns it on too)."""

    use_ewc: bool = field(
        default=False,
        metadata={
            "help": "EWC: add (ewc_lambda / 2) * sum_i F_i (theta_i - theta*_i)^2, F the diagonal Fisher of "
            "the retain set, theta* the starting weights. Composes with every other method."
        },
    )
    ewc_lambda: float = field(
        default=50.0,
        metadata={
            "help": "EWC penalty strength lambda in (lambda / 2) * sum_i F_i (theta_i - theta*_i)^2 (the seed's "
            "formula; the fork's code added lambda * sum_i F_i (...)^2, so its lambda L is 2L here). Its scale depends "
            "on `fisher_normalization`."
        },
    )
    fisher_kind: str = field(
        default="empirical",
        metadata={
            "help": "'empirical': gradients of the data's own completions; 'model': of tokens sampled from "
            "the model at each completion position (the true Fisher).",
            "choices": list(FISHER_KINDS),
        },
    )
    fisher_estimator: str = field(
        default="per_sample",
        metadata={
            "help": "'per_sample': mean of squared per-sequence gradients (exact); 'batched': mean of "
            "squared mini-batch gradients (cheaper, about F / fisher_batch_size near an optimum).",
            "choices": list(FISHER_ESTIMATORS),
        },
    )
    fisher_normalization: str = field(
        default="token",
        metadata={
            "help": "What each retain sequence's log-likelihood gradient is the gradient of: 'token' (default), "
            "its mean over trained tokens, as SFT's loss is and as the fork computed it (the model's mean token loss "
            "at batch 1), so `ewc_lambda` keeps the fork's meaning whatever the retain length; 'sequence', its sum "
            "(the textbook Fisher; against a per-token loss the penalty then grows ~T to ~T^2 with retain length "
            "T). The batched estimator squares the batch's mean over tokens ('token') or sequences ('sequence').",
            "choices": list(FISHER_NORMALIZATIONS),
        },
    )
    fisher_num_samples: int = field(default=256, metadata={"help": "Retain rows the Fisher is estimated on."})
    fisher_batch_size: int = field(default=8, metadata={"help": "Rows per batch of the Fisher computation."})
    fisher_chunk_size: int | None = field(
        default=None,
        metadata={
            "help": "Rows whose per-sample gradients of one parameter are materialised at once (memory: chunk x "
            "the largest parameter, fp32; the batch's activations are held anyway). Default: a whole Fisher batch."
        },
    )
    recompute_fisher_mode: str = field(
        default="never",
        metadata={
            "help": "'never', 'intervals' (every `recompute_fisher_intervals` of training) or 'dynamically' "
            "(when the retain NLL drifts past `fisher_drift_threshold`).",
            "choices": list(RECOMPUTE_MODES),
        },
    )
    recompute_fisher_intervals: float = field(
        default=0.25, metadata={"help": "Fraction of training between recomputes in 'intervals' mode."}
    )
    fisher_drift_threshold: float = field(
        default=0.1,
        metadata={
            "help": "'dynamically': recompute when the retain NLL exceeds (1 + threshold) x its value at the "
            "last computation."
        },
    )
    fisher_drift_check_steps: int = field(
        default=10, metadata={"help": "'dynamically': steps between retain-NLL checks."}
    )
    ewc_online: bool = field(
        default=False, metadata={"help": "On recompute, F <- ewc_online_gamma * F + F_new (online EWC)."}
    )
    ewc_online_gamma: float = field(
        default=1.0,
        metadata={
            "help": "Decay of the old Fisher in online EWC. At 1.0 (no decay) each recompute adds a whole Fisher, "
            "so with the anchors still at the starting weights (no `ewc_reanchor`) the penalty grows by about one "
            "Fisher's worth per recompute: lower gamma (e.g. 0.5-0.9, Schwarz et al. 2018) to keep its scale."
        },
    )
    ewc_reanchor: bool = field(
        default=False, metadata={"help": "On recompute, move the anchors theta* to the current weights."}
    )
    fisher_offload: bool = field(
        default=False,
        metadata={
            "help": "Keep Fisher and anchors on CPU: they are copied to the device one parameter at a time at each "
            "step (GPU memory saved; two values per parameter moved per step, 8 bytes in float32)."
        },
    )
    fisher_storage_dtype: str = field(
        default="float32",
        metadata={
            "help": "Storage dtype of Fisher and anchors (computed in fp32 either way).",
            "choices": ["float32", "bfloat16"],
        },
    )

    def check_ewc_args(self) -> None:
        check_fisher_options(self.fisher_kind, self.fisher_estimator, self.fisher_normalization)
        for key, value, choices in (
            ("recompute_fisher_mode", self.recompute_fisher_mode, RECOMPUTE_MODES),
            ("fisher_storage_dtype", self.fisher_storage_dtype, ("float32", "bfloat16")),
        ):
            if value not in choices:
                raise ValueError(f"`{key}` must be one of {choices}, got {value!r}.")
        if self.fisher_drift_threshold < 0:
            raise ValueError(f"`fisher_drift_threshold` must be >= 0, got {self.fisher_drift_threshold}.")
        if self.use_ewc and self.retain_dataset_id is None:
            raise ValueError("EWC (`use_ewc` / `custom_optim: fisher`) needs `retain_dataset_id` for its Fisher.")
        if self.ewc_lambda < 0:
            raise ValueError(f"`ewc_lambda` must be >= 0, got {self.ewc_lambda}.")
        if self.recompute_fisher_mode == "intervals" and not 0 < self.recompute_fisher_intervals < 1:
            raise ValueError(f"`recompute_fisher_intervals` must be in (0, 1), got {self.recompute_fisher_intervals}.")
        for key in ("fisher_num_samples", "fisher_batch_size", "fisher_drift_check_steps"):
            if getattr(self, key) < 1:
                raise ValueError(f"`{key}` must be >= 1, got {getattr(self, key)}.")
        if self.fisher_chunk_size is not None and self.fisher_chunk_size < 1:
            raise ValueError(f"`fisher_chunk_size` must be >= 1, got {self.fisher_chunk_size}.")
        if not 0 <= self.ewc_online_gamma <= 1:
            raise ValueError(f"`ewc_online_gamma` must be in [0, 1], got {self.ewc_online_gamma}.")


class _FisherWeightedDistance(torch.autograd.Function):
    """sum F * (theta - theta*)^2 for one parameter. The graph keeps only the parameter itself: theta - theta* and
    copies of F and theta* (offloaded ones brought to the device) are made again in the backward, one parameter at
    a time, instead of living from the forward to the backward for every parameter at once."""

    @staticmethod
    def forward(ctx, param, fisher, anchor):
        ctx.save_for_backward(param)
        ctx.fisher, ctx.anchor = fisher, anchor  # the stored tensors themselves, no copies
        theta = param.detach().float()
        diff = theta - anchor.to(theta)
        return torch.dot((fisher.to(theta) * diff).flatten(), diff.flatten())

    @staticmethod
    def backward(ctx, grad_output):
        (param,) = ctx.saved_tensors
        theta = param.detach().float()
        grad = (2 * grad_output) * ctx.fisher.to(theta) * (theta - ctx.anchor.to(theta))
        return grad.to(param.dtype), None, None


def ewc_penalty(model, fisher: dict, anchors: dict, ewc_lambda: float) -> torch.Tensor:
    """(ewc_lambda / 2) * sum_i F_i (theta_i - theta*_i)^2 over the trainable parameters named in `fisher`."""
    terms = [
        _FisherWeightedDistance.apply(param, fisher[name], anchors[name])
        for name, param in trainable_named_parameters(model)
        if name in fisher
    ]
    return 0.5 * ewc_lambda * torch.stack(terms).sum()


def _weighted_differences(rows):
    """(param, theta - theta*, F * (theta - theta*)) for rows of (param, F, theta*), on this rank's fp32 part of each
    parameter, flat, one parameter at a time, so no more than one parameter's temporaries exist at once."""
    for param, fisher, anchor in rows:
        theta = local_fp32_param(param)
        diff = theta - anchor.flatten().to(theta)
        yield param, diff, fisher.flatten().to(theta) * diff


@torch.no_grad()
def add_ewc_gradient(named_params, fisher: dict, anchors: dict, ewc_lambda: float, grad_scale: float = 1.0) -> None:
    """grad += grad_scale * ewc_lambda * F * (theta - theta*), the gradient of `ewc_penalty`, on this rank's part of
    each gradient (the whole gradient when parameters are not partitioned). `grad_scale` is the fp16 loss scale the
    gradients still carry. Whole fp32 parameters with their state beside them take the multi-tensor path (the same
    three operations, bit for bit); partitions, other dtypes and offloaded state go one parameter at a time."""
    alpha = grad_scale * ewc_lambda
    plain, others = split_plain_fp32([(param, fisher[name], anchors[name]) for name, param in named_params])
    for params, fishers, anchor_group in foreach_groups(plain):
        for param in params:
            if param.grad is None:  # a parameter this step's loss did not reach still gets the added term
                param.grad = torch.zeros_like(param)
        weighted_diffs = torch._foreach_sub([p.detach().view(-1) for p in params], [a.view(-1) for a in anchor_group])
        torch._foreach_mul_(weighted_diffs, [f.view(-1) for f in fishers])
        torch._foreach_add_([p.grad.view(-1) for p in params], weighted_diffs, alpha=alpha)
    for param, _, weighted_diff in _weighted_differences(others):
        add_to_local_grad(param, weighted_diff, alpha=alpha)


@torch.no_grad()
def penalty_value(named_params, fisher: dict, anchors: dict, ewc_lambda: float) -> torch.Tensor:
    """The value of `ewc_penalty` on this rank's part of each parameter (float64; sum it over ranks when parameters
    are partitioned)."""
    rows = [(param, fisher[name], anchors[name]) for name, param in named_params]
    terms = [torch.dot(w, d).double() for _, d, w in _weighted_differences(rows)]
    return ewc_lambda / 2 * torch.stack(terms).sum()  # one device sync when read, not one per parameter


def recompute_steps(mode: str, interval: float, max_steps: int) -> list[int]:
    """The optimizer steps after which `intervals` recomputes the Fisher."""
    if mode != "intervals":
        return []
    every = max(1, round(interval * max_steps))
    return list(range(every, max_steps, every))


class EWC(ContinualMethod):
    name = "ewc"
    enable_key = "use_ewc"
    config_class = EWCConfig
    needs_retain_data = True

    @classmethod
    def memory(cls, context) -> list[tuple[str, str, float, str]]:
        """The Fisher and anchors through the run; before training, the Fisher estimation (`compute_fisher`): fp32
        working copies of 16-bit weights, the squared-gradient sums and the result (a new tensor while the sums
        live), per-sample gradients (`fisher_chunk_size` rows of the largest parameter; the whole gradient with the
        batched estimator) and an eval-mode forward and backward of `fisher_batch_size` retain sequences, which
        gradient checkpointing does not cover (fp32 on one rank's copies; the model's own dtype when partitioned)."""
        store = context.bytes_of(context.get("fisher_storage_dtype", EWCConfig))
        offload = context.get("fisher_offload", EWCConfig)
        held = 0 if offload else 2 * store * context.local
        rows = [(ALL, "EWC Fisher + anchors", held, "on CPU" if offload else f"2 x {store} bytes per local parameter")]
        batch = int(context.get("fisher_batch_size", EWCConfig))
        chunk = int(context.get("fisher_chunk_size", EWCConfig) or batch)
        # Per-sample gradients of the largest parameter for `chunk` rows, their squares, and the squares' sum.
        per_sample = (2 * chunk + 1) * 4.0 * context.largest
        if context.sharded:  # compute_fisher_partitioned: the sharded model itself, sums per partition, in place
            copies, result, value_bytes = 0.0, 0.0, context.activation_bytes
            per_sample /= context.processes
        else:
            copies = 0.0 if context.weight_bytes == 4 else 4.0 * context.params
            result, value_bytes = 4.0 * context.local, 4
        if context.get("fisher_estimator", EWCConfig) == "batched":
            per_sample = 4.0 * context.local  # one whole gradient per batch
        sums = 4.0 * context.local
        logits = batch * context.length * context.vocab * LOSS_BYTES_PER_LOGIT  # fp32: the copy is the logits
        forward = context.activations(batch, checkpointed=False, value_bytes=value_bytes) + logits + per_sample
        rows += [
            (FISHER, "fp32 working copies", copies, "of the 16-bit weights (none: fp32 or partitioned)"),
            (FISHER, "squared-gradient sums", sums, "fp32 per local parameter"),
            (
                FISHER,
                "Fisher forward/backward or result",
                max(forward, result),
                f"{batch} retain sequences in eval mode + {chunk} rows' per-sample gradients and squares, or the result",
            ),
        ]
        return rows

    @classmethod
    def from_args(cls, args, retain=None) -> "EWC":
        return cls(args, retain)

    def __init__(self, config: EWCConfig, retain_dataset):
        self.config = config  # the recipe's EWCConfig fields, validated when the recipe was parsed
        self.retain_dataset = retain_dataset
        self.storage_device = "cpu" if config.fisher_offload else None
        self.storage_dtype = getattr(torch, config.fisher_storage_dtype)
        self.seed = getattr(config, "seed", 0)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchors: dict[str, torch.Tensor] = {}
        self.computed_at_steps: list[int] = []
        self.reference_retain_nll: float | None = None
        # Set at setup: partitioned (ZeRO-3, FSDP) keeps Fisher and anchors for local partitions; the penalty is a
        # loss term where the backend has no after-backward hook (DeepSpeed ZeRO-1/2, see the module docstring).
        self._partitioned = False
        self._penalty_in_loss = False
        self._named_params: list = []  # the model's trainable parameters
        self._device = None
        self._planned_steps: list[int] = []

    # --- data -----------------------------------------------------------------------------------------------
    def _prepare_data(self, trainer) -> None:
        data = labelled_retain_rows(self.retain_dataset, trainer, self.config.fisher_num_samples, self.seed)
        self._collate = functools.partial(collate_right_padded, pad_token_id=trainer.processing_class.pad_token_id)
        self._probe_rows = data.select(range(min(len(data), 4 * self.config.fisher_batch_size)))  # same on all ranks
        # The Fisher is a mean over sequences, so their order is free: sorted by length, a batch pads its rows to a
        # similar length (on the testbed 3% padded positions instead of 35%).
        lengths = [len(ids) for ids in data["input_ids"]]
        data = data.select(sorted(range(len(data)), key=lengths.__getitem__))
        rank, world = trainer.args.process_index, trainer.args.world_size
        # Each rank its own share, reduced once; with partitioned parameters every rank runs every row.
        self._local_rows = data if self._partitioned else data.select(range(rank, len(data), world))

    def _batches(self, rows):
        return DataLoader(rows, batch_size=self.config.fisher_batch_size, shuffle=False, collate_fn=self._collate)

    # --- life cycle ------------------------------------------------------------------------------------------
    def setup(self, trainer) -> None:
        self._partitioned = is_sharded(trainer)
        self._prepare_data(trainer)
        self._named_params, self._device = trainable_named_parameters(trainer.model), trainer.args.device
        self._penalty_in_loss = not after_backward_available(trainer)
        config = self.config
        self._planned_steps = recompute_steps(
            config.recompute_fisher_mode, config.recompute_fisher_intervals, trainer.state.max_steps
        )
        if trainer.continual_resume_checkpoint is None:  # a resumed run restores all of this from its checkpoint
            self._compute(trainer, step=0)
            self.anchors = self._snapshot(trainer)

    def _snapshot(self, trainer) -> dict[str, torch.Tensor]:
        # Partitioned: this rank's fp32 (master) partition of each parameter, flat, as the gradient partitions are.
        local = local_fp32_param if self._partitioned else (lambda param: local_tensor(param).float())
        return {name: self._store(local(param).detach().clone()) for name, param in self._named_params}

    def _store(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(device=self.storage_device or tensor.device, dtype=self.storage_dtype)

    def _compute(self, trainer, step: int, retain_nll: float | None = None) -> None:
        """Estimate F at the current weights; `retain_nll`, when the caller just measured it there, is reused."""
        config = self.config
        generator = torch.Generator(device=trainer.args.device).manual_seed(self.seed + step)
        options = (config.fisher_kind, config.fisher_estimator, config.fisher_normalization, generator)
        if self._partitioned:
            backward, zero_grad = self._sharded_backward(trainer)
            new = compute_fisher_partitioned(
                trainer.model,
                self._batches(self._local_rows),
                *options,
                config.fisher_chunk_size,
                backward=backward,
                zero_grad=zero_grad,
            )
        else:
            model = trainer.accelerator.unwrap_model(trainer.model)
            new = compute_fisher(model, self._batches(self._local_rows), *options, config.fisher_chunk_size)
        if config.ewc_online and self.fisher:
            new = {n: config.ewc_online_gamma * self.fisher[n].to(new[n]) + new[n] for n in new}
        if all(t.abs().sum().item() == 0 for t in new.values()):
            raise RuntimeError("The Fisher is identically zero: no retain tokens carry a loss (check the masking).")
        self.fisher = {name: self._store(tensor) for name, tensor in new.items()}
        self.computed_at_steps.append(step)
        if config.recompute_fisher_mode == "dynamically":
            self.reference_retain_nll = retain_nll if retain_nll is not None else self._retain_nll(trainer)
        numel = None
        if self._partitioned:  # DTensor.numel() is the full parameter's; ZeRO-3 keeps it as ds_numel
            numel = sum(getattr(p, "ds_numel", p.numel()) for _, p in self._named_params)
        for key, value in fisher_stats(self.fisher, numel, trainer.args.device).items():
            self.logged.add(key, value)
        logger.info("EWC: Fisher (%s, %s) computed at step %d", config.fisher_kind, config.fisher_estimator, step)

    @torch.no_grad()
    def _retain_nll(self, trainer) -> float:
        total, tokens = 0.0, 0
        with eval_mode(trainer.accelerator.unwrap_model(trainer.model)) as model:
            for batch in self._batches(self._probe_rows):
                batch = {k: v.to(trainer.args.device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
                logits = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")).logits
                token_log_probs, mask = completion_log_probs(logits, batch["labels"])
                total -= token_log_probs[mask].sum().item()
                tokens += int(mask.sum())
        return total / max(tokens, 1)

    @staticmethod
    def _sharded_backward(trainer):
        """(backward, zero_grad) that reduce-scatter gradients into each rank's partitions, outside the training
        step (for the Fisher)."""
        if is_zero3(trainer):
            engine = trainer.accelerator.deepspeed_engine_wrapped.engine

            def backward(loss):
                engine.set_gradient_accumulation_boundary(True)
                engine.backward(loss, scale_wrt_gas=False)
                return float(engine.optimizer.loss_scale)  # fp16: the gradients are scaled until the step

            return backward, lambda: engine.optimizer.zero_grad(set_to_none=True)
        return (lambda loss: loss.backward()), (lambda: trainer.model.zero_grad(set_to_none=True))

    def after_backward(self, trainer, grad_scale: float) -> None:
        """The penalty's gradient, added to (each rank's part of) the gradients after the backward's reduction and
        before clipping and the step, once per optimizer step: the same update as the penalty in the loss, without
        autograd and without gathering any parameter."""
        add_ewc_gradient(self._named_params, self.fisher, self.anchors, self.config.ewc_lambda, grad_scale)

    def loss_term(self, trainer, model, inputs, hidden_states):
        if not self._penalty_in_loss:  # added to the gradients instead (after_backward)
            return None
        return ewc_penalty(trainer.accelerator.unwrap_model(model), self.fisher, self.anchors, self.config.ewc_lambda)

    def on_step_end(self, trainer) -> None:
        config, step = self.config, trainer.state.global_step
        recompute, nll = step in self._planned_steps, None
        if config.recompute_fisher_mode == "dynamically" and step % config.fisher_drift_check_steps == 0:
            nll = self._retain_nll(trainer)
            self.logged.add("retain_nll", nll)
            recompute = nll > (1 + config.fisher_drift_threshold) * self.reference_retain_nll
        if recompute:
            self._compute(trainer, step, retain_nll=nll)
            if config.ewc_reanchor:
                self.anchors = self._snapshot(trainer)
        self.logged.add("recomputes", len(self.computed_at_steps) - 1)

    def state_dict(self) -> dict:
        return {
            "fisher": {n: t.cpu() for n, t in self.fisher.items()},
            "anchors": {n: t.cpu() for n, t in self.anchors.items()},
            "computed_at_steps": list(self.computed_at_steps),
            "reference_retain_nll": self.reference_retain_nll,
        }

    def load_state_dict(self, state: dict) -> None:
        self.fisher = {n: self._store(t) for n, t in state["fisher"].items()}
        self.anchors = {n: self._store(t) for n, t in state["anchors"].items()}
        self.computed_at_steps = list(state["computed_at_steps"])
        self.reference_retain_nll = state["reference_retain_nll"]

    def metrics(self) -> dict[str, float]:
        """Averages since the last log, and `penalty`: the penalty at the current weights (a value when the log is
        written, as the Trainer's grad_norm, so that no step pays for computing it)."""
        if self._named_params:
            penalty = penalty_value(self._named_params, self.fisher, self.anchors, self.config.ewc_lambda)
            if self._partitioned and dist.is_initialized():  # every rank logs at the same steps
                penalty = penalty.to(self._device)
                dist.all_reduce(penalty)
            self.logged.add("penalty", penalty)
        return super().metrics()
