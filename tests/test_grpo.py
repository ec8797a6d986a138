import json

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaForSequenceClassification
from trl import ModelConfig, TrlParser

from open_r1 import grpo
from open_r1.configs import GRPOConfig, GRPOScriptArguments

from .conftest import REPO, accelerate_cmd, run_cli, world_args


RECIPE = "recipes/tiny/grpo/config_grpo.yaml"


def _overrides(world, out, *extra):
    return world_args(world, out, "--max_steps", "3", "--logging_steps", "1", "--max_completion_length", "16", *extra)


def _log(out):
    return json.loads((out / "trainer_state.json").read_text())["log_history"]


def _run_grpo(world, out, *extra, processes=1, env=None) -> list[dict]:
    """`accelerate launch grpo.py` with the tiny recipe on 1 (CPU) or several (gloo DDP) processes; its log."""
    launch = (
        ["--num_processes", "1", "--cpu"] if processes == 1 else ["--multi_gpu", "--num_processes", str(processes)]
    )
    run_cli(
        accelerate_cmd(*launch, "src/open_r1/grpo.py", "--config", RECIPE, *_overrides(world, out, *extra)), env=env
    )
    return _log(out)


def test_make_conversation_keeps_turns_up_to_the_last_user_turn():
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert grpo.make_conversation({"m": messages}, "m", None) == {"prompt": messages[:1]}
    assert grpo.make_conversation({"p": "q"}, "p", "sys") == {
        "prompt": [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}]
    }


def test_grpo_end_to_end_with_a_reward_model_verifier(world, tmp_path):
    # A tiny sequence-classification verifier, as SafeWork-R1's safety/value/knowledge models, mixed by weight.
    verifier = tmp_path / "verifier"
    config = AutoConfig.from_pretrained(world.base_model, num_labels=1)
    torch.manual_seed(0)
    LlamaForSequenceClassification(config).save_pretrained(verifier)
    AutoTokenizer.from_pretrained(world.base_model).save_pretrained(verifier)
    out = tmp_path / "grpo"
    log = _run_grpo(
        world,
        out,
        "--reward_funcs",
        "accuracy",
        "format",
        f"model:{verifier}",
        "--reward_weights",
        "1.0",
        "0.2",
        "0.5",
    )
    assert all(
        key in log[0]
        for key in (
            "pass@1",
            "pass@4",
            "reasoning/backtracking",
            "rewards/accuracy_reward/mean",
            "rewards/format_reward/mean",
        )
    )
    verifier_means = [e[k] for e in log for k in e if k.startswith("rewards/verifier") and k.endswith("/mean")]
    assert verifier_means and any(v != 0 for v in verifier_means)
    AutoModelForCausalLM.from_pretrained(out)


def test_grpo_two_processes_with_ewc(world, tmp_path):
    out = tmp_path / "grpo_ewc"
    log = _run_grpo(
        world,
        out,
        "--use_ewc",
        "true",
        "--retain_dataset_id",
        str(world.retain),
        "--fisher_num_samples",
        "16",
        "--ewc_lambda",
        "10",
        "--per_device_train_batch_size",
        "4",
        processes=2,
    )
    assert any("ewc/fisher_mean" in e for e in log) and any("ewc/penalty" in e for e in log)
    AutoModelForCausalLM.from_pretrained(out)


def test_bad_rewards_fail_before_loading(world, tmp_path):
    parser = TrlParser((GRPOScriptArguments, GRPOConfig, ModelConfig))
    args = parser.parse_args_and_config(
        ["--config", RECIPE, *_overrides(world, tmp_path / "o"), "--reward_funcs", "accuracy", "formatt"]
    )
    with pytest.raises(ValueError, match="unknown reward 'formatt'"):
        grpo.main(*args)
    args = parser.parse_args_and_config(
        ["--config", RECIPE, *_overrides(world, tmp_path / "o"), "--reward_weights", "1.0"]
    )
    with pytest.raises(ValueError, match="reward_weights"):
        grpo.main(*args)
    with pytest.raises(ValueError, match="trust_region_beta"):
        parser.parse_args_and_config(["--config", RECIPE, "--use_trust_region", "true", "--trust_region_beta", "0"])
    with pytest.raises(ValueError, match="replay"):
        parser.parse_args_and_config(["--config", RECIPE, "--replay_ratio", "0.1", "--retain_dataset_id", "x/y"])


