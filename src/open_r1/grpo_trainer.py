# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The GRPO trainer: TRL's `GRPOTrainer` with the continual-learning methods, DAPO's dynamic sampling, pass@k of the
accuracy reward and reasoning-behaviour rates.

DAPO's dynamic sampling (Yu et al., 2025) trains only on prompt groups whose rewards differ. A group whose completions
all get the same reward gives no gradient (its advantages are zero up to the rounding of TRL's group mean, which the
division by `std + 1e-4` blows up to ~1e-3) but still dilutes the batch. Whether a group is informative is therefore
decided from the rewards themselves, never from the advantages: DAPO's rule ("accuracy all 0 or all 1") generalised
to any set of weighted rewards. Groups are dropped and refilled with groups generated for fresh prompts.
"""

import torch
import torch.nn.functional as F
from trl import GRPOTrainer
from trl.trainer.utils import RepeatSampler

from .continual import ContinualTrainerMixin, build_methods
from .trainers import attach_continual
from .utils.completions import completion_text
from .utils.rl_metrics import group_pass_at_k, reasoning_behaviour_rates


# Per-row tensors TRL pads on the left (prompts) and on the right (completions and their per-token values).
LEFT_PADDED = ("prompt_ids", "prompt_mask")
RIGHT_PADDED = (
    "completion_ids",
    "completion_mask",
    "old_per_token_logps",
    "ref_per_token_logps",
    "sampling_per_token_logps",
    "importance_sampling_ratio",
    "tool_mask",
)
# Rewards closer than this (relative to the group's largest magnitude, at least 1) count as equal.
REWARD_TOLERANCE = 1e-6


def informative_groups(
    rewards_per_func: torch.Tensor,
    reward_weights: torch.Tensor,
    num_generations: int,
    aggregation: str = "sum_then_normalize",
) -> torch.Tensor:
    """Boolean per group of `num_generations` consecutive rows: True when the group's rewards differ.

    `rewards_per_func` is TRL's (rows, reward functions) matrix, NaN where a reward returned None. With TRL's
    `sum_then_normalize` the advantage is a function of the weighted sum of the rewards, so a group is informative
    when that sum differs between its completions; with `normalize_then_sum` each weighted reward is normalised
    within the group first, so a group is informative when any weighted reward differs. Completions no reward could
    score (all NaN) are left out; a group with fewer than two scored completions is not informative.
    """
    weighted = rewards_per_func * reward_weights.to(rewards_per_func).unsqueeze(0)
    unscorable = torch.isnan(rewards_per_func).all(dim=1, keepdim=True)
    if aggregation == "sum_then_normalize":
        values = weighted.nansum(dim=1, keepdim=True)
    elif aggregation == "normalize_then_sum":
        values = weighted
    else:
        raise ValueError(f"Unknown multi_objective_aggregation {aggregation!r}.")
    values = values.masked_fill(unscorable, float("nan")).view(-1, num_generations, values.shape[-1])
    missing = torch.isnan(values)
    highest = values.masked_fill(missing, float("-inf")).amax(dim=1)
    lowest = values.masked_fill(missing, float("inf")).amin(dim=1)
    scale = values.nan_to_num(0.0).abs().amax(dim=1).clamp(min=1.0)
    return ((highest - lowest) > REWARD_TOLERANCE * scale).any(dim=-1)


def prompt_keys(output: dict) -> list[tuple[int, ...]]:
    """The prompt of each row of a generation output, as its unpadded token ids."""
    return [tuple(ids[mask.bool()].tolist()) for ids, mask in zip(output["prompt_ids"], output["prompt_mask"])]


def take_rows(outputs: list[dict], picks: list[torch.Tensor], pad_token_id: int) -> dict:
    """One batch made of rows `picks[i]` of `outputs[i]`, re-padded to common lengths.

    Only per-row tensors are taken; other entries (e.g. `num_items_in_batch`) come from the first output and must be
    recomputed by the caller.
    """
    merged = {}
    n_rows = outputs[0]["advantages"].shape[0]
    for key, value in outputs[0].items():
        if not (isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == n_rows):
            merged[key] = value
            continue
        parts = [out[key][rows] for out, rows in zip(outputs, picks)]
        if key in LEFT_PADDED or key in RIGHT_PADDED:
            length = max(part.shape[1] for part in parts)
            fill = pad_token_id if key in ("prompt_ids", "completion_ids") else 0
            side = (lambda gap: (gap, 0)) if key in LEFT_PADDED else (lambda gap: (0, gap))
            parts = [F.pad(part, side(length - part.shape[1]), value=fill) for part in parts]
        merged[key] = torch.cat(parts)
    return merged


# The refill sampler's seed is the training seed plus this, so that refills never replay the main stream.
REFILL_SEED_OFFSET = 1


def _rows_of(group_mask: torch.Tensor, group_size: int) -> torch.Tensor:
    """Row indices of the groups selected by `group_mask` (groups are consecutive runs of `group_size` rows)."""
    offsets = torch.arange(group_size, device=group_mask.device)
    return (group_mask.nonzero().flatten()[:, None] * group_size + offsets).flatten()


class ContinualGRPOTrainer(ContinualTrainerMixin, GRPOTrainer):
    """GRPO with the continual methods (EWC, EMA, DAdamW), pass@k of the accuracy reward and reasoning-behaviour
    rates logged with TRL's reward metrics."""

    def __init__(
        self, model, reward_funcs, args, pass_at_k: list[int] | tuple[int, ...] = (1,), retain_dataset=None, **kwargs
    ):
        methods = build_methods(args, retain_dataset)
        train_dataset = kwargs.pop("train_dataset", None)
        for method in methods:
            train_dataset = method.prepare_train_dataset(train_dataset)
        super().__init__(model=model, reward_funcs=reward_funcs, args=args, train_dataset=train_dataset, **kwargs)
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
        attach_continual(self, methods)

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
        graded = [name for name in ("accuracy_reward", "boxed_accuracy_reward") if name in self.reward_func_names]
        if graded:
            group = self.num_generations if mode == "train" else self.num_generations_eval
            accuracy = rewards_per_func[:, self.reward_func_names.index(graded[0])].view(-1, group)
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
