# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Access to the part of each parameter this rank owns, under DDP, DeepSpeed ZeRO-1/2/3 and FSDP2.

Methods that keep per-parameter state (EMA shadows, EWC anchors and Fisher) keep it for the local part only, so
nothing is ever gathered: a full replica under DDP and ZeRO-1/2, the rank's partition under ZeRO-3
(`param.ds_tensor`) and FSDP2 (the local shard of a `DTensor`).
"""

import torch


def local_tensor(param: torch.Tensor) -> torch.Tensor:
    """The tensor holding this rank's part of `param` (shares storage: writing to it updates the model)."""
    if hasattr(param, "ds_tensor"):  # DeepSpeed ZeRO-3 partitioned parameter
        return param.ds_tensor
    if hasattr(param, "to_local"):  # DTensor (FSDP2)
        return param.to_local()
    return param.data


def is_sharded(trainer) -> bool:
    """Whether parameters are partitioned across ranks (ZeRO-3 or FSDP), so per-parameter state is per rank."""
    if trainer.is_fsdp_enabled:
        return True
    if trainer.is_deepspeed_enabled:
        return trainer.accelerator.state.deepspeed_plugin.zero_stage == 3
    return False


def is_zero3(trainer) -> bool:
    return trainer.is_deepspeed_enabled and trainer.accelerator.state.deepspeed_plugin.zero_stage == 3


def trainable_named_parameters(model) -> list[tuple[str, torch.Tensor]]:
    return [(name, param) for name, param in model.named_parameters() if param.requires_grad]
