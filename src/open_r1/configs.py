# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Configs of the entry points: Open R1's `ScriptArguments` and `SFTConfig` on top of TRL's."""

from dataclasses import dataclass, field
from typing import Any

import trl


@dataclass
class DatasetConfig:
    """One dataset of a mixture (Open R1 convention)."""

    id: str
    config: str | None = None
    split: str = "train"
    columns: list[str] | None = None
    weight: float | None = None


@dataclass
class DatasetMixtureConfig:
    """A weighted mixture of datasets; `weight` is the fraction of each dataset's rows kept."""

    datasets: list[DatasetConfig]
    seed: int = 0
    test_split_size: float | None = None


@dataclass
class ScriptArguments(trl.ScriptArguments):
    """Open R1's script arguments: a single dataset (`dataset_name`, hub id or local path) or a `dataset_mixture`."""

    # Override TRL's field so a mixture alone is enough.
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Hub dataset id or local path (a `save_to_disk` directory or data files). Ignored when "
            "`dataset_mixture` is set."
        },
    )
    dataset_mixture: dict[str, Any] | None = field(
        default=None,
        metadata={
            "help": "Configuration for a mixture of datasets: {'datasets': [{'id', 'config', 'split', "
            "'columns', 'weight'}], 'seed': int, 'test_split_size': float}. `weight` is the fraction of the "
            "dataset's rows kept (1.0 = all)."
        },
    )

    def __post_init__(self):
        if self.dataset_name is None and self.dataset_mixture is None:
            raise ValueError("Either `dataset_name` or `dataset_mixture` must be provided.")
        if self.dataset_mixture is not None:
            self.dataset_mixture = _parse_mixture(self.dataset_mixture)


def _parse_mixture(mixture: dict[str, Any] | DatasetMixtureConfig) -> DatasetMixtureConfig:
    if isinstance(mixture, DatasetMixtureConfig):
        return mixture
    if not isinstance(mixture, dict) or not isinstance(mixture.get("datasets"), list) or not mixture["datasets"]:
        raise ValueError("`dataset_mixture` must be a dict with a non-empty 'datasets' list.")
    unknown = set(mixture) - {"datasets", "seed", "test_split_size"}
    if unknown:
        raise ValueError(f"Unknown keys in `dataset_mixture`: {sorted(unknown)}.")
    datasets = []
    for index, entry in enumerate(mixture["datasets"]):
        allowed = {"id", "config", "split", "columns", "weight"}
        if not isinstance(entry, dict) or "id" not in entry:
            raise ValueError(f"`dataset_mixture.datasets[{index}]` must be a dict with an 'id'.")
        if set(entry) - allowed:
            raise ValueError(f"Unknown keys in `dataset_mixture.datasets[{index}]`: {sorted(set(entry) - allowed)}.")
        weight = entry.get("weight")
        if weight is not None and not 0 < weight <= 1:
            raise ValueError(f"`dataset_mixture.datasets[{index}].weight` must be in (0, 1], got {weight}.")
        datasets.append(DatasetConfig(**entry))
    return DatasetMixtureConfig(
        datasets=datasets, seed=mixture.get("seed", 0), test_split_size=mixture.get("test_split_size")
    )


@dataclass
class HubAndLoggingMixin:
    """Open R1's extra fields shared by the SFT and GRPO configs."""

    chat_template: str | None = field(
        default=None, metadata={"help": "Jinja chat template that replaces the tokenizer's."}
    )
    system_prompt: str | None = field(default=None, metadata={"help": "Optional system prompt for the chats."})
    benchmarks: list[str] = field(default_factory=list, metadata={"help": "Benchmarks to run after training."})
    callbacks: list[str] = field(default_factory=list, metadata={"help": "Callbacks to run during training."})
    hub_model_revision: str | None = field(default="main", metadata={"help": "The Hub model branch to push to."})
    overwrite_hub_revision: bool = field(default=False, metadata={"help": "Whether to overwrite the Hub revision."})
    push_to_hub_revision: bool = field(default=False, metadata={"help": "Whether to push to a Hub revision/branch."})
    wandb_entity: str | None = field(default=None, metadata={"help": "The entity to store runs under."})
    wandb_project: str | None = field(default=None, metadata={"help": "The project to store runs under."})
    wandb_run_group: str | None = field(default=None, metadata={"help": "The group to store runs under."})


