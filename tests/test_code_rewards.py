# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Code rewards: Open R1's values on its own test cases (code_format re-expressed from upstream's tests), exact pass
rates through the local sandbox, Codeforces scoring modes, and each external provider's wire format against a fake
server on 127.0.0.1 (good replies, 5xx, malformed replies, timeouts: None and a warning, never a crash)."""

import ast
import json
import logging
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import open_r1.code.providers as providers
from open_r1.code.providers import E2BProvider, LocalProvider, MorphProvider, PistonProvider
from open_r1.code.rewards import extract_code, get_cf_code_reward, get_code_format_reward, get_code_reward
from open_r1.code.sandbox import LocalSandbox, SandboxLimits, isolation_problem

from .conftest import needs_sandbox


LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=4, memory_mb=512)


def chat(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def fenced(code: str, language: str = "python") -> list[dict]:
    return chat(f"<think>\nsolve\n</think>\n<answer>\n```{language}\n{code}\n```\n</answer>")


# Open R1 tests/test_rewards.py::TestCodeFormat, each case with upstream's expected value.
CODE_FORMAT_CASES = [
    (
        "<think>\nLet's solve this\nStep 1: First step\n</think>\n<answer>\n```python\ndef hello():\n    print('world')\n```\n</answer>",
        "python",
        1.0,
    ),
    ("```python\ndef hello():\n    print('world')\n```", "python", 0.0),
    ("<think>Some thinking</think><answer>Just plain text</answer>", "python", 0.0),
    ("<think>Analysis</think><answer>```javascript\nconsole.log('hello');\n```</answer>", "python", 0.0),
    ("<think>Analysis</think><answer>```\ndef hello(): pass\n```</answer>", "python", 0.0),
    ("<answer>```python\ndef hello(): pass\n```</answer><think>Analysis</think>", "python", 0.0),
    (
        "<think>\nHere's an example:\n```python\nx = 1\n```\nNow the solution:\n</think>\n<answer>\n```python\ndef solution():\n    return 42\n```\n</answer>",
        "python",
        1.0,
    ),
    ("<think>\nAnalysis\n</think>\n<answer>\n```javascript\nconsole.log('hello');\n```\n</answer>", "javascript", 1.0),
    ("<think>\nAnalysis\n</think>\n<answer>\n```javascript\nconsole.log('hello');\n```\n</answer>", "python", 0.0),
    (
        "<think>\nHere's the analysis\n</think>\n<answer>\n```python\nclass Solution:\n    def __init__(self):\n        self.value = 42\n        \n    def get_value(self):\n        return self.value\n```\n</answer>",
        "python",
        1.0,
    ),
]  # fmt: skip


@pytest.mark.parametrize("text, language, expected", CODE_FORMAT_CASES)
def test_code_format_gives_upstreams_values(text, language, expected):
    assert get_code_format_reward(language)([[{"content": text}]]) == [expected]


def test_extract_code_takes_the_last_block_of_the_language():
    text = "```python\na = 1\n```\nthen\n```cpp\nint x;\n```\n```python\nb = 2\n```"
    assert extract_code(text) == "b = 2\n"
    assert extract_code(text, "cpp") == "int x;\n"
    assert extract_code("no code") == "" and extract_code(text, None) == ""


ADD_STDIN = {
    "language": "python",
    "test_cases": [
        {"type": "stdin_stdout", "input": "1 2\n", "output": "3\n"},
        {"type": "stdin_stdout", "input": "10 -4\n", "output": "6"},
        {"type": "stdin_stdout", "input": "0 0", "output": "0\n\n"},
        {"type": "stdin_stdout", "input": "5 5", "output": "10"},
    ],
}
ADD_CALL = {
    "language": "python",
    "test_cases": [
        {"type": "function_call", "fn_name": "add", "input": [1, 2], "output": [3]},  # APPS: [value]
        {"type": "function_call", "fn_name": "add", "input": [[1], [2]], "output": [1, 2]},
    ],
}


@needs_sandbox
def test_code_and_binary_code_give_exact_pass_rates_on_the_local_sandbox():
    provider = LocalProvider(num_parallel=2, limits=LIMITS)
    completions = [
        fenced("a, b = map(int, input().split())\nprint(a + b)"),  # all 4
        fenced("a, b = map(int, input().split())\nprint(a + b if a < 5 else 0)"),  # 2 of 4 (10 -4 and 5 5 fail)
        fenced("print(3)\nprint('extra line')"),  # extra output fails every case
        chat("I think the answer is 3."),  # no code: the empty program prints nothing
        fenced("def add(a, b):\n    return a + b"),
        fenced("class Solution:\n    def add(self, a, b):\n        print('noise')\n        return a + b"),
        fenced("def add(a, b):\n    return 3"),  # 1 of 2
    ]
    infos = [ADD_STDIN] * 4 + [ADD_CALL] * 3
    code = get_code_reward(provider)
    assert code(completions, verification_info=infos) == [1.0, 0.5, 0.0, 0.0, 1.0, 1.0, 0.5]
    assert get_code_reward(provider, binary=True)(completions, verification_info=infos) == [1, 0, 0, 0, 1, 1, 0]


CF_PROBLEM = {
    "id": "1/A",
    "official_tests": [
        {"input": "3\n", "output": "6\n"},
        {"input": "7\n", "output": "14\n"},
        {"input": "100\n", "output": "200\n"},
    ],
    "time_limit": 1.0,
    "memory_limit": 256,
    "input_mode": "stdio",
    "generated_checker": None,
}


@needs_sandbox
@pytest.mark.skipif(shutil.which("g++") is None, reason="C++ submissions need g++")
@pytest.mark.parametrize(
    "mode, expected",
    [
        ("weighted_sum", [1.1, 0.1 * 2 / 3, -1.0, -0.1, 1.1]),
        ("partial", [1.0, 2 / 3, -1.0, -0.1, 1.0]),
        ("pass_fail", [1.0, 0.0, -1.0, -0.1, 1.0]),
    ],
)
def test_cf_code_scoring_modes(mode, expected):
    provider = LocalProvider(num_parallel=2, limits=LIMITS)
    completions = [
        fenced("print(int(input()) * 2)"),
        fenced("n = int(input())\nprint(n * 2 if n < 50 else 0)"),
        chat("no code"),
        fenced("int main( {", "cpp"),
        fenced('#include <cstdio>\nint main(){long n;scanf("%ld",&n);printf("%ld\\n",2*n);}', "cpp"),
    ]
    languages = ["python", "python", "python", "cpp", "cpp"]
    columns = {key: [value] * len(completions) for key, value in CF_PROBLEM.items()}
    scores = get_cf_code_reward(provider, scoring_mode=mode)(completions, **columns, language=languages)
    assert scores == pytest.approx(expected)
    # A problem without tests is not scored.
    assert get_cf_code_reward(provider)([fenced("print(1)")], official_tests=[[]], id=["2/B"]) == [None]


@needs_sandbox
def test_cf_code_checker_accepts_any_right_answer():
    checker = (
        "import sys\nn = int(open(sys.argv[1]).read())\nx, y = map(int, open(sys.argv[3]).read().split())\n"
        "print(1 if x + y == n and x > 0 and y > 0 else 0)"
    )
    problem = {**CF_PROBLEM, "official_tests": [{"input": "5\n", "output": "1 4\n"}], "generated_checker": checker}
    columns = {key: [value] * 2 for key, value in problem.items()}
    reward = get_cf_code_reward(LocalProvider(limits=LIMITS), scoring_mode="pass_fail")
    # "2 3" is not the stored answer but is right; "5 0" is wrong.
    assert reward([fenced("print(2, 3)"), fenced("print(5, 0)")], **columns, language=["python"] * 2) == [1.0, 0.0]


FORKING_SOLUTION = """import os, time
n = int(input())
workers = []
for _ in range(3):  # each worker burns 0.6 CPU-s: under the 1 s limit alone, 1.8 s together
    pid = os.fork()
    if pid == 0:
        end = time.process_time() + 0.6
        while time.process_time() < end:
            pass
        os._exit(0)
    workers.append(pid)
