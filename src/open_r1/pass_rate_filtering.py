# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Pass-rate filtering, as Open R1's `scripts/pass_rate_filtering`: keep the prompts a model solves sometimes.

    python src/open_r1/pass_rate_filtering.py --config recipes/dataset_filtering/config_demo.yaml
    python scripts/pass_rate_filtering/compute_pass_rate.py --config ...   # Open R1's path, the same program
    sbatch scripts/slurm/compute_pass_rate.slurm recipes/dataset_filtering/config_demo.yaml

For each row of `dataset_split` (rows `dataset_start_index` to `dataset_end_index` when both are set), the model
writes `num_generations` completions of the prompt (`dataset_prompt_column`, with `system_prompt`; sampled at
`temperature`, `top_p`, `top_k`, up to `max_completion_length` tokens), the recipe's `reward_funcs` score them, and
the row's pass rate is the mean over its completions of their weighted reward (`reward_weights`; a completion a
reward scores None does not count). Rows with `pass_rate_min < pass rate < pass_rate_max` are kept. One reward of
weight 1, as every Open R1 filtering recipe has, is Open R1's computation.

Generation runs on vLLM where it is installed and a GPU is present (as Open R1), else on transformers (CPU). Output:
`output_dir/generations` (every row, with `pass_rate_generations`, `pass_rate_rewards` and `pass_rate`) and
`output_dir/filtered` (`datasets.load_from_disk`); pushed to the Hub as Open R1 pushes them (config `default` or
`gen-<start>-<end>` at revision `gen`, `filt-<min>-<max>[-<start>-<end>]` at revision `pass_rate`, to
`output_dataset_name` or `<dataset>-<model>-<revision>-gen`) when `output_dataset_name` is set or `push_to_hub` is.
"""

import inspect
import logging
import math
import os
from dataclasses import dataclass, field

import torch
from transformers import set_seed
from trl import ModelConfig

from open_r1.configs import GRPOConfig, GRPOScriptArguments
from open_r1.grpo import make_conversation
from open_r1.rewards import get_reward_funcs, reward_columns
from open_r1.utils import get_dataset, get_tokenizer
from open_r1.utils.data_checks import check_columns, check_prompts
from open_r1.utils.model_utils import check_model_source, get_model
from open_r1.utils.recipe_yaml import RecipeParser
from open_r1.utils.run_utils import setup_logging


logger = logging.getLogger(__name__)


@dataclass
class PassRateScriptArguments(GRPOScriptArguments):
    """Open R1's filtering arguments on top of GRPO's script arguments (data, prompt column, rewards)."""

    output_dataset_name: str | None = field(
        default=None, metadata={"help": "Hub dataset to push to (default `<dataset>-<model>-<revision>-gen`)."}
    )
    pass_rate_min: float = field(default=0.1, metadata={"help": "Keep rows whose pass rate is above this."})
    pass_rate_max: float = field(default=0.9, metadata={"help": "Keep rows whose pass rate is below this."})
    dataset_start_index: int | None = field(default=None, metadata={"help": "First row (with dataset_end_index)."})
    dataset_end_index: int | None = field(default=None, metadata={"help": "Row after the last (with the start)."})
    dataset_split: str = field(default="train", metadata={"help": "The split whose rows are scored."})

    def checks(self) -> list:
        return [*super().checks(), self.check_pass_rate_args]

    def check_pass_rate_args(self) -> None:
        if not self.pass_rate_min < self.pass_rate_max:
            raise ValueError(
                f"`pass_rate_min` ({self.pass_rate_min}) must be below `pass_rate_max` ({self.pass_rate_max}): no row "
                "could be kept."
            )
        if (self.dataset_start_index is None) != (self.dataset_end_index is None):
            raise ValueError("`dataset_start_index` and `dataset_end_index` are set together, or neither.")
        if self.dataset_start_index is not None and not 0 <= self.dataset_start_index < self.dataset_end_index:
            raise ValueError(
                f"`dataset_start_index` ({self.dataset_start_index}) must be >= 0 and below `dataset_end_index` "
                f"({self.dataset_end_index})."
            )


def pass_rate(rewards: list[float]) -> float:
    """The mean of the completions' rewards that are numbers (NaN: scored None); NaN when none is."""
    scored = [r for r in rewards if not math.isnan(r)]
    return sum(scored) / len(scored) if scored else math.nan


