import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]


def _sandbox_problem() -> str | None:
    from open_r1.code.sandbox import isolation_problem

    return isolation_problem()


# The local code sandbox's tests skip where bubblewrap cannot run, unless the sandbox must be there
# (OPEN_R1_REQUIRE_SANDBOX=1, as .ci/run sets): then they fail, so a broken install cannot pass as skips.
needs_sandbox = pytest.mark.skipif(
    os.environ.get("OPEN_R1_REQUIRE_SANDBOX") != "1" and _sandbox_problem() is not None,
    reason=f"no local code sandbox here: {_sandbox_problem()}",
)
# Every test runs offline: the testbed world is the only model and data there is.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The small world is cached here between runs; the build reuses it only when its config is unchanged.
TEST_WORLD_DIR = Path(os.environ.get("OPEN_R1_TEST_WORLD", REPO / "data" / "testbed-small"))


@pytest.fixture(scope="session")
def world():
    from open_r1.testbed import WorldConfig, build_world

    return build_world(TEST_WORLD_DIR, WorldConfig.preset("small"))


def run_cli(args: list[str], timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command from the repo root with the test environment; fail with its output if it fails. A two-process
    run that aborted only as it exited, after every rank finished (`aborted_after_finishing`: seen under DeepSpeed
    ZeRO-2 and ZeRO-3 on CPU), counts as run; the caller checks its outputs as usual."""
    from open_r1.utils.run_utils import aborted_after_finishing

    full_env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
    result = subprocess.run(args, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0 and not aborted_after_finishing(result.stderr, 2):
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
        )
    return result


def aborted_after_its_work(result: subprocess.CompletedProcess, *written: Path) -> bool:
    """A two-process run that aborted only as it exited, after every rank saved (`aborted_after_finishing`): its
    outputs are then checked as usual. Any other failure, or a missing output, fails."""
    from open_r1.utils.run_utils import aborted_after_finishing

    return aborted_after_finishing(result.stderr, 2) and all(p.exists() for p in written)


def free_port() -> int:
    """A port no process listens on now, so the gloo rendezvous cannot collide with another run."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(script: str, *args: str) -> subprocess.CompletedProcess:
    """`script` under torchrun on 2 local processes."""
    command = ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port())]
    return run_cli([sys.executable, *command, script, *args])


def world_args(world, output_dir, *extra: str, retain: bool = False, model=None) -> list[str]:
    """Command-line overrides that point a tiny recipe at the test world and `output_dir` (None: set later;
    `retain`: the world's retain set too; `model`: another starting model), followed by `extra`."""
    args = ["--model_name_or_path", str(model or world.base_model), "--dataset_name", str(world.update)]
    if output_dir is not None:
        args += ["--output_dir", str(output_dir)]
    if retain:
        args += ["--retain_dataset_id", str(world.retain)]
    return args + list(extra)


def accelerate_cmd(*launch_args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        *launch_args,
    ]


def cpu_sft_args(output_dir, **overrides):
    """A CPU `SFTConfig` for in-process trainer tests; `overrides` set any field."""
    from open_r1.configs import SFTConfig

    base = dict(
        output_dir=str(output_dir),
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        assistant_only_loss=True,
        max_length=128,
        per_device_train_batch_size=8,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
    )
    return SFTConfig(**{**base, **overrides})


def tiny_trainer(world, args, n_rows=64, trainer_cls=None, **model_kwargs):
    """A continual SFT trainer on the first `n_rows` update rows of the world, from its base model."""
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from open_r1.trainers import ContinualSFTTrainer

    train = load_from_disk(str(world.update))["train"].select(range(n_rows)).select_columns(["messages"])
    model = AutoModelForCausalLM.from_pretrained(world.base_model, **model_kwargs)
    return (trainer_cls or ContinualSFTTrainer)(
        model=model, args=args, train_dataset=train, processing_class=AutoTokenizer.from_pretrained(world.base_model)
    )
