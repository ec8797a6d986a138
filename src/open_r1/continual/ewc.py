# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Elastic weight consolidation (Kirkpatrick et al., 2017) on the retain set's diagonal Fisher.

    penalty = (ewc_lambda / 2) * sum_i F_i * (theta_i - theta*_i) ** 2

exactly as the seed README states (lambda / 2, not lambda), once per optimizer step. theta* (the anchors) are the
weights training starts from; F comes from `open_r1.continual.fisher` on `fisher_num_samples` rows of the retain
set, tokenised and masked by the trainer exactly as SFT data (assistant tokens only when the recipe trains on those).
Logged: `ewc/penalty` (its value at the weights when the log is written), `ewc/fisher_mean`, `ewc/fisher_max`,
`ewc/recomputes` and, in the `dynamically` mode, `ewc/retain_nll`.

Where the penalty acts: its gradient, lambda * F * (theta - theta*), is added to the gradients after the backward
(and its data-parallel reduction), one parameter at a time: a few elementwise kernels per parameter, no graph and
no backward pass through it (about half the cost of the loss term on the tiny model). Under ZeRO-3 and FSDP this
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

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from .base import ContinualMethod, MetricAverager
from .fisher import completion_log_probs, compute_fisher, compute_fisher_partitioned, fisher_stats
from .sharding import (
    add_to_local_grad,
    is_sharded,
    is_zero3,
    local_fp32_param,
    local_tensor,
    trainable_named_parameters,
)


logger = logging.getLogger(__name__)

RECOMPUTE_MODES = ("never", "intervals", "dynamically")


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


def _weighted_differences(named_params, fisher: dict, anchors: dict):
    """(param, theta - theta*, F * (theta - theta*)) on this rank's fp32 part of each parameter, flat, one parameter
    at a time, so no more than one parameter's temporaries exist at once."""
    for name, param in named_params:
        theta = local_fp32_param(param)
        diff = theta - anchors[name].flatten().to(theta)
        yield param, diff, fisher[name].flatten().to(theta) * diff


@torch.no_grad()
def add_ewc_gradient(named_params, fisher: dict, anchors: dict, ewc_lambda: float, grad_scale: float = 1.0) -> None:
    """grad += grad_scale * ewc_lambda * F * (theta - theta*), the gradient of `ewc_penalty`, on this rank's part of
    each gradient (the whole gradient when parameters are not partitioned). `grad_scale` is the fp16 loss scale the
    gradients still carry."""
    for param, _, weighted_diff in _weighted_differences(named_params, fisher, anchors):
        add_to_local_grad(param, weighted_diff, alpha=grad_scale * ewc_lambda)


@torch.no_grad()
def penalty_value(named_params, fisher: dict, anchors: dict, ewc_lambda: float) -> torch.Tensor:
    """The value of `ewc_penalty` on this rank's part of each parameter (float64; sum it over ranks when parameters
    are partitioned)."""
    terms = [torch.dot(w, d).double() for _, d, w in _weighted_differences(named_params, fisher, anchors)]
    return ewc_lambda / 2 * torch.stack(terms).sum()  # one device sync when read, not one per parameter


def assistant_labels(example: dict, tokenizer) -> dict:
    """input_ids of a `messages` chat and labels that keep only the assistant tokens (-100 elsewhere).

    The assistant tokens are those the chat template marks with `{% generation %}`. A template without the markers
    (the stock Llama-3.1-Instruct one) gets the tokens of the last reply instead: everything after the prompt the
    template renders for the turns before it, with the generation prompt (the reply, its end-of-turn token and
    whatever else the template writes after it).
    """
    messages = example["messages"]
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    input_ids, mask = list(encoded["input_ids"]), encoded["assistant_masks"]
    if not any(mask):
        if not messages or messages[-1]["role"] != "assistant":
            raise ValueError(f"A retain chat must end with an assistant reply; this one ends with {messages[-1:]}.")
        prompt = tokenizer.apply_chat_template(
            messages[:-1], tokenize=True, return_dict=True, add_generation_prompt=True
        )["input_ids"]
        if input_ids[: len(prompt)] != list(prompt):
            raise ValueError(
                "The chat template marks no assistant tokens ({% generation %} missing) and the chat does not start "
                "with its own generation prompt, so the reply's tokens cannot be found: set a `chat_template` with "
                "{% generation %} markers."
            )
        mask = [0] * len(prompt) + [1] * (len(input_ids) - len(prompt))
    labels = [t if m else -100 for t, m in zip(input_ids, mask)]
    return {"input_ids": input_ids, "labels": labels}