CUSTOM_OPTIMS = ("dadamw", "fisher")


@dataclass
class ContinualLearningMixin:
    """Continual-learning fields shared by the SFT and GRPO configs (the recipe keys of the seed README)."""

    custom_optim: str | None = field(
        default=None,
        metadata={
            "help": "Custom optimizer instead of the Trainer's `optim`: 'dadamw' (diagonal-preconditioned "
            "AdamW, see `preconditioner_power`). Unset: the Trainer's own optimizer."
        },
    )
    preconditioner_power: float = field(
        default=0.5,
        metadata={
            "help": "DAdamW preconditioner power gamma in [0.5, 1]: step = lr * m_hat / (v_hat**gamma + eps). "
            "0.5 is AdamW, 1.0 the diagonal (empirical-Fisher) natural gradient. At gamma > 0.5 lower the "
            "learning rate (about lr_adam * 1e-3 at gamma = 1) and raise `adam_epsilon` (1e-6 to 1e-4)."
        },
    )

    retain_dataset_id: str | None = field(
        default=None,
        metadata={
            "help": "The retain data set (what must not be forgotten): hub id or local path. Used by replay "
            "and as the Fisher data of EWC."
        },
    )
    retain_dataset_config: str | None = field(default=None, metadata={"help": "Config name of the retain set."})
    retain_dataset_split: str = field(default="train", metadata={"help": "Split of the retain data set."})
    replay_ratio: float = field(
        default=0.0,
        metadata={"help": "Share of retain rows in the training set (0 = no replay), in [0, 1)."},
    )
    replay_mode: str = field(
        default="replace",
        metadata={
            "help": "'replace': retain rows replace update rows, the data set size stays the same (as the "
            "fork); 'add': retain rows are added to all update rows.",
            "choices": ["replace", "add"],
        },
    )
    use_ema: bool = field(default=False, metadata={"help": "Keep an EMA of the weights and save it as the model."})
    ema_eta: float = field(
        default=0.25,
        metadata={
            "help": "EMA weight of the old shadow, in [0, 1), as in the fork's code: after each optimizer step "
            "theta_ema = eta * theta_ema + (1 - eta) * theta. The EMA averages about 1 / (1 - eta) steps: the seed's "
            "0.25 is 1.3 steps (almost the last weights), 0.9 is 10, 0.99 is 100. Evaluations, `ema/` in every "
            "checkpoint, the pushed checkpoints and the final model are the EMA (with `load_best_model_at_end`, the "
            "best checkpoint's EMA); checkpoints keep the raw weights for resuming."
        },
    )
    ema_offload: bool = field(default=False, metadata={"help": "Keep the fp32 EMA shadow on CPU."})
    use_trust_region: bool = field(
        default=False,
        metadata={
            "help": "SFT: add beta * KL(p_ref || p_theta) on the trained tokens, p_ref the starting model. GRPO: TRL's "
            "own KL term, beta * KL(pi_theta || pi_ref) by its k3 estimator, with beta = `trust_region_beta`."
        },
    )
    trust_region_beta: float = field(
        default=0.1,
        metadata={"help": "KL coefficient (penalty), or its starting value when `trust_region_delta` is set."},
    )
    trust_region_delta: float | None = field(
        default=None,
        metadata={"help": "KL bound: beta adapts after each step (x2 if KL > 1.5 delta, /2 if KL < delta / 1.5)."},
    )

    use_ewc: bool = field(
        default=False,
        metadata={
            "help": "EWC: add (ewc_lambda / 2) * sum_i F_i (theta_i - theta*_i)^2, F the diagonal Fisher of "
            "the retain set, theta* the starting weights. Composes with every other method."
        },
    )
    ewc_lambda: float = field(
        default=50.0,
        metadata={
            "help": "EWC penalty strength lambda in (lambda / 2) * sum_i F_i (theta_i - theta*_i)^2 (the seed's "
            "formula; the fork's code added lambda * sum_i F_i (...)^2, so its lambda L is 2L here). Its scale depends "
            "on `fisher_normalization`."
        },
    )
    fisher_kind: str = field(
        default="empirical",
        metadata={
            "help": "'empirical': gradients of the data's own completions; 'model': of tokens sampled from "
            "the model at each completion position (the true Fisher).",
            "choices": ["empirical", "model"],
        },
    )
    fisher_estimator: str = field(
        default="per_sample",
        metadata={
            "help": "'per_sample': mean of squared per-sequence gradients (exact); 'batched': mean of "
            "squared mini-batch gradients (cheaper, about F / fisher_batch_size near an optimum).",
            "choices": ["per_sample", "batched"],
        },
    )
    fisher_normalization: str = field(
        default="token",
        metadata={
            "help": "What each retain sequence's log-likelihood gradient is the gradient of: 'token' (default), "
            "its mean over trained tokens, as SFT's loss is and as the fork computed it (the model's mean token loss "
            "at batch 1), so `ewc_lambda` keeps the fork's meaning whatever the retain length; 'sequence', its sum "
            "(the textbook Fisher; against a per-token loss the penalty then grows ~T to ~T^2 with retain length "
            "T). The batched estimator squares the batch's mean over tokens ('token') or sequences ('sequence').",
            "choices": ["token", "sequence"],
        },
    )
    fisher_num_samples: int = field(default=256, metadata={"help": "Retain rows the Fisher is estimated on."})
    fisher_batch_size: int = field(default=8, metadata={"help": "Rows per batch of the Fisher computation."})
    fisher_chunk_size: int | None = field(
        default=None,
        metadata={
            "help": "Rows whose per-sample gradients of one parameter are materialised at once (memory: chunk x "
            "the largest parameter, fp32; the batch's activations are held anyway). Default: a whole Fisher batch."
        },
    )
    recompute_fisher_mode: str = field(
        default="never",
        metadata={
            "help": "'never', 'intervals' (every `recompute_fisher_intervals` of training) or 'dynamically' "
            "(when the retain NLL drifts past `fisher_drift_threshold`).",
            "choices": ["never", "intervals", "dynamically"],
        },
    )
    recompute_fisher_intervals: float = field(
        default=0.25, metadata={"help": "Fraction of training between recomputes in 'intervals' mode."}
    )
    fisher_drift_threshold: float = field(
        default=0.1,
        metadata={
            "help": "'dynamically': recompute when the retain NLL exceeds (1 + threshold) x its value at the "
            "last computation."
        },
    )
    fisher_drift_check_steps: int = field(
        default=10, metadata={"help": "'dynamically': steps between retain-NLL checks."}
    )
    ewc_online: bool = field(
        default=False, metadata={"help": "On recompute, F <- ewc_online_gamma * F + F_new (online EWC)."}
    )
    ewc_online_gamma: float = field(
        default=1.0,
        metadata={
            "help": "Decay of the old Fisher in online EWC. At 1.0 (no decay) each recompute adds a whole Fisher, "
            "so with the anchors still at the starting weights (no `ewc_reanchor`) the penalty grows by about one "
            "Fisher's worth per recompute: lower gamma (e.g. 0.5-0.9, Schwarz et al. 2018) to keep its scale."
        },
    )
    ewc_reanchor: bool = field(
        default=False, metadata={"help": "On recompute, move the anchors theta* to the current weights."}
    )
    fisher_offload: bool = field(
        default=False,
        metadata={
            "help": "Keep Fisher and anchors on CPU: they are copied to the device one parameter at a time at each "
            "step (GPU memory saved; two values per parameter moved per step, 8 bytes in float32)."
        },
    )
    fisher_storage_dtype: str = field(
        default="float32",
        metadata={
            "help": "Storage dtype of Fisher and anchors (computed in fp32 either way).",
            "choices": ["float32", "bfloat16"],
        },
    )

    def __post_init__(self):
        super().__post_init__()
        self.check_continual_args()

    def check_continual_args(self) -> None:
        if self.custom_optim is not None and self.custom_optim not in CUSTOM_OPTIMS:
            raise ValueError(f"`custom_optim`: unknown value {self.custom_optim!r}; choose from {CUSTOM_OPTIMS}.")
        if not 0.5 <= self.preconditioner_power <= 1.0:
            raise ValueError(f"`preconditioner_power` must be in [0.5, 1.0], got {self.preconditioner_power}.")
        if not 0.0 <= self.replay_ratio < 1.0:
            raise ValueError(f"`replay_ratio` must be in [0, 1), got {self.replay_ratio}.")
        if self.replay_ratio > 0 and self.retain_dataset_id is None:
            raise ValueError("`replay_ratio` > 0 needs `retain_dataset_id`.")
        if not 0.0 <= self.ema_eta < 1.0:
            raise ValueError(f"`ema_eta` must be in [0, 1), got {self.ema_eta}.")
        if self.use_ema and self.push_to_hub and self.hub_strategy != "end":
            raise ValueError(
                f"`use_ema` with `hub_strategy: {getattr(self.hub_strategy, 'value', self.hub_strategy)}`: the Trainer would push each checkpoint's raw "
                "weights, not the EMA. Use `hub_strategy: end` (the final push is the EMA) and `callbacks: "
                "[push_to_hub_revision]`, which pushes each checkpoint's EMA to its own branch."
            )
        if self.trust_region_beta < 0:
            raise ValueError(f"`trust_region_beta` must be >= 0, got {self.trust_region_beta}.")
        if self.trust_region_delta is not None and self.trust_region_delta <= 0:
            raise ValueError(f"`trust_region_delta` must be > 0, got {self.trust_region_delta}.")
        if self.custom_optim == "fisher":
            self.use_ewc = True
        if self.use_ewc and self.retain_dataset_id is None:
            raise ValueError("EWC (`use_ewc` / `custom_optim: fisher`) needs `retain_dataset_id` for its Fisher.")
        if self.ewc_lambda < 0:
            raise ValueError(f"`ewc_lambda` must be >= 0, got {self.ewc_lambda}.")
        if not 0 < self.recompute_fisher_intervals < 1:
            raise ValueError(f"`recompute_fisher_intervals` must be in (0, 1), got {self.recompute_fisher_intervals}.")
        for key in ("fisher_num_samples", "fisher_batch_size", "fisher_drift_check_steps"):
            if getattr(self, key) < 1:
                raise ValueError(f"`{key}` must be >= 1, got {getattr(self, key)}.")


