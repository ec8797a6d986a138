# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""LiveCodeBench code generation (`make evaluate TASK=lcb`), scored through the local sandbox.

Same data (`lighteval/code_generation_lite`, subset v4_v5 as lighteval's `lcb:codegeneration`; or a local directory
of JSONL rows in that format: `OPEN_R1_LCB_DIR`, used when the Hub is off), the same prompt and the same code
extraction as lighteval's task, the same rule (a reply passes when its program passes every public and private test).
What differs: programs run in `open_r1.code.sandbox` (lighteval runs them in its own process under
`reliability_guard`), function-call tests call `Solution().<func_name>` or a top-level function in a fresh process
per test, and outputs are compared line by line without LiveCodeBench's numeric (Decimal) leniency.
"""

import base64
import functools
import io
import json
import pickle
import zlib

from .execution import run_test_cases
from .sandbox import LocalSandbox, SandboxLimits


def prompt(row: dict) -> str:
    """lighteval's `lcb:codegeneration` prompt."""
    query = (
        "You will be given a question (problem specification) and will generate a correct Python program that "
        "matches the specification and passes all tests.\n\n"
    )
    query += f"Question: {row['question_content']}\n\n"
    if row.get("starter_code"):
        query += (
            "You will use the following starter code to write the solution to the problem and enclose your code "
            "within delimiters.\n"
        )
        query += f"```python\n{row['starter_code']}\n```\n\n"
    else:
        query += (
            "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the "
            "sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program "
            "runs, it reads the inputs, runs the algorithm and writes output to STDOUT.\n"
        )
        query += "```python\n# YOUR CODE HERE\n```\n\n"
    return query


class _StringsOnly(pickle.Unpickler):
    """The private tests are a pickled JSON string: anything that needs a class to unpickle is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"private_test_cases may only hold a string, not {module}.{name}")


def private_tests(encoded: str) -> list[dict]:
    """LiveCodeBench's `private_test_cases`: base64 of zlib of a pickled JSON string (or plain JSON)."""
    if not encoded:
        return []
    if encoded.lstrip().startswith("["):
        return json.loads(encoded)
    return json.loads(_StringsOnly(io.BytesIO(zlib.decompress(base64.b64decode(encoded)))).load())


def encode_private_tests(tests: list[dict]) -> str:
    """The inverse of `private_tests` (for fixtures)."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


def test_cases(row: dict) -> list[dict]:
    """The row's public and private tests as `open_r1.code.execution` test cases."""
    fn_name = json.loads(row.get("metadata") or "{}").get("func_name")
    cases = []
    for test in json.loads(row["public_test_cases"]) + private_tests(row.get("private_test_cases", "")):
        if test.get("testtype") == "functional":
            arguments = [json.loads(line) for line in test["input"].split("\n") if line.strip()]
            cases.append(
                {"type": "function_call", "fn_name": fn_name, "input": arguments, "output": json.loads(test["output"])}
            )
        else:
            cases.append({"type": "stdin_stdout", "input": test["input"], "output": test["output"]})
    return cases


def gold(row: dict) -> str:
    return json.dumps(test_cases(row))


def extract_code(reply: str) -> str:
    """lighteval's LiveCodeBench extraction: the lines between the last two lines holding ```."""
    lines = reply.split("\n")
    fences = [i for i, line in enumerate(lines) if "```" in line]
    return "\n".join(lines[fences[-2] + 1 : fences[-1]]) if len(fences) >= 2 else ""


@functools.cache
def _sandbox() -> LocalSandbox:
    return LocalSandbox(SandboxLimits(cpu_seconds=6, wall_seconds=12), parallel=1)


def passes(reply: str, gold_tests: str) -> float:
    """1.0 when the reply's program passes every test, else 0.0 (an empty program is not run)."""
    program = extract_code(reply)
    if not program.strip():
        return 0.0
    cases = json.loads(gold_tests)
    report = run_test_cases(
        lambda source, language, stdin: _sandbox().run(source, language, stdin),
        program,
        "python",
        cases,
        time_budget_seconds=60,
        stop_at_first_failure=True,
    )
    return float(report.passed == len(cases))
