# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""EMA of weights (Kim et al., 2025): a shadow copy that trails the fine-tuned weights.

After every optimizer step, for each trainable parameter (this rank's part of it):

    theta_ema <- eta * theta_ema + (1 - eta) * theta

so `ema_eta` is the weight of the *old shadow*: eta = 0 tracks the model exactly, eta -> 1 never moves from the
starting weights. The shadow starts at the weights training starts from (the pre-trained model), is kept in fp32
(optionally on CPU), and is copied into the model when training ends, so the saved model is the EMA. Checkpoints
hold the shadow, so a resumed run continues the same average.
"""

import torch

from .base import ContinualMethod, MetricAverager
from .sharding import local_tensor, trainable_named_parameters


class EMA(ContinualMethod):
    name = "ema"

    def __init__(self, eta: float, offload: bool = False, copy_to_model_at_end: bool = True):
        if not 0.0 <= eta < 1.0:
            raise ValueError(f"`ema_eta` must be in [0, 1), got {eta}.")
        self.eta = eta
        self.offload = offload
        self.copy_to_model_at_end = copy_to_model_at_end
        self.shadow: dict[str, torch.Tensor] = {}
        self._metrics = MetricAverager()

    def _local_params(self, trainer):
        return [(name, local_tensor(param)) for name, param in trainable_named_parameters(trainer.model)]

    def setup(self, trainer) -> None:
        device = "cpu" if self.offload else None
        self.shadow = {
            name: local.detach().to(device=device or local.device, dtype=torch.float32, copy=True)
            for name, local in self._local_params(trainer)
        }

    @torch.no_grad()
    def on_step_end(self, trainer) -> None:
        squared_distances = []
        for name, local in self._local_params(trainer):
            shadow = self.shadow[name]
            current = local.detach().to(device=shadow.device, dtype=torch.float32)
            shadow.lerp_(current, 1.0 - self.eta)  # eta * shadow + (1 - eta) * current
            squared_distances.append((current - shadow).pow(2).sum())
        self._metrics.add("distance", torch.stack(squared_distances).sum().sqrt())

    @torch.no_grad()
    def on_train_end(self, trainer) -> None:
        if not self.copy_to_model_at_end:
            return
        for name, local in self._local_params(trainer):
            local.copy_(self.shadow[name].to(device=local.device, dtype=local.dtype))

    def state_dict(self) -> dict:
        return {"shadow": {name: tensor.cpu() for name, tensor in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        for name, tensor in state["shadow"].items():
            self.shadow[name].copy_(tensor)

    def metrics(self) -> dict[str, float]:
        return self._metrics.pop()
