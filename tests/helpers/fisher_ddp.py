"""Compute the Fisher with each of 2 gloo ranks holding half the batches; rank 0 saves it (run under torchrun)."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from open_r1.continual.fisher import compute_fisher
from open_r1.testbed import WorldPaths
from tests.test_fisher import _batches, _model


if __name__ == "__main__":
    world_dir, out = Path(sys.argv[1]), sys.argv[2]
    dist.init_process_group("gloo")
    world = WorldPaths(world_dir)
    batches = _batches(world, n_rows=12, batch_size=2)
    rank = dist.get_rank()
    fisher = compute_fisher(_model(world), batches[rank :: dist.get_world_size()], kind="empirical")
    if rank == 0:
        torch.save(fisher, out)
    dist.destroy_process_group()
