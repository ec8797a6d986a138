# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Open R1's reward cases (huggingface/open-r1 tests/test_rewards.py at 1416fa0), re-expressed: every reward upstream
has scores here, under upstream's name and import path, what it scores there. Rewards are called as upstream's tests
call them (conversational completions, the functions imported from `open_r1.rewards`)."""

import importlib.util
import os
import random
import re

import pytest

from open_r1.configs import GRPOScriptArguments
from open_r1.rewards import (
    accuracy_reward,
    format_reward,
    get_code_format_reward,
    get_cosine_scaled_reward,
    get_repetition_penalty_reward,
    get_reward_funcs,
    get_soft_overlong_punishment,
    len_reward,
    reasoning_steps_reward,
    tag_count_reward,
)


def conversation(*texts):
    return [[{"role": "assistant", "content": text}] for text in texts]


FRACTION, WRONG_FRACTION = r"\boxed{\frac{63}{400}}", r"\boxed{\frac{64}{400}}"
GOLD = r"\frac{63}{400}"
THINK_ANSWER = "<think>\nSome reasoning\n</think>\n<answer>\nThe answer\n</answer>"


def test_upstream_names_build_upstream_functions():
    """Each registered upstream name gives the function upstream's registry gives (TRL logs rewards by it).
    `ioi_code` is the one upstream name not built here (tests/test_rewards.py says why)."""
    names = {
        "accuracy": "accuracy_reward",
        "boxed_accuracy": "boxed_accuracy_reward",
        "format": "format_reward",
        "reasoning_steps": "reasoning_steps_reward",
        "cosine": "cosine_scaled_reward",
        "cosine_capped": "cosine_capped_reward",
        "repetition_penalty": "repetition_penalty_reward",
        "length": "len_reward",
        "tag_count": "tag_count_reward",
        "code": "code_reward",
        "code_format": "code_format_reward",
        "binary_code": "binary_code_reward",
        "cf_code": "cf_code_reward",
        "soft_overlong_punishment": "soft_overlong_punishment_reward",
    }
    args = GRPOScriptArguments(
        dataset_name="dummy", reward_funcs=list(names), code_provider="local", max_completion_len=1024
    )
    assert [func.__name__ for func in get_reward_funcs(args)] == list(names.values())


def test_upstream_import_paths():
    from open_r1.rewards import (  # noqa: F401
        binary_code_reward,
        cf_code_reward,
        code_reward,
        extract_code,
        ioi_code_reward,
    )

    assert extract_code("```python\nprint(1)\n```") == "print(1)\n"
    with pytest.raises(ValueError, match="ioi_code"):
        ioi_code_reward(conversation("x"))


@pytest.mark.parametrize(
    "completion, gold, expected",
    [(FRACTION, GOLD, 1.0), (WRONG_FRACTION, GOLD, 0.0), (r"\boxed{3}", "6", 0.0)],
)
def test_accuracy(completion, gold, expected):
    assert accuracy_reward(conversation(completion), [gold]) == [expected]


@pytest.mark.parametrize(
    "completion, gold, upstream, boxed_only",
    [
        (r"The final answer is $\frac{1}{2}$.", r"\frac{1}{2}", 1.0, 0.0),  # an anchored answer counts in Open R1
        (r"\boxed{\frac12}", r"\frac{1}{2}", 0.0, 1.0),  # Open R1 does not repair malformed operators
        (r"so \boxed{7}", "7", 1.0, 1.0),
    ],
)
def test_accuracy_is_open_r1s_and_boxed_accuracy_this_projects(completion, gold, upstream, boxed_only):
    from open_r1.rewards import boxed_accuracy_reward

    assert accuracy_reward(conversation(completion), [gold]) == [upstream]
    assert boxed_accuracy_reward(conversation(completion), [gold]) == [boxed_only]


def test_accuracy_of_several_completions():
    assert accuracy_reward(conversation(FRACTION, WRONG_FRACTION), [GOLD, GOLD]) == [1.0, 0.0]


@pytest.mark.parametrize(
    "text, expected",
    [
        (THINK_ANSWER, 1.0),
        (
            "<think>\nI will count each distinct object:\n1. Purple scooter\n2. Red bicycle\n\nThere are 2.\n</think>\n"
            "<answer>\n2\n</answer>",
            1.0,
        ),
        ("<think>Only thinking</think>", 0.0),
        ("<answer>Only answer</answer>", 0.0),
        ("No tags at all", 0.0),
        ("<think>Missing closing</think><answer>Missing closing", 0.0),
        ("<think>Wrong order</answer><answer>Wrong order</think>", 0.0),
        # The case: this project's old `format` scored it 1.0, upstream 0.0 (no answer tags).
        ("<think>\n...\n</think>\nThe answer is 42", 0.0),
        # re.MULTILINE: upstream's `$` after </answer> is any line's end, so text may follow on later lines.
        (THINK_ANSWER + "\nmore text", 1.0),
        (THINK_ANSWER + " trailing", 0.0),
        ("<think>\n\n</think>\n<answer>\n\n</answer>", 1.0),
        ("<think>\n</think>\n<answer>\n\n</answer>", 0.0),
    ],
)
def test_format(text, expected):
    assert format_reward(conversation(text)) == [expected]


def test_format_is_upstreams_regex_on_every_arrangement_of_its_pieces():
    """The linear scan against Open R1's own regex (DOTALL | MULTILINE) on 20,000 seeded arrangements of its pieces."""
    upstream = re.compile(r"^<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$", re.DOTALL | re.MULTILINE)
    pieces = ["<think>\n", "\n</think>\n<answer>\n", "\n</think>\n", "<answer>\n", "\n</answer>", "\n", "x", " "]
    rng = random.Random(0)
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        if rng.random() < 0.5:
            text = "<think>\n" + text
        assert format_reward(conversation(text)) == [float(bool(upstream.match(text)))], repr(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        (THINK_ANSWER, 1.0),
        ("Some reasoning\n</think>\n<answer>\nThe answer\n</answer>", 0.75),
        ("<think>\nSome reasoning\n<answer>\nThe answer\n</answer>", 0.75),
        ("<think>\nSome reasoning\n</think>\nThe answer\n</answer>", 0.75),
        ("<think>\nSome reasoning\n</think>\n<answer>\nThe answer", 0.75),
        ("Some reasoning\nThe answer", 0.0),
        ("<think>\n...\n</think>\nThe answer is 42", 0.5),
    ],
)
def test_tag_count(text, expected):
    assert tag_count_reward(conversation(text)) == [expected]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Step 1: First step\nStep 2: Second step\nStep 3: Third step", 1.0),
        ("First, we do this.\nSecond, we do that.\nFinally, we conclude.", 1.0),
        ("Step 1: Only step", 1 / 3),
        ("First, we do this.\nFinally, we conclude.", 2 / 3),
        ("Just plain text without any clear steps", 0.0),
    ],
)
def test_reasoning_steps(text, expected):
    assert reasoning_steps_reward(conversation(text)) == [pytest.approx(expected)]


