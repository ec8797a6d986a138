# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The per-sample Fisher with parameters sharded by FSDP2 `fully_shard`, measured side by side in one run.

Every rank runs the same retain sequences and ends with the Fisher of its own shards, by two paths of
`compute_fisher_partitioned`: layer by layer (one sharded backward per batch, each row's gradients formed from
module inputs and output gradients) against one sharded backward per sequence (the estimator `batched` over
batches of one row, which is the per-sample Fisher read from the reduce-scattered gradient shards). Prints the time
ratio and the max relative difference over all ranks' shards. ZeRO-3 runs the same code on its partitions.

Then, on one recorded batch, the per-sample products alone: each row's gradient of every *whole* parameter with
this rank's part kept afterwards (the path before: W times the products over W ranks) against the gradient of only
the rows of each parameter this rank's partition touches (`local_row_range`): per-rank time (the slowest rank),
the largest per-row gradient formed, and the max relative difference of the two sums.

    torchrun --nproc_per_node 2 scripts/benchmarks/bench_fisher_sharded.py [--world data/testbed] [--rows 64]
                                                                          [--batch-size 16] [--device cpu|cuda]
"""

import argparse
import functools
import os
import statistics
import time
from pathlib import Path

import torch
import torch.distributed as dist
from datasets import load_from_disk
from torch.distributed.fsdp import fully_shard
from transformers import AutoModelForCausalLM, AutoTokenizer

from open_r1.continual.fisher import (
    ParameterCalls,
    _ShardedBackward,
    add_per_sample_squares,
    compute_fisher_partitioned,
    parameter_owner_names,
    right_pad,
)
from open_r1.continual.retain_data import labelled_batches
from open_r1.testbed import WorldPaths


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", default="data/testbed")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cuda: one GPU per rank (nccl).")
    args = parser.parse_args()
    world = WorldPaths(Path(args.world))
    dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    device = torch.device(args.device, int(os.environ.get("LOCAL_RANK", 0))) if args.device == "cuda" else None
    if device is not None:
        torch.cuda.set_device(device)

    model = AutoModelForCausalLM.from_pretrained(world.base_model, attn_implementation="eager").to(device or "cpu")
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    tokenizer = AutoTokenizer.from_pretrained(world.base_model)
    rows = load_from_disk(str(world.retain))["train"].select(range(args.rows))

    def fisher(batch_size, estimator):
        return compute_fisher_partitioned(
            model,
            labelled_batches(rows, tokenizer, batch_size),
            backward=lambda loss: loss.backward(),
            zero_grad=lambda: model.zero_grad(set_to_none=True),
            estimator=estimator,
        )

    paths = {"per sequence": lambda: fisher(1, "batched"), "per layer": lambda: fisher(args.batch_size, "per_sample")}
    times, results = {name: [] for name in paths}, {}
    for _ in range(args.repeats):
        for name, run in paths.items():  # alternating, so that both see the same machine
            dist.barrier()
            if device is not None:
                torch.cuda.synchronize()
            start = time.perf_counter()
            results[name] = run()
            if device is not None:
                torch.cuda.synchronize()
            dist.barrier()
            times[name].append(time.perf_counter() - start)
    reference, fast = results["per sequence"], results["per layer"]
    error = max(((fast[n] - reference[n]).abs().max() / reference[n].abs().max()).item() for n in reference)
    error = torch.tensor(error, device=device)
    dist.all_reduce(error, op=dist.ReduceOp.MAX)
    if dist.get_rank() == 0:
        per_row, per_layer = (statistics.median(times[name]) for name in paths)
        ratio = statistics.median(a / b for a, b in zip(times["per sequence"], times["per layer"]))
        print(
            f"Per-sample Fisher under FSDP2 on {dist.get_world_size()} ranks ({args.device}, threads per rank: "
            f"{torch.get_num_threads()}), {args.rows} retain sequences, median of {args.repeats}"
        )
        print(f"  one sharded backward per sequence        {per_row:8.3f} s")
        print(
            f"  layer by layer, batches of {args.batch_size:<3d}          {per_layer:8.3f} s   "
            f"speed-up {ratio:5.2f}x   "
            f"max relative difference {error.item():.1e}"
        )
    products(model, rows, tokenizer, args, device)
    dist.destroy_process_group()


def products(model, rows, tokenizer, args, device):
    """The per-sample products of one recorded batch: whole parameters then the local part, against local rows."""
    strategy = _ShardedBackward(
        model, lambda loss: loss.backward(), lambda: model.zero_grad(set_to_none=True), "token"
    )
    owners = parameter_owner_names(model)
    ids, labels = (
        t.to(strategy.device) for t in right_pad(next(iter(labelled_batches(rows, tokenizer, args.batch_size))))
    )
    model.eval()
    with ParameterCalls(owners) as recorded:
        scale = strategy.backward_recorded(ids, labels)
    matrices = [call for call in recorded.calls if type(call[0]) in (torch.nn.Linear, torch.nn.Embedding)]
    largest = {}

    def run(calls, local_rows):
        sums = strategy.zeros()

        def local_part(name, per_row, first_row=0):
            key = local_rows is not None
            largest[key] = max(largest.get(key, 0), per_row[0].numel())
            return strategy.local_part(name, per_row, first_row)

        with torch.no_grad():
            add_per_sample_squares(sums, calls, owners, None, scale, local_part, local_rows)
        return sums

    def slowest_rank(path) -> tuple[float, dict]:
        dist.barrier()
        start = time.perf_counter()
        result = path()
        if device is not None:
            torch.cuda.synchronize()
        elapsed = torch.tensor(time.perf_counter() - start, device=device)
        dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)  # a step waits for the slowest rank
        return elapsed.item(), result

    print_rank0 = print if dist.get_rank() == 0 else (lambda *a: None)
    print_rank0(
        f"Per-sample products of one batch of {ids.shape[0]}, per rank (the slowest), median of {args.repeats}"
    )
    for label, calls in (("all modules", recorded.calls), ("Linear and Embedding modules alone", matrices)):
        times, results = {False: [], True: []}, {}
        for _ in range(args.repeats + 2):  # the first two: warm-up
            for local in (False, True):  # alternating, so that both see the same machine
                local_rows = strategy.local_rows if local else None
                elapsed, results[local] = slowest_rank(functools.partial(run, calls, local_rows))
                times[local].append(elapsed)
        whole, kept = results[False], results[True]
        error = max(((kept[n] - whole[n]).abs().max() / whole[n].abs().max().clamp(min=1e-30)).item() for n in whole)
        error = torch.tensor(error, device=device)
        dist.all_reduce(error, op=dist.ReduceOp.MAX)
        before, after = (statistics.median(times[local][2:]) for local in (False, True))
        ratio = statistics.median(a / b for a, b in zip(times[False][2:], times[True][2:]))
        print_rank0(f"  {label}:")
        print_rank0(
            f"    every row of each whole parameter, local part kept  {before * 1e3:8.1f} ms   "
            f"largest per-row gradient {largest[False]:,} elements"
        )
        print_rank0(
            f"    only the rows the rank's partition touches        {after * 1e3:8.1f} ms   "
            f"largest per-row gradient {largest[True]:,} elements   {ratio:4.2f}x less time   "
            f"max relative difference {error.item():.1e}"
        )


if __name__ == "__main__":
    main()
