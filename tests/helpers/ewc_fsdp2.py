"""EWC's partitioned building blocks under FSDP2 `fully_shard` on 2 gloo ranks (run under torchrun).

Every rank computes the Fisher of its shards on the same retain rows, anchors its shards, then takes SGD steps on
its half of each update batch with `add_ewc_gradient` applied to its gradient shards after the backward. Each rank
saves its local Fisher; rank 0 saves the final full weights.
"""

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard

from open_r1.continual.ewc import add_ewc_gradient
from open_r1.continual.fisher import completion_log_probs, compute_fisher_partitioned
from open_r1.continual.sharding import local_fp32_param, trainable_named_parameters


# lambda * lr * max(F) stays ~0.01 (per-token Fisher, max ~3e-3): a stable step, so float noise between the runs is
# not amplified.
EWC_LAMBDA, LR, STEPS = 60.0, 0.05, 3


def update_loss(model, batch, rows_in_global_batch):
    token_log_probs, mask = completion_log_probs(model(input_ids=batch[0]).logits, batch[1])
    return -(token_log_probs * mask).sum() / rows_in_global_batch


if __name__ == "__main__":
    from tiny_batches import load_model, make_batches  # a sibling: torchrun puts this folder on the path

    world_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()

    model = load_model(world_dir)
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    named = trainable_named_parameters(model)
    fisher = compute_fisher_partitioned(
        model,
        make_batches(world_dir, "retain", n_rows=12, batch_size=2),
        backward=lambda loss: loss.backward(),
        zero_grad=lambda: model.zero_grad(set_to_none=True),
    )
    torch.save(fisher, out / f"fisher_rank{rank}.pt")
    anchors = {name: local_fp32_param(param).clone() for name, param in named}
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    for batch in make_batches(world_dir, "update", n_rows=8 * STEPS, batch_size=8):
        ids, labels = batch["input_ids"][rank::world_size], batch["labels"][rank::world_size]
        # FSDP averages the ranks' gradients: each rank divides by its own row count to get the global mean.
        update_loss(model, (ids, labels), ids.shape[0]).backward()
        add_ewc_gradient(named, fisher, anchors, EWC_LAMBDA)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    weights = {name: param.full_tensor().detach().clone() for name, param in model.named_parameters()}
    if rank == 0:
        torch.save(weights, out / "weights.pt")
    dist.barrier()
    dist.destroy_process_group()