for pid in workers:
    os.waitpid(pid, 0)
print(n * 2)
"""


@needs_sandbox
def test_cf_code_judges_a_forking_solution_on_all_its_cpu_time():
    """A solution that splits its work over processes used more CPU than the problem's time limit: over the limit, as
    a judge says, not a pass the policy could learn to exploit (#32)."""
    problem = {**CF_PROBLEM, "official_tests": [{"input": "3\n", "output": "6\n"}], "time_limit": 1.0}
    columns = {key: [value] for key, value in problem.items()}
    reward = get_cf_code_reward(LocalProvider(limits=LIMITS), scoring_mode="pass_fail")
    assert reward([fenced(FORKING_SOLUTION)], **columns, language=["python"]) == [0.0]
    limits = SandboxLimits(cpu_seconds=1.0, wall_seconds=6, memory_mb=256)
    result = LocalSandbox(limits).run(FORKING_SOLUTION, stdin="3")
    assert result.status == "timeout", result
    assert 1.0 <= result.cpu_seconds < 1.4


class FakeServer:
    """An HTTP server on 127.0.0.1 whose POST replies come from `respond(path, payload) -> (status, body)`."""

    def __init__(self, respond):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, payload))
                status, body = respond(self.path, payload)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run_like_a_kernel(script: str) -> str:
    """What E2B's code interpreter returns as the main result: the value of the script's last expression."""
    tree = ast.parse(script)
    last = tree.body.pop()
    namespace: dict = {}
    exec(compile(tree, "<script>", "exec"), namespace)
    return repr(eval(compile(ast.Expression(last.value), "<script>", "eval"), namespace))