@dataclass
class SFTConfig(ContinualLearningMixin, HubAndLoggingMixin, trl.SFTConfig):
    """TRL's `SFTConfig` with Open R1's hub/logging fields and the continual-learning fields."""


@dataclass
class GRPOConfig(ContinualLearningMixin, HubAndLoggingMixin, trl.GRPOConfig):
    """TRL's `GRPOConfig` (loss_type, beta, epsilon/epsilon_high, num_iterations, scale_rewards,
    mask_truncated_completions, sync_ref_model, reward_weights, use_vllm, ...) with Open R1's fields and the
    continual-learning fields. Replay does not apply to GRPO; `use_trust_region` sets TRL's KL coefficient `beta` to
    `trust_region_beta` and, with `trust_region_delta`, adapts it after each step to keep the KL near delta."""

    dynamic_sampling: bool = field(
        default=False,
        metadata={
            "help": "DAPO dynamic sampling: drop prompt groups whose rewards are all equal (zero advantage) "
            "and refill the batch with groups of newly sampled prompts."
        },
    )
    dynamic_sampling_max_rounds: int = field(
        default=3,
        metadata={
            "help": "Extra generation rounds per batch at most; past it the batch keeps uninformative groups "
            "(logged as dynamic_sampling/unfilled_frac)."
        },
    )

    def check_continual_args(self) -> None:
        super().check_continual_args()
        if self.dynamic_sampling_max_rounds < 0:
            raise ValueError(f"`dynamic_sampling_max_rounds` must be >= 0, got {self.dynamic_sampling_max_rounds}.")
        if self.replay_ratio > 0:
            raise ValueError("`replay_ratio`: replay is an SFT method; GRPO prompts need verifiable answers.")
        if self.use_trust_region:
            if self.trust_region_beta <= 0:
                raise ValueError("`trust_region_beta` must be > 0 for GRPO: TRL loads its reference model only then.")
            self.beta = self.trust_region_beta


