import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from open_r1.configs import GRPOScriptArguments
from open_r1.rewards import (
    accuracy_reward,
    completion_text,
    format_relaxed_reward,
    format_reward,
    get_cosine_scaled_reward,
    get_repetition_penalty_reward,
    get_reward_funcs,
    get_soft_overlong_punishment,
    get_vrar_reward,
    keyword_reward,
    reasoning_steps_reward,
    tag_count_reward,
    think_format_reward,
    think_tag_count_reward,
)
from open_r1.utils.rl_metrics import group_pass_at_k, pass_at_k, reasoning_behaviour_rates


GOOD = "<think>\n3 + 4 = 7\n</think>\nThe answer is \\boxed{7}."


def chat(text):
    return [{"role": "assistant", "content": text}]


def test_accuracy_reward_exact_values():
    completions = [chat(GOOD), chat("<think>\nx\n</think>\n\\boxed{8}"), chat("7"), chat(GOOD), chat(GOOD)]
    solutions = ["7", "7", "7", "$\\frac{14}{2}$", "\\unparseable{"]
    assert accuracy_reward(completions, solutions) == [1.0, 0.0, 0.0, 1.0, None]


def test_unparseable_gold_scores_none_and_is_logged(caplog):
    """A gold answer that does not parse scores None (TRL then leaves the completion out of the advantages), never 0
    (a failure the model would be trained away from) nor 1 (review item 7)."""
    from open_r1.rewards import _gold_parses

    _gold_parses.cache_clear()  # logged once per gold: this test's own
    cosine = get_cosine_scaled_reward()
    with caplog.at_level("WARNING"):
        assert accuracy_reward([chat(GOOD)], ["\\unparseable{"]) == [None]
        assert cosine([chat(GOOD)], ["\\unparseable{"]) == [None]
    assert "does not parse" in caplog.text


def test_format_and_tag_rewards():
    texts = [
        GOOD,
        "<think>3 + 4</think> \\boxed{7}",
        "no think at all",
        "<think>\na\n</think>\n",
        "<think>\na\n</think>\nok <think>again</think>",
    ]
    assert think_format_reward([chat(t) for t in texts]) == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert format_relaxed_reward([chat(t) for t in texts]) == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert think_tag_count_reward([chat(t) for t in texts]) == [1.0, 0.0, 0.0, 1.0, 1.0]


def test_reasoning_steps_cosine_repetition_and_overlong():
    assert reasoning_steps_reward(["Step 1: a\nStep 2: b", "First, a. Next, b. Finally, c."]) == [2 / 3, 1.0]
    cosine = get_cosine_scaled_reward(max_len=100, capped=True)
    short_right, long_wrong = "\\boxed{7}", "x" * 100 + "\\boxed{8}"
    assert cosine([short_right, long_wrong], ["7", "7"]) == pytest.approx(
        [0.5 + 0.25 * (1 + math.cos(9 / 100 * math.pi)), -0.5]
    )
    repetition = get_repetition_penalty_reward(ngram_size=2, max_penalty=-1.0)
    # "a b a b a b": 5 bigrams, 2 distinct -> (1 - 2/5) * -1
    assert repetition(["a b a b a b", "one two three", ""]) == pytest.approx([-0.6, 0.0, 0.0])
    overlong = get_soft_overlong_punishment(max_completion_len=10, soft_punish_cache=4)
    assert overlong(completion_ids=[[0] * 6, [0] * 8, [0] * 10, [0] * 11]) == pytest.approx([0.0, -0.5, -1.0, -1.0])


def test_keyword_and_vrar_rewards():
    completions = ["<think>\nXiaoming likes tea\n</think>\nXiaoming drinks tea daily", "coffee"]
    keywords = [["xiaoming", "tea"], ["tea"]]
    assert keyword_reward(completions, keywords) == [1.0, 0.0]
    assert get_vrar_reward(0.7, 0.3)(completions, keywords) == pytest.approx([1.0, 0.0])


def user_reward(completions, **kwargs):
    return [float(len(completion_text(c)) > 3) for c in completions]


def test_registry_mixes_named_import_path_and_model_rewards(tmp_path):
    args = GRPOScriptArguments(
        dataset_name="x", reward_funcs=["accuracy", "tests.test_rewards:user_reward", f"model:{tmp_path}"]
    )
    funcs = get_reward_funcs(args)
    # the user reward is guarded (errors name it), under its own name for TRL's logs
    assert funcs[0] is accuracy_reward and funcs[1].__wrapped__ is user_reward and funcs[2] == str(tmp_path)
    assert funcs[1].__name__ == "user_reward" and funcs[1](completions=["abcd", "a"]) == [1.0, 0.0]
    with pytest.raises(ValueError, match="unknown reward 'acuracy'"):
        get_reward_funcs(GRPOScriptArguments(dataset_name="x", reward_funcs=["acuracy"]))
    with pytest.raises(ValueError, match="`reward_funcs`: cannot import 'tests.test_rewards:nothing'"):
        get_reward_funcs(GRPOScriptArguments(dataset_name="x", reward_funcs=["tests.test_rewards:nothing"]))


