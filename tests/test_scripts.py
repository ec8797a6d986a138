import os
import re
import sys

import pytest
from datasets import Dataset, DatasetDict, load_from_disk

from .conftest import REPO, run_cli, torchrun


def test_decontamination_removes_rows_sharing_an_8gram(tmp_path):
    benchmark = "Let x be the smallest positive integer such that x squared ends in 444; find x."
    rows = [
        # Shares "the smallest positive integer such that x squared ends" (8+ words) once normalised.
        {"problem": "FIND: the Smallest positive integer, such that x squared ends in 999!", "id": 0},
        {"problem": "Let y be any prime; how many divisors does y squared have?", "id": 1},
        {"problem": "the smallest positive integer such that", "id": 2},  # only 6 words: not an 8-gram
    ]
    DatasetDict({"train": Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "data"))
    DatasetDict({"test": Dataset.from_list([{"problem": benchmark}])}).save_to_disk(str(tmp_path / "bench"))

    def decontaminate(output, *flags):
        run_cli(
            [
                sys.executable,
                str(REPO / "scripts/decontaminate.py"),
                "--dataset",
                str(tmp_path / "data"),
                "--benchmark",
                f"toy={tmp_path / 'bench'}:test:problem",
                "--output_dir",
                str(tmp_path / output),
                *flags,
            ]
        )
        return load_from_disk(str(tmp_path / output))

    marked = decontaminate("marked")
    assert list(marked["contaminated_toy"]) == [True, False, False]
    clean = decontaminate("clean", "--cleanup")
    assert list(clean["id"]) == [1, 2] and clean.column_names == ["problem", "id"]


def test_generate_data_builds_replay_data_filtered_by_the_judge(world, tmp_path):
    from open_r1.eval.judges import is_refusal

    out = tmp_path / "replay"
    result = run_cli(
        [
            sys.executable,
            str(REPO / "scripts/generate_data.py"),
            "--model",
            str(world.base_model),
            "--dataset",
            str(world.retain),
            "--split",
            "train",  # replay data replays trained tasks; held-out tasks are what the base over-refuses
            "--num_samples",
            "200",
            "--output_dir",
            str(out),
            "--backend",
            "transformers",
            "--max_new_tokens",
            "32",
            "--temperature",
            "0",
            "--keep",
            "expected",
        ]
    )
    data = load_from_disk(str(out))
    assert f"Kept {len(data)} of 200" in result.stdout
    # the base refuses and answers its trained tasks as it should; rows of another kind (format instructions) have no
    # expected verdict and are left out
    judged = [
        row for row in load_from_disk(str(world.retain))["train"].select(range(200)) if row["kind"] != "instruction"
    ]
    assert len(data) >= 0.9 * len(judged)
    for row in data:
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert is_refusal(row["messages"][1]["content"]) == (row["kind"] == "harmful")


def test_benchmarks_run_and_their_fast_paths_match(world):
    """The benchmark scripts run end to end on small settings (they read trainer internals, so they must not rot),
    and what they compare is the same computation: the per-layer Fisher equals the per-sequence loop, sharded or
    not."""
    fisher = run_cli(
        [sys.executable, "scripts/benchmarks/bench_fisher.py", "--world", str(world.root), "--rows", "8"]
        + ["--batch-size", "4", "--steps", "2"]
    ).stdout
    difference = re.search(r"max relative difference (\S+)", fisher)
    assert difference and float(difference.group(1)) < 1e-4, fisher
    for line in ("ceiling of any per-sample speed-up", "EWC overhead", "penalty alone"):
        assert line in fisher
    sharded = torchrun(
        "scripts/benchmarks/bench_fisher_sharded.py",
        *("--world", str(world.root), "--rows", "8", "--batch-size", "4", "--repeats", "1"),
    ).stdout
    difference = re.search(r"max relative difference (\S+)", sharded)
    assert difference and float(difference.group(1)) < 1e-4, sharded
    dadamw = run_cli(
        [sys.executable, "scripts/benchmarks/bench_dadamw.py", "--hidden", "32", "--layers", "1", "--vocab", "64"]
        + ["--steps", "2", "--repeats", "1"]
    ).stdout
    assert "DAdamW gamma=1.0" in dadamw, dadamw


def test_ewc_lambda_scale_is_the_update_pull_over_the_brake_at_plain_sfts_displacement(world, tmp_path):
    """scripts/ewc_lambda.py: lambda* = |g| / |F * Delta|; the same update gradient and twice the displacement give
    half the lambda; a start model as `--trained` (Delta = 0) and a recipe without EWC are refused by name."""
    import subprocess

    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(world.base_model)
    noise = {
        n: torch.randn(p.shape, generator=torch.Generator().manual_seed(i))
        for i, (n, p) in enumerate(model.named_parameters())
    }
    for scale in (1, 2):
        moved = AutoModelForCausalLM.from_pretrained(world.base_model)
        with torch.no_grad():
            for name, param in moved.named_parameters():
                param.add_(0.01 * scale * noise[name])
        moved.save_pretrained(tmp_path / f"moved{scale}")

    def recipe(name):
        return [
            "--config",
            str(REPO / "recipes/tiny/sft" / name),
            "--model_name_or_path",
            str(world.base_model),
            "--dataset_name",
            str(world.update),
            "--retain_dataset_id",
            str(world.retain),
            "--fisher_num_samples",
            "32",
        ]

    script = [sys.executable, str(REPO / "scripts/ewc_lambda.py")]
    printed = {}
    for scale in (1, 2):
        out = run_cli(
            [*script, *recipe("config_recommended.yaml"), "--trained", str(tmp_path / f"moved{scale}")]
        ).stdout
        printed[scale] = {
            key: float(re.search(pattern, out).group(1))
            for key, pattern in (
                ("pull", r"\|g\| .* = (\S+)"),
                ("brake", r"\|F \* Delta\| .* = (\S+)"),
                ("lambda", r"lambda\* = (\S+)"),
            )
        }
        assert printed[scale]["lambda"] == pytest.approx(printed[scale]["pull"] / printed[scale]["brake"], rel=1e-3)
    assert printed[1]["pull"] == printed[2]["pull"] > 0
    assert printed[2]["brake"] == pytest.approx(2 * printed[1]["brake"], rel=1e-3)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for trained, config, message in (
        (world.base_model, "config_recommended.yaml", "its weights are the start's"),
        (tmp_path / "moved1", "config_sft.yaml", "`use_ewc` is not set"),
    ):
        result = subprocess.run(
            [*script, *recipe(config), "--trained", str(trained)], cwd=REPO, env=env, capture_output=True, text=True
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]


def test_the_trainer_benchmark_times_the_methods_work_inside_each_step(world, monkeypatch):
    """`make bench` timed each step up to the Clock's own `on_step_end`, which ran before the methods' callback: the
    EMA update (and EWC recomputes, the trust region's all-reduce) fell outside the window. An EMA update made to take
    0.2 s must show in the measured step."""
    sys.path.insert(0, str(REPO / "scripts/benchmarks"))
    import time

    import bench_trainer

    from open_r1.continual import EMA

    update = EMA.on_step_end
    monkeypatch.setattr(EMA, "on_step_end", lambda self, trainer: (time.sleep(0.2), update(self, trainer)))
    result = bench_trainer.run_one("ema", world.root, steps=9, batch=2)
    assert len(result["step_seconds"]) >= 3
    assert min(result["step_seconds"]) >= 0.2, result["step_seconds"]
