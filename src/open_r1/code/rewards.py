# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Open R1's code rewards, with its names, recipe keys and semantics, run through `open_r1.code.providers`.

- `code`: the fraction of a problem's test cases (`verification_info`: {"language", "test_cases"}, Open R1's
  verifiable-coding-problems format; stdin/stdout and function-call cases) the completion's last fenced code block
  passes;
- `binary_code`: 1 when that fraction is above 0.99, else 0;
- `code_format`: 1 when the completion is `<think>\\n...\\n</think>\\n<answer>\\n...```<language>...```...\\n</answer>`;
- `cf_code`: Codeforces problems in open-r1/codeforces' format (`official_tests`, `time_limit` in seconds,
  `memory_limit` in MB, `generated_checker`, `language`; generated tests from `CF_TESTS_FOLDER` when set), scored
  `pass_fail`, `partial` or `weighted_sum` (pass_fail + 0.1 x partial); no code -1, a compile error -0.1, a problem
  without tests None, as upstream. Local sandbox or Piston.

`ioi_code` is not built: IOI subtasks need the official graders compiled with each submission (Open R1 ships them as a
Piston package); it is named in the registry so a recipe asking for it gets that reason.
"""

import logging
import os
import re
from functools import lru_cache

from ..utils.completions import completion_text, ends_a_line_after
from .execution import run_test_cases
from .providers import CodeProvider
from .sandbox import SandboxLimits


logger = logging.getLogger(__name__)


def extract_code(completion: str, language: str | None = "python") -> str:
    """The last ```<language> fenced block of a completion ("" when there is none), as Open R1."""
    if language is None:
        return ""
    blocks = re.findall(rf"```{re.escape(language)}\n(.*?)```", completion, re.DOTALL)
    return blocks[-1] if blocks else ""


def has_code_format(text: str, language: str) -> bool:
    """Whether `text` matches Open R1's code format, the regex
    `^<think>\\n.*?\\n</think>\\n<answer>\\n.*?```LANG.*?```.*?\\n</answer>$` (DOTALL, MULTILINE), decided in
    linear time: the regex's nested lazy gaps backtrack (43 s on a 6 KB completion). Each piece is taken at its first
    place after the one before, which leaves the most room for the rest, and any closing `\\n</answer>` at the end of
    a line will do."""
    opening, thought_end, fence = "<think>\n", "\n</think>\n<answer>\n", f"```{language}"
    if not text.startswith(opening):
        return False
    positions = [len(opening)]
    for piece, skip in ((thought_end, len(thought_end)), (fence, len(fence)), ("```", 3)):
        found = text.find(piece, positions[-1])
        if found < 0:
            return False
        positions.append(found + skip)
    return ends_a_line_after(text, "\n</answer>", positions[-1])


def get_code_format_reward(language: str = "python"):
    """Open R1's code format reward; a `language` dataset column overrides `language` per row."""

    def code_format_reward(completions, **kwargs) -> list[float]:
        languages = kwargs.get("language") or [language] * len(completions)
        return [
            float(has_code_format(completion_text(completion), lang))
            for completion, lang in zip(completions, languages)
        ]

    return code_format_reward


def get_code_reward(provider: CodeProvider, binary: bool = False, enforce_same_language: bool = False):
    """`code` (pass rate) or, `binary`, `binary_code` (1 above 0.99) on `provider`."""

    def score(completions, verification_info, **kwargs) -> list[float | None]:
        languages = [info.get("language", "python") for info in verification_info]
        if enforce_same_language and len(set(languages)) > 1:
            raise ValueError(f"`enforce_same_language`: the batch mixes {sorted(set(languages))}")
        programs = [extract_code(completion_text(c), lang) for c, lang in zip(completions, languages)]
        rates = provider.pass_rates(programs, [info["test_cases"] for info in verification_info], languages)
        if not binary:
            return rates
        return [None if rate is None else float(rate > 0.99) for rate in rates]

    score.__name__ = "binary_code_reward" if binary else "code_reward"
    return score


