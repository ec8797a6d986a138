"""Run `open_r1.sft` with one extra callback that saves each rank's final weights, to check that DDP syncs them."""

import contextlib

import torch
from transformers import TrainerCallback
from trl import ModelConfig, TrlParser

from open_r1 import sft
from open_r1.configs import ScriptArguments, SFTConfig


class DumpRankWeights(TrainerCallback):
    def on_train_end(self, args, state, control, model=None, **kwargs):
        params = list(model.parameters())
        gather = contextlib.nullcontext()
        if hasattr(params[0], "ds_id"):  # ZeRO-3: gather the partitions for the comparison (a test, not training)
            import deepspeed

            gather = deepspeed.zero.GatheredParameters(params)
        with gather:
            weights = {name: p.detach().cpu().clone() for name, p in model.named_parameters()}
        torch.save(weights, f"{args.output_dir}/rank{args.process_index}_weights.pt")


if __name__ == "__main__":
    script_args, training_args, model_args = TrlParser(
        (ScriptArguments, SFTConfig, ModelConfig)
    ).parse_args_and_config()
    recipe_callbacks = sft.get_callbacks
    sft.get_callbacks = lambda *args: [*recipe_callbacks(*args), DumpRankWeights()]
    sft.main(script_args, training_args, model_args)
