# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Continual-learning methods, one module each, sharing the protocol of `open_r1.continual.base`."""

from .base import ContinualMethod, ContinualTrainerMixin
from .ema import EMA
from .replay import mix_replay
from .trust_region import TrustRegion


def build_methods(args, model) -> list[ContinualMethod]:
    """The methods a recipe enables, built before the trainer loads any checkpoint."""
    methods = []
    if args.use_trust_region:
        methods.append(TrustRegion(model, beta=args.trust_region_beta, delta=args.trust_region_delta))
    if args.use_ema:
        methods.append(EMA(eta=args.ema_eta, offload=args.ema_offload))
    return methods


__all__ = ["EMA", "ContinualMethod", "ContinualTrainerMixin", "TrustRegion", "build_methods", "mix_replay"]
