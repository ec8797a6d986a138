# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Math answer checking with math-verify, shared by the testbed scorer and the rewards.

math-verify bounds its parsing and comparison with `signal.alarm`, which works on the main thread only: called from
another thread it raises, and every completion scored None. So on the main thread math-verify's own timeouts apply,
and elsewhere the check runs in a worker process (`python -m open_r1.utils.math_grading`, strings in, a bool out:
parsed sympy objects do not survive pickling) that is killed and replaced when it takes longer than the limit. A check
that runs out of time raises `GradingTimeout` (the rewards score it None); nothing about it is cached. Gold answers
are parsed once per process (a 10 KB gold was parsed again for every completion).
"""

import os
import subprocess
import sys
import threading
from multiprocessing.connection import Connection

from latex2sympy2_extended import NormalizationConfig
from math_verify import LatexExtractionConfig, parse, verify
from math_verify.errors import TimeoutException


# Only the boxed answer counts: a completion without `\boxed{}` is never right.
_BOXED_ONLY = [LatexExtractionConfig(try_extract_without_anchor=False, boxed_match_priority=0)]
# Open R1's `accuracy_reward`: the boxed answer first, else an anchored one ("the final answer is $...$"), in LaTeX
# without malformed operators or `nits` normalisation (Open R1 also sets `equations=True`, which math-verify now
# deprecates as what its parser does anyway).
_OPEN_R1_ANSWER = [
    LatexExtractionConfig(
        normalization_config=NormalizationConfig(
            nits=False, malformed_operators=False, basic_latex=True, boxed="all", units=True
        ),
        boxed_match_priority=0,
        try_extract_without_anchor=False,
    )
]
# The two ways an answer is read, (extraction configs, extraction mode): this project's boxed-only (math-verify's
# default mode), and Open R1's `accuracy_reward` (its first match).
EXTRACTIONS = {"boxed": (_BOXED_ONLY, "any_match"), "open_r1": (_OPEN_R1_ANSWER, "first_match")}
TIMEOUT_SECONDS = 5
# A fresh worker imports math-verify and sympy before its first check.
STARTUP_SECONDS = 60


class GradingUnavailable(Exception):
    """The check could not be made: neither right nor wrong."""


class GradingTimeout(GradingUnavailable):
    """Parsing or comparing took longer than `TIMEOUT_SECONDS`."""


_golds: dict[str, list] = {}


def _parsed_gold(solution: str, timeout: int | None) -> list:
    """The gold parsed (plain numbers and LaTeX both parse; [] when it does not), once per process; a timeout raises
    and is not remembered."""
    if solution not in _golds:
        try:
            gold = parse(solution, extraction_mode="first_match", parsing_timeout=timeout, raise_on_error=True)
        except Exception:  # noqa: BLE001 - math-verify cannot read it: it does not parse (a timeout is no Exception)
            gold = []
        _golds[solution] = gold
    return _golds[solution]


def _gold_parses(solution: str, timeout: int | None) -> bool:
    return bool(_parsed_gold(solution, timeout))


def _is_correct(completion: str, solution: str, extraction: str, timeout: int | None) -> bool:
    """Whether the answer `EXTRACTIONS[extraction]` reads from the completion equals the gold."""
    gold = _parsed_gold(solution, timeout)
    if not gold or (extraction == "boxed" and "\\boxed" not in completion):
        return False
    config, mode = EXTRACTIONS[extraction]
    answer = parse(
        completion, extraction_config=config, extraction_mode=mode, parsing_timeout=timeout, raise_on_error=True
    )
    return bool(verify(gold, answer, timeout_seconds=timeout, raise_on_error=True))


def gold_parses(solution: str) -> bool:
    """Whether a gold answer parses (`GradingTimeout` when that is not known in time)."""
    return _run(_gold_parses, solution)


def boxed_answer_is_correct(completion: str, solution: str) -> bool:
    """Whether the completion's `\\boxed{}` answer equals the gold `solution`; `GradingTimeout` when it cannot be
    decided in `TIMEOUT_SECONDS`, an error of math-verify's when the answer cannot be compared."""
    return _run(_is_correct, completion, solution, "boxed")


def answer_is_correct(completion: str, solution: str) -> bool:
    """Open R1's `accuracy_reward` check: the completion's boxed (or anchored) answer equals the gold `solution`;
    `GradingTimeout` when it cannot be decided in `TIMEOUT_SECONDS`."""
    return _run(_is_correct, completion, solution, "open_r1")


def answer_score(completion: str, solution: str) -> float:
    """1.0 when the completion's boxed answer is the gold `solution`, else 0.0: for evaluation, where an answer
    that cannot be parsed, compared or decided in time counts as wrong."""
    try:
        return float(boxed_answer_is_correct(completion, solution))
    except Exception:  # noqa: BLE001 - GradingTimeout or math-verify's own errors
        return 0.0


CHECKS = {"gold_parses": _gold_parses, "is_correct": _is_correct}


def _run(check, *args):
    if threading.current_thread() is threading.main_thread():
        try:
            return check(*args, TIMEOUT_SECONDS)
        except TimeoutException as error:
            raise GradingTimeout(str(error)) from None
    name = next(name for name, function in CHECKS.items() if function is check)
    return _WORKER.call(name, args)


class _Worker:
    """One worker process that runs checks for the threads of this process, one at a time; killed and replaced
    when a check outlives `TIMEOUT_SECONDS` (a thread cannot be stopped)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.process = None

    def _start(self):
        child_reads, parent_writes = os.pipe()
        parent_reads, child_writes = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "open_r1.utils.math_grading", str(child_reads), str(child_writes)],
            pass_fds=(child_reads, child_writes),
            stdin=subprocess.DEVNULL,
        )
        os.close(child_reads)
        os.close(child_writes)
        self.requests = Connection(parent_writes, readable=False)
        self.replies = Connection(parent_reads, writable=False)

    def _stop(self):
        self.process.kill()
        self.process.wait()
        self.requests.close()
        self.replies.close()
        self.process = None

    def call(self, name: str, args: tuple):
        with self.lock:
            fresh = self.process is None or self.process.poll() is not None
            if fresh:
                self._start()
            try:
                self.requests.send((name, args))
                ready = self.replies.poll(TIMEOUT_SECONDS + (STARTUP_SECONDS if fresh else 0))
                outcome = self.replies.recv() if ready else None
            except (EOFError, OSError):
                self._stop()
                raise GradingUnavailable("the math-verify worker process died") from None
            if outcome is None:
                self._stop()
                raise GradingTimeout(f"the check took over {TIMEOUT_SECONDS} s (its worker process was stopped)")
        ok, value = outcome
        if not ok:
            raise ValueError(value)  # math-verify could not compare the answer
        return value


_WORKER = _Worker()


def _serve(requests: Connection, replies: Connection) -> None:
    while True:
        try:
            name, args = requests.recv()
        except EOFError:
            return
        try:
            replies.send((True, CHECKS[name](*args, None)))  # bounded by the parent, which kills this process
        except Exception as error:  # noqa: BLE001 - sent back to the caller, raised there
            replies.send((False, f"{type(error).__name__}: {error}"))


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
