# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Running a program against its test cases, whatever runs it (the local sandbox, Piston, a remote sandbox).

Test cases are Open R1's `verification_info["test_cases"]` rows:

- `{"type": "stdin_stdout", "input": str, "output": str}`: the program reads `input` and must print `output`;
- `{"type": "function_call", "fn_name": str, "input": [args...], "output": value}` (Python only): the function
  `fn_name` (a top-level function, or a method of `class Solution` as LeetCode and LiveCodeBench write them) called
  with the arguments must return `output` (APPS' one-element list `[value]` is accepted for `value`).

Stdlib only: remote sandboxes (E2B, Morph) run this module's own source as their test harness.

Outputs are compared line by line, each line stripped, trailing blank lines ignored. Upstream's harness zips the two
line lists, so a program printing only the first of several expected lines passes there; here it fails.
"""

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RunResult:
    """What one run gave. `status`: ok, error (non-zero exit), compile_error, signal, timeout (over the time limit),
    memory_limit, file_limit, output_limit or sandbox_error (the sandbox itself failed). `cpu_seconds` counts every
    process the program started; `peak_memory_mb` is the run's largest resident + /tmp total (local sandbox)."""

    status: str
    exit_code: int | None = None
    signal: int | None = None
    stdout: str = ""
    stderr: str = ""
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_memory_mb: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def as_text(value) -> str:
    return "\n".join(map(str, value)) if isinstance(value, list) else str(value)


def outputs_match(actual: str, expected: str) -> bool:
    """Line-by-line equality of two program outputs, each line stripped, trailing blank lines ignored."""
    return [line.strip() for line in actual.strip().splitlines()] == [
        line.strip() for line in expected.strip().splitlines()
    ]


def test_case_kind(case: dict) -> str:
    kind = case.get("type") or case.get("testtype") or "stdin_stdout"
    return {"stdin": "stdin_stdout", "functional": "function_call"}.get(kind, kind)


FUNCTION_DRIVER = """

def _open_r1_call():
    import json, sys
    arguments = json.loads(sys.stdin.read())
    target = globals().get({fn_name!r})
    if target is None and "Solution" in globals():
        target = getattr(Solution(), {fn_name!r})
    result = target(*arguments)
    print({marker!r} + json.dumps(result))


_open_r1_call()
"""


def function_call_program(source: str, fn_name: str, marker: str) -> str:
    """The solution followed by a driver that calls `fn_name` on the JSON arguments read from stdin and prints the
    JSON result after `marker` (a nonce, so what the solution prints itself is not taken for the result)."""
    return source + FUNCTION_DRIVER.format(fn_name=fn_name, marker=marker)


def returned_value(stdout: str, marker: str):
    for line in reversed(stdout.splitlines()):
        if line.startswith(marker):
            return json.loads(line[len(marker) :])
    raise ValueError("no result")


def values_match(result, expected) -> bool:
    if result == expected:
        return True
    return isinstance(expected, list) and len(expected) == 1 and result == expected[0]


@dataclass
class TestReport:
    """One program's results: per test case its outcome (passed, wrong_answer, or the run's status)."""

    outcomes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return self.outcomes.count("passed")

    @property
    def pass_rate(self) -> float:
        return self.passed / len(self.outcomes) if self.outcomes else 0.0


Runner = Callable[[str, str, str], RunResult]  # (program, language, stdin) -> result


def run_test_cases(
    run: Runner,
    source: str,
    language: str,
    test_cases: list[dict],
    time_budget_seconds: float = 60.0,
    stop_at_first_failure: bool = False,
    judge: Callable[[dict, str], bool] | None = None,
) -> TestReport:
    """Run `source` on each test case through `run`; cases left when the program's time budget is spent (or after
    its first failure, when asked) count as `not_run`. A compile error fails every case. `judge(case, stdout)`
    decides a stdin/stdout case the program ran to the end (a checker, where several answers are right); by default
    its output must match the case's."""
    report, started = TestReport(), time.perf_counter()
    for case in test_cases:
        if time.perf_counter() - started > time_budget_seconds or (
            stop_at_first_failure and report.outcomes and report.outcomes[-1] != "passed"
        ):
            report.outcomes.append("not_run")
            continue
        if test_case_kind(case) == "function_call":
            if language != "python":
                raise ValueError(f"function_call test cases need Python programs, not {language!r}")
            marker = f"@@open_r1_result_{secrets.token_hex(8)}@@"
            arguments = case["input"] if isinstance(case["input"], list) else json.loads(case["input"])
            result = run(function_call_program(source, case["fn_name"], marker), language, json.dumps(arguments))
            if result.ok:
                try:
                    passed = values_match(returned_value(result.stdout, marker), case["output"])
                except ValueError:
                    passed = False
                report.outcomes.append("passed" if passed else "wrong_answer")
            else:
                report.outcomes.append(result.status)
        else:
            result = run(source, language, as_text(case["input"]))
            if result.ok:
                if judge is None:
                    matched = outputs_match(result.stdout, as_text(case["output"]))
                else:
                    matched = judge(case, result.stdout)
                report.outcomes.append("passed" if matched else "wrong_answer")
            else:
                report.outcomes.append(result.status)
        if result.status == "compile_error":
            report.outcomes += ["compile_error"] * (len(test_cases) - len(report.outcomes))
            break
    report.seconds = time.perf_counter() - started
    return report
