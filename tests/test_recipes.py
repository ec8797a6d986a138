import shutil
import subprocess

import pytest
import yaml

from open_r1.recipes import check_recipe, main, recipe_files

from .conftest import REPO


def test_every_recipe_in_the_repo_passes(capsys):
    # `data/` holds what other commands write (the testbed world, the demo's SFT model).
    assert main(["check", str(REPO / "recipes"), "--allow-missing", "data/"]) == 0
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
        ({"ewc_lamda": 5.0}, "unknown key(s): ewc_lamda"),
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
        f"({REPO / 'recipes/accelerate_configs/zero3.yaml'}); use ZeRO-1/2 or DDP"
    ]
    assert check_recipe(path, accelerate_config=REPO / "recipes/accelerate_configs/zero2.yaml") == []
    ewc = _recipe(tmp_path, "config_ewc.yaml", use_ewc=True, retain_dataset_id=str(tmp_path))
    for sharded in ("zero3", "fsdp"):  # EWC keeps its state on the local partitions
        assert check_recipe(ewc, accelerate_config=REPO / f"recipes/accelerate_configs/{sharded}.yaml") == []


def test_versioned_recipes_need_version_in_output_dir(tmp_path):
    path = _recipe(tmp_path, name="config_distill_v01.02.yaml", output_dir="data/fixed")
    assert check_recipe(path) == [f"{path}: output_dir: a versioned recipe must put ${{VERSION}} in it"]


@pytest.mark.skipif(shutil.which("envsubst") is None, reason="envsubst (gettext-base) not installed")
def test_envsubst_renders_a_versioned_recipe(tmp_path):
    recipe = REPO / "recipes/meta-llama/Llama-3.1-8B-Instruct/sft/config_distill_v00.06.yaml"
    rendered = subprocess.run(
        ["envsubst"], input=recipe.read_text(), capture_output=True, text=True, env={"VERSION": "v00.06"}, check=True
    ).stdout
    config = yaml.safe_load(rendered)
    assert config["output_dir"].endswith("_v00.06") and config["custom_optim"] == "fisher"
