"""Every reward is linear-time in the completion: each registered reward that runs in-process scores adversarial
completions of 100 KB and 1 MB (the pieces its parser looks for, repeated), and the script prints the seconds and
their ratio (about 10 for linear time) and exits 1 when a 1 MB completion takes over `--bound` seconds.

    python scripts/benchmarks/bench_rewards.py [--bound 10]

The code rewards (`code`, `binary_code`, `cf_code`) are not here: the programs they extract run in the sandbox under
its own time limits, and their extraction is `code_format`'s scan; nor `soft_overlong_punishment`, which reads only the token
count.
"""

import argparse
import sys
import time
from types import SimpleNamespace

from open_r1.configs import GRPOScriptArguments
from open_r1.rewards import _registry


# Per reward, the pieces an adversarial completion repeats (what its regexes or parser scan for).
SHAPES = {
    "format": "<think>\n</think>\n<answer>\n\n</answer>x",
    "think_format": "\n</think>\n",
    "format_relaxed": "<think></think>",
    "tag_count": "<think>\n\n</think>\n<answer>\n",
    "think_tag_count": "<think>\n\n</think>\n",
    "reasoning_steps": "Step 1: first, \n1. ",
    "code_format": "\n</think>\n<answer>\n```python```",
    "accuracy": "\\boxed{\\frac{1}{",
    "boxed_accuracy": "\\boxed{\\frac{1}{",
    "cosine": "\\boxed{\\frac{1}{",
    "cosine_capped": "\\boxed{\\frac{1}{",
    "length": "\\boxed{\\frac{1}{",
    "repetition_penalty": "the same words again ",
    "keyword": "I cannot help ",
    "vrar": "I cannot help ",
}
COLUMNS = {"solution": "\\boxed{7}", "keywords": ["cannot"]}
SIZES = (100_000, 1_000_000)


def completion(shape: str, size: int) -> list[dict]:
    text = "<think>\n" + shape * (size // len(shape))
    return [{"role": "assistant", "content": text[:size]}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bound", type=float, default=10.0, help="Seconds a 1 MB completion may take.")
    args = parser.parse_args()
    registry = _registry(SimpleNamespace(**{**vars(GRPOScriptArguments(dataset_name="x")), "code_provider": "local"}))
    print(f"| reward | {' | '.join(f'{size // 1000} KB (s)' for size in SIZES)} | ratio |\n|---|---|---|---|")
    slow = []
    for name, shape in SHAPES.items():
        reward = registry[name]()
        seconds = []
        for size in SIZES:
            kwargs = {key: [value] for key, value in COLUMNS.items()}
            start = time.perf_counter()
            reward([completion(shape, size)], **kwargs)
            seconds.append(time.perf_counter() - start)
        print(f"| {name} | {' | '.join(f'{s:.3f}' for s in seconds)} | {seconds[1] / max(seconds[0], 1e-6):.1f} |")
        if seconds[-1] > args.bound:
            slow.append(name)
    if slow:
        print(f"Over {args.bound} s at 1 MB: {', '.join(slow)}")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