@dataclass
class GRPOScriptArguments(ScriptArguments):
    """Script arguments of `grpo.py`: prompt column and the rewards (see `open_r1.rewards`)."""

    dataset_prompt_column: str = field(
        default="problem",
        metadata={
            "help": "Column with the prompt: a string, or a list of chat messages (turns up to the last user "
            "turn are kept, so an SFT `messages` column works)."
        },
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["accuracy", "format", "tag_count"],
        metadata={
            "help": "Rewards: registered names (accuracy, format, format_relaxed, tag_count, reasoning_steps, "
            "cosine, repetition_penalty, soft_overlong, keyword, vrar), 'package.module:function' or "
            "'model:<path>' (sequence-classification verifier). Weights: `reward_weights`."
        },
    )
    cosine_min_value_wrong: float = field(default=-1.0, metadata={"help": "Cosine reward: shortest wrong answer."})
    cosine_max_value_wrong: float = field(default=-0.5, metadata={"help": "Cosine reward: longest wrong answer."})
    cosine_min_value_correct: float = field(default=0.5, metadata={"help": "Cosine reward: longest right answer."})
    cosine_max_value_correct: float = field(default=1.0, metadata={"help": "Cosine reward: shortest right answer."})
    cosine_max_len: int = field(default=1000, metadata={"help": "Cosine reward: length (characters) of the scale."})
    repetition_n_grams: int = field(default=3, metadata={"help": "Repetition penalty: n-gram size."})
    repetition_max_penalty: float = field(default=-1.0, metadata={"help": "Repetition penalty at full repetition."})
    max_completion_len: int | None = field(
        default=None,
        metadata={
            "help": "Soft overlong punishment: maximum tokens M. Default: the generation cap `max_completion_length`, "
            "which it must equal when set (any completion longer than M would otherwise score -1)."
        },
    )
    soft_punish_cache: int = field(default=64, metadata={"help": "Soft overlong punishment: cache C (tokens)."})
    vrar_accuracy_weight: float = field(default=0.7, metadata={"help": "VRAR reward: weight of keyword accuracy."})
    vrar_format_weight: float = field(default=0.3, metadata={"help": "VRAR reward: weight of the format reward."})
    pass_at_k: list[int] = field(
        default_factory=lambda: [1],
        metadata={
            "help": "Log pass@k of the `accuracy` reward for these k (each <= num_generations), unbiased "
            "estimator over each prompt's group."
        },
    )


def check_grpo_arguments(script_args: GRPOScriptArguments, training_args: GRPOConfig) -> None:
    """Rules that involve both GRPO dataclasses; fills `max_completion_len` from the generation cap."""
    if script_args.max_completion_len is None:
        script_args.max_completion_len = training_args.max_completion_length
    elif script_args.max_completion_len != training_args.max_completion_length:
        raise ValueError(
            f"`max_completion_len` ({script_args.max_completion_len}, the soft overlong punishment's M) must equal "
            f"`max_completion_length` ({training_args.max_completion_length}, the generation cap); leave it unset."
        )
