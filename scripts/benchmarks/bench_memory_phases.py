# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The memory planner against reality, phase by phase: each phase of a run on a ~134M-parameter Llama (built from a
config, random weights, no Hub) in bf16 and in fp32, each in a fresh process, its measured peak beside the plan.

    python scripts/benchmarks/bench_memory_phases.py [--device cpu|cuda] [--dtypes bfloat16 float32]

Measured: what the phase adds to a process holding the model's weights, as torch's allocator sees it (the plan's ratio
is taken on this). On CPU, the high-water mark of torch's allocations (the profiler's memory events: every tensor
allocated and freed, in order); on a GPU, `torch.cuda.max_memory_allocated` minus the allocation then. On CPU the
resident growth is printed beside it (`/proc/self/status` VmHWM, reset through `/proc/self/clear_refs` once the weights
are built, minus the resident size then): it adds what the math libraries allocate outside torch (a matrix
multiplication's packed copy of its weight) and the C allocator's slack, and moves by +-10% between runs. Planned: the
rows the planner gives that phase (for the training step also the gradients and the optimizer state, which the first
step allocates). Phases:
the training step (forward, loss, backward, AdamW step, twice), EWC's Fisher estimation (`compute_fisher`, per-sample),
evaluation (a forward without gradients, with the loss) and GRPO generation without vLLM (`generate`, KV cache).
"""

import argparse
import json
import subprocess
import sys
from contextlib import nullcontext


HIDDEN, LAYERS, VOCAB, INTERMEDIATE, HEADS = 768, 12, 32000, 2048, 12
BATCH, LENGTH, FISHER_BATCH = 4, 256, 2
# Generation: a cache large enough to stand out of the allocator's noise (a few MiB would not).
GENERATIONS, PROMPT, COMPLETION = 16, 32, 480
PHASES = ("training step", "Fisher estimation", "evaluation", "GRPO generation")


def llama_config():
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        max_position_embeddings=2 * LENGTH,
        tie_word_embeddings=False,
    )


def measure(phase: str, dtype: str, device: str, resident: bool) -> float:
    """Bytes the phase adds on top of the built model (run in its own process): torch's allocations, or on CPU with
    `resident` the resident growth (a process without the profiler, whose records would count)."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import LlamaForCausalLM

    from open_r1.memory import allocation_peak, resident_kib

    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = LlamaForCausalLM(llama_config()).to(device=device, dtype=getattr(torch, dtype))
    ids = torch.randint(0, VOCAB, (BATCH, LENGTH), device=device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # the high-water mark starts again from the current resident size
        before = resident_kib("VmRSS") * 1024
    profiled = device == "cpu" and not resident
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) if profiled else nullcontext() as run:
        run_phase(model, ids, phase)
    if device == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    return resident_kib("VmHWM") * 1024 - before if resident else allocation_peak(run)


def run_phase(model, ids, phase: str) -> None:
    import torch

    from open_r1.continual import compute_fisher

    if phase == "training step":
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
        for _ in range(2):
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)  # gradients stay allocated, as in a run
    elif phase == "Fisher estimation":
        model.eval()
        batches = [{"input_ids": ids[:FISHER_BATCH], "labels": ids[:FISHER_BATCH]}]
        compute_fisher(model, batches, chunk_size=FISHER_BATCH)
    elif phase == "evaluation":
        model.eval()
        with torch.no_grad():
            model(input_ids=ids, labels=ids)
    else:  # GRPO generation: GENERATIONS prompts completed to PROMPT + COMPLETION tokens, KV cache kept
        model.eval()
        prompts = ids.new_tensor(torch.randint(0, VOCAB, (GENERATIONS, PROMPT)))
        with torch.no_grad():
            model.generate(prompts, max_new_tokens=COMPLETION, min_new_tokens=COMPLETION, do_sample=False)


def planned(phase: str, dtype: str) -> float:
    from open_r1.memory import ALL
    from open_r1.recipes.memory import Launch, plan

    recipe = {"model_name_or_path": None, "dtype": dtype, "per_device_train_batch_size": BATCH, "max_length": LENGTH}
    recipe.update({"gradient_checkpointing": False, "per_device_eval_batch_size": BATCH, "eval_strategy": "steps"})
    recipe.update({"use_ewc": True, "fisher_batch_size": FISHER_BATCH, "fisher_chunk_size": FISHER_BATCH})
    if phase == "GRPO generation":
        recipe.update({"is_grpo": True, "max_prompt_length": PROMPT, "max_completion_length": COMPLETION})
        recipe.update({"per_device_train_batch_size": GENERATIONS, "gradient_accumulation_steps": 1})
    rows = plan(recipe, Launch(), config_override=llama_config()).rows
    total = sum(value for row_phase, _, value, _ in rows if row_phase == phase)
    if phase == "training step":  # allocated by the first step, on top of the weights
        total += sum(
            value for row_phase, name, value, _ in rows if row_phase == ALL and name in ("gradients", "optimizer")
        )
    return total


def run_measure(phase: str, dtype: str, device: str, resident: bool) -> float:
    """`measure` in a fresh process; raises with the child's last line of error."""
    command = [sys.executable, __file__, "--device", device, "--measure", phase, dtype]
    done = subprocess.run(command + (["--resident"] if resident else []), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"])
    parser.add_argument("--measure", nargs=2, metavar=("PHASE", "DTYPE"), help=argparse.SUPPRESS)
    parser.add_argument("--resident", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure, args.device, args.resident)))
        return
    parameters = (2 * VOCAB + LAYERS * (4 * HIDDEN + 3 * INTERMEDIATE)) * HIDDEN
    print(
        f"Llama {parameters / 1e6:.0f}M parameters (hidden {HIDDEN}, {LAYERS} layers, vocab {VOCAB}), batch {BATCH} x "
        f"{LENGTH} tokens, Fisher batch {FISHER_BATCH}, generation {GENERATIONS} x ({PROMPT} + {COMPLETION}) tokens, "
        f"device {args.device}\n"
    )
    print(
        "| dtype | phase | planned MiB | allocated MiB | allocated / planned | resident growth MiB |\n"
        "|---|---|---|---|---|---|"
    )
    for dtype in args.dtypes:
        for phase in PHASES:
            try:
                allocated = run_measure(phase, dtype, args.device, resident=False)
                resident = run_measure(phase, dtype, args.device, resident=True) if args.device == "cpu" else None
            except RuntimeError as error:
                print(f"| {dtype} | {phase} | failed: {error} | | | |")
                continue
            plan_bytes = planned(phase, dtype)
            print(
                f"| {dtype} | {phase} | {plan_bytes / 2**20:.0f} | {allocated / 2**20:.0f} | "
                f"{allocated / plan_bytes:.2f} | {'-' if resident is None else f'{resident / 2**20:.0f}'} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
