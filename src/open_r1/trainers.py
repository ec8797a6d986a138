# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Trainers that add the continual-learning methods a recipe selects to TRL's trainers.

`ContinualSFTTrainer` and `ContinualGRPOTrainer` are TRL's trainers running any set of the methods in
`open_r1.continual` (built from the recipe by `build_methods`) and the recipe's `custom_optim`. The named trainers
of the seed README are presets, kept so code that names them works.
"""

import torch
from trl import GRPOTrainer, SFTTrainer
from trl.trainer.utils import RepeatSampler

from .continual import ContinualTrainerMixin, build_methods
from .optims import custom_optimizer_cls_and_kwargs
from .rewards import completion_text
from .utils.dynamic_sampling import informative_groups, prompt_keys, take_rows
from .utils.rl_metrics import group_pass_at_k, reasoning_behaviour_rates


# The refill sampler's seed is the training seed plus this, so that refills never replay the main stream.
REFILL_SEED_OFFSET = 1


def _rows_of(group_mask: torch.Tensor, group_size: int) -> torch.Tensor:
    """Row indices of the groups selected by `group_mask` (groups are consecutive runs of `group_size` rows)."""
    offsets = torch.arange(group_size, device=group_mask.device)
    return (group_mask.nonzero().flatten()[:, None] * group_size + offsets).flatten()


def attach_continual(trainer, preset_custom_optim: str | None = None) -> None:
    """Swap in the recipe's optimizer class and build the recipe's methods (before any checkpoint is loaded)."""
    if preset_custom_optim is not None:
        trainer.args.custom_optim = preset_custom_optim
    custom = custom_optimizer_cls_and_kwargs(trainer.args)
    if custom is not None:
        # The Trainer's own `create_optimizer` still groups the parameters (no decay on biases and norm weights)
        # and the recipe's LR scheduler wraps the result: only the class and its kwargs change.
        trainer.optimizer_cls_and_kwargs = custom
    trainer.init_continual(build_methods(trainer.args, trainer.model))


class ContinualSFTTrainer(ContinualTrainerMixin, SFTTrainer):
    # A preset's optimizer; when set it overrides the recipe's `custom_optim`.
    preset_custom_optim: str | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        attach_continual(self, self.preset_custom_optim)


class SFTTrainerWithDAdamW(ContinualSFTTrainer):
    """SFT with DAdamW whatever the recipe's `custom_optim`; `preconditioner_power` comes from the recipe."""

    preset_custom_optim = "dadamw"


class SFTTrainerWithFisher(ContinualSFTTrainer):
    """SFT with EWC (the seed's `custom_optim: fisher`); its Fisher and schedule keys come from the recipe."""

    def __init__(self, *args, **kwargs):
        args_ = kwargs["args"] if "args" in kwargs else args[1]
        args_.use_ewc = True
        args_.check_continual_args()
        super().__init__(*args, **kwargs)