@pytest.mark.parametrize(
    "answer, length, expected",
    [(FRACTION, 20, 0.943), (FRACTION, 80, 0.547), (WRONG_FRACTION, 20, -0.942), (WRONG_FRACTION, 80, -0.547)],
)
def test_cosine(answer, length, expected):
    reward = get_cosine_scaled_reward(-1.0, -0.5, 0.5, 1.0, max_len=100)
    assert reward(conversation(answer.ljust(length)), [GOLD]) == [pytest.approx(expected, abs=5e-3)]


def test_cosine_past_max_len_as_upstream():
    """Open R1 does not cap the length at max_len: past it the cosine turns back up (`cosine_capped` caps it). Where
    the gold does not parse, Open R1 scores 1.0 and this project None (the one difference, reported by migrate)."""
    reward = get_cosine_scaled_reward(-1.0, -0.5, 0.5, 1.0, max_len=100)
    right = FRACTION.ljust(200)  # progress 2: cos(2 pi) = 1, the short answer's reward again
    assert reward(conversation(right), [GOLD]) == [pytest.approx(1.0)]
    capped = get_cosine_scaled_reward(-1.0, -0.5, 0.5, 1.0, max_len=100, capped=True)
    assert capped(conversation(right), [GOLD]) == [pytest.approx(0.5)]
    assert reward(conversation(FRACTION), ["unparseable_latex"]) == [None]


