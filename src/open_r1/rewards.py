# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Reward functions for GRPO, and the registry recipes name them from.

Every reward takes TRL's arguments (`completions` plus the data set's columns as keyword lists) and returns one
float per completion (`accuracy` and `cosine`: None where the gold answer does not parse, which TRL leaves out). None
of them raises on malformed, empty, huge or non-UTF-8 completions: such a completion scores the reward's minimum. `reward_funcs` entries in a recipe are:
- a registered name (`accuracy`, `format`, `format_relaxed`, `tag_count`, `reasoning_steps`, `cosine`,
  `repetition_penalty`, `soft_overlong`, `keyword`, `vrar`);
- `"package.module:function"`, a user reward imported by path;
- `"model:<hub id or local path>"`, a sequence-classification model used as a verifier (TRL scores it batched,
  its first logit is the reward), as SafeWork-R1's safety/value/knowledge verifiers.
Weights are TRL's `reward_weights`, one per entry.
"""

import functools
import inspect
import logging
import math
import re

from .utils.import_utils import import_callable
from .utils.math_grading import GradingUnavailable, boxed_answer_is_correct, gold_parses


logger = logging.getLogger(__name__)

# Longer completions are cut to their last characters before parsing, which bounds math-verify's work.
MAX_PARSE_CHARS = 20_000


def completion_text(completion) -> str:
    """The text of a completion: a string, bytes, or a conversational list of messages (the last one's content)."""
    if isinstance(completion, bytes):
        return completion.decode("utf-8", errors="replace")
    if isinstance(completion, list):
        completion = completion[-1].get("content", "") if completion and isinstance(completion[-1], dict) else ""
    if not isinstance(completion, str):
        return ""
    # Lone surrogates (undecodable bytes smuggled through) break regexes and encoders downstream.
    return completion.encode("utf-8", errors="replace").decode("utf-8")


@functools.lru_cache(maxsize=4096)
def _gold_parses(solution: str) -> bool:
    """Whether the gold answer parses, logged once per gold when it does not (a timeout raises: not remembered)."""
    parses = gold_parses(solution)
    if not parses:
        logger.warning("accuracy_reward: gold answer %.200r does not parse; scoring None (left out)", solution)
    return parses


def _accuracy_one(text: str, solution: str) -> float | None:
    """1.0 or 0.0, or None when the gold answer does not parse or the check cannot be made (out of time, its worker
    gone): such a completion can be judged neither right (the bug Open R1 fixed in PR 566) nor wrong. TRL leaves a
    completion out when all its rewards are None; beside other rewards a None counts as 0 in TRL's sum."""
    try:
        if not _gold_parses(str(solution)):
            return None
        return float(boxed_answer_is_correct(text[-MAX_PARSE_CHARS:], str(solution)))
    except GradingUnavailable as error:
        logger.warning("accuracy_reward: the answer could not be checked (%s); scoring None (left out)", error)
        return None
    except Exception:  # noqa: BLE001 - math-verify cannot compare the answer: it is not the gold one
        return 0.0


def accuracy_reward(completions, solution, **kwargs) -> list[float | None]:
    """1 if the completion's `\\boxed{}` answer equals the gold `solution` under math-verify, else 0.

    Plain-number golds ("6") parse; a gold that does not parse scores None (logged): TRL leaves such completions out
    of the group baseline and the loss, and pass@k leaves their prompt out.
    """
    return [_accuracy_one(completion_text(c), s) for c, s in zip(completions, solution)]


_FORMAT = re.compile(r"^<think>\n.*?\n</think>\n(?!.*<think>).*\S.*$", re.DOTALL)
_FORMAT_RELAXED = re.compile(r"^\s*<think>.*?</think>(?!.*<think>).*\S.*$", re.DOTALL)


def format_reward(completions, **kwargs) -> list[float]:
    """1 if the completion is `<think>\\n...\\n</think>\\n` followed by a non-empty answer, else 0."""
    return [float(bool(_FORMAT.match(completion_text(c)))) for c in completions]


def format_relaxed_reward(completions, **kwargs) -> list[float]:
    """As `format_reward`, with any whitespace (or none) around the think tags."""
    return [float(bool(_FORMAT_RELAXED.match(completion_text(c)))) for c in completions]


def tag_count_reward(completions, **kwargs) -> list[float]:
    """0.5 for exactly one `<think>\\n` and 0.5 for exactly one `\\n</think>\\n` (a smooth format signal)."""

    def score(text):
        return 0.5 * (text.count("<think>\n") == 1) + 0.5 * (text.count("\n</think>\n") == 1)

    return [score(completion_text(c)) for c in completions]


_STEPS = re.compile(r"(Step \d+:|^\d+\.|\n-|\n\*|First,|Second,|Next,|Finally,)")


def reasoning_steps_reward(completions, **kwargs) -> list[float]:
    """min(1, number of step markers / 3), markers as in Open R1 ("Step 1:", "1.", bullets, "First,", ...)."""
    return [min(1.0, len(_STEPS.findall(completion_text(c))) / 3) for c in completions]


def get_cosine_scaled_reward(
    min_value_wrong: float = -1.0,
    max_value_wrong: float = -0.5,
    min_value_correct: float = 0.5,
    max_value_correct: float = 1.0,
    max_len: int = 1000,
):
    """Accuracy scaled by length on a cosine (Open R1): short right answers score most, short wrong ones least."""

    def cosine_scaled_reward(completions, solution, **kwargs) -> list[float | None]:
        rewards = []
        for completion, sol in zip(completions, solution):
            text = completion_text(completion)
            accuracy = _accuracy_one(text, sol)
            if accuracy is None:  # the gold does not parse: neither right nor wrong
                rewards.append(None)
                continue
            correct = accuracy == 1.0
            progress = min(len(text), max_len) / max_len
            cosine = math.cos(progress * math.pi)
            low, high = (min_value_correct, max_value_correct) if correct else (max_value_wrong, min_value_wrong)
            rewards.append(low + 0.5 * (high - low) * (1.0 + cosine))
        return rewards

    return cosine_scaled_reward


def get_repetition_penalty_reward(ngram_size: int = 3, max_penalty: float = -1.0):
    """Penalty proportional to the share of repeated word n-grams (Open R1): 0 for none, `max_penalty` for all."""
    if max_penalty > 0:
        raise ValueError(f"`repetition_max_penalty` must be <= 0, got {max_penalty}.")

    def repetition_penalty_reward(completions, **kwargs) -> list[float]:
        rewards = []
        for completion in completions:
            words = completion_text(completion).lower().split()
            ngrams = [tuple(words[i : i + ngram_size]) for i in range(len(words) - ngram_size + 1)]
            if not ngrams:
                rewards.append(0.0)
                continue
            rewards.append((1 - len(set(ngrams)) / len(ngrams)) * max_penalty)
        return rewards

    return repetition_penalty_reward


def get_soft_overlong_punishment(max_completion_len: int, soft_punish_cache: int):
    """DAPO's soft overlong punishment on the completion's token count L, with cache C and maximum M:
    0 if L <= M - C, (M - C - L) / C if M - C < L <= M, -1 beyond."""
    if max_completion_len is None:
        raise ValueError("`max_completion_len` is unset: `check_grpo_arguments` sets it to `max_completion_length`.")
    if not 0 <= soft_punish_cache <= max_completion_len:
        raise ValueError("`soft_punish_cache` must be in [0, max_completion_len].")

    def soft_overlong_punishment(completion_ids, **kwargs) -> list[float]:
        rewards = []
        for ids in completion_ids:
            length = len(ids)
            if length <= max_completion_len - soft_punish_cache:
                rewards.append(0.0)
            elif length <= max_completion_len:
                rewards.append((max_completion_len - soft_punish_cache - length) / max(soft_punish_cache, 1))
            else:
                rewards.append(-1.0)
        return rewards

    return soft_overlong_punishment


def keyword_reward(completions, keywords, **kwargs) -> list[float]:
    """Share of the row's required `keywords` that the answer (after the think block) contains, case-insensitive."""
    from .eval.judges import strip_think

    rewards = []
    for row, (completion, required) in enumerate(zip(completions, keywords)):
        if isinstance(required, str):  # iterating it would match single letters
            raise TypeError(f"keyword reward: `keywords` of row {row} is the string {required!r:.60}, not a list.")
        answer = strip_think(completion_text(completion)).lower()
        required = [k for k in (required or []) if isinstance(k, str) and k]
        rewards.append(sum(k.lower() in answer for k in required) / len(required) if required else 0.0)
    return rewards


def get_vrar_reward(accuracy_weight: float = 0.7, format_weight: float = 0.3):
    """RAIDEN-R1's verifiable role-awareness reward: accuracy_weight * keyword accuracy + format_weight * format."""

    def vrar_reward(completions, keywords, **kwargs) -> list[float]:
        accuracy = keyword_reward(completions, keywords)
        formats = format_relaxed_reward(completions)
        return [accuracy_weight * a + format_weight * f for a, f in zip(accuracy, formats)]

    return vrar_reward


def _registry(args) -> dict:
    """Each registered name and how to build its reward from the script arguments (only named ones are built; the
    code rewards share one provider)."""
    provider = functools.cache(lambda: code_provider(args))
    return {
        "accuracy": lambda: accuracy_reward,
        "format": lambda: format_reward,
        "format_relaxed": lambda: format_relaxed_reward,
        "tag_count": lambda: tag_count_reward,
        "reasoning_steps": lambda: reasoning_steps_reward,
        "cosine": lambda: get_cosine_scaled_reward(
            args.cosine_min_value_wrong,
            args.cosine_max_value_wrong,
            args.cosine_min_value_correct,
            args.cosine_max_value_correct,
            args.cosine_max_len,
        ),
        "repetition_penalty": lambda: get_repetition_penalty_reward(
            args.repetition_n_grams, args.repetition_max_penalty
        ),
        "soft_overlong": lambda: get_soft_overlong_punishment(args.max_completion_len, args.soft_punish_cache),
        "keyword": lambda: keyword_reward,
        "vrar": lambda: get_vrar_reward(args.vrar_accuracy_weight, args.vrar_format_weight),
        "code": lambda: _code_rewards().get_code_reward(provider(), False, args.enforce_same_language),
        "binary_code": lambda: _code_rewards().get_code_reward(provider(), True, args.enforce_same_language),
        "code_format": lambda: _code_rewards().get_code_format_reward(args.code_language),
        "cf_code": lambda: _code_rewards().get_cf_code_reward(
            provider(), args.code_eval_test_batch_size, args.code_eval_scoring_mode
        ),
        "ioi_code": _ioi_not_built,
    }


def _code_rewards():
    from .code import rewards

    return rewards


def _ioi_not_built():
    raise ValueError(
        "`reward_funcs`: `ioi_code` is not built in this project: IOI subtasks need the official graders compiled "
        "with each submission (Open R1 runs them as a Piston package). Use `cf_code` or `code`."
    )


def code_provider(args):
    """The code rewards' provider for the script arguments."""
    from .code.providers import get_provider
    from .code.sandbox import SandboxLimits

    limits = SandboxLimits(
        cpu_seconds=args.code_time_limit, wall_seconds=2 * args.code_time_limit, memory_mb=args.code_memory_mb
    )
    return get_provider(
        args.code_provider,
        num_parallel=args.parallel_code_exec_per_proc,
        limits=limits,
        time_budget_seconds=args.code_completion_time_limit,
        e2b_router_url=args.e2b_router_url,
        morph_router_url=args.morph_router_url,
    )


# The dataset columns each registered reward reads (TRL passes every column to every reward as a keyword list).
REWARD_COLUMNS = {
    "accuracy": ("solution",),
    "cosine": ("solution",),
    "keyword": ("keywords",),
    "vrar": ("keywords",),
    "code": ("verification_info",),
    "binary_code": ("verification_info",),
    "cf_code": ("official_tests",),
}
# What TRL passes to every reward besides the dataset's columns.
TRL_REWARD_ARGUMENTS = {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric"}


def reward_columns(entry: str, func) -> tuple[str, ...]:
    """The dataset columns the reward `entry` (as named in `reward_funcs`) needs: the registered ones' own, a user
    function's required keyword parameters that TRL does not supply; none for a verifier model (it reads the text)."""
    if entry in REWARD_COLUMNS:
        return REWARD_COLUMNS[entry]
    if not callable(func):
        return ()
    parameters = inspect.signature(func).parameters.values()
    return tuple(
        p.name
        for p in parameters
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.default is p.empty
        and p.name not in TRL_REWARD_ARGUMENTS
        and p.name != "environments"
    )


def guarded_reward(func, name: str, on_error: str):
    """A user reward that, when it raises, says which reward and which completion: `on_error` "raise" stops with the
    reward's name, the completion's index and the original error; "none" scores each completion alone and gives the
    ones it raises on None (left out by TRL), counted in `rewards/<name>/errors`."""

    @functools.wraps(func)
    def reward(completions, **kwargs):
        try:
            return func(completions=completions, **kwargs)
        except Exception as batch_error:  # noqa: BLE001 - re-raised below with the reward and completion named
            scores, failures = [], []
            for index in range(len(completions)):
                one = {
                    key: value[index : index + 1]
                    if isinstance(value, list) and len(value) == len(completions)
                    else value
                    for key, value in kwargs.items()
                }
                try:
                    scores.append(func(completions=completions[index : index + 1], **one)[0])
                except Exception as error:  # noqa: BLE001
                    scores.append(None)
                    failures.append((index, error))
            index, error = failures[0] if failures else (None, batch_error)
            if on_error == "raise" or not failures:
                where = f"completion {index}" if index is not None else "the batch (no single completion fails)"
                raise RuntimeError(f"Reward `{name}` raised on {where}: {type(error).__name__}: {error}") from error
            logger.warning("Reward `%s` raised on %d completion(s), scored None: %s", name, len(failures), error)
            if callable(kwargs.get("log_metric")):
                kwargs["log_metric"](f"rewards/{name}/errors", float(len(failures)))
            return scores

    return reward


def get_reward_funcs(script_args) -> list:
    """The recipe's `reward_funcs` as what `GRPOTrainer` takes: callables or verifier model paths."""
    registry = _registry(script_args)
    funcs = []
    for entry in script_args.reward_funcs:
        if entry.startswith("model:"):
            funcs.append(entry.removeprefix("model:"))  # TRL loads it as AutoModelForSequenceClassification
        elif ":" in entry:
            user = import_callable(entry, "reward_funcs")
            funcs.append(guarded_reward(user, getattr(user, "__name__", entry), script_args.reward_errors))
        elif entry in registry:
            funcs.append(registry[entry]())  # TRL logs it as rewards/<function name>/mean
        else:
            raise ValueError(
                f"`reward_funcs`: unknown reward {entry!r}; choose from {sorted(registry)}, a "
                "'package.module:function' path or 'model:<path>'."
            )
    return funcs