ALL_TEXT_REWARDS = [
    accuracy_reward,
    format_reward,
    think_format_reward,
    format_relaxed_reward,
    tag_count_reward,
    think_tag_count_reward,
    reasoning_steps_reward,
    get_cosine_scaled_reward(),
    get_repetition_penalty_reward(),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_no_reward_raises_on_random_bytes(blobs):
    kinds = [
        blobs,
        [b.decode("utf-8", errors="surrogateescape") for b in blobs],
        [chat(b.decode("latin-1")) for b in blobs],
        [None for _ in blobs],
    ]
    for completions in kinds:
        for reward in ALL_TEXT_REWARDS:
            out = reward(completions, solution=["7"] * len(blobs))
            assert len(out) == len(blobs) and all(isinstance(v, float) for v in out)
        assert len(keyword_reward(completions, keywords=[["a"]] * len(blobs))) == len(blobs)


def test_huge_completion_is_bounded():
    huge = "x" * 2_000_000 + "\\boxed{7}"
    assert accuracy_reward([huge], ["7"]) == [1.0]


def test_pass_at_k_against_a_hand_count():
    # n = 4 samples, c = 1 correct: pass@1 = 1/4, pass@2 = 1 - C(3,2)/C(4,2) = 1 - 3/6, pass@4 = 1.
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    assert pass_at_k(4, 1, 4) == 1.0 and pass_at_k(4, 0, 4) == 0.0
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_reasoning_behaviour_rates():
    rates = reasoning_behaviour_rates(["Wait, that is wrong.", "Let me check: 3 + 4 = 7.", "7", "hmm, verify"])
    assert rates == {"backtracking": 0.5, "verification": 0.5}


def test_group_pass_at_k_on_a_crafted_batch():
    # Two prompts, 4 samples each: 1 and 2 correct.
    correct = [[True, False, False, False], [True, True, False, False]]
    result = group_pass_at_k(correct, [1, 2, 4])
    assert result[1] == pytest.approx((0.25 + 0.5) / 2)
    assert result[2] == pytest.approx((0.5 + (1 - 1 / 6)) / 2)  # 1 - C(3,2)/C(4,2); 1 - C(2,2)/C(4,2)
    assert result[4] == 1.0


def test_accuracy_is_right_off_the_main_thread_none_on_timeout_and_parses_each_gold_once(monkeypatch):
    """math-verify's timeouts are `signal.alarm`, main thread only: from a worker thread every completion scored None
    ("gold does not parse"). A check that runs out of time scored 0.0 ("Timeout during comparison"), where the rule is
    None. The gold was parsed again for every completion. (#31 item 7)"""
    import threading

    import open_r1.utils.math_grading as grading
    from open_r1.rewards import _gold_parses

    _gold_parses.cache_clear()
    grading._golds.clear()
    parses = []
    real_parse = grading.parse
    monkeypatch.setattr(grading, "parse", lambda text, **kw: parses.append(text) or real_parse(text, **kw))
    completions = [chat(GOOD), chat("<think>\nx\n</think>\n\\boxed{8}")] * 4
    assert accuracy_reward(completions, ["7"] * 8) == [1.0, 0.0] * 4
    assert parses.count("7") == 1  # the gold once; each completion's answer once
    monkeypatch.undo()

    results = {}
    worker = threading.Thread(target=lambda: results.update(r=accuracy_reward(completions[:2], ["$7$", "$7$"])))
    worker.start()
    worker.join(120)
    assert results["r"] == [1.0, 0.0]
    # Parsed sympy objects do not survive pickling (an interval came back False): the worker takes strings.
    interval = ([chat("<think>\nx\n</think>\n\\boxed{(0,1)}")], ["$x \\in (0,1)$"])
    worker = threading.Thread(target=lambda: results.update(r=accuracy_reward(*interval)))
    worker.start()
    worker.join(120)
    assert results["r"] == accuracy_reward(*interval) == [1.0]

    monkeypatch.setattr(grading, "TIMEOUT_SECONDS", 1)
    huge = "\\boxed{7^{1000000000}}"
    undecidable = ([chat(f"<think>\nx\n</think>\n{huge}")], ["7^{1000000000}"])
    assert accuracy_reward(*undecidable) == [None]
    worker = threading.Thread(target=lambda: results.update(r=accuracy_reward(*undecidable)))  # its process killed
    worker.start()
    worker.join(120)
    assert results["r"] == [None]
    worker = threading.Thread(target=lambda: results.update(r=accuracy_reward(completions[:2], ["7", "7"])))
    worker.start()
    worker.join(120)
    assert results["r"] == [1.0, 0.0]  # a new worker process takes the next check
