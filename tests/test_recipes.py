import shutil
import subprocess

import pytest
import yaml

from open_r1.recipes.check import check_recipe, unbound_placeholders
from open_r1.recipes.cli import main
from open_r1.recipes.reading import recipe_files

from .conftest import REPO


def test_every_recipe_in_the_repo_passes(capsys):
    # `data/` holds what other commands write (the testbed world, the demo's SFT model).
    assert main(["check", str(REPO / "recipes"), "--allow-missing", "data/", "--allow-missing-packages"]) == 0
    out = capsys.readouterr().out
    assert f"{len(recipe_files([str(REPO / 'recipes')]))} recipes checked, 0 problems" in out


def _recipe(tmp_path, name="config_sft.yaml", **changes):
    config = yaml.safe_load((REPO / "recipes/tiny/sft/config_sft.yaml").read_text())
    config.update(changes)
    config["model_name_or_path"] = str(tmp_path)  # an existing directory, so only the crafted problem shows
    config["dataset_name"] = str(tmp_path)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"ewc_lamda": 5.0}, "ewc_lamda: unknown key; did you mean `ewc_lambda`?"),
        ({"learning_rate": "fast"}, "--learning_rate/--learning-rate: invalid float value: 'fast'"),
        ({"replay_ratio": 0.1}, "`replay_ratio` > 0 needs `retain_dataset_id`"),
        ({"preconditioner_power": 2.0}, "preconditioner_power"),
        (
            {"retain_dataset_id": "./no/such/retain", "use_ewc": True},
            "retain_dataset_id: local path './no/such/retain'",
        ),
    ],
)
def test_bad_recipes_fail_naming_file_and_key(tmp_path, changes, expected):
    path = _recipe(tmp_path, **changes)
    problems = check_recipe(path)
    assert problems and all(p.startswith(str(path)) for p in problems)
    assert any(expected in p for p in problems), problems


def test_methods_the_accelerate_config_cannot_run_are_reported(tmp_path):
    path = _recipe(tmp_path, use_trust_region=True)
    assert check_recipe(path) == []
    problems = check_recipe(path, accelerate_config=REPO / "recipes/accelerate_configs/zero3.yaml")
    assert problems == [
        f"{path}: use_trust_region: trust_region is not supported under ZeRO-3 "
        f"({REPO / 'recipes/accelerate_configs/zero3.yaml'}); use DDP or ZeRO-1/2"
    ]
    assert check_recipe(path, accelerate_config=REPO / "recipes/accelerate_configs/zero2.yaml") == []
    ewc = _recipe(tmp_path, "config_ewc.yaml", use_ewc=True, retain_dataset_id=str(tmp_path))
    for sharded in ("zero3", "fsdp"):  # EWC keeps its state on the local partitions
        assert check_recipe(ewc, accelerate_config=REPO / f"recipes/accelerate_configs/{sharded}.yaml") == []
    agem = _recipe(tmp_path, "config_agem.yaml", use_agem=True, retain_dataset_id=str(tmp_path))
    zero2 = REPO / "recipes/accelerate_configs/zero2.yaml"
    assert check_recipe(agem, accelerate_config=zero2) == [
        f"{agem}: use_agem: agem is not supported under ZeRO-1/2 ({zero2}); use DDP"
    ]
    assert check_recipe(agem, accelerate_config=REPO / "recipes/accelerate_configs/ddp.yaml") == []


@pytest.mark.skipif(shutil.which("envsubst") is None, reason="envsubst (gettext-base) not installed")
def test_envsubst_renders_a_versioned_recipe(tmp_path):
    recipe = REPO / "recipes/meta-llama/Llama-3.1-8B-Instruct/sft/config_distill_v00.06.yaml"
    rendered = subprocess.run(
        ["envsubst"], input=recipe.read_text(), capture_output=True, text=True, env={"VERSION": "v00.06"}, check=True
    ).stdout
    config = yaml.safe_load(rendered)
    assert config["output_dir"].endswith("_v00.06") and config["custom_optim"] == "fisher"


def _problems(tmp_path, base="recipes/tiny/sft/config_sft.yaml", name="config_x.yaml", **changes):
    config = {**yaml.safe_load((REPO / base).read_text()), **changes}
    config["model_name_or_path"] = config["dataset_name"] = str(tmp_path)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return check_recipe(path)


