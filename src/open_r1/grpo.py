# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""GRPO with verifiable rewards, following Open R1's `grpo.py`.

Usage:

    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml src/open_r1/grpo.py \
        --config recipes/tiny/grpo/config_grpo.yaml

The recipe sets `GRPOScriptArguments` (data, prompt column, `reward_funcs`), `GRPOConfig` (TRL's GRPO knobs:
loss_type, beta, epsilon/epsilon_high, num_iterations, scale_rewards, mask_truncated_completions, sync_ref_model,
reward_weights, use_vllm + vllm_mode; plus the continual-learning fields) and `ModelConfig`. Without vLLM, TRL
generates with transformers, which is what runs on CPU.
"""

import logging

from transformers import set_seed
from trl import ModelConfig, get_peft_config

from open_r1.callbacks import check_callbacks, get_callbacks
from open_r1.configs import GRPOConfig, GRPOScriptArguments, check_grpo_arguments
from open_r1.continual import enabled_methods, needs_retain_data
from open_r1.continual.base import check_sharding, launch_sharding
from open_r1.continual.retain_data import get_retain_dataset
from open_r1.grpo_trainer import ContinualGRPOTrainer
from open_r1.rewards import get_reward_funcs, reward_columns
from open_r1.utils import get_dataset, get_model, get_tokenizer
from open_r1.utils.data import eval_dataset_of, eval_splits, get_split, split_name
from open_r1.utils.data_checks import check_columns, check_list_of_strings, check_prompts
from open_r1.utils.model_utils import check_model_source
from open_r1.utils.recipe_yaml import RecipeParser
from open_r1.utils.run_utils import claim_run, setup_logging, train_and_save
from open_r1.utils.wandb_logging import init_wandb_training


logger = logging.getLogger(__name__)


def make_conversation(example: dict, prompt_column: str, system_prompt: str | None) -> dict:
    """The `prompt` GRPO generates from: the chat up to its last user turn, with the optional system prompt.

    Dropping the assistant turns matters with SFT-style `messages` data; a distilled model's template that pre-fills
    `<think>` is overridden with the recipe's `chat_template` instead (see Open R1's warning).
    """
    value = example[prompt_column]
    if isinstance(value, list):
        last_user = max(i for i, message in enumerate(value) if message["role"] == "user")
        messages = list(value[: last_user + 1])
    else:
        messages = [{"role": "user", "content": value}]
    if system_prompt is not None and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system_prompt})
    return {"prompt": messages}


def main(script_args, training_args, model_args):
    set_seed(training_args.seed)
    setup_logging(training_args, logger)
    check_model_source(model_args)
    check_callbacks(training_args.callbacks)
    check_sharding(enabled_methods(training_args), launch_sharding())  # a method the launch cannot run
    check_grpo_arguments(script_args, training_args)
    reward_funcs = get_reward_funcs(script_args)  # unknown names fail here, before anything is loaded
    if training_args.reward_weights is not None and len(training_args.reward_weights) != len(reward_funcs):
        raise ValueError(
            f"`reward_weights` has {len(training_args.reward_weights)} entries for {len(reward_funcs)} `reward_funcs`."
        )
    if "wandb" in training_args.report_to:
        init_wandb_training(training_args)

    # The data, checked before the model loads: splits with rows, prompts, the columns each reward reads.
    dataset = get_dataset(script_args)
    evaluated = eval_splits(script_args, training_args)
    splits = {"dataset_train_split": script_args.dataset_train_split, **evaluated}
    prompt_column = script_args.dataset_prompt_column
    for key, split in splits.items():
        data, what = get_split(dataset, script_args, split, key), split_name(script_args, split)
        check_columns(data, what, [prompt_column], "`dataset_prompt_column`")
        check_prompts(data, what, prompt_column)
        for entry, func in zip(script_args.reward_funcs, reward_funcs):
            columns = reward_columns(entry, func)
            check_columns(data, what, columns, f"the `{entry}` reward reads it")
            if "keywords" in columns:
                check_list_of_strings(data, what, "keywords", f"the `{entry}` reward")
    retain = get_retain_dataset(training_args) if needs_retain_data(training_args) else None
    dataset = dataset.map(
        make_conversation,
        fn_kwargs={"prompt_column": script_args.dataset_prompt_column, "system_prompt": training_args.system_prompt},
    )
    if "messages" in dataset[script_args.dataset_train_split].column_names:
        dataset = dataset.remove_columns("messages")

    # Held once the inputs are known good (a typo leaves no folder behind), before the model loads.
    record = claim_run(script_args, training_args, model_args)  # output_dir held, a resume checked
    tokenizer = get_tokenizer(model_args, training_args)
    model = get_model(model_args, training_args)
    eval_dataset = eval_dataset_of(dataset, evaluated)
    trainer = ContinualGRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=dataset[script_args.dataset_train_split],
        eval_dataset=eval_dataset,
        retain_dataset=retain,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=get_callbacks(training_args, model_args),
        pass_at_k=script_args.pass_at_k,
    )

    trainer.run_recipe = record
    train_and_save(trainer, script_args, training_args, eval_dataset)


if __name__ == "__main__":
    parser = RecipeParser((GRPOScriptArguments, GRPOConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config()
    main(script_args, training_args, model_args)
