"""Compute the Fisher with each of 2 gloo ranks holding half the batches; rank 0 saves it (run under torchrun)."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from tiny_batches import load_model, make_batches  # a sibling: torchrun puts this folder on the path

from open_r1.continual.fisher import compute_fisher


if __name__ == "__main__":
    world_dir, out = Path(sys.argv[1]), sys.argv[2]
    dist.init_process_group("gloo")
    batches = make_batches(world_dir, "retain", n_rows=12, batch_size=2)
    model = load_model(world_dir)
    rank = dist.get_rank()
    fisher = compute_fisher(model, batches[rank :: dist.get_world_size()], kind="empirical")
    if rank == 0:
        torch.save(fisher, out)
    dist.barrier()
    dist.destroy_process_group()
