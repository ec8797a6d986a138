# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""A scale for EWC's lambda on a new model: the lambda at which the penalty pulls back as hard as the update pulls.

    python scripts/ewc_lambda.py --config recipes/smollm2/sft/config_ewc.yaml \
        --trained data/smollm2/compare/runs/sft/seed0 [--batches 4] [--recipe_key value ...]

With F the recipe's Fisher at its start model (EWC's own computation, the recipe's estimator and normalisation),
theta* that start, g the gradient of the update loss at the start (mean over `--batches` of the recipe's training
batches) and Delta = theta_trained - theta* the displacement of a plain-SFT run of the same budget (`--trained`):

    lambda* = |g| / |F * Delta|      (L2 norms over the trainable parameters)

the lambda at which EWC's restoring force at plain SFT's end point is as large as the update loss's pull at the
start. Fisher magnitudes change with the model's size, so a lambda tuned on one model says little about another;
lambda* is a reference point to sweep around, not a tuned value. Prints lambda*, the recipe's lambda and both norms.
"""

import argparse
import math
import sys
import tempfile

import torch
from transformers import AutoModelForCausalLM

from open_r1.recipes.reading import recipe_parser
from open_r1.sft import build_trainer


def update_gradient_norm(trainer, batches: int) -> float:
    """|mean gradient of the update loss| over the first `batches` training batches, at the trainer's start model."""
    model = trainer.model
    model.zero_grad(set_to_none=True)
    loader = iter(trainer.get_train_dataloader())
    for _ in range(batches):
        batch = next(loader)
        (trainer.compute_loss(model, batch) / batches).backward()
    norm = math.sqrt(sum(p.grad.double().pow(2).sum().item() for p in model.parameters() if p.grad is not None))
    model.zero_grad(set_to_none=True)
    return norm


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="An SFT recipe with `use_ewc: true`.")
    parser.add_argument("--trained", required=True, help="The model a plain-SFT run of the same budget saved.")
    parser.add_argument("--batches", type=int, default=4, help="Training batches the update gradient averages.")
    args, recipe_overrides = parser.parse_known_args(argv)  # the rest sets recipe keys, as on the trainers' CLI

    with tempfile.TemporaryDirectory() as output_dir:
        script_args, training_args, model_args = recipe_parser("sft").parse_args_and_config(
            ["--config", args.config, *recipe_overrides, "--output_dir", output_dir, "--report_to", "none"]
        )
        if not training_args.use_ewc:
            parser.error(f"--config {args.config}: `use_ewc` is not set; lambda* needs the recipe's Fisher")
        trainer, _ = build_trainer(script_args, training_args, model_args)
        (ewc,) = [method for method in trainer.continual_methods if method.name == "ewc"]
        ewc.setup(trainer)
        pull = update_gradient_norm(trainer, args.batches)
    trained = dict(AutoModelForCausalLM.from_pretrained(args.trained, dtype=torch.float32).named_parameters())
    missing = sorted(set(ewc.fisher) - set(trained))
    if missing:
        parser.error(f"--trained {args.trained}: no parameters {missing[:3]}... of the recipe's model")
    brake = math.sqrt(
        sum(
            (ewc.fisher[name].double() * (trained[name].detach().double() - ewc.anchors[name].double()))
            .pow(2)
            .sum()
            .item()
            for name in ewc.fisher
        )
    )
    if brake == 0:
        parser.error(f"--trained {args.trained}: its weights are the start's where the Fisher is not 0")
    print(f"|g| (update loss gradient at the start, {args.batches} batches) = {pull:.4g}")
    print(f"|F * Delta| (Fisher times plain SFT's displacement)           = {brake:.4g}")
    print(f"lambda* = {pull / brake:.4g}   (the recipe's ewc_lambda: {training_args.ewc_lambda:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
