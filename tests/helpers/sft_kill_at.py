"""Run `open_r1.sft`, killed (SIGKILL) at one stage of the checkpoint save of one step when OPEN_R1_KILL_AT is
`<stage>@<step>`. Stages, in the order a checkpoint is written:
- `model`: its model is written, nothing else (the continual state is not);
- `state`: the continual state is written, not the optimizer, scheduler and RNG states;
- `optimizer`: those are written, not `trainer_state.json`;
- `trainer_state`: `trainer_state.json` is written, the rotation of old checkpoints not run;
- `rotation`: the rotation deletes one file of an old checkpoint, then the process dies;
- `rng`: on rank 1 of several, the RNG file is half written, 3 s pass (rank 0 long done with its own), then rank 1
  dies: a slow file system and a pre-emption in the window between the RNG files and `trainer_state.json`.
"""

import os
import shutil
import signal
import time

import torch
import transformers
from trl import ModelConfig, TrlParser

import open_r1.continual.base as continual_base
import open_r1.utils.checkpoints as checkpoints
from open_r1 import sft
from open_r1.configs import ScriptArguments, SFTConfig


def kill():
    os.kill(os.getpid(), signal.SIGKILL)


def arm(stage: str, step: int) -> None:
    def at_step(trainer) -> bool:
        return trainer.state.global_step == step

    if stage == "model":
        original = continual_base.ContinualTrainerMixin._save_checkpoint_state

        def save_state(self, checkpoint):
            kill() if at_step(self) else original(self, checkpoint)

        continual_base.ContinualTrainerMixin._save_checkpoint_state = save_state
    elif stage == "state":
        original = transformers.Trainer._save_optimizer_and_scheduler

        def save_optimizer(self, output_dir):
            kill() if at_step(self) else original(self, output_dir)

        transformers.Trainer._save_optimizer_and_scheduler = save_optimizer
    elif stage == "optimizer":
        original = transformers.TrainerState.save_to_json

        def save_to_json(self, json_path):
            kill() if f"checkpoint-{step}" in json_path else original(self, json_path)

        transformers.TrainerState.save_to_json = save_to_json
    elif stage == "trainer_state":
        original = continual_base.rotate_complete_checkpoints

        def rotate(output_dir, limit, keep=None, **requirements):
            if os.path.isdir(os.path.join(output_dir, f"checkpoint-{step}")):
                kill()
            original(output_dir, limit, keep, **requirements)

        continual_base.rotate_complete_checkpoints = rotate
    elif stage == "rotation":

        def half_delete(path, *args, **kwargs):
            victim = sorted(os.listdir(path))[0]
            os.remove(os.path.join(path, victim))
            kill()

        checkpoints.shutil = type("shutil", (), {"rmtree": staticmethod(half_delete), "copy": shutil.copy})
    elif stage == "rng":
        original = torch.save

        def save(obj, f, *args, **kwargs):
            original(obj, f, *args, **kwargs)
            if isinstance(f, str) and os.path.basename(f).startswith("rng_state") and f"checkpoint-{step}" in f:
                if int(os.environ.get("RANK", "0")) == 1:
                    with open(f, "r+b") as handle:
                        handle.truncate(os.path.getsize(f) // 2)
                    time.sleep(3)
                    kill()

        torch.save = save
    else:
        raise ValueError(f"unknown stage {stage!r}")


if __name__ == "__main__":
    if os.environ.get("OPEN_R1_KILL_AT"):
        stage, step = os.environ["OPEN_R1_KILL_AT"].split("@")
        arm(stage, int(step))
    args = TrlParser((ScriptArguments, SFTConfig, ModelConfig)).parse_args_and_config()
    sft.main(*args)