@pytest.mark.parametrize(
    "base, changes, expected",
    [
        ("sft", {"callbacks": ["benchmark_callback"]}, "`callbacks`: unknown callback(s) ['benchmark_callback']"),
        ("grpo", {"reward_funcs": ["cf_codes"], "reward_weights": [1.0]}, "`reward_funcs`: unknown reward 'cf_codes'"),
        ("sft", {"benchmarks": ["mmlu_pro"]}, "`benchmarks`: unknown ['mmlu_pro']"),
        ("sft", {"use_liger_kernel": True}, "use_liger_kernel: needs liger-kernel"),
        ("sft", {"attn_implementation": "flash_attention_2"}, "attn_implementation: needs flash-attn"),
        ("sft", {"optim": "paged_adamw_8bit"}, "optim: needs bitsandbytes"),
        ("sft", {"warmup_ratio": 0.1}, "warmup_ratio: unknown key; now `warmup_steps`"),
        ("sft", {"torch_dtype": "bfloat16"}, "torch_dtype: unknown key; now `dtype`"),
        (
            "grpo",
            {"code_sandbox_unisolated": True},
            "code_sandbox_unisolated: unknown key; removed: the local sandbox",
        ),
    ],
)
def test_the_checker_catches_what_used_to_fail_only_at_start(tmp_path, base, changes, expected):
    recipe = {"sft": "recipes/tiny/sft/config_sft.yaml", "grpo": "recipes/tiny/grpo/config_grpo.yaml"}[base]
    problems = _problems(tmp_path, recipe, **changes)
    assert any(expected in p for p in problems), problems


def test_every_problem_of_a_recipe_is_reported_at_once(tmp_path):
    """Unknown keys do not hide rule violations, and one broken rule group does not hide another."""
    changes = {"overwrite_output_dir": True, "replay_ratio": 0.1, "ema_eta": 2.0, "benchmarks": ["nope"]}
    problems = _problems(tmp_path, **changes)
    for expected in ("overwrite_output_dir: unknown key; removed", "`replay_ratio` > 0 needs", "`ema_eta` must be in"):
        assert any(expected in p for p in problems), problems
    assert any("`benchmarks`: unknown" in p for p in problems), problems


def test_grpo_batch_arithmetic_is_judged_at_the_jobs_process_count(tmp_path):
    """7 generations and 4 prompts per device x 2 accumulation steps: divisible on 7 processes, not on 1."""
    changes = {"num_generations": 7, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2}
    config = {**yaml.safe_load((REPO / "recipes/tiny/grpo/config_grpo.yaml").read_text()), **changes}
    config["model_name_or_path"] = config["dataset_name"] = str(tmp_path)
    path = tmp_path / "config_grpo_x.yaml"
    path.write_text(yaml.safe_dump(config))
    assert check_recipe(path, num_processes=7) == []
    (problem,) = check_recipe(path, num_processes=1)
    assert "divisible" in problem and "judged at 1 process(es): pass --num-processes" in problem


FORK = REPO / "tests/fixtures/fork_recipes"


def test_migrate_rewrites_every_rename_and_fork_key_keeping_comments(tmp_path, capsys):
    """`migrate` maps each TRL/transformers rename and each fork key to this project's, keeps comments and order,
    reports what it changed and what it could not map, and the result passes `check` (at the job's 7 processes, and
    but for the Hub ids it cannot see)."""
    assert main(["migrate", str(FORK), "--out", str(tmp_path)]) == 0
    report = capsys.readouterr().out
    sft = yaml.safe_load((tmp_path / "config_distill_v00.31.yaml").read_text())
    text = (tmp_path / "config_distill_v00.31.yaml").read_text()
    assert sft["dtype"] == "bfloat16" and sft["warmup_steps"] == 0.1 and "torch_dtype" not in sft
    assert "overwrite_output_dir" not in sft and "# [migrate] overwrite_output_dir: true" in text
    assert sft["fisher_num_samples"] == 2000 and sft["fisher_estimator"] == "per_sample"
    assert sft["ewc_lambda"] == 100.0  # the fork's penalty had no 1/2
    assert sft["use_ema"] is True and sft["callbacks"] == ["push_to_hub_revision"] and sft["hub_strategy"] == "end"
    assert "retain_dataset_config" not in sft and "fisher_completion_only_loss" not in sft
    assert sft["output_dir"] == "data/Neelectric/Llama-3.1-8B-Instruct_SFT_Math-220k${VERSION}"
    assert "# the fork's dtype key" in text and "# rows of the retain set" not in text  # replaced lines lose theirs
    grpo = yaml.safe_load((tmp_path / "config_grpo_v00.12.yaml").read_text().replace("${", "$_{"))
    assert grpo["log_unique_prompts"] is True and "max_prompt_length" not in grpo and "vllm_device" not in grpo
    assert "not mapped: ${LEARNING_RATE}: a sweep script's placeholder" in report
    assert "changed: fisher_num_batches 2000 x fisher_batch_size 1 -> fisher_num_samples 2000" in report
    problems = check_recipe(tmp_path / "config_distill_v00.31.yaml", allow_missing_packages=True)
    assert problems == [], problems
    grpo = tmp_path / "config_grpo_v00.12.yaml"
    assert check_recipe(grpo, num_processes=7, allow_missing_packages=True) == []  # ${LEARNING_RATE}: a stand-in
    assert unbound_placeholders(grpo) == ["LEARNING_RATE"] and unbound_placeholders(grpo, {"LEARNING_RATE": "1"}) == []