def kept(rate: float, script_args: PassRateScriptArguments) -> bool:
    return script_args.pass_rate_min < rate < script_args.pass_rate_max  # False for NaN


class Generator:
    """`num_generations` sampled completions of each chat prompt, as (text, token ids): vLLM on a GPU where it is
    installed, else transformers' `generate` (on the GPU when there is one), one prompt at a time."""

    def __init__(self, model_args, training_args):
        import importlib.util

        self.args = training_args
        self.tokenizer = get_tokenizer(model_args, training_args)
        self.llm = None
        if torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None:
            from vllm import LLM

            self.llm = LLM(
                model=model_args.model_name_or_path,
                revision=model_args.model_revision,
                trust_remote_code=model_args.trust_remote_code,
            )
        else:
            self.model = get_model(model_args, training_args).to(training_args.device).eval()

    def __call__(self, prompts: list[list[dict]]) -> list[list[tuple[str, list[int]]]]:
        args, tokenizer = self.args, self.tokenizer
        # The chat template writes any BOS itself: the ids go to both engines as they are.
        ids = [tokenizer.apply_chat_template(p, tokenize=True, add_generation_prompt=True) for p in prompts]
        ids = [i["input_ids"] if isinstance(i, dict) or hasattr(i, "keys") else i for i in ids]
        if self.llm is not None:
            from vllm import SamplingParams

            sampling = SamplingParams(
                temperature=args.temperature,
                top_p=args.top_p,
                top_k=args.top_k if args.top_k is not None else -1,
                n=args.num_generations,
                max_tokens=args.max_completion_length,
            )
            outputs = self.llm.generate([{"prompt_token_ids": i} for i in ids], sampling, use_tqdm=False)
            return [[(o.text, list(o.token_ids)) for o in out.outputs] for out in outputs]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        groups = []
        for prompt_ids in ids:
            inputs = torch.tensor([prompt_ids], device=self.model.device)
            with torch.no_grad():
                out = self.model.generate(
                    input_ids=inputs,
                    attention_mask=torch.ones_like(inputs),
                    do_sample=True,
                    temperature=args.temperature,
                    top_p=args.top_p,
                    top_k=args.top_k,
                    num_return_sequences=args.num_generations,
                    max_new_tokens=args.max_completion_length,
                    pad_token_id=pad,
                )
            group = []
            for completion in out[:, inputs.shape[1] :].tolist():
                if tokenizer.eos_token_id in completion:  # up to and with the end of the turn, as vLLM returns it
                    completion = completion[: completion.index(tokenizer.eos_token_id) + 1]
                group.append((tokenizer.decode(completion, skip_special_tokens=True), completion))
            groups.append(group)
        return groups


def score(
    examples: dict, prompts, groups: list[list[tuple[str, list[int]]]], reward_funcs, weights: list[float]
) -> list[list[float]]:
    """Each completion's weighted reward (NaN where a reward scored it None), row by row; the rewards get TRL's
    arguments (`prompts`, `completions`, `completion_ids`, the row's columns), each repeated for the row's
    completions."""
    size = len(groups[0]) if groups else 0
    columns = {key: [value for value in values for _ in range(size)] for key, values in examples.items()}
    columns["prompts"] = [prompt for prompt in prompts for _ in range(size)]
    columns["completion_ids"] = [token_ids for group in groups for _, token_ids in group]
    completions = [[{"role": "assistant", "content": text}] for group in groups for text, _ in group]
    totals = [0.0] * len(completions)
    for func, weight in zip(reward_funcs, weights):
        rewards = func(completions=completions, **columns)
        totals = [t + weight * (math.nan if r is None else r) for t, r in zip(totals, rewards)]
    return [totals[i : i + size] for i in range(0, len(totals), size)]


# What TRL passes its rewards during training that a filtering run does not have.
TRAINING_ONLY_ARGUMENTS = ("trainer_state", "log_extra", "log_metric")


