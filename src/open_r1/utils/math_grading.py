# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Math answer checking with math-verify, shared by the testbed scorer and the rewards.

math-verify bounds its parsing and comparison with `signal.alarm`, which works on the main thread only: called from
another thread it raises, and every completion scored None. So `grade` uses math-verify's own timeouts on the main
thread, and elsewhere runs the check in a worker process that is killed when it takes longer than the limit. A check
that runs out of time is neither right nor wrong: it scores None (`GradingTimeout`), as an unparsable gold does.
Gold answers are parsed once each (a 10 KB gold was parsed again for every completion).
"""

import functools
import multiprocessing
import threading

from math_verify import LatexExtractionConfig, parse, verify
from math_verify.errors import TimeoutException


# Only the boxed answer counts: a completion without `\boxed{}` is never right.
_BOXED_ONLY = [LatexExtractionConfig(try_extract_without_anchor=False, boxed_match_priority=0)]
TIMEOUT_SECONDS = 5
# A fresh worker imports math-verify and sympy before its first check.
STARTUP_SECONDS = 60


class GradingTimeout(Exception):
    """Parsing or comparing took longer than `TIMEOUT_SECONDS`."""


def _parse_gold(solution: str, timeout: int | None) -> list:
    return parse(solution, extraction_mode="first_match", parsing_timeout=timeout, raise_on_error=False)


def _is_correct(completion: str, gold: list, timeout: int | None) -> bool:
    if "\\boxed" not in completion:
        return False
    answer = parse(completion, extraction_config=_BOXED_ONLY, parsing_timeout=timeout, raise_on_error=True)
    return bool(verify(gold, answer, timeout_seconds=timeout, raise_on_error=True))


@functools.lru_cache(maxsize=4096)
def parse_gold(solution: str) -> tuple:
    """Parse a gold answer, once per distinct answer; plain numbers ("6") and LaTeX ("$\\frac{1}{2}$", "\\boxed{3}")
    both parse. An empty tuple means the gold could not be parsed."""
    return tuple(_run(_parse_gold, solution))


def boxed_answer_is_correct(completion: str, gold) -> bool:
    """Whether the completion's `\\boxed{}` answer equals the parsed gold answer; `GradingTimeout` when it cannot be
    decided in `TIMEOUT_SECONDS`, an error of math-verify's when the answer cannot be compared."""
    return _run(_is_correct, completion, list(gold))


def answer_score(completion: str, solution: str) -> float:
    """1.0 when the completion's boxed answer is the gold `solution`, else 0.0: for evaluation, where an answer
    that cannot be parsed, compared or decided in time counts as wrong."""
    try:
        return float(boxed_answer_is_correct(completion, parse_gold(solution)))
    except Exception:  # noqa: BLE001 - GradingTimeout or math-verify's own errors
        return 0.0


def _run(check, *args):
    if threading.current_thread() is threading.main_thread():
        try:
            return check(*args, TIMEOUT_SECONDS)
        except TimeoutException as error:
            raise GradingTimeout(str(error)) from None
    return _worker().call(check, args)


class _Worker:
    """One spawned process that runs checks for the threads of this process, one at a time; killed and replaced
    when a check outlives `TIMEOUT_SECONDS` (a thread cannot be stopped)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.process = None

    def _start(self):
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()

    def call(self, check, args):
        with self.lock:
            fresh = self.process is None or not self.process.is_alive()
            if fresh:
                self._start()
            self.connection.send((check, args))
            if not self.connection.poll(TIMEOUT_SECONDS + (STARTUP_SECONDS if fresh else 0)):
                self.process.kill()
                self.process.join()
                self.process = None
                raise GradingTimeout(f"the check took over {TIMEOUT_SECONDS} s (its worker process was stopped)")
            try:
                ok, value = self.connection.recv()
            except EOFError:
                self.process = None
                raise RuntimeError("the math-verify worker process died") from None
        if not ok:
            raise value
        return value


def _serve(connection):
    while True:
        try:
            check, args = connection.recv()
        except EOFError:
            return
        try:
            connection.send((True, check(*args, None)))  # bounded by the parent, which kills this process
        except Exception as error:  # noqa: BLE001 - sent back to the caller, raised there
            try:
                connection.send((False, error))
            except Exception:  # noqa: BLE001 - an error that does not pickle goes back as its text
                connection.send((False, RuntimeError(repr(error))))


@functools.lru_cache(maxsize=1)
def _worker() -> _Worker:
    return _Worker()
