# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Gradient projection against the retain gradient (A-GEM, Chaudhry et al., 2019).

Every `agem_every_steps` optimizer steps, after the update batch's backward (and its data-parallel reduction), the
gradient g_r of the mean token loss of a batch of `agem_retain_batch_size` retain rows is taken (one extra forward and
backward; each rank takes its own rows of the retain order and g_r is the gradient of the token mean over every
rank's rows, as one process at the global retain batch takes it, so every replica projects the same g against the same
g_r). When g conflicts with it (g . g_r <
0), g is projected onto the half-space where the retain loss does not rise to first order:

    g <- g - (g . g_r / g_r . g_r) g_r

so the step keeps the part of the update that does not undo the retain task. Costs per projection: one forward and
backward of the retain batch, and a copy of the gradients (one value per trainable parameter, in their dtype) while
g_r is taken. Retain rows are labelled as SFT trains (assistant tokens), drawn in a seeded order, each rank its own
share; the position in that order is in every checkpoint's state.

Runs where the after-backward hook runs: one process, DDP. Not under DeepSpeed ZeRO (1/2: gradients live in flat
partitions; 3: the extra backward would run inside the engine's step) nor FSDP yet.
"""

from dataclasses import dataclass, field

import torch

from ..memory import LOSS_BYTES_PER_LOGIT
from .base import ContinualMethod, eval_mode
from .retain_data import RetainBatches
from .sharding import token_mean_over_ranks, trainable_named_parameters


@dataclass
class AGEMConfig:
    use_agem: bool = field(
        default=False,
        metadata={"help": "A-GEM: project the update gradient when it conflicts with the retain gradient."},
    )
    agem_retain_batch_size: int = field(default=8, metadata={"help": "Retain rows per retain-gradient batch."})
    agem_every_steps: int = field(
        default=1, metadata={"help": "Take the retain gradient and project every this many optimizer steps."}
    )
    agem_num_samples: int = field(
        default=1024, metadata={"help": "Retain rows drawn (seeded) for the retain batches, cycled."}
    )

    def check_agem_args(self) -> None:
        for key in ("agem_retain_batch_size", "agem_every_steps", "agem_num_samples"):
            if getattr(self, key) < 1:
                raise ValueError(f"`{key}` must be >= 1, got {getattr(self, key)}.")
        if self.use_agem and self.retain_dataset_id is None:
            raise ValueError("`use_agem` needs `retain_dataset_id` for its retain gradients.")


@torch.no_grad()
def project_conflicting(grads: list[torch.Tensor], retain_grads: list[torch.Tensor]) -> bool:
    """g <- g - (g . g_r / g_r . g_r) g_r in place when g . g_r < 0 (dot products in fp64 over all tensors); returns
    whether it projected."""
    dot = sum(torch.dot(g.flatten().double(), r.flatten().double()) for g, r in zip(grads, retain_grads))
    norm = sum(r.flatten().double().pow(2).sum() for r in retain_grads)
    if not (dot < 0 and norm > 0):
        return False
    scale = (dot / norm).item()
    for g, r in zip(grads, retain_grads):
        g.sub_(r.to(g.dtype), alpha=scale)
    return True


class AGEM(ContinualMethod):
    name = "agem"
    enable_key = "use_agem"
    config_class = AGEMConfig
    needs_retain_data = True
    unsupported_sharding = ("ZeRO-1/2", "ZeRO-3", "FSDP")

    @classmethod
    def memory(cls, context) -> list[tuple[str, str, float, str]]:
        """Its pass after the training backward: a copy of the update's gradients (their dtype) while a retain
        batch's forward and backward in eval mode (which gradient checkpointing does not cover) fill the gradients
        again."""
        batch = int(context.get("agem_retain_batch_size", AGEMConfig))
        checkpointed = False
        logits = batch * context.length * context.vocab * LOSS_BYTES_PER_LOGIT
        copy = context.weight_bytes * context.params
        return [
            ("retain pass (A-GEM)", "update gradient copy", copy, "one value per trainable parameter"),
            (
                "retain pass (A-GEM)",
                "retain activations and logits",
                context.activations(batch, checkpointed) + logits,
                f"{batch} retain sequences",
            ),
        ]

    @classmethod
    def from_args(cls, args, retain=None) -> "AGEM":
        return cls(args, retain)

    def __init__(self, config: AGEMConfig, retain_dataset):
        self.config, self.retain_dataset = config, retain_dataset
        self.seed = getattr(config, "seed", 0)
        self.retain: RetainBatches | None = None

    def setup(self, trainer) -> None:
        config = self.config
        self.retain = RetainBatches(
            self.retain_dataset,
            trainer,
            config.agem_num_samples,
            config.agem_retain_batch_size,
            config.agem_every_steps,
            self.seed,
            "use_agem",
        )
        self._params = [param for _, param in trainable_named_parameters(trainer.model)]

    def after_backward(self, trainer, grad_scale: float) -> None:
        batch = self.retain.next_if_due(trainer.args.device)
        if batch is None:
            return
        params = [p for p in self._params if p.grad is not None]  # those the update loss reached
        update = [p.grad.detach().clone() for p in params]
        for p in self._params:
            p.grad = None
        tokens = int((batch["labels"][:, 1:] != -100).sum())
        with eval_mode(trainer.model) as model:  # the retain gradient of the model as it is, without dropout
            if tokens:  # the token sum's gradient, made the mean over every rank's tokens below
                (model(**batch).loss * tokens).backward()
        retain = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        token_mean_over_ranks(retain, tokens)
        for p in self._params:
            p.grad = None  # a parameter only the retain loss reached gets no gradient of its own
        for p, g in zip(params, update):
            p.grad = g
        projected = project_conflicting(update, retain)
        self.logged.add("projected", float(projected))

    def state_dict(self) -> dict:
        return self.retain.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.retain.load_state_dict(state)
