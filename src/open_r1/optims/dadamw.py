# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""DAdamW: `DAdam` with decoupled weight decay; at preconditioner_power = 0.5 it is exactly `torch.optim.AdamW`."""

from .dadam import DAdam


class DAdamW(DAdam):
    """DAdam with decoupled weight decay (theta <- theta * (1 - lr * weight_decay) before the preconditioned step).

    Defaults match `torch.optim.AdamW` (weight_decay=0.01). See `open_r1.optims.dadam` for the update, and for
    learning-rate and eps guidance at preconditioner_power > 0.5.
    """

    decoupled_weight_decay = True

    def __init__(self, params, weight_decay: float = 0.01, **kwargs):
        super().__init__(params, weight_decay=weight_decay, **kwargs)
