# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Distillation on retain chats (LwF, Li & Hoiem, 2017): beside the update loss, the KL from the frozen starting
model to the model on the replies of retain chats,

    loss += distill_weight * mean over reply tokens of KL(p_start(. | prefix) || p_model(. | prefix))

on one batch of `distill_batch_size` retain rows every `distill_every_steps` optimizer steps, teacher-forced on the
retain set's replies (labelled as SFT trains: assistant tokens). Where replay trains on one fixed answer per position
(cross-entropy to a token), this matches the start's whole next-token distribution there, refusals and helpful
replies alike: what the start would say, with its uncertainty, not what the data says.

The term's gradient is added after the update backward (and its data-parallel reduction): one extra forward and
backward of the retain batch (each rank its own rows of the retain order; the term's gradient is that of the token
mean over every rank's rows, as one process at the global retain batch takes it, so every replica adds the same) and a forward of the frozen copy, times the fp16 loss scale the
update gradients carry. Memory: a frozen copy of the model, and the term's gradient (one value per trainable
parameter) before it is added. Logged: `lwf/kl`.
The position in the retain batches is in every checkpoint. One process and DDP (not DeepSpeed nor FSDP yet).
"""

from dataclasses import dataclass, field

import torch

from ..memory import ALL
from .base import ContinualMethod, eval_mode
from .retain_data import RetainBatches
from .sharding import add_to_local_grad, token_mean_over_ranks, trainable_named_parameters
from .trust_region import frozen_copy, kl_ref_to_policy


@dataclass
class DistillConfig:
    use_retain_distillation: bool = field(
        default=False,
        metadata={"help": "LwF: add the KL from the frozen starting model to the model on retain replies."},
    )
    distill_weight: float = field(default=1.0, metadata={"help": "Weight of the per-token KL in the loss."})
    distill_batch_size: int = field(default=8, metadata={"help": "Retain rows per distillation batch."})
    distill_every_steps: int = field(default=1, metadata={"help": "Add the term every this many optimizer steps."})
    distill_num_samples: int = field(
        default=1024, metadata={"help": "Retain rows drawn (seeded) for the distillation batches, cycled."}
    )

    def check_distill_args(self) -> None:
        for key in ("distill_batch_size", "distill_every_steps", "distill_num_samples"):
            if getattr(self, key) < 1:
                raise ValueError(f"`{key}` must be >= 1, got {getattr(self, key)}.")
        if self.distill_weight < 0:
            raise ValueError(f"`distill_weight` must be >= 0, got {self.distill_weight}.")
        if self.use_retain_distillation and self.retain_dataset_id is None:
            raise ValueError("`use_retain_distillation` needs `retain_dataset_id` for its retain chats.")


def reply_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the positions that predict a labelled token of KL(teacher || student) of the next-token
    distributions."""
    predicts = labels[:, 1:] != -100
    return kl_ref_to_policy(teacher_logits[:, :-1][predicts], student_logits[:, :-1][predicts])


class RetainDistillation(ContinualMethod):
    name = "lwf"
    enable_key = "use_retain_distillation"
    config_class = DistillConfig
    needs_retain_data = True
    unsupported_sharding = ("ZeRO-1/2", "ZeRO-3", "FSDP")

    @classmethod
    def memory(cls, context) -> list[tuple[str, str, float, str]]:
        """The frozen copy of the starting model, and its own pass after the training backward: a retain batch's
        forward and backward in eval mode (which gradient checkpointing does not cover) with the teacher's logits
        beside the student's (the KL's fp32 terms), and the new gradients `autograd.grad` returns while the update's
        wait."""
        batch = int(context.get("distill_batch_size", DistillConfig))
        logits = batch * context.length * context.vocab * (2 * context.activation_bytes + 20)
        retain_pass = context.activations(batch, checkpointed=False) + logits
        phase = "retain pass (LwF)"
        return [
            (ALL, "LwF teacher (frozen copy)", context.weight_bytes * context.params, "the starting model"),
            (phase, "retain activations and logits", retain_pass, f"{batch} retain sequences, eval mode"),
            (phase, "retain gradients", context.weight_bytes * context.params, "beside the update's"),
        ]

    @classmethod
    def from_args(cls, args, retain=None) -> "RetainDistillation":
        return cls(args, retain)

    def __init__(self, config: DistillConfig, retain_dataset):
        self.config, self.retain_dataset = config, retain_dataset
        self.seed = getattr(config, "seed", 0)
        self.teacher = None
        self.retain: RetainBatches | None = None

    def on_trainer_init(self, trainer) -> None:
        self.teacher = frozen_copy(trainer.model)  # the starting model, before any checkpoint is loaded

    def setup(self, trainer) -> None:
        config = self.config
        self.teacher.to(trainer.args.device)
        self.retain = RetainBatches(
            self.retain_dataset,
            trainer,
            config.distill_num_samples,
            config.distill_batch_size,
            config.distill_every_steps,
            self.seed,
            "use_retain_distillation",
        )
        self._params = [param for _, param in trainable_named_parameters(trainer.model)]

    def after_backward(self, trainer, grad_scale: float) -> None:
        batch = self.retain.next_if_due(trainer.args.device)
        if batch is None:
            return
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        with torch.no_grad():
            teacher_logits = self.teacher(**inputs).logits
        tokens = int((batch["labels"][:, 1:] != -100).sum())
        grads = [None] * len(self._params)
        if tokens:
            with eval_mode(trainer.model) as model:  # the model as it predicts, as the teacher (no dropout)
                kl = reply_kl(teacher_logits, model(**inputs).logits, batch["labels"])
                # Through the unwrapped module, which no DDP hook reduces: the token sum's gradient, taken apart,
                # made the mean over every rank's tokens, then added.
                loss = self.config.distill_weight * grad_scale * kl * tokens
                grads = torch.autograd.grad(loss, self._params, allow_unused=True)
            self.logged.add("kl", kl.detach())
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(self._params, grads)]
        token_mean_over_ranks(grads, tokens)
        for param, grad in zip(self._params, grads):
            add_to_local_grad(param, grad.flatten())

    def state_dict(self) -> dict:
        return self.retain.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.retain.load_state_dict(state)
