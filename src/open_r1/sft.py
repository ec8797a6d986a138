# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Supervised fine-tuning, following Open R1's `sft.py`.

Usage:

    accelerate launch --config_file recipes/accelerate_configs/zero1.yaml src/open_r1/sft.py \
        --config recipes/tiny/sft/config_sft.yaml [--learning_rate 1e-4 ...]

The YAML recipe sets the fields of `ScriptArguments`, `SFTConfig` and TRL's `ModelConfig`; command-line flags
override it, and unknown keys are rejected before anything is loaded.
"""

import logging

from transformers import set_seed
from trl import ModelConfig, get_peft_config

from open_r1.callbacks import check_callbacks, get_callbacks
from open_r1.configs import ScriptArguments, SFTConfig
from open_r1.continual import enabled_methods, needs_retain_data
from open_r1.continual.base import check_sharding, launch_sharding
from open_r1.continual.retain_data import get_retain_dataset
from open_r1.trainers import ContinualSFTTrainer
from open_r1.utils import get_dataset, get_model, get_tokenizer
from open_r1.utils.data import add_system_prompt, check_sft_rows, eval_dataset_of, eval_splits, get_split, split_name
from open_r1.utils.model_utils import check_model_source
from open_r1.utils.recipe_yaml import RecipeParser
from open_r1.utils.run_utils import claim_run, setup_logging, train_and_save
from open_r1.utils.wandb_logging import init_wandb_training


logger = logging.getLogger(__name__)


def build_trainer(script_args, training_args, model_args):
    """(the trainer, its evaluation data) for a recipe's arguments, every input checked on the way."""
    set_seed(training_args.seed)
    setup_logging(training_args, logger)
    # Everything a typo can break is checked before any weights or data are loaded.
    check_model_source(model_args)
    check_callbacks(training_args.callbacks)
    check_sharding(enabled_methods(training_args), launch_sharding())  # a method the launch cannot run

    logger.info("Model parameters %s", model_args)
    logger.info("Script parameters %s", script_args)
    logger.info("Training parameters %s", training_args)
    if "wandb" in training_args.report_to:
        init_wandb_training(training_args)

    # The data, checked before the model loads: splits with rows, chats that end with a reply, the retain set.
    dataset = get_dataset(script_args)
    evaluated = eval_splits(script_args, training_args)
    splits = {"dataset_train_split": script_args.dataset_train_split, **evaluated}
    for key, split in splits.items():
        check_sft_rows(get_split(dataset, script_args, split, key), split_name(script_args, split))
    dataset = add_system_prompt(dataset, training_args.system_prompt)
    eval_dataset = eval_dataset_of(dataset, evaluated)
    retain = get_retain_dataset(training_args) if needs_retain_data(training_args) else None

    # Held once the inputs are known good (a typo leaves no folder behind), before the model loads.
    record = claim_run(script_args, training_args, model_args)  # output_dir held, a resume checked
    tokenizer = get_tokenizer(model_args, training_args)
    model = get_model(model_args, training_args)

    trainer = ContinualSFTTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset[script_args.dataset_train_split],
        eval_dataset=eval_dataset,
        retain_dataset=retain,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=get_callbacks(training_args, model_args),
    )

    trainer.run_recipe = record
    return trainer, eval_dataset


def main(script_args, training_args, model_args):
    trainer, eval_dataset = build_trainer(script_args, training_args, model_args)
    train_and_save(trainer, script_args, training_args, eval_dataset)


if __name__ == "__main__":
    parser = RecipeParser((ScriptArguments, SFTConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config()
    main(script_args, training_args, model_args)
