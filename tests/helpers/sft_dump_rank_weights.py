"""Run `open_r1.sft` with one extra callback that saves each rank's final weights, continual-method states and log
history, to check that data-parallel ranks stay in sync; killed at a stage of a checkpoint save when OPEN_R1_KILL_AT
says so (see `sft_kill_at.py`)."""

import contextlib
import os

import torch
from transformers import TrainerCallback
from trl import ModelConfig, TrlParser

from open_r1 import sft
from open_r1.configs import ScriptArguments, SFTConfig


class DumpRankState(TrainerCallback):
    def __init__(self):
        self.trainer = None  # set once the trainer exists (callbacks are built before it)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        params = list(model.parameters())
        gather = contextlib.nullcontext()
        if hasattr(params[0], "ds_id"):  # ZeRO-3: gather the partitions for the comparison (a test, not training)
            import deepspeed

            gather = deepspeed.zero.GatheredParameters(params)
        with gather:
            weights = {name: p.detach().cpu().clone() for name, p in model.named_parameters()}
        torch.save(weights, f"{args.output_dir}/rank{args.process_index}_weights.pt")
        methods = {method.name: method.state_dict() for method in self.trainer.continual_methods}
        torch.save(
            {"methods": methods, "log_history": state.log_history},
            f"{args.output_dir}/rank{args.process_index}_state.pt",
        )


if __name__ == "__main__":
    if os.environ.get("OPEN_R1_KILL_AT"):
        from sft_kill_at import arm  # this folder is the script's own, first on the path

        stage, step = os.environ["OPEN_R1_KILL_AT"].split("@")
        arm(stage, int(step))
    script_args, training_args, model_args = TrlParser(
        (ScriptArguments, SFTConfig, ModelConfig)
    ).parse_args_and_config()
    dump = DumpRankState()
    trainer_cls = sft.ContinualSFTTrainer

    def remember(*args, **kwargs):
        # Added after the methods' callback, so that the dump sees the model as training leaves it: the EMA's
        # weights copied in, WiSE-FT's interpolation made.
        dump.trainer = trainer_cls(*args, **kwargs)
        dump.trainer.add_callback(dump)
        return dump.trainer

    sft.ContinualSFTTrainer = remember
    sft.main(script_args, training_args, model_args)
