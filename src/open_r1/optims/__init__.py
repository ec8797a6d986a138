# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
from dataclasses import dataclass, field

from .dadam import DAdam
from .dadamw import DAdamW


CUSTOM_OPTIMS = ("dadamw", "fisher")


@dataclass
class CustomOptimizerConfig:
    """The seed's `custom_optim` key: DAdamW, or `fisher`, its alias for EWC (`use_ewc: true`)."""

    custom_optim: str | None = field(
        default=None,
        metadata={
            "help": "Custom optimizer instead of the Trainer's `optim`: 'dadamw' (diagonal-preconditioned "
            "AdamW, see `preconditioner_power`), or 'fisher', the seed's name for EWC (`use_ewc: true`, the Trainer's "
            "own optimizer). Unset: the Trainer's own optimizer.",
            "choices": list(CUSTOM_OPTIMS),
        },
    )
    preconditioner_power: float = field(
        default=0.5,
        metadata={
            "help": "DAdamW preconditioner power gamma in [0.5, 1]: step = lr * m_hat / (v_hat**gamma + eps). "
            "0.5 is AdamW, 1.0 the diagonal (empirical-Fisher) natural gradient. At gamma > 0.5 lower the "
            "learning rate (about lr_adam * 1e-3 at gamma = 1) and raise `adam_epsilon` (1e-6 to 1e-4)."
        },
    )

    def check_custom_optimizer_args(self) -> None:
        if self.custom_optim is not None and self.custom_optim not in CUSTOM_OPTIMS:
            raise ValueError(f"`custom_optim`: unknown value {self.custom_optim!r}; choose from {CUSTOM_OPTIMS}.")
        if not 0.5 <= self.preconditioner_power <= 1.0:
            raise ValueError(f"`preconditioner_power` must be in [0.5, 1.0], got {self.preconditioner_power}.")
        if self.custom_optim == "fisher":
            self.use_ewc = True


def custom_optimizer_cls_and_kwargs(args) -> tuple[type, dict] | None:
    """The `(optimizer class, kwargs)` a recipe's `custom_optim` asks for, or None for the Trainer's own `optim`.

    The Trainer still builds the parameter groups (no weight decay on biases and norm weights) and the recipe's
    LR scheduler around it, and DeepSpeed/FSDP receive it as a client optimizer.
    """
    if args.custom_optim != "dadamw":
        return None
    return DAdamW, {
        "lr": args.learning_rate,
        "betas": (args.adam_beta1, args.adam_beta2),
        "eps": args.adam_epsilon,
        "preconditioner_power": args.preconditioner_power,
    }


__all__ = ["CUSTOM_OPTIMS", "CustomOptimizerConfig", "DAdam", "DAdamW", "custom_optimizer_cls_and_kwargs"]
