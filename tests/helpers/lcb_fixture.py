# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""A local LiveCodeBench fixture in `lighteval/code_generation_lite`'s row format (its real columns; public tests as
JSON, private tests base64(zlib(pickle(json))) as the Hub stores them), with a right and a wrong solution per problem
for the scoring tests."""

import json
from pathlib import Path

from open_r1.code.livecodebench import encode_private_tests


PROBLEMS = [
    {
        "question_title": "Sum of Two",
        "question_content": "Read two integers A and B on one line and print A + B.",
        "platform": "atcoder",
        "question_id": "abc000_a",
        "contest_id": "abc000",
        "contest_date": "2024-08-01T00:00:00",
        "starter_code": "",
        "difficulty": "easy",
        "public": [{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}],
        "private": [
            {"input": "10 -3\n", "output": "7\n", "testtype": "stdin"},
            {"input": "0 0\n", "output": "0\n", "testtype": "stdin"},
        ],
        "metadata": {},
        "right": "a, b = map(int, input().split())\nprint(a + b)",
        "wrong": "a, b = map(int, input().split())\nprint(abs(a + b) if a < 5 else a - b)",
    },
    {
        "question_title": "Maximum Pair Sum",
        "question_content": "Given an integer array nums, return the largest sum of two different elements.",
        "platform": "leetcode",
        "question_id": "9001",
        "contest_id": "weekly-contest-400",
        "contest_date": "2024-09-01T00:00:00",
        "starter_code": "class Solution:\n    def maxPairSum(self, nums: List[int]) -> int:\n        ",
        "difficulty": "easy",
        "public": [{"input": "[1, 5, 3]", "output": "8", "testtype": "functional"}],
        "private": [
            {"input": "[-1, -2, -3]", "output": "-3", "testtype": "functional"},
            {"input": "[4, 4]", "output": "8", "testtype": "functional"},
        ],
        "metadata": {"func_name": "maxPairSum"},
        "right": "from typing import List\n\nclass Solution:\n    def maxPairSum(self, nums: List[int]) -> int:\n"
        "        nums = sorted(nums)\n        return nums[-1] + nums[-2]",
        "wrong": "from typing import List\n\nclass Solution:\n    def maxPairSum(self, nums: List[int]) -> int:\n"
        "        return max(nums) * 2",
    },
]


def row(problem: dict) -> dict:
    return {
        **{k: v for k, v in problem.items() if k not in ("public", "private", "metadata", "right", "wrong")},
        "public_test_cases": json.dumps(problem["public"]),
        "private_test_cases": encode_private_tests(problem["private"]),
        "metadata": json.dumps(problem["metadata"]),
    }


def write_fixture(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "test.jsonl", "w") as handle:
        for problem in PROBLEMS:
            handle.write(json.dumps(row(problem)) + "\n")
    return directory


def reply(code: str) -> str:
    return f"Here is my solution.\n```python\n{code}\n```\n"
