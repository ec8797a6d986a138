# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Reward functions for GRPO, and the registry recipes name them from.

Every reward takes TRL's arguments (`completions` plus the data set's columns as keyword lists) and returns one
float per completion (`accuracy`: None where the gold answer does not parse, which TRL leaves out). None of them
raises on malformed, empty, huge or non-UTF-8 completions: such a completion scores the reward's minimum. Open R1's
names score what they score in Open R1 (huggingface/open-r1 1416fa0, tests/test_upstream_rewards.py), importable from
here as there (`from open_r1.rewards import code_reward`), but for the differences `migrate` names
(`open_r1.recipes.migrate.REWARDS_THAT_DIFFER`); this project's variants have their own names. Rewards read the last
message of a conversational completion (Open R1 reads the first; TRL's completions have one).
`reward_funcs` entries in a recipe are:
- a registered name: Open R1's `accuracy`, `format`, `tag_count`, `reasoning_steps`, `cosine`, `length`,
  `repetition_penalty`, `soft_overlong_punishment`, `code`, `binary_code`, `code_format`, `cf_code`; this project's
  `boxed_accuracy` (only a `\\boxed{}` answer counts), `think_format` and `think_tag_count` (`<think>` then any answer,
  no `<answer>` tags), `format_relaxed`, `cosine_capped`, `keyword`, `vrar`;
- `"package.module:function"`, a user reward imported by path;
- `"model:<hub id or local path>"`, a sequence-classification model used as a verifier (TRL scores it batched,
  its first logit is the reward), as SafeWork-R1's safety/value/knowledge verifiers.
Weights are TRL's `reward_weights`, one per entry.
"""

import functools
import importlib.util
import inspect
import logging
import math
import re

from .utils.completions import completion_text, ends_a_line_after
from .utils.import_utils import import_callable
from .utils.math_grading import GradingUnavailable, answer_is_correct, boxed_answer_is_correct, gold_parses


logger = logging.getLogger(__name__)

# Longer completions are cut to their last characters before parsing, which bounds math-verify's work.
MAX_PARSE_CHARS = 20_000


@functools.lru_cache(maxsize=4096)
def _gold_parses(solution: str) -> bool:
    """Whether the gold answer parses, logged once per gold when it does not (a timeout raises: not remembered)."""
    parses = gold_parses(solution)
    if not parses:
        logger.warning("accuracy_reward: gold answer %.200r does not parse; scoring None (left out)", solution)
    return parses


def _accuracy_one(text: str, solution: str, check=answer_is_correct) -> float | None:
    """1.0 or 0.0 by `check` (Open R1's, or `boxed_answer_is_correct`), or None when the gold answer does not parse
    or the check cannot be made (out of time, its worker gone): such a completion can be judged neither right (the
    bug Open R1 fixed in PR 566) nor wrong. TRL leaves a completion out when all its rewards are None; beside other
    rewards a None counts as 0 in TRL's sum."""
    try:
        if not _gold_parses(str(solution)):
            return None
        return float(check(text[-MAX_PARSE_CHARS:], str(solution)))
    except GradingUnavailable as error:
        logger.warning("accuracy_reward: the answer could not be checked (%s); scoring None (left out)", error)
        return None
    except Exception:  # noqa: BLE001 - math-verify cannot compare the answer: it is not the gold one
        return 0.0


def accuracy_reward(completions, solution, **kwargs) -> list[float | None]:
    """Open R1's `accuracy`: 1 if the completion's answer (its `\\boxed{}` one first, else an anchored one such as
    "the final answer is $7$") equals the gold `solution` under math-verify, else 0.

    Plain-number golds ("6") parse; a gold that does not parse scores None (logged), as in Open R1: TRL leaves such
    completions out of the group baseline and the loss, and pass@k leaves their prompt out.
    """
    return [_accuracy_one(completion_text(c), s) for c, s in zip(completions, solution)]


def boxed_accuracy_reward(completions, solution, **kwargs) -> list[float | None]:
    """`boxed_accuracy`: as `accuracy`, but only a `\\boxed{}` answer counts (what `accuracy` meant here before it
    took Open R1's meaning; the testbed's evaluation scores the same way)."""
    return [_accuracy_one(completion_text(c), s, boxed_answer_is_correct) for c, s in zip(completions, solution)]


_THINK_FORMAT = re.compile(r"^<think>\n.*?\n</think>\n(?!.*<think>).*\S.*$", re.DOTALL)
_FORMAT_RELAXED = re.compile(r"^\s*<think>.*?</think>(?!.*<think>).*\S.*$", re.DOTALL)


def has_think_answer_format(text: str) -> bool:
    """Open R1's format, the regex `^<think>\\n.*?\\n</think>\\n<answer>\\n.*?\\n</answer>$` (DOTALL, MULTILINE: the
    closing tag may end any line), decided in linear time: the first `</think>` block after the opening leaves the
    most room for the rest, then any closing tag at a line's end will do."""
    opening, middle = "<think>\n", "\n</think>\n<answer>\n"
    if not text.startswith(opening):
        return False
    found = text.find(middle, len(opening))
    return found >= 0 and ends_a_line_after(text, "\n</answer>", found + len(middle))


def format_reward(completions, **kwargs) -> list[float]:
    """Open R1's `format`: 1 if the completion is `<think>\\n...\\n</think>\\n<answer>\\n...\\n</answer>`, else 0."""
    return [float(has_think_answer_format(completion_text(c))) for c in completions]


def think_format_reward(completions, **kwargs) -> list[float]:
    """`think_format`: 1 if the completion is `<think>\\n...\\n</think>\\n` followed by a non-empty answer (no
    second think block, no `<answer>` tags needed), else 0."""
    return [float(bool(_THINK_FORMAT.match(completion_text(c)))) for c in completions]


def format_relaxed_reward(completions, **kwargs) -> list[float]:
    """As `think_format`, with any whitespace (or none) around the think tags."""
    return [float(bool(_FORMAT_RELAXED.match(completion_text(c)))) for c in completions]


def _tag_counts(tags: tuple[str, ...]):
    def score(text: str) -> float:
        return sum(text.count(tag) == 1 for tag in tags) / len(tags)

    return score


_UPSTREAM_TAGS = _tag_counts(("<think>\n", "\n</think>\n", "\n<answer>\n", "\n</answer>"))
_THINK_TAGS = _tag_counts(("<think>\n", "\n</think>\n"))


def tag_count_reward(completions, **kwargs) -> list[float]:
    """Open R1's `tag_count`: 0.25 for each of `<think>\\n`, `\\n</think>\\n`, `\\n<answer>\\n`, `\\n</answer>` found
    exactly once."""
    return [_UPSTREAM_TAGS(completion_text(c)) for c in completions]


def think_tag_count_reward(completions, **kwargs) -> list[float]:
    """`think_tag_count`: 0.5 for exactly one `<think>\\n` and 0.5 for exactly one `\\n</think>\\n`."""
    return [_THINK_TAGS(completion_text(c)) for c in completions]


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
    capped: bool = False,
):
    """Accuracy scaled by the completion's length in characters on a cosine: short right answers score most, short
    wrong ones least. As Open R1 by default: the length is not capped at `max_len` (past it the cosine turns back
    up); `capped` (`cosine_capped`) scores lengths past `max_len` as `max_len`. Graded as `accuracy`. Two differences
    from Open R1 (which `migrate` reports): a gold that does not parse scores None (TRL leaves the completion out), as
    `accuracy` does there too, not 1.0, a reward for any completion; and a plain-number gold ("7") parses here, where
    Open R1's cosine reads golds as LaTeX only (so there every completion of such a gold scores 1.0)."""

    def cosine_scaled_reward(completions, solution, **kwargs) -> list[float | None]:
        rewards = []
        for completion, sol in zip(completions, solution):
            text = completion_text(completion)
            accuracy = _accuracy_one(text, sol)
            if accuracy is None:  # the gold does not parse (or the check ran out of time)
                rewards.append(None)
                continue
            progress = (min(len(text), max_len) if capped else len(text)) / max_len
            cosine = math.cos(progress * math.pi)
            right = accuracy == 1.0
            low, high = (min_value_correct, max_value_correct) if right else (max_value_wrong, min_value_wrong)
            rewards.append(low + 0.5 * (high - low) * (1.0 + cosine))
        return rewards

    if capped:  # TRL logs rewards by function name: both in one recipe must not share it
        cosine_scaled_reward.__name__ = "cosine_capped_reward"
    return cosine_scaled_reward


def len_reward(completions, solution, **kwargs) -> list[float]:
    """Open R1's `length` (Kimi 1.5's length reward) over the completions of one call: with L the character length
    and lambda = 0.5 - (L - min L) / (max L - min L), lambda for a right answer and min(0, lambda) for a wrong one;
    all 0 when every length is equal. Graded as `accuracy`; an answer whose gold does not parse counts as right, as
    in Open R1, one that cannot be checked in time as wrong. One difference (reported by `migrate`): a plain-number
    gold ("7") parses here, where Open R1's length reads golds as LaTeX only and counts every answer right."""
    texts = [completion_text(c) for c in completions]
    lengths = [len(text) for text in texts]
    shortest, longest = min(lengths, default=0), max(lengths, default=0)
    if shortest == longest:
        return [0.0] * len(texts)
    rewards = []
    for text, sol, length in zip(texts, solution, lengths):
        value = 0.5 - (length - shortest) / (longest - shortest)
        rewards.append(float(value if _length_right(text, sol) else min(0.0, value)))
    return rewards


def _length_right(text: str, solution: str) -> bool:
    """Right for `length`: Open R1 counts an answer whose gold does not parse as right, and one it cannot check in
    time as wrong (its `verify` returns False on a timeout)."""
    accuracy = _accuracy_one(text, solution)
    if accuracy is not None:
        return accuracy == 1.0
    try:
        return not _gold_parses(str(solution))
    except GradingUnavailable:
        return False


def _words_of(language: str):
    """How `repetition_penalty` splits a text into words: lowercased on whitespace (en), or jieba's segmentation (zh)."""
    if language == "en":
        return lambda text: text.lower().split()
    if language == "zh":
        if importlib.util.find_spec("jieba") is None:
            raise ValueError("`repetition_language: zh` needs jieba: pip install jieba")
        import jieba

        return lambda text: list(jieba.cut(text))
    raise ValueError(f"`repetition_language`: word splitting for `{language}` is not implemented (en, zh).")


def get_repetition_penalty_reward(ngram_size: int = 3, max_penalty: float = -1.0, language: str = "en"):
    """Open R1's `repetition_penalty`: the share of repeated word n-grams times `max_penalty` (0 for none, or for a
    completion of fewer than `ngram_size` words); `language` picks the word splitting."""
    if max_penalty > 0:
        raise ValueError(f"`repetition_max_penalty`: max_penalty {max_penalty} should not be positive.")
    words_of = _words_of(language)

    def repetition_penalty_reward(completions, **kwargs) -> list[float]:
        rewards = []
        for completion in completions:
            words = words_of(completion_text(completion))
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

    def soft_overlong_punishment_reward(completion_ids, **kwargs) -> list[float]:
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

    return soft_overlong_punishment_reward


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
        "boxed_accuracy": lambda: boxed_accuracy_reward,
        "format": lambda: format_reward,
        "think_format": lambda: think_format_reward,
        "format_relaxed": lambda: format_relaxed_reward,
        "tag_count": lambda: tag_count_reward,
        "think_tag_count": lambda: think_tag_count_reward,
        "reasoning_steps": lambda: reasoning_steps_reward,
        "cosine": lambda: get_cosine_scaled_reward(*cosine_values(args)),
        "cosine_capped": lambda: get_cosine_scaled_reward(*cosine_values(args), capped=True),
        "length": lambda: len_reward,
        "repetition_penalty": lambda: get_repetition_penalty_reward(
            args.repetition_n_grams, args.repetition_max_penalty, args.repetition_language
        ),
        "soft_overlong_punishment": lambda: get_soft_overlong_punishment(
            args.max_completion_len, args.soft_punish_cache
        ),
        "keyword": lambda: keyword_reward,
        "vrar": lambda: get_vrar_reward(args.vrar_accuracy_weight, args.vrar_format_weight),
        "code": lambda: _code_rewards().get_code_reward(provider(), False, args.enforce_same_language),
        "binary_code": lambda: _code_rewards().get_code_reward(provider(), True, args.enforce_same_language),
        "code_format": lambda: _code_rewards().get_code_format_reward(args.code_language),
        "cf_code": lambda: _code_rewards().get_cf_code_reward(
            provider(), args.code_eval_test_batch_size, args.code_eval_scoring_mode
        ),
        "ioi_code": _refuse_ioi,  # refused when the recipe is read, before any compute
    }


