import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO


SCRIPTS = sorted((REPO / "scripts/slurm").glob("*.slurm"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_slurm_scripts_parse(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


def _fake_cluster(tmp_path: Path, nodes: str) -> dict:
    """`scontrol` lists the nodes, `srun` records its arguments instead of running anything."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text('#!/bin/bash\ntr "," "\\n" <<< "$3"\n')
    (bin_dir / "srun").write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >> {tmp_path}/srun.log\n')
    for tool in ("scontrol", "srun"):
        (bin_dir / tool).chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO / "src"),
        "SLURM_JOB_NODELIST": nodes,
        "SLURM_JOB_ID": "42",
        "RECIPE_CHECK_ARGS": "--allow-missing-packages",  # vllm and liger are GPU packages: not here
    }


def _workdir(tmp_path: Path, recipe_text: str, task: str) -> Path:
    work = tmp_path / "work"
    recipe = work / "recipes/org/model" / task / "config_test_v01.02.yaml"
    recipe.parent.mkdir(parents=True)
    recipe.write_text(recipe_text)
    shutil.copytree(REPO / "recipes/accelerate_configs", work / "recipes/accelerate_configs")
    return work


def _run(work, env, task, accelerator="zero3", args="--seed 7"):
    return subprocess.run(
        [
            "bash",
            str(REPO / "scripts/slurm/train.slurm"),
            "--model",
            "org/model",
            "--task",
            task,
            "--config",
            "test_v01.02",
            "--accelerator",
            accelerator,
            "--args",
            args,
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )


def test_sft_job_renders_version_checks_the_recipe_and_launches_on_all_nodes(tmp_path):
    recipe = (REPO / "recipes/meta-llama/Llama-3.1-8B-Instruct/sft/config_distill_v00.06.yaml").read_text()
    env = _fake_cluster(tmp_path, "node1,node2")
    work = _workdir(tmp_path, recipe, "sft")
    result = _run(work, env, "sft")
    assert result.returncode == 0, result.stderr
    rendered = (work / "logs/config_sft_test_v01.02_42.yaml").read_text()
    assert "data/Llama-3.1-8B-Instruct_OpenR1-Math_v01.02" in rendered and "${VERSION}" not in rendered
    (launch,) = (tmp_path / "srun.log").read_text().splitlines()
    assert launch.startswith("--nodes=2 --ntasks=2 --nodelist=node1,node2 bash -c accelerate launch")
    for part in (
        "--config_file recipes/accelerate_configs/zero3.yaml",
        "--gradient_accumulation_steps 2",
        "--num_machines 2",
        "--num_processes 16",
        "--main_process_ip node1",
        "src/open_r1/sft.py --config logs/config_sft_test_v01.02_42.yaml --seed 7",
    ):
        assert part in launch, part


def test_recipe_problems_stop_the_job_before_launch(tmp_path):
    recipe = (REPO / "recipes/meta-llama/Llama-3.1-8B-Instruct/sft/config_distill_v00.13.yaml").read_text()
    env = _fake_cluster(tmp_path, "node1")
    result = _run(_workdir(tmp_path, recipe, "sft"), env, "sft", accelerator="zero3")
    assert result.returncode != 0 and "use_trust_region: trust_region is not supported under ZeRO-3" in result.stdout
    assert not (tmp_path / "srun.log").exists()


def test_a_recipe_that_does_not_fit_the_gpus_stops_the_job_before_launch(tmp_path):
    """EWC's Fisher estimation does not fit 80 GB under ZeRO-2 (the weights whole on each GPU): the job stops with
    the planner's table before any GPU time is spent."""
    recipe = (REPO / "recipes/meta-llama/Llama-3.1-8B-Instruct/sft/config_distill_v00.06.yaml").read_text()
    env = _fake_cluster(tmp_path, "node1")
    result = _run(_workdir(tmp_path, recipe, "sft"), env, "sft", accelerator="zero2")
    assert result.returncode != 0 and "memory: does not fit" in result.stdout, result.stdout[-3000:]
    assert "| **peak** | **Fisher estimation** |" in result.stdout
    assert not (tmp_path / "srun.log").exists()


def test_grpo_with_a_vllm_server_gets_the_last_node(tmp_path):
    recipe = (REPO / "recipes/meta-llama/Llama-3.1-8B-Instruct/grpo/config_grpo_v00.00.yaml").read_text()
    recipe = recipe.replace("vllm_mode: colocate", "vllm_mode: server")
    env = _fake_cluster(tmp_path, "node1,node2,node3")
    result = _run(_workdir(tmp_path, recipe, "grpo"), env, "grpo")
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "srun.log").read_text().splitlines()
    server = next(line for line in lines if "vllm-serve" in line)
    launch = next(line for line in lines if "accelerate launch" in line)
    assert server.startswith(
        "--nodes=1 --ntasks=1 --nodelist=node3 trl vllm-serve --model meta-llama/Llama-3.1-8B-Instruct"
    )
    assert "--nodelist=node1,node2" in launch and "--num_processes 16" in launch
    assert "--vllm_server_host node3" in launch


def test_evaluate_job_runs_the_evaluation_entry_point(tmp_path):
    env = _fake_cluster(tmp_path, "node1")
    eval_python = tmp_path / "python"
    eval_python.write_text("#!/bin/bash\n")
    eval_python.chmod(0o755)
    command = ["bash", str(REPO / "scripts/slurm/evaluate.slurm"), "--model", "org/model", "--revision", "v1"]
    result = subprocess.run(
        [*command, "--task", "math_500", "--parallel", "tensor", "--num-gpus", "4", "--args", "--num-samples 4"],
        cwd=tmp_path,
        env={**env, "EVAL_PYTHON": str(eval_python)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "srun.log").read_text().splitlines() == [
        f"--nodes=1 --ntasks=1 {eval_python} -m open_r1.eval.run run --model org/model --revision v1 "
        "--task math_500 --parallel tensor --num-gpus 4 --num-samples 4"
    ]
    bad = subprocess.run([*command, "--task", "math_500", "--parallel", "pipeline"], cwd=tmp_path, env=env)
    assert bad.returncode == 1
    # the fork's positional form: TASK_NAME TASKS MODEL_ID MODEL_REVISION TENSOR_PARALLEL
    positional = ["bash", str(REPO / "scripts/slurm/evaluate.slurm"), "math_500", "custom|math_500|0|0", "org/model"]
    fork = subprocess.run(
        [*positional, "v1", "True"], cwd=tmp_path, env={**env, "EVAL_PYTHON": str(eval_python)}, capture_output=True
    )
    assert fork.returncode == 0, fork.stderr
    assert (
        (tmp_path / "srun.log")
        .read_text()
        .splitlines()[-1]
        .startswith(
            f"--nodes=1 --ntasks=1 {eval_python} -m open_r1.eval.run run --model org/model --revision v1 "
            "--task math_500 --parallel tensor"
        )
    )


def test_run_benchmarks_submits_one_evaluation_job_per_task(tmp_path):
    env = _fake_cluster(tmp_path, "node1")
    sbatch = tmp_path / "bin" / "sbatch"
    sbatch.write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >> {tmp_path}/sbatch.log\n')
    sbatch.chmod(0o755)
    script = [sys.executable, str(REPO / "scripts/run_benchmarks.py"), "--model_id", "org/model"]
    subprocess.run([*script, "--model_revision", "v2", "--benchmarks", "safety", "gpqa:diamond"], env=env, check=True)
    jobs = (tmp_path / "sbatch.log").read_text().splitlines()
    assert [job.split("--task ")[1].split()[0] for job in jobs] == [
        "safety:harmbench",
        "safety:strongreject",
        "safety:xstest",
        "gpqa:diamond",
    ]
    assert jobs[0] == (
        "--job-name=eval_safety_harmbench_org_model --gres=gpu:8 scripts/slurm/evaluate.slurm --model org/model "
        "--revision v2 --task safety:harmbench --num-gpus 8 --parallel data"
    )
    bad = subprocess.run([*script, "--benchmarks", "mmlu"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown task" in bad.stderr


def test_run_benchmarks_takes_open_r1s_spellings_and_names(tmp_path):
    """Open R1's parser (HfArgumentParser) takes `--model-id` as well as `--model_id`; its benchmark `gpqa` is GPQA
    Diamond, the name the seed's recipes use too."""
    env = _fake_cluster(tmp_path, "node1")
    sbatch = tmp_path / "bin" / "sbatch"
    sbatch.write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >> {tmp_path}/sbatch.log\n')
    sbatch.chmod(0o755)
    script = [sys.executable, str(REPO / "scripts/run_benchmarks.py"), "--model-id", "org/model"]
    subprocess.run([*script, "--model-revision", "v2", "--benchmarks", "gpqa"], env=env, check=True)
    (job,) = (tmp_path / "sbatch.log").read_text().splitlines()
    assert "--model org/model --revision v2 --task gpqa:diamond " in job
    from open_r1.recipes.check import _check_benchmarks

    _check_benchmarks(["gpqa", "math_500"])  # what recipes check says of a recipe's `benchmarks`


@pytest.mark.parametrize("override", ["--gradient_accumulation_steps=8", "--gradient_accumulation_steps 8"])
def test_args_reach_the_training_command_and_accelerate(tmp_path, override):
    """`--args` overrides reach the training script, and a gradient-accumulation override also reaches accelerate's
    own flag (it read the recipe's value whatever `--args` said)."""
    recipe = (REPO / "recipes/meta-llama/Llama-3.1-8B-Instruct/sft/config_distill_v00.06.yaml").read_text()
    env = _fake_cluster(tmp_path, "node1")
    result = _run(_workdir(tmp_path, recipe, "sft"), env, "sft", args=f"--learning_rate 2e-6 {override}")
    assert result.returncode == 0, result.stderr
    (launch,) = (tmp_path / "srun.log").read_text().splitlines()
    assert "--gradient_accumulation_steps 8 " in launch and "--gradient_accumulation_steps 4" not in launch
    assert launch.endswith(f"--config logs/config_sft_test_v01.02_42.yaml --learning_rate 2e-6 {override}")


def test_any_recipe_folder_under_the_model_runs_its_entry_point(tmp_path):
    """Fork users keep recipes in `sft_science`, `sft_code`, `cl_experiments`, ...: any folder works; a folder named
    like `grpo*` runs grpo.py, every other sft.py."""
    recipe = (REPO / "recipes/meta-llama/Llama-3.1-8B-Instruct/sft/config_distill_v00.06.yaml").read_text()
    env = _fake_cluster(tmp_path, "node1")
    result = _run(_workdir(tmp_path, recipe, "sft_science"), env, "sft_science")
    assert result.returncode == 0, result.stderr
    (launch,) = (tmp_path / "srun.log").read_text().splitlines()
    assert "src/open_r1/sft.py --config logs/config_sft_science_test_v01.02_42.yaml" in launch


def test_each_pushed_checkpoint_submits_its_benchmarks(tmp_path, monkeypatch):
    """`callbacks: [push_to_hub_revision]` with `benchmarks:` pushes each checkpoint and submits one evaluation job
    per benchmark task for its branch (the Hub calls replaced; `sbatch` a stub)."""
    from types import SimpleNamespace

    from open_r1.callbacks import PushToHubRevisionCallback

    env = _fake_cluster(tmp_path, "node1")
    sbatch = tmp_path / "bin" / "sbatch"
    sbatch.write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >> {tmp_path}/sbatch.log\n')
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setattr("huggingface_hub.create_branch", lambda **kwargs: None)
    monkeypatch.setattr("huggingface_hub.upload_folder", lambda **kwargs: None)
    args = SimpleNamespace(
        output_dir=str(tmp_path), hub_model_id="org/model", hub_model_revision="main", benchmarks=["math_500"]
    )
    PushToHubRevisionCallback(None).on_save(args, SimpleNamespace(is_world_process_zero=True, global_step=5), None)
    (job,) = (tmp_path / "sbatch.log").read_text().splitlines()
    assert "--model org/model --revision main-step-000000005 --task math_500" in job
