# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Fisher and EWC costs on the testbed's tiny model, measured side by side in one run.

1. Per-sample Fisher: the plain loop (one autograd backward per retain sequence) against `compute_fisher`'s
   per-layer path (one batched backward, each sequence's gradients formed layer by layer) on the same sequences:
   time ratio and max relative difference. Also timed: one batched gradient over the same rows (no per-sample
   output at all), the forward + backward every per-sample method must pay at least, so loop / batched is the
   ceiling of any per-sample speed-up on this machine.
2. EWC overhead: one SFT training step with and without EWC (forward + backward, and the whole step with the AdamW
   update), the two trainers timed alternately so that both see the same machine; and the penalty alone, as EWC
   applies it (its gradient added after the backward) and as a loss term through autograd (DeepSpeed ZeRO-1/2).

    python scripts/benchmarks/bench_fisher.py [--world data/testbed] [--rows 64] [--batch-size 16] [--steps 100]
                                                [--device cpu|cuda]
"""

import argparse
import statistics
import time
from pathlib import Path

import torch
from datasets import load_from_disk
from transformers import AutoModelForCausalLM, AutoTokenizer

from open_r1.configs import SFTConfig
from open_r1.continual.ewc import add_ewc_gradient, ewc_penalty
from open_r1.continual.fisher import compute_fisher, right_pad, sequence_log_likelihood
from open_r1.testbed import WorldPaths
from open_r1.trainers import ContinualSFTTrainer


def loop_fisher(model, batches):
    fisher = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    count = 0
    for batch in batches:
        for row in range(batch["input_ids"].shape[0]):
            keep = batch["attention_mask"][row].bool()
            ids, labels = (batch[key][row, keep][None].to(model.device) for key in ("input_ids", "labels"))
            model.zero_grad()
            logits = model(input_ids=ids).logits[:, :-1]
            target = labels[:, 1:]
            log_probs = torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0)[..., None])[..., 0]
            mask = target != -100
            ((log_probs * mask).sum() / mask.sum()).backward()  # the per-token Fisher, as EWC's default
            for n, p in model.named_parameters():
                fisher[n] += p.grad.pow(2)
            count += 1
    return {n: f / count for n, f in fisher.items()}


def make_trainer(world, use_ewc, batch_size, fisher_rows, device, output_dir):
    args = SFTConfig(
        output_dir=output_dir,
        bf16=False,
        use_cpu=device == "cpu",
        gradient_checkpointing=False,
        assistant_only_loss=True,
        max_length=256,
        per_device_train_batch_size=batch_size,
        report_to="none",
        use_ewc=use_ewc,
        retain_dataset_id=str(world.retain),
        fisher_num_samples=fisher_rows,
        fisher_batch_size=batch_size,
        disable_tqdm=True,
    )
    train = load_from_disk(str(world.update))["train"].select(range(256)).select_columns(["messages"])
    model = AutoModelForCausalLM.from_pretrained(world.base_model, attn_implementation="eager")
    return ContinualSFTTrainer(
        model=model, args=args, train_dataset=train, processing_class=AutoTokenizer.from_pretrained(world.base_model)
    )


def batched_gradient(model, batches):
    """One gradient over each whole batch: the forward + backward without any per-sample output."""
    params = dict(model.named_parameters())
    for batch in batches:
        model.zero_grad()
        sequence_log_likelihood(model, params, *(t.to(model.device) for t in right_pad(batch)), "token").backward()


def synchronize():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_calls(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of each call of each callable, called in turn `repeats` times (alternating, so that all see the same
    load)."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            synchronize()
            start = time.perf_counter()
            fn()
            synchronize()
            times[name].append(time.perf_counter() - start)
    return times


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median of the ratios of calls made back to back: steadier than a ratio of medians on a noisy machine."""
    return statistics.median(a / b for a, b in zip(numerator, denominator))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", default="data/testbed")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cuda: the first GPU.")
    args = parser.parse_args()
    world = WorldPaths(Path(args.world))

    plain = make_trainer(world, False, args.batch_size, args.rows, args.device, "/tmp/bench_fisher_plain")
    ewc = make_trainer(world, True, args.batch_size, args.rows, args.device, "/tmp/bench_fisher_ewc")
    ewc.state.max_steps = args.steps
    ewc.continual_resume_checkpoint = None
    method = ewc.continual_methods[0]
    ewc.install_after_backward()  # as at the start of training: the penalty's gradient after each backward
    method.setup(ewc)  # computes the Fisher once and prepares its batches: `fisher_num_samples` rows, by length
    batches = list(method._batches(method._local_rows))
    in_data_order = list(method._batches(method._local_rows.shuffle(seed=0)))
    model = plain.model

    fisher_times = time_calls(
        {
            "loop": lambda: loop_fisher(model, batches),
            "per-layer": lambda: compute_fisher(model, batches),
            "per-layer unsorted": lambda: compute_fisher(model, in_data_order),
            "batched": lambda: batched_gradient(model, batches),
        },
        5,
    )
    fisher_times = {name: statistics.median(values) for name, values in fisher_times.items()}
    reference, fast = loop_fisher(model, batches), compute_fisher(model, batches)
    error = max(((fast[n] - reference[n]).abs().max() / reference[n].abs().max()).item() for n in reference)
    loop_time = fisher_times["loop"]
    print(
        f"Per-sample Fisher on {args.rows} retain sequences, {model.num_parameters() / 1e6:.2f}M parameters, "
        + (torch.cuda.get_device_name() if args.device == "cuda" else f"{torch.get_num_threads()} CPU threads")
        + ", median of 5"
    )
    print(f"  loop (autograd per sequence)                 {loop_time:8.3f} s")
    print(
        f"  per-layer path, batches of {args.batch_size} by length (EWC) {fisher_times['per-layer']:8.3f} s   "
        f"speed-up {loop_time / fisher_times['per-layer']:5.2f}x   max relative difference {error:.1e}"
    )
    print(
        f"  per-layer path, batches of {args.batch_size} in data order   "
        f"{fisher_times['per-layer unsorted']:8.3f} s   "
        f"speed-up {loop_time / fisher_times['per-layer unsorted']:5.2f}x"
    )
    print(
        f"  one batched gradient, no per-sample output {fisher_times['batched']:8.3f} s   "
        f"ceiling of any per-sample speed-up here {loop_time / fisher_times['batched']:5.2f}x"
    )

    batch = plain._prepare_inputs(next(iter(plain.get_train_dataloader())))
    step_fns = {}
    for name, trainer in (("plain", plain), ("ewc", ewc)):
        trainer.model.train()
        trainer.current_gradient_accumulation_steps = 1
        trainer.create_optimizer()

        def backward_only(t=trainer):
            t.training_step(t.model, dict(batch))
            t.model.zero_grad(set_to_none=True)

        def full_step(t=trainer):  # what one optimizer step of training costs: forward, backward, AdamW update
            t.training_step(t.model, dict(batch))
            t.optimizer.step()
            t.optimizer.zero_grad(set_to_none=True)

        step_fns[f"{name} backward"], step_fns[f"{name} step"] = backward_only, full_step

    named = list(ewc.model.named_parameters())
    for _, param in named:
        param.grad = torch.zeros_like(param)

    def penalty_in_loss():
        ewc_penalty(ewc.model, method.fisher, method.anchors, ewc_lambda).backward()

    ewc_lambda = method.config.ewc_lambda
    step_fns["penalty gradient"] = lambda: add_ewc_gradient(named, method.fisher, method.anchors, ewc_lambda)
    step_fns["penalty in loss"] = penalty_in_loss
    step_times = time_calls(step_fns, args.steps)
    median = {name: statistics.median(values) * 1e3 for name, values in step_times.items()}
    print(f"Training step, batch {args.batch_size}, median of {args.steps}, plain and EWC steps alternating")
    for kind, label in (("backward", "forward + backward"), ("step", "forward + backward + AdamW step")):
        overhead = median_ratio(step_times[f"ewc {kind}"], step_times[f"plain {kind}"]) - 1
        print(
            f"  {label:32s} plain {median[f'plain {kind}']:7.2f} ms   with EWC {median[f'ewc {kind}']:7.2f} ms   "
            f"EWC overhead {100 * overhead:+5.1f}%"
        )
    for key, label in (
        ("penalty gradient", "added after the backward (EWC)"),
        ("penalty in loss", "as a loss term (ZeRO-1/2)"),
    ):
        share = median_ratio(step_times[key], step_times["plain step"])
        print(f"  penalty alone, {label:32s} {median[key]:6.2f} ms   = {100 * share:4.1f}% of a plain step")


if __name__ == "__main__":
    main()
