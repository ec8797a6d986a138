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
from trl import ModelConfig, TrlParser, get_peft_config

from open_r1.configs import ScriptArguments, SFTConfig
from open_r1.trainers import ContinualSFTTrainer
from open_r1.utils import get_dataset, get_model, get_tokenizer
from open_r1.utils.callbacks import check_callbacks, get_callbacks
from open_r1.utils.data import add_system_prompt
from open_r1.utils.model_utils import check_model_source
from open_r1.utils.run_utils import setup_logging, train_and_save
from open_r1.utils.wandb_logging import init_wandb_training


logger = logging.getLogger(__name__)


def main(script_args, training_args, model_args):
    set_seed(training_args.seed)
    setup_logging(training_args, logger)
    # Everything a typo can break is checked before any weights or data are loaded.
    check_model_source(model_args)
    check_callbacks(training_args.callbacks)

    logger.info("Model parameters %s", model_args)
    logger.info("Script parameters %s", script_args)
    logger.info("Training parameters %s", training_args)
    if "wandb" in training_args.report_to:
        init_wandb_training(training_args)

    dataset = add_system_prompt(get_dataset(script_args), training_args.system_prompt)
    if script_args.dataset_train_split not in dataset:
        raise KeyError(f"`dataset_train_split`: split '{script_args.dataset_train_split}' not in {list(dataset)}.")
    eval_dataset = None
    if training_args.eval_strategy != "no":
        if script_args.dataset_test_split not in dataset:
            raise KeyError(
                f"`dataset_test_split`: split '{script_args.dataset_test_split}' not in {list(dataset)} "
                "but `eval_strategy` is not 'no'."
            )
        eval_dataset = dataset[script_args.dataset_test_split]

    tokenizer = get_tokenizer(model_args, training_args)
    model = get_model(model_args, training_args)

    trainer = ContinualSFTTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset[script_args.dataset_train_split],
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=get_callbacks(training_args, model_args),
    )

    train_and_save(trainer, script_args, training_args, eval_dataset)


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, SFTConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config()
    main(script_args, training_args, model_args)
