# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Configs of the entry points: Open R1's `ScriptArguments` and `SFTConfig` on top of TRL's."""

import contextlib
from dataclasses import dataclass, field
from typing import Any

import trl

from .continual.agem import AGEMConfig
from .continual.ema import EMAConfig
from .continual.ewc import EWCConfig
from .continual.lwf import DistillConfig
from .continual.replay import ReplayConfig
from .continual.retain_data import RetainDataConfig
from .continual.trust_region import TrustRegionConfig
from .continual.wise_ft import WiSEFTConfig
from .optims import CustomOptimizerConfig


_DEFERRED = {"checks": False}


@contextlib.contextmanager
def deferred_checks():
    """Build the configs without running this project's checks (the recipe checker runs each group itself, so that
    it can report every problem of a recipe at once, not just the first)."""
    _DEFERRED["checks"] = True
    try:
        yield
    finally:
        _DEFERRED["checks"] = False


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
    dataset_eval_splits: list[str] | None = field(
        default=None,
        metadata={
            "help": "Evaluate on each of these splits (metrics `eval_<split>_loss`, ...), e.g. the fork's "
            "[test_en, test_ba]; unset: `dataset_test_split` alone."
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
        if not _DEFERRED["checks"]:
            for check in self.checks():
                check()
        if self.dataset_mixture is not None:
            self.dataset_mixture = _parse_mixture(self.dataset_mixture)

    def checks(self) -> list:
        return [self.check_dataset_source]

    def check_dataset_source(self) -> None:
        if self.dataset_name is None and self.dataset_mixture is None:
            raise ValueError("Either `dataset_name` or `dataset_mixture` must be provided.")
        if self.dataset_mixture is not None:
            _parse_mixture(self.dataset_mixture)


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
    nonfinite_steps: str = field(
        default="stop",
        metadata={
            "help": "What a step whose gradient is not finite (NaN or inf, e.g. a diverging learning rate) does: "
            "`stop` the run before the optimizer step, naming the step (the checkpoints written so far are the "
            "newest finite ones), or `skip` the step (no parameter or optimizer moment moves; counted in "
            "`nonfinite/skipped_steps`). Under DeepSpeed the loss is checked (`stop` only). Non-finite weights are "
            "never written, whatever this says."
        },
    )
    resume_fallback: bool = field(
        default=False,
        metadata={
            "help": "When the checkpoint named by `resume_from_checkpoint` is incomplete or damaged, resume from the "
            "newest earlier complete checkpoint instead of stopping. (Without `resume_from_checkpoint` a restart "
            "always resumes from the newest complete checkpoint in `output_dir`.)"
        },
    )


def check_training_values(args) -> None:
    """The Trainer's own values that would fail only after the model loaded (or never, training on nothing)."""
    for key in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if getattr(args, key) < 1:
            raise ValueError(f"`{key}` must be >= 1, got {getattr(args, key)}.")
    if getattr(args, "nonfinite_steps", "stop") not in ("stop", "skip"):
        raise ValueError(f"`nonfinite_steps` must be `stop` or `skip`, got {args.nonfinite_steps!r}.")
    if args.learning_rate < 0:
        raise ValueError(f"`learning_rate` must be >= 0, got {args.learning_rate}.")
    for key in ("max_length", "max_completion_length"):
        value = getattr(args, key, None)
        if value is not None and value < 1:
            raise ValueError(f"`{key}` must be >= 1 (or unset), got {value}: every row would be cut to nothing.")
    if args.max_steps == 0:
        raise ValueError("`max_steps` must not be 0 (-1: train `num_train_epochs` epochs).")
    if args.num_train_epochs <= 0 and args.max_steps <= 0:
        raise ValueError(f"`num_train_epochs` must be > 0 when `max_steps` is unset, got {args.num_train_epochs}.")
    if args.report_to is None or (isinstance(args.report_to, list) and None in args.report_to):
        raise ValueError("`report_to` is empty: list integrations (`wandb`, `tensorboard`, ...) or write `none`.")


@dataclass
class ContinualLearningMixin(
    CustomOptimizerConfig,
    EMAConfig,
    TrustRegionConfig,
    EWCConfig,
    AGEMConfig,
    DistillConfig,
    ReplayConfig,
    RetainDataConfig,
    WiSEFTConfig,
):
    """The continual-learning fields shared by the SFT and GRPO configs (the recipe keys of the seed README): each
    method's own dataclass (in its file under `open_r1.continual`), validated by its own check."""

    def __post_init__(self):
        if not _DEFERRED["checks"]:
            check_training_values(self)  # before TrainingArguments' own, which fails on some with raw errors
        super().__post_init__()
        if not _DEFERRED["checks"]:
            self.check_continual_args()

    def continual_checks(self) -> list:
        """Each method's check, in order (first: `custom_optim: fisher` turns EWC on)."""
        return [
            self.check_custom_optimizer_args,
            self.check_replay_args,
            self.check_ewc_args,
            self.check_agem_args,
            self.check_distill_args,
            self.check_trust_region_args,
            self.check_ema_args,
            self.check_wise_ft_args,
        ]

    def check_continual_args(self) -> None:
        for check in self.continual_checks():
            check()


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

    def continual_checks(self) -> list:
        return [*super().continual_checks(), self.check_grpo_config_args]

    def check_grpo_config_args(self) -> None:
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
            "help": "Rewards: registered names (Open R1's accuracy, format, tag_count, reasoning_steps, cosine, "
            "length, repetition_penalty, soft_overlong_punishment, code, binary_code, code_format, cf_code, with "
            "Open R1's meaning; this project's think_format, think_tag_count, format_relaxed, cosine_capped, keyword, "
            "vrar), 'package.module:function' or "
            "'model:<path>' (sequence-classification verifier). Weights: `reward_weights`."
        },
    )
    reward_errors: str = field(
        default="raise",
        metadata={
            "help": "What a user reward ('package.module:function') that raises does: 'raise' stops the run naming "
            "the reward, the completion and the error; 'none' scores the completions it raises on None (TRL leaves "
            "them out) and logs their count as rewards/<name>/errors.",
            "choices": ["raise", "none"],
        },
    )
    cosine_min_value_wrong: float = field(default=-1.0, metadata={"help": "Cosine reward: shortest wrong answer."})
    cosine_max_value_wrong: float = field(default=-0.5, metadata={"help": "Cosine reward: longest wrong answer."})
    cosine_min_value_correct: float = field(default=0.5, metadata={"help": "Cosine reward: longest right answer."})
    cosine_max_value_correct: float = field(default=1.0, metadata={"help": "Cosine reward: shortest right answer."})
    cosine_max_len: int = field(default=1000, metadata={"help": "Cosine reward: length (characters) of the scale."})
    repetition_n_grams: int = field(default=3, metadata={"help": "Repetition penalty: n-gram size."})
    repetition_max_penalty: float = field(default=-1.0, metadata={"help": "Repetition penalty at full repetition."})
    repetition_language: str = field(
        default="en",
        metadata={
            "help": "Repetition penalty: how words are split, 'en' (whitespace, lowercased) or 'zh' (jieba).",
            "choices": ["en", "zh"],
        },
    )
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
    # Code rewards (`code`, `binary_code`, `code_format`, `cf_code`): Open R1's keys, plus the local sandbox's limits.
    code_language: str = field(default="python", metadata={"help": "Code rewards: language of the fenced block."})
    code_provider: str = field(
        default="e2b",
        metadata={
            "help": "Where code rewards run programs: 'local' (this machine's bubblewrap sandbox), 'e2b', 'morph' "
            "(remote sandboxes; SDK or router; E2B_API_KEY / MORPH_API_KEY from the environment or a .env file) or "
            "'piston' (PISTON_ENDPOINTS). See open_r1.code."
        },
    )
    e2b_router_url: str | None = field(default=None, metadata={"help": "E2B router host:port (Open R1's router)."})
    morph_router_url: str | None = field(default=None, metadata={"help": "Morph router host:port."})
    parallel_code_exec_per_proc: int = field(
        default=2, metadata={"help": "Code rewards: programs run at once per training process."}
    )
    enforce_same_language: bool = field(
        default=False, metadata={"help": "`code` reward: refuse a batch that mixes languages."}
    )
    code_eval_test_batch_size: int = field(
        default=1, metadata={"help": "`cf_code` pass_fail: tests per batch; scoring stops at a failing batch."}
    )
    code_eval_scoring_mode: str = field(
        default="weighted_sum", metadata={"help": "`cf_code`: pass_fail, partial or weighted_sum (Open R1)."}
    )
    code_time_limit: float = field(
        default=5.0, metadata={"help": "Code rewards: CPU seconds per test case (wall: twice that)."}
    )
    code_completion_time_limit: float = field(
        default=60.0, metadata={"help": "Code rewards: wall seconds for all of one completion's test cases."}
    )
    code_memory_mb: int = field(
        default=1024,
        metadata={"help": "Local sandbox: MiB for a whole program run (every process, and the files it writes)."},
    )

    pass_at_k: list[int] = field(
        default_factory=lambda: [1],
        metadata={
            "help": "Log pass@k of the `accuracy` reward for these k (each <= num_generations), unbiased "
            "estimator over each prompt's group."
        },
    )

    def checks(self) -> list:
        return [*super().checks(), self.check_reward_args]

    def check_reward_args(self) -> None:
        if self.reward_errors not in ("raise", "none"):
            raise ValueError(f"`reward_errors` must be 'raise' or 'none', got {self.reward_errors!r}.")
        from .code.providers import PROVIDERS

        if self.code_provider not in PROVIDERS:
            raise ValueError(f"`code_provider` must be one of {PROVIDERS}, got {self.code_provider!r}.")
        if self.code_eval_scoring_mode not in ("pass_fail", "partial", "weighted_sum"):
            raise ValueError(
                f"`code_eval_scoring_mode` must be pass_fail, partial or weighted_sum, got {self.code_eval_scoring_mode!r}."
            )
        for key in ("parallel_code_exec_per_proc", "code_time_limit", "code_completion_time_limit", "code_memory_mb"):
            if not getattr(self, key) > 0:
                raise ValueError(f"`{key}` must be > 0, got {getattr(self, key)!r}.")


def check_grpo_arguments(script_args: GRPOScriptArguments, training_args: GRPOConfig) -> None:
    """Rules that involve both GRPO dataclasses; fills `max_completion_len` from the generation cap."""
    if script_args.max_completion_len is None:
        script_args.max_completion_len = training_args.max_completion_length
    elif script_args.max_completion_len != training_args.max_completion_length:
        raise ValueError(
            f"`max_completion_len` ({script_args.max_completion_len}, the soft overlong punishment's M) must equal "
            f"`max_completion_length` ({training_args.max_completion_length}, the generation cap); leave it unset."
        )