def test_dynamic_sampling_keeps_exactly_the_groups_with_differing_rewards():
    from open_r1.grpo_trainer import informative_groups, take_rows

    nan = float("nan")
    # 4 groups of 2, rewards of two functions (NaN: the reward returned None): group 1 sums to 1.0 twice, group 3
    # has a single scored completion.
    rewards = torch.tensor(
        [[1.0, 0.0], [0.0, 0.0], [0.5, 0.5], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 1.0], [nan, nan]]
    )
    weights = torch.tensor([1.0, 1.0])
    assert informative_groups(rewards, weights, 2).tolist() == [True, False, True, False]
    # normalised per reward before summing, group 1's rewards differ in each function
    assert informative_groups(rewards, weights, 2, "normalize_then_sum").tolist() == [True, True, True, False]
    # a reward with weight 0 carries no information
    assert informative_groups(rewards, torch.tensor([0.0, 1.0]), 2).tolist() == [False, True, True, False]
    advantages = torch.tensor([0.7, -0.7, 0.0, 0.0, -1.0, 1.0])
    first = {
        "prompt_ids": torch.tensor([[0, 5], [0, 5], [6, 7], [6, 7], [0, 8], [0, 8]]),
        "completion_ids": torch.tensor([[1, 0], [2, 0], [3, 3], [3, 3], [4, 0], [4, 4]]),
        "completion_mask": torch.tensor([[1, 0], [1, 0], [1, 1], [1, 1], [1, 0], [1, 1]]),
        "advantages": advantages,
        "num_items_in_batch": torch.tensor(9),
    }
    refill = {
        "prompt_ids": torch.tensor([[9], [9]]),
        "completion_ids": torch.tensor([[5, 5, 5], [6, 0, 0]]),
        "completion_mask": torch.tensor([[1, 1, 1], [1, 0, 0]]),
        "advantages": torch.tensor([0.5, -0.5]),
        "num_items_in_batch": torch.tensor(4),
    }
    merged = take_rows([first, refill], [torch.tensor([0, 1, 4, 5]), torch.tensor([0, 1])], pad_token_id=0)
    assert merged["advantages"].tolist() == pytest.approx([0.7, -0.7, -1.0, 1.0, 0.5, -0.5])
    # prompts re-padded on the left, completions on the right
    assert merged["prompt_ids"].tolist() == [[0, 5], [0, 5], [0, 8], [0, 8], [0, 9], [0, 9]]
    assert merged["completion_ids"][0].tolist() == [1, 0, 0] and merged["completion_ids"][4].tolist() == [5, 5, 5]
    assert merged["completion_mask"].sum().item() == 1 + 1 + 1 + 2 + 3 + 1


def test_grpo_with_dynamic_sampling_runs_and_logs_its_rounds(world, tmp_path):
    out = tmp_path / "dapo"
    # the user reward is imported by path from tests/
    log = _run_grpo(
        world,
        out,
        "--dynamic_sampling",
        "true",
        "--dynamic_sampling_max_rounds",
        "2",
        "--reward_funcs",
        "accuracy",
        "format",
        "tests.test_grpo:coin_reward",
        env={"PYTHONPATH": f"{REPO}:{REPO / 'src'}"},
    )
    rounds = [e["dynamic_sampling/rounds"] for e in log if "dynamic_sampling/rounds" in e]
    assert rounds and all(0 <= r <= 2 for r in rounds)
    for entry in (e for e in log if "dynamic_sampling/rounds" in e):
        assert entry["dynamic_sampling/unfilled_frac"] <= entry["dynamic_sampling/dropped_frac"]
    AutoModelForCausalLM.from_pretrained(out)


def coin_reward(completions, **kwargs):
    """Pseudo-random 0/1 per completion (by its text), so that some groups vary and some do not."""
    return [float(sum(map(ord, str(c))) % 2) for c in completions]


