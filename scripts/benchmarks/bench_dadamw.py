# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Step time of DAdamW (gamma 0.5 and 1.0, multi-tensor and single-tensor) relative to torch AdamW(foreach=True).

All optimizers step the same parameter shapes (a Llama-like set of tensors) with the same gradients, timed side
by side in one run, interleaved, taking the median over repeats:

    python scripts/benchmarks/bench_dadamw.py [--hidden 512 --layers 8 --steps 20 --repeats 5 --device cpu]
"""

import argparse
import statistics
import time

import torch

from open_r1.optims import DAdamW


def llama_like_params(hidden: int, layers: int, vocab: int, device: str) -> list[torch.nn.Parameter]:
    shapes = [(vocab, hidden)]
    for _ in range(layers):
        shapes += [(hidden, hidden)] * 4 + [(4 * hidden, hidden)] * 2 + [(hidden, 4 * hidden)] + [(hidden,)] * 2
    shapes.append((hidden,))
    gen = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(s, generator=gen).to(device)) for s in shapes]


def time_steps(make_optimizer, params, grads, steps: int) -> float:
    optimizer = make_optimizer(params)
    for p, g in zip(params, grads):
        p.grad = g
    optimizer.step()  # state allocation is not part of a step's cost
    if params[0].is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    if params[0].is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    params = llama_like_params(args.hidden, args.layers, args.vocab, args.device)
    grads = [torch.randn_like(p) * 1e-3 for p in params]
    kwargs = dict(lr=1e-4, weight_decay=0.01)
    candidates = {
        "torch AdamW foreach": lambda ps: torch.optim.AdamW(ps, foreach=True, **kwargs),
        "torch AdamW single-tensor": lambda ps: torch.optim.AdamW(ps, foreach=False, **kwargs),
        "DAdamW gamma=0.5": lambda ps: DAdamW(ps, preconditioner_power=0.5, **kwargs),
        "DAdamW gamma=1.0": lambda ps: DAdamW(ps, preconditioner_power=1.0, eps=1e-6, **kwargs),
        "DAdamW gamma=1.0 single-tensor": lambda ps: DAdamW(
            ps, preconditioner_power=1.0, eps=1e-6, foreach=False, **kwargs
        ),
    }
    times = {name: [] for name in candidates}
    for _ in range(args.repeats):
        for name, make in candidates.items():
            fresh = [torch.nn.Parameter(p.detach().clone()) for p in params]
            times[name].append(time_steps(make, fresh, grads, args.steps))

    n_params = sum(p.numel() for p in params)
    print(
        f"{n_params / 1e6:.1f}M parameters in {len(params)} tensors on {args.device}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats} x {args.steps} steps"
    )
    reference = statistics.median(times["torch AdamW foreach"])
    print(f"{'optimizer':34s} {'ms/step':>9s} {'vs AdamW':>9s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:34s} {median * 1e3:9.2f} {median / reference:8.2f}x")


if __name__ == "__main__":
    main()