class ContinualGRPOTrainer(ContinualTrainerMixin, GRPOTrainer):
    """GRPO with the continual methods (EWC, EMA, DAdamW), pass@k of the accuracy reward and reasoning-behaviour
    rates logged with TRL's reward metrics."""

    def __init__(self, *args, pass_at_k: list[int] | tuple[int, ...] = (1,), **kwargs):
        super().__init__(*args, **kwargs)
        too_large = [k for k in pass_at_k if not 1 <= k <= self.num_generations]
        if too_large:
            raise ValueError(f"`pass_at_k`: {too_large} not in [1, num_generations={self.num_generations}].")
        self.pass_at_k = list(pass_at_k)
        if self.args.dynamic_sampling:
            local_rows = self.args.per_device_train_batch_size * self.args.steps_per_generation
            if local_rows % self.num_generations:
                raise ValueError(
                    "`dynamic_sampling` keeps or drops whole prompt groups on each process: per_device_train_batch_size"
                    f" x steps_per_generation ({local_rows}) must be a multiple of num_generations "
                    f"({self.num_generations})."
                )
        self._refill_loader = self._refill_batches = None
        self._round_rewards = None
        attach_continual(self)

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if not (self.args.dynamic_sampling and self.model.training):
            return output
        group = self.num_generations
        outputs, picks = [output], []
        keep = self._informative_groups(output)
        wanted = keep.numel()
        seen = {key for key, kept in zip(prompt_keys(output)[::group], keep.tolist()) if kept}
        kept = int(keep.sum())
        picks.append(_rows_of(keep, group))
        rounds = 0
        # Every process generates in every round (generation and reward gathering are collective), so whether to go
        # on is decided on the neediest process.
        while rounds < self.args.dynamic_sampling_max_rounds and self._any_process(kept < wanted):
            rounds += 1
            extra = super()._generate_and_score_completions(self._next_refill_batch())
            mask = torch.zeros_like(keep)
            for index, (key, informative) in enumerate(
                zip(prompt_keys(extra)[::group], self._informative_groups(extra))
            ):
                if informative and key not in seen and kept < wanted:  # never the same prompt twice in a batch
                    mask[index], kept = True, kept + 1
                    seen.add(key)
            outputs.append(extra)
            picks.append(_rows_of(mask, group))
        unfilled = wanted - kept
        if unfilled:  # the cap was reached: fill up with uninformative groups of the first round
            dropped = (~keep).nonzero().flatten()[:unfilled]
            mask = torch.zeros_like(keep)
            mask[dropped] = True
            outputs.append(output)
            picks.append(_rows_of(mask, group))
        merged = take_rows(outputs, picks, self.processing_class.pad_token_id)
        loss_mask = merged["completion_mask"] * merged.get("tool_mask", 1)  # as TRL counts the batch's tokens
        merged["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()[None]).sum()
        self._metrics["train"]["dynamic_sampling/rounds"].append(float(rounds))
        self._metrics["train"]["dynamic_sampling/dropped_frac"].append(1.0 - float(keep.float().mean()))
        self._metrics["train"]["dynamic_sampling/unfilled_frac"].append(unfilled / wanted)
        return merged

    def _informative_groups(self, output) -> torch.Tensor:
        """This process's informative groups of the round that produced `output`, from its rewards (gathered over
        all processes by `_calculate_rewards`; this process's rows are its slice, as TRL slices the advantages)."""
        rows = output["advantages"].shape[0]
        start = self.accelerator.process_index * rows
        local = self._round_rewards[start : start + rows]
        return informative_groups(local, self.reward_weights, self.num_generations, self.multi_objective_aggregation)

    def _any_process(self, flag: bool) -> bool:
        return bool(self.accelerator.gather(torch.tensor([float(flag)], device=self.accelerator.device)).max())

    def _next_refill_batch(self):
        """A generation batch of fresh prompts for a refill round.

        Its own sampler: each prompt once per pass (TRL's training sampler repeats every generation batch
        `num_iterations x steps_per_generation` times, so consecutive refills would be the same batch) and its own
        seed (a refill must not replay the main stream from its start). Passes follow each other, each shuffled anew.
        """
        if self._refill_loader is None:
            sampler = RepeatSampler(
                self.train_dataset,
                mini_repeat_count=self.num_generations,
                batch_size=self.args.generation_batch_size // self.num_generations,
                repeat_count=1,
                shuffle=True,
                seed=self.args.seed + REFILL_SEED_OFFSET,
            )
            self._refill_loader = self._get_dataloader(
                dataset=self.train_dataset,
                description="Refill",
                batch_size=self._train_batch_size * self.args.steps_per_generation,
                sampler_fn=lambda dataset: sampler,
                is_training=True,
            )
            self._refill_batches = iter(self._refill_loader)
        try:
            return next(self._refill_batches)
        except StopIteration:
            self._refill_batches = iter(self._refill_loader)
            return next(self._refill_batches)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # Gathered over all processes, so every group of `num_generations` consecutive rows is complete here.
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._round_rewards = rewards_per_func  # for dynamic sampling's decision
        mode = "train" if self.model.training else "eval"
        if "accuracy_reward" in self.reward_func_names:
            group = self.num_generations if mode == "train" else self.num_generations_eval
            accuracy = rewards_per_func[:, self.reward_func_names.index("accuracy_reward")].view(-1, group)
            # A prompt whose gold does not parse (accuracy None, NaN here) is neither a success nor a failure.
            scorable = ~torch.isnan(accuracy).any(dim=1)
            ks = [k for k in self.pass_at_k if k <= group]
            if scorable.any():
                for k, value in group_pass_at_k((accuracy[scorable] == 1.0).tolist(), ks).items():
                    self._metrics[mode][f"pass@{k}"].append(value)
        rates = reasoning_behaviour_rates([completion_text(c) for c in completions])
        local = torch.tensor(list(rates.values()), device=self.accelerator.device)
        for name, value in zip(rates, self.accelerator.gather(local[None]).mean(0).tolist()):
            self._metrics[mode][f"reasoning/{name}"].append(value)
        return rewards_per_func
