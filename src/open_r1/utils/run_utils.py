# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""What every entry point does around training: logging set-up and finding the checkpoint to resume from."""

import logging
import os
import sys

import datasets
import transformers
from transformers.trainer_utils import get_last_checkpoint


logger = logging.getLogger(__name__)


def setup_logging(training_args, entry_logger: logging.Logger) -> None:
    """Open R1's logging: the entry point's logger, open_r1's, datasets' and transformers' at the run's level."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    entry_logger.setLevel(log_level)
    logging.getLogger("open_r1").setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()


def resume_checkpoint(training_args) -> str | None:
    """The checkpoint to resume from: the recipe's `resume_from_checkpoint`, else the newest in `output_dir`."""
    if training_args.resume_from_checkpoint is not None:
        return training_args.resume_from_checkpoint
    if os.path.isdir(training_args.output_dir):
        last = get_last_checkpoint(training_args.output_dir)
        if last is not None:
            logger.info("Checkpoint detected, resuming training at %s.", last)
        return last
    return None
