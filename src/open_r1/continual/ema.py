# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""EMA of weights (the fork's `ema_callback`, citing Kim et al., 2025, COLM): a shadow that trails the weights.

After every optimizer step, for each trainable parameter (this rank's part of it):

    theta_ema <- eta * theta_ema + (1 - eta) * theta

so `ema_eta` is the weight of the *old shadow*, as in the fork's code: eta = 0 tracks the model exactly, eta -> 1
never moves from the starting weights, and the shadow averages roughly the last 1 / (1 - eta) steps (0.25, the seed's
value: 1.3 steps, almost the last iterate; 0.9: 10; 0.99: 100). The shadow starts at the weights training starts from
(the pre-trained model) and is kept in fp32 (optionally on CPU).

What the run produces is the EMA, everywhere a user looks at a model:
- the final model (saved, pushed) is the EMA; with `load_best_model_at_end` it is the EMA of the best checkpoint;
- every evaluation, during training and after it, runs on the EMA weights (put into the model for its duration and
  taken out again bit for bit), so `metric_for_best_model` ranks EMAs;
- every checkpoint holds the raw weights (the Trainer resumes from them with its optimizer state), the shadow (in
  the continual state, so a resumed run continues the same average) and `ema/`, the EMA as a complete model
  directory, which the `push_to_hub_revision` callback pushes.
"""

import contextlib
import logging
import os
from dataclasses import dataclass, field

import torch

from ..callbacks import CHECKPOINT_EMA_DIR
from ..memory import ALL
from .base import ContinualMethod, state_file
from .sharding import foreach_groups, is_sharded, local_trainable_parameters, split_plain_fp32


logger = logging.getLogger(__name__)


@dataclass
class EMAConfig:
    use_ema: bool = field(default=False, metadata={"help": "Keep an EMA of the weights and save it as the model."})
    ema_eta: float = field(
        default=0.25,
        metadata={
            "help": "EMA weight of the old shadow, in [0, 1), as in the fork's code: after each optimizer step "
            "theta_ema = eta * theta_ema + (1 - eta) * theta. The EMA averages about 1 / (1 - eta) steps: the seed's "
            "0.25 is 1.3 steps (almost the last weights), 0.9 is 10, 0.99 is 100. Evaluations, `ema/` in every "
            "checkpoint, the pushed checkpoints and the final model are the EMA (with `load_best_model_at_end`, the "
            "best checkpoint's EMA); checkpoints keep the raw weights for resuming."
        },
    )
    ema_offload: bool = field(default=False, metadata={"help": "Keep the fp32 EMA shadow on CPU."})

    def check_ema_args(self) -> None:
        if not 0.0 <= self.ema_eta < 1.0:
            raise ValueError(f"`ema_eta` must be in [0, 1), got {self.ema_eta}.")
        if self.use_ema and self.push_to_hub and self.hub_strategy != "end":
            raise ValueError(
                f"`use_ema` with `hub_strategy: {getattr(self.hub_strategy, 'value', self.hub_strategy)}`: the "
                "Trainer would push each checkpoint's raw weights, not the EMA. Use `hub_strategy: end` (the final "
                "push is the EMA) and `callbacks: [push_to_hub_revision]`, which pushes each checkpoint's EMA to its "
                "own branch."
            )


class EMA(ContinualMethod):
    name = "ema"
    enable_key = "use_ema"
    config_class = EMAConfig

    @classmethod
    def memory(cls, context) -> list[tuple[str, str, float, str]]:
        """The fp32 shadow of the local parameters (none with `ema_offload`); evaluation and the end swap through
        CPU copies."""
        offload = context.get("ema_offload", EMAConfig)
        return [(ALL, "EMA shadow", 0.0 if offload else 4.0 * context.local, "on CPU" if offload else "fp32")]

    @classmethod
    def from_args(cls, args, retain=None) -> "EMA":
        return cls(args.ema_eta, args.ema_offload)

    def __init__(self, eta: float, offload: bool = False, copy_to_model_at_end: bool = True):
        if eta < 0.5:
            logger.warning(
                "`ema_eta` %s weights the old shadow: the EMA averages about %.1f steps, almost the last weights.",
                eta,
                1 / (1 - eta),
            )
        self.eta = eta
        self.offload = offload
        self.copy_to_model_at_end = copy_to_model_at_end
        self.shadow: dict[str, torch.Tensor] = {}
        self._in_model = False  # the model holds the EMA for good (after training)

    def setup(self, trainer) -> None:
        device = "cpu" if self.offload else None
        self.shadow = {
            name: local.detach().to(device=device or local.device, dtype=torch.float32, copy=True)
            for name, local in local_trainable_parameters(trainer.model)
        }
        self._in_model = False

    @torch.no_grad()
    def on_step_end(self, trainer) -> None:
        """shadow <- eta * shadow + (1 - eta) * theta, and the distance |theta - shadow| logged: multi-tensor kernels
        over groups of fp32 parameters with their shadow on the same device (a GPU step of a small model is bound by
        kernel launches), one parameter at a time otherwise (partitions, other dtypes, an offloaded shadow)."""
        rows = [(local, self.shadow[name]) for name, local in local_trainable_parameters(trainer.model)]
        plain, others = split_plain_fp32(rows)
        squared_distances = []
        for currents, shadows in foreach_groups(plain):
            currents = [current.detach() for current in currents]
            torch._foreach_lerp_(shadows, currents, 1.0 - self.eta)  # eta * shadow + (1 - eta) * current
            norms = torch._foreach_norm(torch._foreach_sub(currents, shadows))
            squared_distances.append(torch.stack(norms).pow(2).sum())
        for local, shadow in others:
            current = local.detach().to(device=shadow.device, dtype=torch.float32)
            shadow.lerp_(current, 1.0 - self.eta)
            squared_distances.append((current - shadow).pow(2).sum())
        device = squared_distances[0].device
        self.logged.add("distance", torch.stack([d.to(device) for d in squared_distances]).sum().sqrt())

    @torch.no_grad()
    def _copy_into_model(self, trainer, shadow: dict) -> None:
        for name, local in local_trainable_parameters(trainer.model):
            local.copy_(shadow[name].to(device=local.device, dtype=local.dtype))

    @contextlib.contextmanager
    def evaluation_weights(self, trainer):
        """The EMA weights in the model for the block; the model's own weights restored exactly after it (kept on CPU
        meanwhile, so no device memory is needed)."""
        if self._in_model or not self.shadow:
            yield
            return
        with torch.no_grad():
            own = {
                name: local.detach().to("cpu", copy=True) for name, local in local_trainable_parameters(trainer.model)
            }
        self._copy_into_model(trainer, self.shadow)
        try:
            yield
        finally:
            self._copy_into_model(trainer, own)

    def on_save_checkpoint(self, trainer, checkpoint_dir: str) -> None:
        with self.evaluation_weights(trainer):
            trainer.save_model(os.path.join(checkpoint_dir, CHECKPOINT_EMA_DIR))

    def on_train_end(self, trainer) -> None:
        if not self.copy_to_model_at_end:
            return
        shadow = self.shadow
        best = trainer.state.best_model_checkpoint if trainer.args.load_best_model_at_end else None
        if best is not None:  # the Trainer chose the best checkpoint by the EMA's metrics: its EMA, not the last one
            path = state_file(best, trainer.args.process_index, is_sharded(trainer))
            shadow = torch.load(path, map_location="cpu", weights_only=False)[self.name]["shadow"]
            logger.info("EMA: the model is the EMA of the best checkpoint %s", best)
        self._copy_into_model(trainer, shadow)
        self._in_model = True

    def state_dict(self) -> dict:
        return {"shadow": {name: tensor.cpu() for name, tensor in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        for name, tensor in state["shadow"].items():
            self.shadow[name].copy_(tensor)