def collate_right_padded(examples: list[dict], pad_token_id: int) -> dict:
    length = max(len(e["input_ids"]) for e in examples)
    batch = {"input_ids": [], "labels": [], "attention_mask": []}
    for e in examples:
        pad = length - len(e["input_ids"])
        batch["input_ids"].append(list(e["input_ids"]) + [pad_token_id] * pad)
        batch["labels"].append(list(e["labels"]) + [-100] * pad)
        batch["attention_mask"].append([1] * len(e["input_ids"]) + [0] * pad)
    return {key: torch.tensor(value) for key, value in batch.items()}


def labelled_batches(rows, tokenizer, batch_size: int) -> list[dict]:
    """`messages` rows as right-padded batches with assistant-only labels: Fisher input built without a Trainer."""
    examples = [assistant_labels(row, tokenizer) for row in rows]
    return [
        collate_right_padded(examples[i : i + batch_size], tokenizer.pad_token_id)
        for i in range(0, len(examples), batch_size)
    ]


def recompute_steps(mode: str, interval: float, max_steps: int) -> list[int]:
    """The optimizer steps after which `intervals` recomputes the Fisher."""
    if mode != "intervals":
        return []
    every = max(1, round(interval * max_steps))
    return list(range(every, max_steps, every))


class EWC(ContinualMethod):
    name = "ewc"

    def __init__(
        self,
        retain_dataset,
        ewc_lambda: float,
        fisher_kind: str = "empirical",
        fisher_estimator: str = "per_sample",
        fisher_normalization: str = "token",
        fisher_num_samples: int = 256,
        fisher_batch_size: int = 8,
        fisher_chunk_size: int | None = None,
        recompute_mode: str = "never",
        recompute_interval: float = 0.25,
        drift_threshold: float = 0.1,
        drift_check_steps: int = 10,
        online: bool = False,
        online_gamma: float = 1.0,
        reanchor: bool = False,
        offload: bool = False,
        storage_dtype: torch.dtype = torch.float32,
        seed: int = 0,
    ):
        if recompute_mode not in RECOMPUTE_MODES:
            raise ValueError(f"`recompute_fisher_mode` must be one of {RECOMPUTE_MODES}, got {recompute_mode!r}.")
        if not 0 < recompute_interval < 1:
            raise ValueError(f"`recompute_fisher_intervals` must be in (0, 1), got {recompute_interval}.")
        self.retain_dataset = retain_dataset
        self.ewc_lambda = ewc_lambda
        self.kind, self.estimator, self.normalization = fisher_kind, fisher_estimator, fisher_normalization
        self.num_samples, self.batch_size, self.chunk_size = fisher_num_samples, fisher_batch_size, fisher_chunk_size
        self.recompute_mode, self.recompute_interval = recompute_mode, recompute_interval
        self.drift_threshold, self.drift_check_steps = drift_threshold, drift_check_steps
        self.online, self.online_gamma, self.reanchor = online, online_gamma, reanchor
        self.storage_device = "cpu" if offload else None
        self.storage_dtype = storage_dtype
        self.seed = seed
        self.fisher: dict[str, torch.Tensor] = {}
        # Set at setup: partitioned (ZeRO-3, FSDP) keeps Fisher and anchors for local partitions; the penalty is a
        # loss term under DeepSpeed ZeRO-1/2 only (see the module docstring).
        self._partitioned = False
        self._penalty_in_loss = False
        self._backward_patched = False
        self._named_params: list = []  # the model's trainable parameters
        self._device = None
        self.anchors: dict[str, torch.Tensor] = {}
        self.computed_at_steps: list[int] = []
        self.reference_retain_nll: float | None = None
        self._planned_steps: list[int] = []
        self._metrics = MetricAverager()

    # --- data -----------------------------------------------------------------------------------------------
    def _prepare_data(self, trainer) -> None:
        data = self.retain_dataset.shuffle(seed=self.seed)
        data = data.select(range(min(self.num_samples, len(data))))
        if hasattr(trainer, "_prepare_dataset"):
            # SFT: tokenised, masked and collated by TRL exactly as the training data.
            data = trainer._prepare_dataset(
                data,
                trainer.processing_class,
                trainer.args,
                packing=False,
                formatting_func=None,
                dataset_name="fisher",
            )
            # TRL folds the assistant/completion masks into `labels` (-100 where SFT does not train) and drops them.
            data = data.select_columns(["input_ids", "labels"])
        else:
            # GRPO has no SFT pipeline: the retain chats' assistant tokens, via the template's generation markers.
            tokenizer = trainer.processing_class
            data = data.map(assistant_labels, fn_kwargs={"tokenizer": tokenizer}, remove_columns=data.column_names)
        # Our own collator, not the trainer's: a `padding_free` collator would pack a batch into one row, and the
        # per-sample Fisher would silently become per-batch.
        self._collate = functools.partial(collate_right_padded, pad_token_id=trainer.processing_class.pad_token_id)
        self._probe_rows = data.select(range(min(len(data), 4 * self.batch_size)))  # identical on every rank
        # The Fisher is a mean over sequences, so their order is free: sorted by length, a batch pads its rows to a
        # similar length (on the testbed 3% padded positions instead of 35%).
        lengths = [len(ids) for ids in data["input_ids"]]
        data = data.select(sorted(range(len(data)), key=lengths.__getitem__))
        rank, world = trainer.args.process_index, trainer.args.world_size
        # Each rank its own share, reduced once; with partitioned parameters every rank runs every row.
        self._local_rows = data if self._partitioned else data.select(range(rank, len(data), world))

    def _batches(self, rows):
        return DataLoader(rows, batch_size=self.batch_size, shuffle=False, collate_fn=self._collate)

    # --- life cycle ------------------------------------------------------------------------------------------
    def setup(self, trainer) -> None:
        self._partitioned = is_sharded(trainer)
        self._prepare_data(trainer)
        self._named_params, self._device = trainable_named_parameters(trainer.model), trainer.args.device
        self._penalty_in_loss = trainer.is_deepspeed_enabled and not is_zero3(trainer)
        if not self._penalty_in_loss and not self._backward_patched:  # once, however often `train` is called
            self._add_penalty_gradient_after_backward(trainer)
            self._backward_patched = True
        self._planned_steps = recompute_steps(self.recompute_mode, self.recompute_interval, trainer.state.max_steps)
        if trainer._continual_resume_checkpoint is None:  # a resumed run restores all of this from its checkpoint
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
        generator = torch.Generator(device=trainer.args.device).manual_seed(self.seed + step)
        if self._partitioned:
            backward, zero_grad = self._sharded_backward(trainer)
            batches = self._batches(self._local_rows)
            new = compute_fisher_partitioned(
                trainer.model,
                batches,
                backward,
                zero_grad,
                self.kind,
                self.estimator,
                generator,
                self.chunk_size,
                self.normalization,
            )
        else:
            new = compute_fisher(
                trainer.accelerator.unwrap_model(trainer.model),
                self._batches(self._local_rows),
                kind=self.kind,
                estimator=self.estimator,
                chunk_size=self.chunk_size,
                generator=generator,
                normalization=self.normalization,
            )
        if self.online and self.fisher:
            new = {n: self.online_gamma * self.fisher[n].to(new[n]) + new[n] for n in new}
        if all(t.abs().sum().item() == 0 for t in new.values()):
            raise RuntimeError("The Fisher is identically zero: no retain tokens carry a loss (check the masking).")
        self.fisher = {name: self._store(tensor) for name, tensor in new.items()}
        self.computed_at_steps.append(step)
        if self.recompute_mode == "dynamically":
            self.reference_retain_nll = retain_nll if retain_nll is not None else self._retain_nll(trainer)
        numel = None
        if self._partitioned:  # DTensor.numel() is the full parameter's; ZeRO-3 keeps it as ds_numel
            numel = sum(getattr(p, "ds_numel", p.numel()) for _, p in self._named_params)
        for key, value in fisher_stats(self.fisher, numel, trainer.args.device).items():
            self._metrics.add(key, value)
        logger.info("EWC: Fisher (%s, %s) computed at step %d", self.kind, self.estimator, step)

    @torch.no_grad()
    def _retain_nll(self, trainer) -> float:
        model = trainer.accelerator.unwrap_model(trainer.model)
        was_training = model.training
        model.eval()
        total, tokens = 0.0, 0
        for batch in self._batches(self._probe_rows):
            batch = {k: v.to(trainer.args.device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")).logits
            token_log_probs, mask = completion_log_probs(logits, batch["labels"])
            total -= token_log_probs[mask].sum().item()
            tokens += int(mask.sum())
        model.train(was_training)
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

    def _add_penalty_gradient_after_backward(self, trainer) -> None:
        """The penalty's gradient is added to (each rank's part of) the gradients after the backward's reduction and
        before clipping and the step, once per optimizer step (on the micro-batch that synchronises): the same update
        as the penalty in the loss, without autograd and without gathering any parameter."""

        def add_penalty_gradient(grad_scale: float):
            add_ewc_gradient(self._named_params, self.fisher, self.anchors, self.ewc_lambda, grad_scale)

        if is_zero3(trainer):
            # accelerate's DeepSpeedEngineWrapper.backward runs the engine's step right after its backward: this is
            # that method with the penalty inserted between the two.
            wrapper = trainer.accelerator.deepspeed_engine_wrapped
            engine = wrapper.engine

            def backward(loss, sync_gradients=True, **kwargs):
                engine.set_gradient_accumulation_boundary(is_boundary=sync_gradients)
                engine.backward(loss, **kwargs)
                if sync_gradients:
                    add_penalty_gradient(float(engine.optimizer.loss_scale))
                    engine.step()

            wrapper.backward = backward
        else:  # one process, DDP, FSDP: the Trainer clips and steps after accelerator.backward
            accelerator = trainer.accelerator
            accelerator_backward = accelerator.backward

            def backward(loss, **kwargs):
                accelerator_backward(loss, **kwargs)
                if accelerator.sync_gradients:
                    add_penalty_gradient(accelerator.scaler.get_scale() if accelerator.scaler is not None else 1.0)

            accelerator.backward = backward

    def loss_term(self, trainer, model, inputs, hidden_states):
        if not self._penalty_in_loss:  # added to the gradients instead (_add_penalty_gradient_after_backward)
            return None
        return ewc_penalty(trainer.accelerator.unwrap_model(model), self.fisher, self.anchors, self.ewc_lambda)

    def on_step_end(self, trainer) -> None:
        step = trainer.state.global_step
        recompute, nll = step in self._planned_steps, None
        if self.recompute_mode == "dynamically" and step % self.drift_check_steps == 0:
            nll = self._retain_nll(trainer)
            self._metrics.add("retain_nll", nll)
            recompute = nll > (1 + self.drift_threshold) * self.reference_retain_nll
        if recompute:
            self._compute(trainer, step, retain_nll=nll)
            if self.reanchor:
                self.anchors = self._snapshot(trainer)
        self._metrics.add("recomputes", len(self.computed_at_steps) - 1)

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
            penalty = penalty_value(self._named_params, self.fisher, self.anchors, self.ewc_lambda)
            if self._partitioned and dist.is_initialized():  # every rank logs at the same steps
                penalty = penalty.to(self._device)
                dist.all_reduce(penalty)
            self._metrics.add("penalty", penalty)
        return self._metrics.pop()
