# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Continual-learning methods, one file each, sharing the protocol of `open_r1.continual.base`.

`METHODS` is the registry: a recipe turns a method on with its own keys (`ContinualMethod.enabled`), and the trainers
build every enabled one with `build_methods`, in this order (replay first: it changes the data the others see; A-GEM
after EWC and the retain distillation: it projects the gradient their terms are already in; WiSE-FT
last: it interpolates the final model, the EMA's when the EMA is on, with the start).
"""

from .agem import AGEM
from .base import ContinualMethod, ContinualTrainerMixin
from .ema import EMA
from .ewc import EWC, ewc_penalty
from .fisher import compute_fisher
from .lwf import RetainDistillation
from .replay import Replay, mix_replay
from .retain_data import get_retain_dataset
from .trust_region import GRPOTrustRegion, TrustRegion
from .wise_ft import WiSEFT


METHODS: tuple[type[ContinualMethod], ...] = (Replay, EWC, RetainDistillation, AGEM, TrustRegion, EMA, WiSEFT)


def enabled_methods(args) -> list[type[ContinualMethod]]:
    return [method for method in METHODS if method.enabled(args)]


def needs_retain_data(args) -> bool:
    return any(method.needs_retain_data for method in enabled_methods(args))


def build_methods(args, retain=None) -> list[ContinualMethod]:
    """The methods a recipe enables, built before the trainer; the retain split is loaded once, for all of them (or
    given: the entry points load and check it before the model)."""
    if retain is None and needs_retain_data(args):
        retain = get_retain_dataset(args)
    return [method.from_args(args, retain) for method in enabled_methods(args)]


__all__ = [
    "AGEM",
    "EMA",
    "EWC",
    "METHODS",
    "ContinualMethod",
    "ContinualTrainerMixin",
    "GRPOTrustRegion",
    "Replay",
    "RetainDistillation",
    "TrustRegion",
    "WiSEFT",
    "build_methods",
    "compute_fisher",
    "enabled_methods",
    "ewc_penalty",
    "mix_replay",
]