def test_dynamic_sampling_on_two_processes_stops_at_its_cap(world, tmp_path):
    """The base model never writes a think block: every group has reward 0 under `format`, so both ranks run every
    refill round together (generation is collective) and log the batch as unfilled."""
    out = tmp_path / "dapo2"
    log = _run_grpo(
        world,
        out,
        "--dynamic_sampling",
        "true",
        "--dynamic_sampling_max_rounds",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--reward_funcs",
        "format",
        "--reward_weights",
        "1.0",
        processes=2,
    )
    entries = [e for e in log if "dynamic_sampling/rounds" in e]
    assert len(entries) == 3
    assert all(e["dynamic_sampling/rounds"] == 2 and e["dynamic_sampling/unfilled_frac"] == 1.0 for e in entries)


def test_grpo_trust_region_adapts_trls_beta(world, tmp_path):
    out = tmp_path / "grpo_tr"
    log = _run_grpo(
        world,
        out,
        "--use_trust_region",
        "true",
        "--trust_region_beta",
        "0.1",
        "--trust_region_delta",
        "1e-9",
        "--learning_rate",
        "1e-3",
    )
    kls = [e["kl"] for e in log if "kl" in e]
    betas = [e["trust_region/beta"] for e in log if "trust_region/beta" in e]
    assert kls and len(betas) == 3
    # The reference starts equal to the policy (KL 0 < delta / 1.5: loosen), then any drift exceeds 1.5 delta.
    expected, beta = [], 0.1
    for kl in kls:
        beta = beta / 2 if kl < 1e-9 / 1.5 else beta * 2 if kl > 1.5e-9 else beta
        expected.append(beta)
    assert betas == pytest.approx(expected)


def _in_process_grpo(world, tmp_path, reward_funcs, n_prompts, **overrides):
    """A `ContinualGRPOTrainer` on the first `n_prompts` word problems (each with its index as `combo`), in this
    process, with TRL's real generation and advantage code."""
    from datasets import load_from_disk

    from open_r1.grpo_trainer import ContinualGRPOTrainer

    rows = load_from_disk(str(world.update))["train"].select(range(n_prompts))
    rows = rows.map(grpo.make_conversation, fn_kwargs={"prompt_column": "messages", "system_prompt": None})
    rows = rows.remove_columns("messages").add_column("combo", list(range(n_prompts)))
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        report_to="none",
        max_completion_length=4,
        seed=0,
        **{"dynamic_sampling": True, **overrides},
    )
    return ContinualGRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(world.base_model),
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=rows,
        processing_class=AutoTokenizer.from_pretrained(world.base_model),
    )


