# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Fisher and EWC costs on the testbed's tiny model, measured side by side in one run.

1. Per-sample Fisher: the plain loop (one autograd backward per retain sequence) against `compute_fisher`'s
   vmap path on the same sequences: time ratio and max relative difference.
2. EWC overhead: one SFT training step with and without the EWC penalty, as forward + backward alone and as the
   whole optimizer step (plus the AdamW update).

    python scripts/benchmarks/bench_fisher.py [--world data/testbed] [--rows 64] [--batch-size 16] [--steps 20]
"""

import argparse
import statistics
import time
from pathlib import Path

import torch
from datasets import load_from_disk
from transformers import AutoModelForCausalLM, AutoTokenizer

from open_r1.configs import SFTConfig
from open_r1.continual.fisher import compute_fisher
from open_r1.testbed import WorldPaths
from open_r1.trainers import ContinualSFTTrainer


def loop_fisher(model, batches):
    fisher = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    count = 0
    for batch in batches:
        for row in range(batch["input_ids"].shape[0]):
            keep = batch["attention_mask"][row].bool()
            ids, labels = batch["input_ids"][row, keep][None], batch["labels"][row, keep][None]
            model.zero_grad()
            logits = model(input_ids=ids).logits[:, :-1]
            target = labels[:, 1:]
            log_probs = torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0)[..., None])[..., 0]
            (log_probs * (target != -100)).sum().backward()
            for n, p in model.named_parameters():
                fisher[n] += p.grad.pow(2)
            count += 1
    return {n: f / count for n, f in fisher.items()}


def make_trainer(world, use_ewc, batch_size, output_dir):
    args = SFTConfig(
        output_dir=output_dir,
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        assistant_only_loss=True,
        max_length=256,
        per_device_train_batch_size=batch_size,
        report_to="none",
        use_ewc=use_ewc,
        retain_dataset_id=str(world.retain),
        fisher_num_samples=64,
        fisher_batch_size=batch_size,
        disable_tqdm=True,
    )
    train = load_from_disk(str(world.update))["train"].select(range(256)).select_columns(["messages"])
    model = AutoModelForCausalLM.from_pretrained(world.base_model, attn_implementation="eager")
    return ContinualSFTTrainer(
        model=model, args=args, train_dataset=train, processing_class=AutoTokenizer.from_pretrained(world.base_model)
    )


def time_calls(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", default="data/testbed")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    world = WorldPaths(Path(args.world))

    plain = make_trainer(world, False, args.batch_size, "/tmp/bench_fisher_plain")
    ewc = make_trainer(world, True, args.batch_size, "/tmp/bench_fisher_ewc")
    retain = plain._prepare_dataset(
        load_from_disk(str(world.retain))["train"].select(range(args.rows)),
        plain.processing_class,
        plain.args,
        False,
        None,
        "bench",
    )
    rows = [retain[i] for i in range(args.rows)]
    batches = [plain.data_collator(rows[i : i + args.batch_size]) for i in range(0, args.rows, args.batch_size)]
    model = plain.model

    loop_time = time_calls(lambda: loop_fisher(model, batches), 3)
    fast_time = time_calls(lambda: compute_fisher(model, batches), 3)
    reference, fast = loop_fisher(model, batches), compute_fisher(model, batches)
    error = max(((fast[n] - reference[n]).abs().max() / reference[n].abs().max()).item() for n in reference)
    print(
        f"Per-sample Fisher on {args.rows} retain sequences, {model.num_parameters() / 1e6:.2f}M parameters, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"  loop (autograd per sequence) {loop_time:8.3f} s")
    print(
        f"  vmap path (batch {args.batch_size:3d})       {fast_time:8.3f} s   speed-up {loop_time / fast_time:5.2f}x   "
        f"max relative difference {error:.1e}"
    )

    ewc.state.max_steps = args.steps
    ewc._continual_resume_checkpoint = None
    ewc.continual_methods[0].setup(ewc)
    batch = plain._prepare_inputs(next(iter(plain.get_train_dataloader())))
    step_times = {}
    for name, trainer in (("plain SFT", plain), ("SFT + EWC", ewc)):
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

        step_times[name] = (time_calls(backward_only, args.steps), time_calls(full_step, args.steps))
    print(f"Training step, batch {args.batch_size}, median of {args.steps}")
    for i, label in enumerate(("forward + backward", "forward + backward + AdamW step")):
        plain_time, ewc_time = step_times["plain SFT"][i], step_times["SFT + EWC"][i]
        print(
            f"  {label:32s} plain {plain_time * 1e3:7.2f} ms   with EWC {ewc_time * 1e3:7.2f} ms   "
            f"EWC overhead {100 * (ewc_time / plain_time - 1):+5.1f}%"
        )


if __name__ == "__main__":
    main()
