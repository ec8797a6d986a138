# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Training throughput and peak memory of plain TRL `SFTTrainer` against this project's trainer, with no method and
with each method alone, on the testbed's tiny model. Throughput: all configurations in one process, several rounds, each
round in a new shuffled order with garbage collected between configurations, the ratio to TRL taken within each round
(paired: between processes the same run varies by up to 20% here); peak memory: one process per configuration:

    python scripts/benchmarks/bench_trainer.py [--world data/testbed] [--steps 40] [--repeats 3] [--configs ...]
    python scripts/benchmarks/bench_trainer.py --one ewc --world data/testbed --steps 40   # one run, JSON out

Throughput is the mean input tokens of a step (padding included; the same batches for every configuration) over the
median step time after the first 5 steps (warm-up; EWC's Fisher is computed before step 1 and is not in it). A step
is timed from its start to the next step's start, so every callback of the step is inside (the methods' own
`on_step_end` work, e.g. the EMA update, runs after other callbacks' step end). Peak
memory: on the CPU, the process's resident high-water mark grown since just before the trainer was built; on a GPU
(`--device cuda`), `torch.cuda.max_memory_allocated` over the same span.
"""

import argparse
import gc
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path


WARMUP_STEPS = 5
RESULT = "bench_trainer result: "
# Each configuration: the recipe keys it adds to the plain run.
CONFIGS = {
    "trl": {},
    "none": {},
    "ewc": {"use_ewc": True, "ewc_lambda": 5e4, "fisher_num_samples": 32},
    "ema": {"use_ema": True},
    "ewc+ema": {"use_ewc": True, "ewc_lambda": 5e4, "fisher_num_samples": 32, "use_ema": True},
    "replay": {"replay_ratio": 0.2},
    "trust_region": {"use_trust_region": True},
    "dft": {"loss_type": "dft"},
    "dadamw": {"custom_optim": "dadamw"},
    "agem": {"use_agem": True, "agem_retain_batch_size": 8},
    "wise_ft": {"wise_ft_alpha": 0.5},
}
QUICK_CONFIGS = ["trl", "none", "ewc", "ema", "ewc+ema"]


def run_one(name: str, world: Path, steps: int, batch: int, device: str = "cpu") -> dict:
    import torch
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    from open_r1.configs import SFTConfig
    from open_r1.memory import resident_kib

    torch.set_num_threads(2)
    extra = dict(CONFIGS[name])
    needs_retain = any(k in extra for k in ("use_ewc", "replay_ratio", "use_agem"))
    args = SFTConfig(
        output_dir=f"/tmp/open_r1_bench_{name}",
        use_cpu=device == "cpu",
        bf16=False,
        gradient_checkpointing=False,
        assistant_only_loss=True,
        max_length=256,
        per_device_train_batch_size=batch,
        learning_rate=1e-3,
        max_steps=steps,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        logging_steps=10**6,
        include_num_input_tokens_seen=True,
        seed=0,
        retain_dataset_id=str(world / "retain") if needs_retain else None,
        **extra,
    )
    tokenizer = AutoTokenizer.from_pretrained(world / "base_model")
    train = load_from_disk(str(world / "update"))["train"]
    model = AutoModelForCausalLM.from_pretrained(world / "base_model")
    durations, tokens = [], []

    class Clock(TrainerCallback):
        """Step k's time: from its `on_step_begin` to step k+1's, whatever runs in between and in which order."""

        started = seen = None

        def on_step_begin(self, args, state, control, **kwargs):
            now = time.perf_counter()
            if self.started is not None and state.global_step > WARMUP_STEPS:
                durations.append(now - self.started)
                tokens.append(state.num_input_tokens_seen - self.seen)
            self.started, self.seen = now, state.num_input_tokens_seen

    on_gpu = device == "cuda"
    if on_gpu:
        model.to("cuda")
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 1024
    else:
        before = resident_kib("VmRSS")
    if name == "trl":
        from trl import SFTTrainer as Trainer
    else:
        from open_r1.trainers import ContinualSFTTrainer as Trainer
    trainer = Trainer(model=model, args=args, train_dataset=train, processing_class=tokenizer, callbacks=[Clock()])
    trainer.train()
    # The median step (robust to a hiccup of the machine); every configuration sees the same batches in order.
    step = statistics.median(durations)
    return {
        "config": name,
        "tokens_per_second": statistics.mean(tokens) / step,
        "seconds_per_step": step,
        "step_seconds": durations,
        "peak_mib": ((torch.cuda.max_memory_allocated() / 1024 if on_gpu else resident_kib("VmHWM")) - before) / 1024,
    }


def _command(*args) -> list[str]:
    return [sys.executable, __file__, *map(str, args)]


def compare(
    world: Path, steps: int, batch: int, repeats: int, configs: list[str], progress=print, device: str = "cpu"
) -> dict:
    """Throughput: every configuration in turn in *one* process, `repeats` rounds (process-to-process variance is
    larger than the differences measured); the ratio to TRL is taken within each round, then the median. Peak memory:
    one process per configuration."""
    common = ["--world", world, "--steps", steps, "--batch-size", batch, "--device", device]
    timing = subprocess.Popen(
        _command("--rounds", repeats, "--configs", *configs, *common), stdout=subprocess.PIPE, text=True
    )
    runs = {name: [] for name in configs}
    lines = (line for line in timing.stdout if line.startswith(RESULT))  # the trainers print their own logs too
    for done, line in enumerate(lines, 1):
        result = json.loads(line[len(RESULT) :])
        runs[result["config"]].append(result)
        progress(
            f"[{done}/{repeats * len(configs)}] trainer {result['config']}: {result['tokens_per_second']:.0f} tok/s"
        )
    if timing.wait() != 0:
        raise RuntimeError("the timing process failed")
    peaks = {}
    for index, name in enumerate(configs, 1):
        result = subprocess.run(_command("--one", name, *common), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{name}: {result.stderr[-2000:]}")
        peaks[name] = json.loads(result.stdout.strip().splitlines()[-1])["peak_mib"]
        progress(f"[{index}/{len(configs)}] peak memory of {name}: {peaks[name]:.0f} MiB")
    summary = {}
    for name, results in runs.items():
        speeds = [r["tokens_per_second"] for r in results]
        # Paired within a round (the i-th result of each configuration comes from round i): TRL's step time over
        # this configuration's, so > 1 is faster than TRL.
        ratios = [t["seconds_per_step"] / r["seconds_per_step"] for r, t in zip(results, runs.get("trl", []))]
        summary[name] = {
            "tokens_per_second": statistics.median(speeds),
            "tokens_per_second_range": [min(speeds), max(speeds)],
            "seconds_per_step": statistics.median(r["seconds_per_step"] for r in results),
            "peak_mib": peaks[name],
            "throughput_vs_trl": statistics.median(ratios) if ratios else None,
            "throughput_vs_trl_range": [min(ratios), max(ratios)] if ratios else None,
            "runs": [{k: v for k, v in r.items() if k != "step_seconds"} for r in results],
        }
    return summary


def table(summary: dict) -> str:
    lines = [
        "| configuration | tokens/s (median, range) | s/step (median) | throughput vs TRL SFTTrainer, paired per round "
        "(median, range) | peak MiB |",
        "|---|---|---|---|---|",
    ]
    for name, s in summary.items():
        low, high = s["tokens_per_second_range"]
        ratio = "-"
        if s["throughput_vs_trl"]:
            low_ratio, high_ratio = s["throughput_vs_trl_range"]
            ratio = f"{s['throughput_vs_trl']:.3f}x ({low_ratio:.2f}-{high_ratio:.2f})"
        lines.append(
            f"| {name} | {s['tokens_per_second']:.0f} ({low:.0f}-{high:.0f}) | {s['seconds_per_step']:.3f} | {ratio} "
            f"| {s['peak_mib']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, default=Path("data/testbed"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cuda: the first GPU.")
    parser.add_argument("--one", choices=list(CONFIGS), help="Run this configuration once and print its JSON.")
    parser.add_argument("--rounds", type=int, help="Run --configs in turn this many times here; one JSON line each.")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.world, args.steps, args.batch_size, args.device)))
        return
    if args.rounds:
        order = random.Random(0)
        for _ in range(args.rounds):
            for name in order.sample(args.configs, len(args.configs)):  # no configuration always first
                result = run_one(name, args.world, args.steps, args.batch_size, args.device)
                print(RESULT + json.dumps({k: v for k, v in result.items() if k != "peak_mib"}), flush=True)
                gc.collect()
        return
    summary = compare(args.world, args.steps, args.batch_size, args.repeats, args.configs, device=args.device)
    print(table(summary))


if __name__ == "__main__":
    main()
