# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
import os


def init_wandb_training(training_args) -> None:
    """Route the run to the recipe's W&B entity, project and group (read by the wandb integration at start)."""
    for key, value in (
        ("WANDB_ENTITY", training_args.wandb_entity),
        ("WANDB_PROJECT", training_args.wandb_project),
        ("WANDB_RUN_GROUP", training_args.wandb_run_group),
    ):
        if value is not None:
            os.environ[key] = value
