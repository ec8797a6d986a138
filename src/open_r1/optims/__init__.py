# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
from .dadam import DAdam
from .dadamw import DAdamW


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


__all__ = ["DAdam", "DAdamW", "custom_optimizer_cls_and_kwargs"]