@lru_cache(maxsize=32)
def _generated_contest_tests(folder: str, contest_id: str) -> dict:
    import pandas as pd

    path = os.path.join(folder, f"test_cases_{int(contest_id):04d}.parquet")
    if not os.path.exists(path):
        return {}
    frame = pd.read_parquet(path)
    return {pid: group[["input", "output"]].to_dict("records") for pid, group in frame.groupby("problem_id")}


def codeforces_tests(problem: dict) -> list[dict]:
    tests = list(problem.get("official_tests") or [])
    folder = os.environ.get("CF_TESTS_FOLDER")
    if folder and problem.get("id"):
        if not os.path.isdir(folder):
            raise ValueError(f"CF_TESTS_FOLDER {folder!r} is not a directory (open-r1/codeforces generated tests)")
        tests += _generated_contest_tests(folder, str(problem["id"]).split("/")[0]).get(problem["id"], [])
    return [{"type": "stdin_stdout", "input": t["input"], "output": t["output"]} for t in tests]


def checker_accepts(result) -> bool:
    """A checker accepts with exit code 0 and, when it prints a score first, a score of 1."""
    if not result.ok:
        return False
    first = result.stdout.split()[:1]
    if not first:
        return True
    try:
        return float(first[0]) >= 1.0 - 1e-9
    except ValueError:
        return first[0].lower() in ("ok", "yes", "accepted")


def get_cf_code_reward(
    provider: CodeProvider,
    test_batch_size: int = 1,
    scoring_mode: str = "weighted_sum",
    no_compile_reward: float = -0.1,
    no_submission_reward: float = -1.0,
):
    """Open R1's `cf_code` reward (module docstring); `test_batch_size` >= 1 stops at the first failing batch in
    `pass_fail` mode (later cases are not run)."""
    if scoring_mode not in ("pass_fail", "partial", "weighted_sum"):
        raise ValueError(f"`code_eval_scoring_mode` must be pass_fail, partial or weighted_sum, got {scoring_mode!r}")

    def score_one(completion, problem: dict) -> float | None:
        language = problem.get("language") or "cpp"
        tests = codeforces_tests(problem)
        if not tests:
            return None
        if problem.get("input_mode", "stdio") not in ("stdio", None):
            logger.warning(
                "cf_code: %s reads files (input_mode %r); not scored", problem.get("id"), problem["input_mode"]
            )
            return None
        program = extract_code(completion_text(completion), language)
        if not program:
            return no_submission_reward
        limits = SandboxLimits(
            cpu_seconds=float(problem.get("time_limit") or provider.limits.cpu_seconds),
            wall_seconds=float(problem.get("time_limit") or provider.limits.cpu_seconds) + 5,
            memory_mb=max(int(problem.get("memory_limit") or provider.limits.memory_mb), 64),
        )
        checker = problem.get("generated_checker")

        def run(source, lang, stdin):
            return provider.run(source, lang, stdin, limits=limits)

        def checker_judge(case, stdout):
            verdict = provider.run(
                checker,
                "python",
                "",
                extra_files={
                    "input.txt": case["input"],
                    "correct_output.txt": case["output"],
                    "solution_output.txt": stdout,
                },
                arguments=("input.txt", "correct_output.txt", "solution_output.txt"),
            )
            return checker_accepts(verdict)

        judge = checker_judge if checker else None
        batch = test_batch_size if scoring_mode == "pass_fail" and test_batch_size >= 1 else len(tests)
        passed = 0
        for start in range(0, len(tests), batch):
            report = run_test_cases(
                run, program, language, tests[start : start + batch], provider.time_budget_seconds, judge=judge
            )
            if "compile_error" in report.outcomes:
                return no_compile_reward
            passed += report.passed
            if report.passed < len(report.outcomes) and scoring_mode == "pass_fail":
                break
        pass_fail = float(passed == len(tests))
        if scoring_mode == "pass_fail":
            return pass_fail
        if scoring_mode == "partial":
            return passed / len(tests)
        return pass_fail + 0.1 * passed / len(tests)

    def cf_code_reward(completions, **kwargs) -> list[float | None]:
        columns = {k: v for k, v in kwargs.items() if isinstance(v, list) and len(v) == len(completions)}
        problems = [dict(zip(columns, values)) for values in zip(*columns.values())]
        return provider.map_completions(score_one, completions, problems)

    return cf_code_reward