def _combo_reward(position, values):
    """A reward constant within each prompt's group: `values[...]` picked by the prompt's `combo` index."""

    def reward(completions, combo, **kwargs):
        return [float(values[(c // position) % len(values)]) for c in combo]

    reward.__name__ = f"combo_reward_{position}"
    return reward


@pytest.mark.parametrize(
    "overrides",
    [{}, {"scale_rewards": "batch"}, {"multi_objective_aggregation": "normalize_then_sum"}],
    ids=["group", "batch", "normalize_then_sum"],
)
def test_dynamic_sampling_drops_every_group_whose_rewards_are_all_equal(world, tmp_path, overrides):
    """All 20 combinations of accuracy {0, 1} x format {0, 1} x tag score {0, .25, .5, .75, 1} at the recipe
    weights [1, 0.2, 0.2], each the same for all 8 completions of its prompt: no group carries information, so all
    are dropped (review item 2: TRL's rounding of the group mean left advantages of ~1e-3 that kept 11 of them)."""
    rewards = [_combo_reward(1, [0, 1]), _combo_reward(2, [0, 1]), _combo_reward(4, [0, 0.25, 0.5, 0.75, 1])]
    trainer = _in_process_grpo(
        world,
        tmp_path,
        rewards,
        n_prompts=20,
        num_generations=8,
        per_device_train_batch_size=16,
        gradient_accumulation_steps=10,  # one generation batch: 160 completions, all 20 prompts
        reward_weights=[1.0, 0.2, 0.2],
        dynamic_sampling_max_rounds=0,
        **overrides,
    )
    trainer.model.train()
    trainer._generate_and_score_completions(next(iter(trainer.get_train_dataloader())))
    assert trainer._metrics["train"]["dynamic_sampling/dropped_frac"] == [1.0]


def test_refill_rounds_draw_fresh_prompts(world, tmp_path):
    """With gradient accumulation, TRL's training sampler repeats each generation batch; refills must not: every
    refill round of a step brings prompts no earlier round of it had, and not the main stream's first batch (review
    item 3), and no prompt is taken twice into the merged batch. Only every fourth prompt can vary, so all three
    refill rounds run and some of their groups are taken."""

    def few_prompts_vary(completions, combo, **kwargs):
        return [float(c % 4 == 1 and i % 2) for i, c in enumerate(combo)]

    trainer = _in_process_grpo(
        world,
        tmp_path,
        [few_prompts_vary],
        n_prompts=64,
        num_generations=2,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=4,
        dynamic_sampling_max_rounds=3,
    )
    trainer.model.train()
    refills = []
    draw = trainer._next_refill_batch

    def recorded():
        batch = draw()
        refills.append([row["combo"] for row in batch])
        return batch

    trainer._next_refill_batch = recorded
    main_first = [row["combo"] for row in next(iter(trainer.get_train_dataloader()))]
    merged = trainer._generate_and_score_completions(next(iter(trainer.get_train_dataloader())))
    assert len(refills) == 3
    for i, earlier in enumerate(refills):
        assert sorted(earlier) != sorted(main_first)
        for later in refills[i + 1 :]:
            assert not set(earlier) & set(later), refills
    groups = merged["prompt_ids"][::2].tolist()
    assert len({tuple(g) for g in groups}) == len(groups)  # no prompt twice in the merged batch


def test_pass_at_k_leaves_out_prompts_whose_gold_does_not_parse(world, tmp_path):
    """Prompts whose accuracy reward is None (a gold answer that does not parse) are neither failures nor successes
    of pass@k: it is computed over the other prompts only (review item 7)."""

    def accuracy_reward(completions, combo, **kwargs):  # named as the registered reward, whose column pass@k reads
        return [None if c % 3 == 1 else float(c % 3 == 0) for c in combo]

    trainer = _in_process_grpo(
        world,
        tmp_path,
        [accuracy_reward],
        n_prompts=12,
        num_generations=2,
        per_device_train_batch_size=24,
        dynamic_sampling=False,
    )
    trainer.model.train()
    trainer._generate_and_score_completions(next(iter(trainer.get_train_dataloader())))
    assert trainer._metrics["train"]["pass@1"] == [0.5]  # 4 right (combo 0, 3, 6, 9) of 8 scorable prompts


class _StopBeforeTraining(Exception):
    pass


def _rewards_grpo_main_builds(world, tmp_path, monkeypatch, *cli):
    """The reward functions `grpo.main` hands the trainer for the tiny recipe plus `cli` (stops before training)."""
    captured = {}

    def stop(*args, reward_funcs, **kwargs):
        captured["rewards"] = reward_funcs
        raise _StopBeforeTraining

    monkeypatch.setattr(grpo, "ContinualGRPOTrainer", stop)
    parser = TrlParser((GRPOScriptArguments, GRPOConfig, ModelConfig))
    args = parser.parse_args_and_config(["--config", RECIPE, *_overrides(world, tmp_path / "out"), *cli])
    with pytest.raises(_StopBeforeTraining):
        grpo.main(*args)
    return captured["rewards"]


def test_soft_overlong_length_is_the_generation_cap(world, tmp_path, monkeypatch):
    """DAPO's soft overlong punishment measures against the generation cap `max_completion_length` unless told
    otherwise: a 500-token completion under a 1024-token cap is not punished (review item 8: a separate default of
    256 punished it with -1), one at the cap is, by its cache; an inconsistent pair stops before the model loads."""
    soft_overlong_at_1024 = ("--reward_funcs", "soft_overlong_punishment", "--reward_weights", "1.0")
    soft_overlong_at_1024 += ("--max_completion_length", "1024")
    (soft_overlong,) = _rewards_grpo_main_builds(
        world, tmp_path, monkeypatch, *soft_overlong_at_1024, "--soft_punish_cache", "64"
    )
    assert soft_overlong(completion_ids=[[0] * 500, [0] * 992, [0] * 1024]) == [0.0, -0.5, -1.0]
    with pytest.raises(ValueError, match="max_completion_len.*max_completion_length"):
        _rewards_grpo_main_builds(world, tmp_path, monkeypatch, *soft_overlong_at_1024, "--max_completion_len", "256")