def test_the_fork_recipes_fail_check_until_migrated(tmp_path):
    problems = check_recipe(FORK / "config_distill_v00.31.yaml", allow_missing_packages=True)
    for key in ("torch_dtype: unknown key; now `dtype`", "warmup_ratio: unknown key; now `warmup_steps`"):
        assert any(key in p for p in problems), problems
    assert any("fisher_num_batches: unknown key; now `fisher_num_samples`" in p for p in problems)


def test_a_sweep_template_is_checked_with_its_placeholders_bound(world, tmp_path, capsys):
    """`check --set NAME=VALUE` binds a sweep template's placeholders, the others take a stand-in and are named; a
    bound value the recipe cannot take is a problem like any other. The entry points still refuse the template."""
    config = yaml.safe_load((REPO / "recipes/tiny/sft/config_sft.yaml").read_text())
    config.update(model_name_or_path=str(world.base_model), dataset_name=str(world.root / "update"))
    config.pop("learning_rate", None), config.pop("run_name", None)
    text = yaml.safe_dump(config) + "run_name: sweep-${RUN_NAME}\nlearning_rate: ${LEARNING_RATE}\n"
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    assert main(["check", str(path)]) == 0  # the memory plan too (it parsed '${LEARNING_RATE}' and failed)
    out = capsys.readouterr().out
    assert "${LEARNING_RATE}: a sweep template's placeholder, checked with a stand-in" in out and "${RUN_NAME}" in out
    assert (
        main(["check", str(path), "--gpu-memory", "none", "--set", "RUN_NAME=x", "--set", "LEARNING_RATE=1e-5"]) == 0
    )
    assert "placeholder" not in capsys.readouterr().out
    assert main(["check", str(path), "--set", "LEARNING_RATE=fast"]) == 1
    assert "learning_rate" in capsys.readouterr().out


def test_the_naming_rule_is_this_projects_and_migrate_keeps_the_last_of_a_repeated_key(tmp_path, monkeypatch):
    """Open R1's `OlympicCoder-7B/sft/config_v00.00.yaml` names its output without a version: not this project's
    rule to enforce on it. A fork recipe giving `assistant_only_loss` twice keeps the value YAML kept."""
    from open_r1.recipes.migrate import migrate_text

    config = yaml.safe_load((REPO / "recipes/tiny/sft/config_sft.yaml").read_text())
    config.update(model_name_or_path=str(tmp_path), dataset_name=str(tmp_path), output_dir="data/OlympicCoder-7B")
    foreign = tmp_path / "config_v00.00.yaml"
    foreign.write_text(yaml.safe_dump(config))
    assert check_recipe(foreign) == []
    monkeypatch.setattr("open_r1.recipes.check.REPO", tmp_path)  # this project's recipes/ is tmp_path/recipes now
    ours = tmp_path / "recipes/sft/config_distill_v99.99.yaml"
    ours.parent.mkdir(parents=True)
    ours.write_text(foreign.read_text())
    assert any("a versioned recipe must put ${VERSION} in it" in p for p in check_recipe(ours))
    text, changed, _ = migrate_text("assistant_only_loss: false\nlearning_rate: 1.0e-5\nassistant_only_loss: true\n")
    assert yaml.safe_load(text) == {"assistant_only_loss": True, "learning_rate": 1.0e-5}
    assert "# [migrate] assistant_only_loss: false" in text and changed[0].startswith(
        "assistant_only_loss: given again"
    )


@pytest.mark.parametrize(
    "pushes, callbacks",
    [("push_to_hub: true\nhub_model_id: org/m\n", ["push_to_hub_revision"]), ("push_to_hub: false\n", None)],
)
def test_migrate_replaces_the_forks_benchmark_callback(pushes, callbacks):
    """The fork's benchmark_callback ran lighteval inside training at each save; here a pushed checkpoint's
    `benchmarks` run as Slurm jobs (push_to_hub_revision), and a run that does not push evaluates with make evaluate."""
    from open_r1.recipes.migrate import migrate_text

    text, changed, _ = migrate_text(f"callbacks:\n- benchmark_callback\n{pushes}benchmarks:\n- math_500\n")
    assert yaml.safe_load(text).get("callbacks") == callbacks
    assert any(line.startswith("callbacks: benchmark_callback removed") for line in changed)
