# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Continual-learning methods, one module each, sharing the protocol of `open_r1.continual.base`."""

from .base import ContinualMethod, ContinualTrainerMixin
from .ema import EMA
from .ewc import EWC, ewc_penalty
from .fisher import compute_fisher
from .replay import mix_replay
from .trust_region import GRPOTrustRegion, TrustRegion


def build_methods(args, model) -> list[ContinualMethod]:
    """The methods a recipe enables, built before the trainer loads any checkpoint."""
    import torch
    import trl

    from ..utils.data import get_retain_dataset

    methods = []
    if args.use_ewc:
        methods.append(
            EWC(
                get_retain_dataset(args),
                ewc_lambda=args.ewc_lambda,
                fisher_kind=args.fisher_kind,
                fisher_estimator=args.fisher_estimator,
                fisher_normalization=args.fisher_normalization,
                fisher_num_samples=args.fisher_num_samples,
                fisher_batch_size=args.fisher_batch_size,
                fisher_chunk_size=args.fisher_chunk_size,
                recompute_mode=args.recompute_fisher_mode,
                recompute_interval=args.recompute_fisher_intervals,
                drift_threshold=args.fisher_drift_threshold,
                drift_check_steps=args.fisher_drift_check_steps,
                online=args.ewc_online,
                online_gamma=args.ewc_online_gamma,
                reanchor=args.ewc_reanchor,
                offload=args.fisher_offload,
                storage_dtype=getattr(torch, args.fisher_storage_dtype),
                seed=args.seed,
            )
        )
    if args.use_trust_region and isinstance(args, trl.GRPOConfig):
        methods.append(GRPOTrustRegion(delta=args.trust_region_delta))
    elif args.use_trust_region:
        methods.append(TrustRegion(model, beta=args.trust_region_beta, delta=args.trust_region_delta))
    if args.use_ema:
        methods.append(EMA(eta=args.ema_eta, offload=args.ema_offload))
    return methods


__all__ = [
    "EMA",
    "EWC",
    "ContinualMethod",
    "ContinualTrainerMixin",
    "TrustRegion",
    "build_methods",
    "compute_fisher",
    "ewc_penalty",
    "mix_replay",
]