@pytest.fixture
def quick_requests(monkeypatch):
    monkeypatch.setattr(providers, "REQUEST_MARGIN_SECONDS", 1.0)
    # No backoff waits in tests. (Patching `providers.time.sleep` would patch `time.sleep` everywhere, the fake
    # servers' deliberate delays included.)
    monkeypatch.setattr(providers, "RETRY_BACKOFF_SECONDS", 0.0)


COMPLETIONS = [fenced("a, b = map(int, input().split())\nprint(a + b)"), fenced("print(3)")]


def test_e2b_router_wire_format_and_failures(quick_requests, caplog):
    mode = {"kind": "good"}

    def respond(path, payload):
        assert path == "/execute_batch" and set(payload) == {"scripts", "languages", "timeout", "request_timeout"}
        if mode["kind"] == "5xx":
            return 503, {"detail": "overloaded"}
        if mode["kind"] == "malformed":
            return 200, b"<html>not json"
        if mode["kind"] == "slow":
            time.sleep(2.5)
        results = []
        for script in payload["scripts"]:
            text = run_like_a_kernel(script)
            results.append(
                {
                    "execution": {
                        "results": [{"text": text, "is_main_result": True}],
                        "logs": {"stdout": [], "stderr": []},
                        "error": None,
                        "execution_count": 1,
                    },
                    "exception_str": None,
                }
            )
        results[-1] = {"execution": None, "exception_str": "sandbox timed out"}
        return 200, results

    server = FakeServer(respond)
    try:
        provider = E2BProvider(limits=LIMITS, router_url=server.address, time_budget_seconds=20)
        reward = get_code_reward(provider)
        completions = COMPLETIONS + [fenced("print(1)")]
        assert reward(completions, verification_info=[ADD_STDIN] * 3) == [1.0, 0.25, None]
        provider.time_budget_seconds = 0.5  # the request may take 1.5 s; the slow server answers after 2.5 s
        for kind in ("5xx", "malformed", "slow"):
            mode["kind"] = kind
            with caplog.at_level(logging.WARNING):
                assert reward(completions, verification_info=[ADD_STDIN] * 3) == [None] * 3
        assert "HTTP 503" in caplog.text and "not JSON" in caplog.text and "Timeout" in caplog.text
    finally:
        server.close()


def test_morph_router_wire_format_and_failures(quick_requests, caplog):
    def respond(path, payload):
        texts = [run_like_a_kernel(s) for s in payload["scripts"]]
        return 200, [{"text": texts[0], "exception_str": None}, {"text": None, "exception_str": "SyntaxError"}]

    server = FakeServer(respond)
    try:
        reward = get_code_reward(MorphProvider(limits=LIMITS, router_url=server.address))
        with caplog.at_level(logging.WARNING):
            assert reward(COMPLETIONS, verification_info=[ADD_STDIN] * 2) == [1.0, None]
        assert "SyntaxError" in caplog.text
    finally:
        server.close()