def test_length_reward_kimi():
    same = len_reward(conversation(FRACTION, WRONG_FRACTION), [GOLD, GOLD])
    assert same == [0.0, 0.0]
    right = len_reward(conversation(FRACTION, FRACTION + "  " + "x" * 10), [GOLD, GOLD])
    assert right[0] == pytest.approx(0.5) and right[0] > right[1]
    wrong = len_reward(conversation(WRONG_FRACTION, WRONG_FRACTION + "  " + "x" * 10), [GOLD, GOLD])
    assert wrong[0] <= 0.0 and wrong[1] <= 0.0 and wrong[0] > wrong[1]
    texts = (FRACTION, FRACTION + "  " + "x" * 10, WRONG_FRACTION, WRONG_FRACTION + "  " + "x" * 10)
    mixed = len_reward(conversation(*texts), [GOLD] * 4)
    # By hand: lengths 22, 34, 22, 34 -> lambda 0.5, -0.5; wrong answers min(0, lambda).
    assert mixed == pytest.approx([0.5, -0.5, 0.0, -0.5])
    unparseable = len_reward(conversation(r"\boxed{answer}", r"\boxed{answer} " + "x" * 10), ["unparseable_latex"] * 2)
    assert unparseable[0] == pytest.approx(0.5) and unparseable[0] > unparseable[1]  # treated as right


def test_length_counts_an_answer_it_cannot_check_in_time_as_wrong(monkeypatch):
    """Open R1's `verify` returns False on a timeout: a short answer whose check runs out of time gets no bonus (an
    unparseable gold, by contrast, counts as right)."""
    import open_r1.rewards as rewards

    monkeypatch.setattr(rewards, "_accuracy_one", lambda text, solution: None)
    monkeypatch.setattr(rewards, "_gold_parses", lambda solution: True)  # the gold parses: the None was a timeout
    assert len_reward(conversation("short", "a longer one"), [GOLD, GOLD]) == [0.0, -0.5]


def test_repetition_penalty_refuses_a_positive_penalty():
    with pytest.raises(ValueError, match="max_penalty 1.5 should not be positive"):
        get_repetition_penalty_reward(ngram_size=2, max_penalty=1.5)


@pytest.mark.parametrize(
    "ngram, penalty, text, expected",
    [
        (2, -1.0, "this is a test sentence", 0.0),
        (2, -1.0, "this this this this this", -0.75),
        (2, -1.0, "this is a this is a test", -1 / 3),
        (3, -0.5, "this is a test", 0.0),
        (3, -0.5, "test test test test", -0.25),
        (2, -1.0, "", 0.0),
        (3, -2.0, "this is a this is a test", -0.4),
        (3, -1.0, "word", 0.0),
        (3, -1.0, "two words", 0.0),
        (3, -1.0, "three different words", 0.0),
        (3, -1.0, "word word word word", -0.5),
        (3, -1.0, "one two one two", 0.0),
        (3, -0.5, "A B C A B", 0.0),
        (3, -1.0, "A B C A B C", -0.25),
        (3, -1.0, "A B C A B C E F G A B C A B C", -0.3846),
        (3, -1.0, "A B C D E F G H I J K L", 0.0),
    ],
)
def test_repetition_penalty(ngram, penalty, text, expected):
    reward = get_repetition_penalty_reward(ngram_size=ngram, max_penalty=penalty)
    assert reward(conversation(text)) == [pytest.approx(expected, abs=1e-4)]


def test_repetition_penalty_lowercases():
    reward = get_repetition_penalty_reward(ngram_size=2, max_penalty=-1.0)
    first, second = reward(conversation("This is A Test", "this IS a test"))
    assert first == second


def test_repetition_penalty_languages():
    english = get_repetition_penalty_reward(ngram_size=2, max_penalty=-1.0, language="en")
    assert english(conversation("that that that that that")) == [-0.75]
    with pytest.raises(ValueError, match="`fr`"):
        get_repetition_penalty_reward(ngram_size=2, max_penalty=-1.0, language="fr")
    if importlib.util.find_spec("jieba") is None:
        with pytest.raises(ValueError, match="jieba"):
            get_repetition_penalty_reward(ngram_size=2, max_penalty=-1.0, language="zh")
        pytest.skip("jieba is not installed (make install installs it)")
    chinese = get_repetition_penalty_reward(ngram_size=2, max_penalty=-1.0, language="zh")
    assert chinese(conversation("这个这个这个这个这个")) == [-0.75]


@pytest.mark.parametrize("length, expected", [(50, 0.0), (110, -1.0), (90, -0.5)])
def test_soft_overlong_punishment(length, expected):
    reward = get_soft_overlong_punishment(max_completion_len=100, soft_punish_cache=20)
    assert reward(completion_ids=[[1] * length]) == [pytest.approx(expected)]


