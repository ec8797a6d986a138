# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""GPU memory's terms, shared by the planner (`open_r1.recipes.memory`) and the methods that declare their own rows
(`ContinualMethod.memory`): the phases of a run, the `MemoryContext` a method sizes itself from, the constants fitted
on torch's allocations, and how a peak is measured (torch's allocations, the process's resident memory)."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path


GIB = 2**30


# Values kept for the backward per token and hidden unit in one decoder layer, and bytes per logit of the causal-LM
# loss (the logits, their fp32 copy, the log-softmax, their gradients): fitted on torch's own allocations (the
# profiler's memory events) in forward and backward passes of Llamas with hidden 768 (2, 6 or 12 layers, vocabularies
# of 768 and 32000, MLP widths of 2048 and 3072, 12 or 4 key-value heads of 12; 4 x 256 tokens) on CPU. A layer keeps
# ACTIVATION_VALUES_BASE + 4 x intermediate / hidden + 2 x (key-value width) / hidden values per hidden unit:
# 10.0 + 10.7 + 2 = 22.7 in bf16 at this shape (fp32: 20.7), 4 more per unit of MLP width (the SwiGLU's gate, up,
# product and activation), 2 per unit of key-value width (keys and values); each measured size within 0.1% of the
# fit in bf16 (fp32 is planned with bf16's base, up to 10% above). Llama-3.1-8B's layer: 10 + 14 + 0.5 = 24.5.
# Korthikanti et al. (2022) count 17 for a GPT block (34 bytes in 16-bit). The loss: 12.0 bytes a logit in fp32,
# 11.9 in bf16. (The process's resident growth, which also holds the math libraries' workspaces, had suggested 34
# values a layer.)
ACTIVATION_VALUES_BASE = 10


LOSS_BYTES_PER_LOGIT = 12


BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2, "auto": 2, None: 4}


# The phases a run goes through; a row of phase ALL is held through every one of them (weights, optimizer state,
# methods' persistent state), the others only while that phase runs (a method may name a phase of its own, e.g. its
# retain pass after the training backward). The plan's peak is its largest phase.
ALL = "all phases"


TRAINING, FISHER, GENERATION, EVALUATION, SAVE = (
    "training step",
    "Fisher estimation",
    "GRPO generation",
    "evaluation",
    "checkpoint save",
)


@dataclass(frozen=True)
class MemoryContext:
    """What a method needs to declare its GPU memory (`ContinualMethod.memory`): the model's sizes and how the launch
    holds them, per GPU."""

    params: int  # P: every parameter
    largest: int  # elements of the largest parameter
    processes: int  # W
    sharded: bool  # parameters partitioned over the W ranks (ZeRO-3, FSDP)
    weight_bytes: int  # per element of the weights (the recipe's dtype)
    activation_bytes: int  # per activation value (16-bit under mixed precision)
    hidden: int
    layers: int
    vocab: int
    length: int  # tokens per sequence
    recipe: dict
    layer_values: float  # values one decoder layer keeps per token and hidden unit (`layer_values_of`)

    @property
    def local(self) -> float:
        """Parameters this rank holds."""
        return self.params / self.processes if self.sharded else self.params

    def get(self, key: str, config_class):
        """The recipe's value of `key`, else the default of the method's own config dataclass."""
        if self.recipe.get(key) is not None:
            return self.recipe[key]
        default = next(f for f in dataclasses.fields(config_class) if f.name == key)
        return default.default_factory() if default.default is dataclasses.MISSING else default.default

    @staticmethod
    def bytes_of(dtype) -> int:
        return BYTES.get(str(dtype), 4)

    def activations(self, sequences: int, checkpointed: bool, value_bytes: int | None = None) -> float:
        """Values kept for one backward of `sequences` x `length` tokens through the decoder."""
        per_token = self.hidden * (
            self.layers + self.layer_values if checkpointed else self.layer_values * self.layers
        )
        return (value_bytes or self.activation_bytes) * sequences * self.length * per_token


def layer_values_of(config) -> float:
    """Values one decoder layer keeps for the backward, per token and hidden unit (see ACTIVATION_VALUES_BASE)."""
    h = config.hidden_size
    intermediate = getattr(config, "intermediate_size", None) or 4 * h
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or h // heads
    return ACTIVATION_VALUES_BASE + 4 * intermediate / h + 2 * kv_heads * head_dim / h


def allocation_peak(profiler) -> float:
    """The highest sum of torch's allocations, in bytes, over a `torch.profiler.profile(profile_memory=True)` span,
    counted from its start (events in time order; a stable sort keeps the recorded order of events at one instant):
    on CPU, what `torch.cuda.max_memory_allocated` measures on a GPU. How the planner is checked against real runs."""
    events = [e for e in profiler.profiler.kineto_results.events() if e.name() == "[memory]"]
    total = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        total += event.nbytes()
        peak = max(peak, total)
    return peak


def resident_kib(field: str = "VmRSS") -> int:
    """This process's resident memory from /proc/self/status (Linux), KiB: `VmRSS` now, `VmHWM` its peak (the
    benchmarks' peaks beside torch's allocations)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def parse_size(text: str) -> float:
    """'80GB', '80GiB', '141 GB' -> bytes (GB read as GiB, as GPU memory is quoted)."""
    number = float("".join(c for c in text if c.isdigit() or c == "."))
    unit = text.strip().upper().rstrip("IB").rstrip("B")[-1:]
    return number * {"G": GIB, "T": 1024 * GIB, "M": 2**20}.get(unit, GIB)
