"""Compute the Fisher with each of 2 gloo ranks holding half the batches; rank 0 saves it (run under torchrun).

Batches are built without a Trainer (no accelerate state inside this hand-made process group), with the labels
`test_grpo_fisher_data_masks_like_sft` shows equal to SFT's.
"""

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from datasets import load_from_disk
from transformers import AutoModelForCausalLM, AutoTokenizer

from open_r1.continual.ewc import assistant_labels, collate_right_padded
from open_r1.continual.fisher import compute_fisher


if __name__ == "__main__":
    world_dir, out = Path(sys.argv[1]), sys.argv[2]
    dist.init_process_group("gloo")
    tokenizer = AutoTokenizer.from_pretrained(world_dir / "base_model")
    rows = [
        assistant_labels(r, tokenizer) for r in load_from_disk(str(world_dir / "retain"))["train"].select(range(12))
    ]
    batches = [collate_right_padded(rows[i : i + 2], tokenizer.pad_token_id) for i in range(0, 12, 2)]
    model = AutoModelForCausalLM.from_pretrained(world_dir / "base_model", attn_implementation="eager")
    rank = dist.get_rank()
    fisher = compute_fisher(model, batches[rank :: dist.get_world_size()], kind="empirical")
    if rank == 0:
        torch.save(fisher, out)
    dist.barrier()
    dist.destroy_process_group()