@pytest.mark.parametrize(
    "language, text, expected",
    [
        (
            "python",
            "<think>\nLet's solve this\nStep 1\n</think>\n<answer>\n```python\ndef f():\n    pass\n```\n</answer>",
            1,
        ),
        ("python", "```python\ndef hello():\n    print('world')\n```", 0),
        ("python", "<think>Some thinking</think><answer>Just plain text</answer>", 0),
        ("python", "<think>Analysis</think><answer>```javascript\nconsole.log('hello');\n```</answer>", 0),
        ("python", "<think>Analysis</think><answer>```\ndef hello(): pass\n```</answer>", 0),
        ("python", "<answer>```python\ndef hello(): pass\n```</answer><think>Analysis</think>", 0),
        (
            "python",
            "<think>\nAn example:\n```python\nx = 1\n```\nNow:\n</think>\n<answer>\n```python\ndef s():\n    return 42\n```"
            "\n</answer>",
            1,
        ),
        (
            "javascript",
            "<think>\nAnalysis\n</think>\n<answer>\n```javascript\nconsole.log('hello');\n```\n</answer>",
            1,
        ),
        ("python", "<think>\nAnalysis\n</think>\n<answer>\n```javascript\nconsole.log('hello');\n```\n</answer>", 0),
        (
            "python",
            "<think>\nHere's the analysis\n</think>\n<answer>\n```python\nclass Solution:\n    def __init__(self):\n"
            "        self.value = 42\n        \n    def get_value(self):\n        return self.value\n```\n</answer>",
            1,
        ),
    ],
)
def test_code_format(language, text, expected):
    assert get_code_format_reward(language=language)(conversation(text)) == [float(expected)]


def test_migrate_names_each_reward_that_scores_differently_here():
    from open_r1.recipes.migrate import migrate_text

    recipe = "reward_funcs:\n- accuracy\n- format\n- cosine\n- code\nreward_weights: [1.0, 0.2, 0.5, 1.0]\n"
    _, _, notes = migrate_text(recipe)
    differing = [note.split("`")[1] for note in notes if note.startswith("reward `")]
    assert differing == ["cosine", "code"]


def test_a_dot_env_file_gives_the_remote_sandboxes_their_keys(tmp_path, monkeypatch):
    """Open R1's README tells users to put E2B_API_KEY in .env; the remote providers read it, never over the
    environment's own value."""
    from open_r1.code.providers import get_provider

    (tmp_path / ".env").write_text("E2B_API_KEY=from-dot-env\nMORPH_API_KEY=from-dot-env\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("E2B_API_KEY", "unset by the test")  # recorded, so the test's value is undone after it
    monkeypatch.delenv("E2B_API_KEY")
    monkeypatch.setenv("MORPH_API_KEY", "from-environment")
    get_provider("e2b", e2b_router_url="localhost:8000")
    get_provider("morph", morph_router_url="localhost:8001")
    assert os.environ["E2B_API_KEY"] == "from-dot-env"
    assert os.environ["MORPH_API_KEY"] == "from-environment"


def test_a_checkpoint_recorded_under_the_old_reward_names_resumes_under_the_new(tmp_path):
    """Before Open R1's names took Open R1's meaning, `accuracy`, `format`, ... were this project's rewards: a run
    recorded then resumes with the renamed recipe (the same rewards), and stops with the old names (now others)."""
    import json

    from open_r1.utils.checkpoints import RECIPE_FILE
    from open_r1.utils.run_utils import REWARD_NAMES_VERSION, check_resume_matches

    checkpoint = tmp_path / "checkpoint-2"
    checkpoint.mkdir()
    (checkpoint / RECIPE_FILE).write_text(json.dumps({"reward_funcs": ["accuracy", "format", "soft_overlong"]}))
    renamed = ["boxed_accuracy", "think_format", "soft_overlong_punishment"]
    check_resume_matches(str(checkpoint), {"reward_funcs": renamed, "reward_names_version": REWARD_NAMES_VERSION})
    with pytest.raises(ValueError, match="`reward_funcs`: \\['boxed_accuracy', 'think_format'"):
        old_names = ["accuracy", "format", "soft_overlong_punishment"]
        check_resume_matches(
            str(checkpoint), {"reward_funcs": old_names, "reward_names_version": REWARD_NAMES_VERSION}
        )