def test_piston_wire_format_and_failures(quick_requests, caplog):
    mode = {"kind": "good"}
    seen = set()

    def respond(path, payload):
        assert path == "/api/v2/execute"
        assert payload["language"] == "python" and payload["files"][0]["name"] == "main.py"
        request = (payload["files"][0]["content"], payload["stdin"])
        first_try = request not in seen
        seen.add(request)
        if mode["kind"] == "5xx":
            return 500, {"message": "boom"}
        if mode["kind"] == "malformed":
            return 200, {"unexpected": True}
        if mode["kind"] == "flaky" and first_try:
            return 502, {}
        # Run it like a Piston worker would (locally, trusted test programs).
        import subprocess

        done = subprocess.run(
            ["python3", "-c", payload["files"][0]["content"]], input=payload["stdin"], capture_output=True, text=True
        )
        run = {"stdout": done.stdout, "stderr": done.stderr, "code": done.returncode, "signal": None}
        return 200, {"language": "python", "version": "3.12.0", "run": run}

    server = FakeServer(respond)
    try:
        provider = PistonProvider(limits=LIMITS, endpoints=[f"http://{server.address}/api/v2"], retries=1)
        reward = get_code_reward(provider)
        assert reward(COMPLETIONS, verification_info=[ADD_STDIN] * 2) == [1.0, 0.25]
        seen.clear()
        mode["kind"] = "flaky"  # every request's first try fails with 502: retried
        assert reward(COMPLETIONS, verification_info=[ADD_STDIN] * 2) == [1.0, 0.25]
        for kind in ("5xx", "malformed"):
            mode["kind"] = kind
            with caplog.at_level(logging.WARNING):
                assert reward(COMPLETIONS, verification_info=[ADD_STDIN] * 2) == [None, None]
        assert "HTTP 500" in caplog.text and "malformed reply" in caplog.text
    finally:
        server.close()


def test_an_unreachable_provider_scores_none(quick_requests, caplog):
    provider = PistonProvider(limits=LIMITS, endpoints=["http://127.0.0.1:9/api/v2"], retries=1)
    with caplog.at_level(logging.WARNING):
        assert get_code_reward(provider)(COMPLETIONS, verification_info=[ADD_STDIN] * 2) == [None, None]
    assert "ConnectionError" in caplog.text


def test_reward_registry_builds_the_code_rewards_and_names_what_is_missing():
    from open_r1.configs import GRPOScriptArguments
    from open_r1.rewards import get_reward_funcs

    args = GRPOScriptArguments(
        dataset_name="x", reward_funcs=["code", "binary_code", "code_format", "cf_code"], code_provider="local"
    )
    if isolation_problem() is None:
        funcs = get_reward_funcs(args)
        assert [f.__name__ for f in funcs] == [
            "code_reward",
            "binary_code_reward",
            "code_format_reward",
            "cf_code_reward",
        ]
    with pytest.raises(ValueError, match="ioi_code.*graders"):
        get_reward_funcs(GRPOScriptArguments(dataset_name="x", reward_funcs=["ioi_code"]))
    with pytest.raises(ValueError, match="code_provider"):
        GRPOScriptArguments(dataset_name="x", code_provider="lambda")
    with pytest.raises(ValueError, match="PISTON_ENDPOINTS"):
        get_reward_funcs(GRPOScriptArguments(dataset_name="x", reward_funcs=["code"], code_provider="piston"))


@needs_sandbox
def test_local_sandbox_limits_reach_the_programs():
    tight = LocalSandbox(SandboxLimits(cpu_seconds=1, wall_seconds=2, memory_mb=200))
    assert tight.run("x = bytearray(150 * 2**20)\nprint('ok')").stdout == "ok\n"
    assert tight.run("x = bytearray(300 * 2**20)").status == "error"


def test_code_format_is_upstreams_regex_on_every_arrangement_of_its_pieces():
    """The linear-time `code_format` decides exactly as upstream's regex (whose nested lazy gaps took 43 s on a 6 KB
    completion) on 20,000 seeded arrangements of the pieces the regex looks for, with text between them (#31 item 8)."""
    import random
    import re

    from open_r1.code.rewards import has_code_format

    pieces = [
        "<think>\n",
        "\n</think>\n<answer>\n",
        "```python",
        "```js",
        "```",
        "\n</answer>",
        "\n",
        "x",
        "</answer>",
    ]
    rng = random.Random(0)
    agree = 0
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 9)))
        if rng.random() < 0.5:
            text = "<think>\n" + text
        for language in ("python", "js"):
            pattern = rf"^<think>\n.*?\n</think>\n<answer>\n.*?```{re.escape(language)}.*?```.*?\n</answer>$"
            expected = bool(re.match(pattern, text, re.DOTALL | re.MULTILINE))
            assert has_code_format(text, language) == expected, (text, language)
            agree += expected
    assert agree > 50  # both answers were exercised (104 arrangements match)