def main(script_args: PassRateScriptArguments, training_args, model_args) -> None:
    set_seed(training_args.seed)
    setup_logging(training_args, logger)
    check_model_source(model_args)
    reward_funcs = get_reward_funcs(script_args)  # unknown names fail here, before anything is loaded
    if any(not callable(func) for func in reward_funcs):
        raise ValueError("pass-rate filtering: `reward_funcs` takes reward functions here, not `model:` verifiers.")
    for entry, func in zip(script_args.reward_funcs, reward_funcs):
        parameters = inspect.signature(func).parameters
        needed = [
            name
            for name in TRAINING_ONLY_ARGUMENTS
            if name in parameters and parameters[name].default is parameters[name].empty
        ]
        if needed:
            raise ValueError(f"pass-rate filtering: the `{entry}` reward needs {needed}, which only training has.")
    weights = training_args.reward_weights or [1.0] * len(reward_funcs)
    if len(weights) != len(reward_funcs):
        raise ValueError(f"`reward_weights` has {len(weights)} entries for {len(reward_funcs)} `reward_funcs`.")

    dataset = get_dataset(script_args)
    if script_args.dataset_split not in dataset:
        raise ValueError(f"`dataset_split`: {script_args.dataset_name} has no split {script_args.dataset_split!r}.")
    data = dataset[script_args.dataset_split]
    if script_args.dataset_start_index is not None:
        if script_args.dataset_start_index >= len(data):
            raise ValueError(
                f"`dataset_start_index` ({script_args.dataset_start_index}) is past the {len(data)} rows."
            )
        end = min(script_args.dataset_end_index, len(data))  # the last chunk of a loop over fixed-size chunks
        if end < script_args.dataset_end_index:
            logger.warning(
                "`dataset_end_index` %d is past the %d rows: rows up to the last",
                script_args.dataset_end_index,
                len(data),
            )
        data = data.select(range(script_args.dataset_start_index, end))
    what = f"{script_args.dataset_name} [{script_args.dataset_split}]"
    check_columns(data, what, [script_args.dataset_prompt_column], "`dataset_prompt_column`")
    check_prompts(data, what, script_args.dataset_prompt_column)
    for entry, func in zip(script_args.reward_funcs, reward_funcs):
        check_columns(data, what, reward_columns(entry, func), f"the `{entry}` reward reads it")

    generate = Generator(model_args, training_args)
    prompt_column, system_prompt = script_args.dataset_prompt_column, training_args.system_prompt

    def add_pass_rates(examples: dict) -> dict:
        rows = [dict(zip(examples, values)) for values in zip(*examples.values())]
        prompts = [make_conversation(row, prompt_column, system_prompt)["prompt"] for row in rows]
        groups = generate(prompts)
        rewards = score(examples, prompts, groups, reward_funcs, weights)
        return {
            **examples,
            "pass_rate_generations": [[text for text, _ in group] for group in groups],
            "pass_rate_rewards": rewards,
            "pass_rate": [pass_rate(r) for r in rewards],
        }

    generated = data.map(add_pass_rates, batched=True, batch_size=64, desc="Generating and scoring")
    filtered = generated.filter(lambda row: kept(row["pass_rate"], script_args))
    logger.info(
        "Pass-rate filtering: %d of %d rows have %s < pass rate < %s",
        len(filtered),
        len(generated),
        script_args.pass_rate_min,
        script_args.pass_rate_max,
    )
    generated.save_to_disk(os.path.join(training_args.output_dir, "generations"))
    filtered.save_to_disk(os.path.join(training_args.output_dir, "filtered"))
    if script_args.output_dataset_name is not None or training_args.push_to_hub:
        push(generated, filtered, script_args, model_args)


def push(generated, filtered, script_args: PassRateScriptArguments, model_args) -> None:
    """Open R1's names: the scored rows at revision `gen`, the kept ones at revision `pass_rate`."""
    name = script_args.output_dataset_name
    if name is None:
        model = model_args.model_name_or_path.rstrip("/").split("/")[-1]
        name = f"{script_args.dataset_name}-{model}-{model_args.model_revision}-gen"
    config, filtered_config = "default", f"filt-{script_args.pass_rate_min}-{script_args.pass_rate_max}"
    if script_args.dataset_start_index is not None:
        span = f"{script_args.dataset_start_index}-{script_args.dataset_end_index}"
        config, filtered_config = f"gen-{span}", f"{filtered_config}-{span}"
    generated.push_to_hub(name, config_name=config, revision="gen")
    filtered.push_to_hub(name, config_name=filtered_config, revision="pass_rate")


if __name__ == "__main__":
    parser = RecipeParser((PassRateScriptArguments, GRPOConfig, ModelConfig))
    main(*parser.parse_args_and_config())
