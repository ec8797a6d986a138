# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Callbacks a recipe can name in its `callbacks:` list."""

import logging
import os
import shutil

from transformers import TrainerCallback


logger = logging.getLogger(__name__)

# Where a checkpoint holds the model the run produces when that is not its raw weights (`use_ema`: the EMA).
CHECKPOINT_EMA_DIR = "ema"


class PushToHubRevisionCallback(TrainerCallback):
    """Push each saved checkpoint to its own Hub branch, `<hub_model_revision>-step-<global_step>` (Open R1); with
    `use_ema`, the checkpoint's EMA model (`checkpoint-N/ema`)."""

    def __init__(self, model_args):
        self.model_args = model_args

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from huggingface_hub import create_branch, upload_folder

        revision = f"{args.hub_model_revision}-step-{state.global_step:09d}"
        checkpoint = f"{args.output_dir}/checkpoint-{state.global_step}"
        if os.path.isdir(os.path.join(checkpoint, CHECKPOINT_EMA_DIR)):  # the run's model is the EMA (`use_ema`)
            checkpoint = os.path.join(checkpoint, CHECKPOINT_EMA_DIR)
        create_branch(repo_id=args.hub_model_id, branch=revision, exist_ok=True)
        upload_folder(
            repo_id=args.hub_model_id,
            folder_path=checkpoint,
            revision=revision,
            commit_message=f"Add {revision} checkpoint",
            ignore_patterns=["*.pt", "*.pth", "global_step*"],
        )
        logger.info("Pushed %s to %s@%s", checkpoint, args.hub_model_id, revision)
        if args.benchmarks and shutil.which("sbatch"):  # as Open R1: evaluate each pushed checkpoint on Slurm
            from .eval.run import submit_evaluation_jobs

            submit_evaluation_jobs(args.hub_model_id, args.benchmarks, revision)


CALLBACKS = {"push_to_hub_revision": PushToHubRevisionCallback}


def check_callbacks(names: list[str]) -> None:
    unknown = [name for name in names if name not in CALLBACKS]
    if unknown:
        raise ValueError(f"`callbacks`: unknown callback(s) {unknown}; choose from {sorted(CALLBACKS)}.")


def get_callbacks(training_args, model_args) -> list[TrainerCallback]:
    check_callbacks(training_args.callbacks)
    return [CALLBACKS[name](model_args) for name in training_args.callbacks]
