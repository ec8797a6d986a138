# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Where the code rewards run programs: one interface, chosen by the recipe key `code_provider` as in Open R1.

- `local`: the training machine's own sandbox (`open_r1.code.sandbox`), no service needed;
- `piston`: Piston workers (`PISTON_ENDPOINTS`, comma-separated `http://host:port/api/v2`), one request per test case
  to `/execute`, as Open R1's Codeforces/IOI scoring;
- `e2b`, `morph`: a remote sandbox runs a whole test harness per completion (this package's `execution.py` itself)
  and returns the pass rate; through a router (`e2b_router_url` / `morph_router_url`: POST `/execute_batch`, Open
  R1's `scripts/e2b_router.py` format) or directly with the providers' SDKs (`pip install ".[code]"`, API keys in
  `E2B_API_KEY` / `MORPH_API_KEY`).

A completion whose programs could not be run (service down, HTTP 5xx, timeouts, malformed replies) is scored None
with a logged warning: TRL leaves it out instead of punishing the policy for an outage. A program that runs and fails
scores 0.
"""

import asyncio
import importlib.util
import inspect
import json
import logging
import os
import random
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor

from dotenv import find_dotenv, load_dotenv

from . import execution
from .execution import RunResult, run_test_cases
from .sandbox import LocalSandbox, SandboxLimits


logger = logging.getLogger(__name__)

PROVIDERS = ("local", "piston", "e2b", "morph")
# Seconds an HTTP request may take beyond the programs' own time limit.
REQUEST_MARGIN_SECONDS = 10.0
# Backoff unit: retry k waits RETRY_BACKOFF_SECONDS * 2**k (0.4 s, 0.8 s, ...), at most 5 s, plus up to 20% jitter.
RETRY_BACKOFF_SECONDS = 0.2


class ProviderError(RuntimeError):
    """The provider could not run a program (not the program's own failure)."""


class CodeProvider(ABC):
    """Scores programs against their test cases. `pass_rates` never raises for one completion's trouble."""

    name: str

    def __init__(self, num_parallel: int = 2, limits: SandboxLimits | None = None, time_budget_seconds: float = 60):
        self.num_parallel = max(1, num_parallel)
        self.limits = limits or SandboxLimits()
        self.time_budget_seconds = time_budget_seconds

    def pass_rates(self, programs: list[str], test_cases: list[list[dict]], languages: list[str]) -> list:
        """Per program, the fraction of its test cases passed, or None when it could not be run: each case run on
        its own through `run` (the local sandbox, Piston); remote sandboxes override it with a harness per program."""

        def one(program, cases, language):
            return run_test_cases(self.run, program, language, cases, self.time_budget_seconds).pass_rate

        return self.map_completions(one, programs, test_cases, languages)

    def run(self, program: str, language: str, stdin: str, limits: SandboxLimits | None = None, **files) -> RunResult:
        """One program run (`files`: `extra_files` and `arguments`); a ProviderError when it could not be run."""
        raise NotImplementedError(f"`code_provider: {self.name}` runs whole test harnesses, not single programs")

    def map_completions(self, score_one, *columns) -> list:
        def guarded(arguments):
            try:
                return score_one(*arguments)
            except ProviderError as error:
                logger.warning("%s: a completion could not be scored (None): %s", self.name, error)
                return None

        with ThreadPoolExecutor(self.num_parallel) as pool:
            return list(pool.map(guarded, zip(*columns)))


class LocalProvider(CodeProvider):
    name = "local"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sandbox = LocalSandbox(self.limits, parallel=self.num_parallel)

    def run(self, program: str, language: str, stdin: str, limits: SandboxLimits | None = None, **files) -> RunResult:
        """One program run; `files`: `extra_files` and `arguments` of `LocalSandbox.run`."""
        result = self.sandbox.run(program, language, stdin, limits=limits, **files)
        if result.status == "sandbox_error":
            raise ProviderError(result.stderr.strip() or "the sandbox failed")
        return result


def _post_json(url: str, payload: dict, timeout: float, retries: int) -> object:
    """POST JSON and parse the JSON reply; connection errors, timeouts and 5xx are retried with backoff, then (and
    on 4xx or a reply that is not JSON) a ProviderError."""
    import requests

    error = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(RETRY_BACKOFF_SECONDS * 2**attempt, 5) * (1 + 0.2 * random.random()))
        try:
            response = requests.post(url, json=payload, timeout=timeout)
        except requests.RequestException as exc:
            error = f"{url}: {type(exc).__name__}: {exc}"
            continue
        if response.status_code >= 500:
            error = f"{url}: HTTP {response.status_code}"
            continue
        if response.status_code != 200:
            raise ProviderError(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(f"{url}: reply is not JSON: {response.text[:200]!r}") from exc
    raise ProviderError(error)


PISTON_LANGUAGES = {"python": ("python", "main.py"), "cpp": ("c++", "main.cpp")}


class PistonProvider(CodeProvider):
    name = "piston"

    def __init__(self, *args, endpoints: list[str] | None = None, retries: int = 2, **kwargs):
        super().__init__(*args, **kwargs)
        endpoints = endpoints or [e for e in os.environ.get("PISTON_ENDPOINTS", "").split(",") if e.strip()]
        if not endpoints:
            raise ValueError(
                "`code_provider: piston` needs Piston workers: set PISTON_ENDPOINTS to a comma-separated list of "
                "http://host:port/api/v2 (see slurm/piston in Open R1)."
            )
        self.endpoints, self.retries = endpoints, retries

    def run(
        self,
        program: str,
        language: str,
        stdin: str,
        limits: SandboxLimits | None = None,
        extra_files: dict[str, str] | None = None,
        arguments: tuple[str, ...] = (),
    ) -> RunResult:
        if language not in PISTON_LANGUAGES:
            raise ValueError(f"Piston runs {sorted(PISTON_LANGUAGES)} here, not {language!r}")
        limits = limits or self.limits
        piston_language, filename = PISTON_LANGUAGES[language]
        payload = {
            "language": piston_language,
            "version": "*",
            "files": [{"name": filename, "content": program}]
            + [{"name": name, "content": text} for name, text in (extra_files or {}).items()],
            "stdin": stdin,
            "args": list(arguments),
            "run_timeout": int(limits.wall_seconds * 1000),
            "run_memory_limit": limits.memory_mb * 2**20,
        }
        endpoint = random.choice(self.endpoints).rstrip("/")
        reply = _post_json(f"{endpoint}/execute", payload, limits.wall_seconds + REQUEST_MARGIN_SECONDS, self.retries)
        try:
            if reply.get("compile") and reply["compile"].get("code"):
                return RunResult(
                    "compile_error", exit_code=reply["compile"]["code"], stderr=reply["compile"]["stderr"]
                )
            run = reply["run"]
            status = "ok"
            if run.get("status") == "TO" or run.get("signal") == "SIGKILL":
                status = "timeout"
            elif run.get("signal"):
                status = "signal"
            elif run.get("code") != 0:
                status = "error"
            return RunResult(status, exit_code=run.get("code"), stdout=run["stdout"], stderr=run.get("stderr", ""))
        except (AttributeError, KeyError, TypeError) as exc:
            raise ProviderError(f"{endpoint}/execute: malformed reply {str(reply)[:200]!r}") from exc


# The harness a remote sandbox runs: execution.py's own source, then a runner on `python3` and the pass rate as the
# script's last expression (what E2B and Morph return as the execution's text).
REMOTE_RUNNER = """
import subprocess


def _run(program, language, stdin):
    try:
        done = subprocess.run(["python3", "-c", program], input=stdin, text=True, capture_output=True, timeout={timeout})
    except subprocess.TimeoutExpired:
        return RunResult("timeout")
    return RunResult("ok" if done.returncode == 0 else "error", exit_code=done.returncode, stdout=done.stdout)


run_test_cases(_run, json.loads({program!r}), "python", json.loads({cases!r}), {budget}).pass_rate
"""


def remote_script(program: str, test_cases: list[dict], per_test_seconds: float, budget_seconds: float) -> str:
    return inspect.getsource(execution) + REMOTE_RUNNER.format(
        program=json.dumps(program), cases=json.dumps(test_cases), timeout=per_test_seconds, budget=budget_seconds
    )


def parse_pass_rate(text) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError) as exc:
        raise ProviderError(f"the sandbox returned {str(text)[:100]!r}, not a pass rate") from exc
    if not 0.0 <= value <= 1.0:
        raise ProviderError(f"the sandbox returned {value}, not a pass rate")
    return value


class RemoteSandboxProvider(CodeProvider):
    """E2B or Morph: one harness script per completion, through the router or the SDK."""

    sdk_module: str

    def __init__(self, *args, router_url: str | None = None, retries: int = 2, **kwargs):
        super().__init__(*args, **kwargs)
        self.router_url, self.retries = router_url, retries
        # As Open R1: E2B_API_KEY / MORPH_API_KEY may come from a .env file (the working directory's or a parent's);
        # the environment's own values win.
        load_dotenv(find_dotenv(usecwd=True))
        if router_url is None and importlib.util.find_spec(self.sdk_module) is None:
            raise ImportError(
                f"`code_provider: {self.name}` without `{self.name}_router_url` needs the {self.sdk_module} package: "
                'pip install ".[code]"'
            )

    def scripts(self, programs, test_cases, languages) -> list[str]:
        for language in set(languages):
            if language != "python":
                raise ValueError(f"`code_provider: {self.name}` runs Python test harnesses, not {language!r}")
        return [
            remote_script(p, c, self.limits.wall_seconds, self.time_budget_seconds)
            for p, c in zip(programs, test_cases)
        ]

    def pass_rates(self, programs, test_cases, languages):
        scripts = self.scripts(programs, test_cases, languages)
        if self.router_url is None:
            return self.map_completions(self.run_script, scripts)
        url = self.router_url if "://" in self.router_url else f"http://{self.router_url}"
        payload = {
            "scripts": scripts,
            "languages": ["python"] * len(scripts),
            "timeout": int(self.time_budget_seconds),
            "request_timeout": int(self.time_budget_seconds) + 5,
        }
        try:
            reply = _post_json(
                f"{url}/execute_batch", payload, self.time_budget_seconds + REQUEST_MARGIN_SECONDS, self.retries
            )
            if not isinstance(reply, list) or len(reply) != len(scripts):
                raise ProviderError(f"{url}/execute_batch: expected {len(scripts)} results, got {str(reply)[:200]!r}")
        except ProviderError as error:
            logger.warning(
                "%s router: %d completion(s) could not be scored (None): %s", self.name, len(scripts), error
            )
            return [None] * len(scripts)
        rates = []
        for item in reply:
            try:
                rates.append(parse_pass_rate(self.result_text(item)))
            except (ProviderError, AttributeError, KeyError, TypeError) as error:
                logger.warning("%s router: a completion could not be scored (None): %s", self.name, error)
                rates.append(None)
        return rates

    @staticmethod
    @abstractmethod
    def result_text(item: dict):
        """The harness's returned value in one router result."""

    @abstractmethod
    def run_script(self, script: str) -> float:
        """Run one harness in a fresh sandbox of the provider's SDK."""


class E2BProvider(RemoteSandboxProvider):
    name = "e2b"
    sdk_module = "e2b_code_interpreter"

    @staticmethod
    def result_text(item):
        # Open R1's router returns {"execution": <e2b Execution as JSON> | null, "exception_str": ...}.
        if item.get("execution") is None:
            raise ProviderError(item.get("exception_str") or "no execution")
        main = [r for r in item["execution"]["results"] if r.get("is_main_result")]
        if item["execution"].get("error"):
            raise ProviderError(f"harness error: {item['execution']['error']}")
        return main[0]["text"] if main else None

    def run_script(self, script):
        from e2b_code_interpreter import AsyncSandbox

        async def run():
            sandbox = await AsyncSandbox.create(timeout=int(self.time_budget_seconds) + 30)
            try:
                done = await asyncio.wait_for(sandbox.run_code(script), timeout=self.time_budget_seconds + 30)
                if done.error:
                    raise ProviderError(f"harness error: {done.error.name}: {done.error.value}")
                return parse_pass_rate(done.text)
            finally:
                await sandbox.kill()

        try:
            return asyncio.run(run())
        except ProviderError:
            raise
        except Exception as error:  # noqa: BLE001 - any SDK or network failure is the provider's, not the program's
            raise ProviderError(f"{type(error).__name__}: {error}") from error


class MorphProvider(RemoteSandboxProvider):
    name = "morph"
    sdk_module = "morphcloud"

    @staticmethod
    def result_text(item):
        # Open R1's Morph router returns {"text": ..., "exception_str": ...}.
        if item.get("exception_str"):
            raise ProviderError(item["exception_str"])
        return item["text"]

    def run_script(self, script):
        from morphcloud.api import MorphCloudClient
        from morphcloud.sandbox import Sandbox

        api_key = os.environ.get("MORPH_API_KEY")
        if not api_key:
            raise ValueError("`code_provider: morph` needs MORPH_API_KEY (or a `morph_router_url`).")
        try:
            sandbox = Sandbox.new(client=MorphCloudClient(api_key=api_key), ttl_seconds=int(self.time_budget_seconds))
            try:
                done = sandbox.run_code(script, language="python", timeout=int(self.time_budget_seconds))
                return parse_pass_rate(getattr(done, "text", None))
            finally:
                sandbox.close()
        except ProviderError:
            raise
        except Exception as error:  # noqa: BLE001
            raise ProviderError(f"{type(error).__name__}: {error}") from error


def get_provider(
    name: str,
    num_parallel: int = 2,
    limits: SandboxLimits | None = None,
    time_budget_seconds: float = 60.0,
    e2b_router_url: str | None = None,
    morph_router_url: str | None = None,
    piston_endpoints: list[str] | None = None,
) -> CodeProvider:
    common = {"num_parallel": num_parallel, "limits": limits, "time_budget_seconds": time_budget_seconds}
    if name == "local":
        return LocalProvider(**common)
    if name == "piston":
        return PistonProvider(**common, endpoints=piston_endpoints)
    if name == "e2b":
        return E2BProvider(**common, router_url=e2b_router_url)
    if name == "morph":
        return MorphProvider(**common, router_url=morph_router_url)
    raise ValueError(f"`code_provider`: unknown provider {name!r}; choose from {PROVIDERS}")
