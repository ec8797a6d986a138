# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""WiSE-FT (Wortsman et al., 2022, "Robust fine-tuning of zero-shot models"): the trained weights interpolated with
the weights training started from,

    theta = (1 - alpha) * theta_start + alpha * theta_trained

once, after the last step (after the EMA, when both are on, and after `load_best_model_at_end`), before the model is
saved: alpha = 1 is the fine-tuned model, alpha = 0 the starting one. Checkpoints keep the trained weights (a resume
continues training); the starting weights (this rank's part of each trainable parameter, in its dtype, on CPU) are in
every checkpoint's continual state, so a resumed run interpolates with the same start.

With a LoRA adapter (`use_peft`) the interpolation is of the merged weights, W0 + alpha * B A, not of the two
factors (which would give alpha * B ((1 - alpha) A0 + alpha A)): from PEFT's zero start (B0 = 0) that is B scaled by
alpha and A as trained, exactly. An adapter that does not start at zero (another `init_lora_weights`) and DoRA (whose
magnitude enters the weight non-linearly) are refused at the start of training.

Choosing alpha needs no retraining: `interpolate_models` forms the interpolated model from the two checkpoints, and
the testbed comparison scores a grid of alphas from one trained model (its `wise_ft` methods).
"""

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .base import ContinualMethod
from .sharding import local_trainable_parameters


# LoRA's factors as PEFT names them: the down projection A (kept as trained) and the up projection B (interpolated).
LORA_A, LORA_B = ("lora_A.", "lora_embedding_A."), ("lora_B.", "lora_embedding_B.")


@dataclass
class WiSEFTConfig:
    wise_ft_alpha: float | None = field(
        default=None,
        metadata={
            "help": "WiSE-FT: after training, the saved model is (1 - alpha) * the starting weights + alpha * the "
            "trained ones, alpha in (0, 1] (1: the trained model). Unset: off."
        },
    )

    def check_wise_ft_args(self) -> None:
        if self.wise_ft_alpha is not None and not 0.0 < self.wise_ft_alpha <= 1.0:
            raise ValueError(f"`wise_ft_alpha` must be in (0, 1], got {self.wise_ft_alpha}.")


@torch.no_grad()
def interpolate_(trained: torch.Tensor, start: torch.Tensor, alpha: float) -> None:
    """trained <- (1 - alpha) * start + alpha * trained, in place, computed in fp32 whatever the dtype."""
    mixed = trained.float().lerp_(start.to(device=trained.device, dtype=torch.float32), 1.0 - alpha)
    trained.copy_(mixed)


def interpolate_models(start_dir: str | Path, trained_dir: str | Path, alpha: float):
    """The model of `trained_dir` with every parameter interpolated with `start_dir`'s (same architecture), for
    scoring a grid of alphas from one trained model."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(trained_dir)
    start = dict(AutoModelForCausalLM.from_pretrained(start_dir).named_parameters())
    for name, param in model.named_parameters():  # tied weights once (a state dict lists them under each name)
        if name not in start or start[name].shape != param.shape:
            raise ValueError(f"{start_dir} and {trained_dir} differ in the parameter `{name}`.")
        interpolate_(param.data, start[name].data, alpha)
    return model


class WiSEFT(ContinualMethod):
    name = "wise_ft"
    enable_key = "wise_ft_alpha"

    @classmethod
    def enabled(cls, args) -> bool:
        return getattr(args, cls.enable_key) is not None

    @classmethod
    def from_args(cls, args, retain=None) -> "WiSEFT":
        return cls(args.wise_ft_alpha)

    def __init__(self, alpha: float):
        self.alpha = alpha
        self.start: dict[str, torch.Tensor] = {}

    def setup(self, trainer) -> None:
        self.start = {
            name: local.detach().to("cpu", copy=True) for name, local in local_trainable_parameters(trainer.model)
        }
        if trainer.continual_resume_checkpoint is None:  # a resumed run's start was checked when it began
            self._check_lora_start()

    def _check_lora_start(self) -> None:
        if any("lora_magnitude_vector" in name for name in self.start):
            raise ValueError(
                "`wise_ft_alpha` cannot interpolate a DoRA adapter (`use_dora`): its magnitude enters the merged "
                "weight non-linearly. Use plain LoRA, or score interpolations of merged models offline."
            )
        for name, start in self.start.items():
            if any(key in name for key in LORA_B) and start.any():
                raise ValueError(
                    f"`wise_ft_alpha` with LoRA needs an adapter that starts at zero (lora_B = 0, PEFT's default "
                    f"`init_lora_weights`), so that alpha * B A interpolates the merged weights; `{name}` does not "
                    "start at zero (another init, or a loaded adapter)."
                )

    def on_train_end(self, trainer) -> None:
        for name, local in local_trainable_parameters(trainer.model):
            if not any(key in name for key in LORA_A):  # B: alpha * B from B0 = 0; A stays as trained
                interpolate_(local, self.start[name], self.alpha)

    def state_dict(self) -> dict:
        return {"start": self.start}

    def load_state_dict(self, state: dict) -> None:
        for name, tensor in state["start"].items():
            self.start[name].copy_(tensor)
