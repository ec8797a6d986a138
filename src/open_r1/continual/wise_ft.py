# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""WiSE-FT (Wortsman et al., 2022, "Robust fine-tuning of zero-shot models"): the trained weights interpolated with
the weights training started from,

    theta = (1 - alpha) * theta_start + alpha * theta_trained

once, after the last step (after the EMA, when both are on, and after `load_best_model_at_end`), before the model is
saved: alpha = 1 is the fine-tuned model, alpha = 0 the starting one. Checkpoints keep the trained weights (a resume
continues training); the starting weights (this rank's part of each trainable parameter, in its dtype, on CPU) are in
every checkpoint's continual state, so a resumed run interpolates with the same start.

With a LoRA adapter (`use_peft`) the interpolation is of the merged weights, W0 + alpha * B A, not of the two
factors (which would give alpha * B ((1 - alpha) A0 + alpha A)): from PEFT's start, where one factor of each pair is
zero (B for linear layers, A for embeddings), that is the zero-start factor scaled by alpha and the other as trained,
exactly. A pair with neither factor at zero (another `init_lora_weights`, a loaded adapter) and DoRA (whose magnitude
enters the weight non-linearly) are refused at the start of training.

Choosing alpha needs no retraining: `interpolate_models` forms the interpolated model from the two checkpoints, and
the testbed comparison scores a grid of alphas from one trained model (its `wise_ft` methods).
"""

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..memory import ALL
from .base import ContinualMethod
from .sharding import local_trainable_parameters


# LoRA's factor pairs as PEFT names them: the merged weight's delta is their product.
LORA_PAIRS = (("lora_A.", "lora_B."), ("lora_embedding_A.", "lora_embedding_B."))


def lora_pairs(names) -> list[tuple[str, str]]:
    """(A, B) parameter names of each LoRA factor pair among `names`."""
    names = set(names)
    return [(n, n.replace(a, b)) for a, b in LORA_PAIRS for n in sorted(names) if a in n and n.replace(a, b) in names]


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
    config_class = WiSEFTConfig

    @classmethod
    def enabled(cls, args) -> bool:
        return getattr(args, cls.enable_key) is not None

    @classmethod
    def memory(cls, context) -> list[tuple[str, str, float, str]]:
        """The starting weights it interpolates with are kept on CPU: nothing on the GPU."""
        return [(ALL, "WiSE-FT start weights", 0.0, "on CPU")]

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
        self._kept = None
        if trainer.continual_resume_checkpoint is None:  # a resumed run's start is restored later, and was checked
            self._kept = self._lora_factors_kept_as_trained()

    def _lora_factors_kept_as_trained(self) -> set[str]:
        """Of each LoRA pair, the factor kept as trained: the partner of the one that starts at zero (whose
        interpolation with its zero start is alpha times itself). Whether a start is zero is agreed over every rank's
        part (ZeRO-3 partitions), so every rank decides, or refuses, alike."""
        if any("lora_magnitude_vector" in name for name in self.start):
            raise ValueError(
                "`wise_ft_alpha` cannot interpolate a DoRA adapter (`use_dora`): its magnitude enters the merged "
                "weight non-linearly. Use plain LoRA, or score interpolations of merged models offline."
            )
        pairs = lora_pairs(self.start)
        nonzero = torch.tensor([[self.start[a].any(), self.start[b].any()] for a, b in pairs], dtype=torch.uint8)
        if pairs and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(nonzero, op=torch.distributed.ReduceOp.MAX)
        kept = set()
        for (a, b), (a_nonzero, b_nonzero) in zip(pairs, nonzero.tolist()):
            if a_nonzero and b_nonzero:
                raise ValueError(
                    f"`wise_ft_alpha` with LoRA needs one factor of each pair to start at zero (PEFT's default "
                    f"`init_lora_weights`), so that the merged weights can be interpolated; neither `{a}` nor `{b}` "
                    "does (another init, or a loaded adapter)."
                )
            kept.add(a if b_nonzero == 0 else b)
        return kept

    def on_train_end(self, trainer) -> None:
        kept = self._kept if self._kept is not None else self._lora_factors_kept_as_trained()
        for name, local in local_trainable_parameters(trainer.model):
            if name not in kept:  # a zero-start LoRA factor becomes alpha times itself
                interpolate_(local, self.start[name], self.alpha)

    def state_dict(self) -> dict:
        return {"start": self.start}

    def load_state_dict(self, state: dict) -> None:
        for name, tensor in state["start"].items():
            self.start[name].copy_(tensor)