def cosine_values(args) -> tuple[float, float, float, float, int]:
    return (
        args.cosine_min_value_wrong,
        args.cosine_max_value_wrong,
        args.cosine_min_value_correct,
        args.cosine_max_value_correct,
        args.cosine_max_len,
    )


def _code_rewards():
    from .code import rewards

    return rewards


# Open R1's code rewards under its import path and signatures (`from open_r1.rewards import code_reward`): each
# call builds the named provider (sandbox limits at their defaults; a router URL among the keywords is used, as
# Open R1 passes its keywords to the provider).
def extract_code(completion: str, language: str | None = "python") -> str:
    return _code_rewards().extract_code(completion, language)


def get_code_format_reward(language: str = "python"):
    return _code_rewards().get_code_format_reward(language)


def _provider_of(provider_type: str, num_parallel: int, kwargs: dict):
    from .code.providers import get_provider

    routers = {key: kwargs.pop(key) for key in ("e2b_router_url", "morph_router_url") if key in kwargs}
    return get_provider(provider_type, num_parallel, **routers)


def code_reward(completions, num_parallel=2, provider_type="e2b", enforce_same_language=False, **kwargs):
    """Open R1's `code_reward`: the pass rate of each completion's last fenced program on its `verification_info`."""
    provider = _provider_of(provider_type, num_parallel, kwargs)
    return _code_rewards().get_code_reward(provider, False, enforce_same_language)(completions, **kwargs)


def binary_code_reward(completions, num_parallel=2, provider_type="e2b", enforce_same_language=False, **kwargs):
    """Open R1's `binary_code_reward`: 1 where the pass rate is above 0.99."""
    provider = _provider_of(provider_type, num_parallel, kwargs)
    return _code_rewards().get_code_reward(provider, True, enforce_same_language)(completions, **kwargs)


def cf_code_reward(
    completions, test_batch_size=1, patch_code=False, scoring_mode="weighted_sum", provider_type="piston", **kwargs
):
    """Open R1's `cf_code_reward`, on Piston (PISTON_ENDPOINTS) as there, or `provider_type="local"`. `patch_code`
    is not supported: programs run as written."""
    if patch_code:
        raise ValueError("cf_code_reward: `patch_code` is not supported here; programs run as written.")
    provider = _provider_of(provider_type, 2, kwargs)
    return _code_rewards().get_cf_code_reward(provider, test_batch_size, scoring_mode)(completions, **kwargs)


def ioi_code_reward(completions, **kwargs):
    _refuse_ioi()


def _refuse_ioi():
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
    "boxed_accuracy": ("solution",),
    "cosine": ("solution",),
    "cosine_capped": ("solution",),
    "length": ("solution",),
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
