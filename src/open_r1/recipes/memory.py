# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Per-GPU memory of a recipe under an accelerate config, phase by phase, from the model's config alone (no weights).

    python -m open_r1.recipes memory RECIPE [--accelerate-config CFG] [--num-processes N] [--gpu-memory 80GB]

The model is built on PyTorch's `meta` device from its config (`AutoConfig`: a local directory, the Hub, or, offline,
the copies of the versioned recipes' model configs below), which gives every parameter's shape without memory. A run
goes through phases; the plan counts each one's per-GPU memory, component by component, and the recipe's peak is its
largest phase (the table says which). P parameters, W processes:

- held through every phase: the weights (P x the recipe's dtype; ZeRO-3/FSDP keep P/W plus the largest parameter
  gathered for compute), gradients and optimizer (DeepSpeed mixed precision: 16-bit gradients, an fp32 master copy and
  fp32 Adam moments, partitioned from ZeRO-1, gradients from ZeRO-2, weights at ZeRO-3, optimizer states 0 when
  offloaded; FSDP with mixed precision upcasts to fp32; without either, torch's AdamW keeps its moments in the
  parameters' dtype, 8-bit optimizers 2 bytes, `custom_optim: dadamw` fp32), GRPO's reference model when `beta` > 0
  and vLLM colocated (`vllm_gpu_memory_utilization` of the GPU), and each method's state;
- training step: activations (with gradient checkpointing each layer's input, B x S x h, plus one layer's
  recomputation, about 23 B S h values (`layer_values_of`: 10 + 4 x MLP width / h + 2 x key-value width / h); else
  that per layer; S is `max_length` (SFT;
  null: 4096) or `max_prompt_length` (default 512) + `max_completion_length` (GRPO)) and logits (SFT's loss: 12 bytes
  a logit with its fp32 copy, log-softmax and gradients, `LOSS_BYTES_PER_LOGIT`; GRPO's selective log-softmax: the
  logits and their gradient; none with Liger);
- GRPO generation without vLLM: the KV cache of the generation batch; evaluation (when `eval_strategy` is set): a
  forward without gradients; checkpoint save under ZeRO-3/FSDP: the largest parameter gathered whole;
- each continual-learning method's own rows, declared in its file (`ContinualMethod.memory`): EWC's Fisher and anchors
  and its Fisher estimation phase (fp32 working copies, squared-gradient sums, the result, an eval-mode forward that
  gradient checkpointing does not cover), the EMA shadow, LwF's frozen copy and retain pass, A-GEM's gradient copy and
  retain pass, the trust region's reference copy.

Held-through rows count in every phase, so a phase before the first optimizer step (the Fisher estimation) is planned
with the optimizer state torch allocates only at that step: on the safe side. Not counted: the CUDA context and
allocator fragmentation (reported as a margin: the verdict wants 10% free), communication buckets, vLLM's own
activations beyond its reservation. Checked against measured peak memory on CPU (`tests/test_recipe_memory.py`: a
training run, and the Fisher estimation of a bf16 model).
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..memory import (
    ALL,
    BYTES,
    EVALUATION,
    GENERATION,
    GIB,
    LOSS_BYTES_PER_LOGIT,
    SAVE,
    TRAINING,
    MemoryContext,
    layer_values_of,
)
from .reading import VERSION_IN_NAME, bound_text, entry_point, launch_of, parse_recipe, recipe_fields, recipe_keys


# Public config.json values of the versioned recipes' models, for planning offline (the Hub's copy wins when online).
KNOWN_CONFIGS = {
    "meta-llama/Llama-3.1-8B-Instruct": {
        "model_type": "llama",
        "vocab_size": 128256,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": False,
    },
    "HuggingFaceTB/SmolLM2-135M-Instruct": {
        "model_type": "llama",
        "vocab_size": 49152,
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": True,
    },
}


@dataclass
class Launch:
    """What the accelerate config decides: sharding, process count, offloads, mixed precision."""

    sharding: str = "none"  # none (single process or DDP), zero1, zero2, zero3, fsdp
    processes: int = 1
    offload_optimizer: bool = False
    offload_params: bool = False
    mixed_precision: str = "no"

    @classmethod
    def from_config(cls, path: Path | None, processes: int | None = None) -> "Launch":
        if path is None:
            return cls(processes=processes or 1)
        config = yaml.safe_load(Path(path).read_text())
        launch = cls(processes=processes or int(config.get("num_processes", 1)))
        launch.mixed_precision = str(config.get("mixed_precision", "no"))
        if config.get("distributed_type") == "DEEPSPEED":
            deepspeed = config.get("deepspeed_config") or {}
            launch.sharding = f"zero{int(deepspeed.get('zero_stage', 0))}" if deepspeed.get("zero_stage") else "none"
            launch.offload_optimizer = deepspeed.get("offload_optimizer_device", "none") not in ("none", None)
            launch.offload_params = deepspeed.get("offload_param_device", "none") not in ("none", None)
        elif config.get("distributed_type") == "FSDP":
            launch.sharding = "fsdp"
            launch.offload_params = bool((config.get("fsdp_config") or {}).get("fsdp_offload_params"))
        return launch


@dataclass
class MemoryPlan:
    rows: list[tuple[str, str, float, str]] = field(default_factory=list)  # (phase, component, bytes per GPU, how)
    gpu_bytes: float = 80 * GIB
    suggestions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the plan had to assume

    def phase_total(self, phase: str) -> float:
        return sum(b for row_phase, _, b, _ in self.rows if row_phase in (ALL, phase))

    @property
    def phases(self) -> list[str]:
        """The phases its rows name (a method may add one of its own, e.g. a retain pass), in order."""
        return list(dict.fromkeys(row[0] for row in self.rows if row[0] != ALL)) or [TRAINING]

    @property
    def peak_phase(self) -> str:
        return max(self.phases, key=self.phase_total)

    @property
    def total(self) -> float:
        """The per-GPU peak: the largest phase's memory."""
        return self.phase_total(self.peak_phase)

    def verdict(self) -> str:
        budget = 0.9 * self.gpu_bytes  # 10% for the CUDA context, fragmentation and buffers
        peak = f"{self.total / GIB:.1f} GiB at its peak ({self.peak_phase})"
        if self.total <= budget:
            return f"fits: {peak} of {self.gpu_bytes / GIB:.0f} GiB ({(budget - self.total) / GIB:.1f} GiB spare after a 10% margin)"
        over = (self.total - budget) / GIB
        tips = "; ".join(self.suggestions) or "a larger GPU or more processes"
        return f"does not fit: {peak}, {over:.1f} GiB over 90% of {self.gpu_bytes / GIB:.0f} GiB. Fits with: {tips}"

    def table(self) -> str:
        lines = ["| phase | component | GiB per GPU | how |", "|---|---|---|---|"]
        lines += [f"| {phase} | {name} | {value / GIB:.2f} | {how} |" for phase, name, value, how in self.rows]
        for phase in self.phases:
            lines.append(f"| {phase} | *phase total* | {self.phase_total(phase) / GIB:.2f} | |")
        lines.append(f"| **peak** | **{self.peak_phase}** | **{self.total / GIB:.2f}** | {self.verdict()} |")
        return "\n".join(lines + [f"\nAssumed: {note}" for note in self.notes])


def model_config(model_name_or_path: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_name_or_path)
    except OSError:
        if model_name_or_path not in KNOWN_CONFIGS:
            raise ValueError(
                f"`model_name_or_path`: no config for {model_name_or_path!r} here (offline, not a local directory, "
                f"not one of {sorted(KNOWN_CONFIGS)}); pass a local model directory."
            ) from None
        known = dict(KNOWN_CONFIGS[model_name_or_path])
        return AutoConfig.for_model(known.pop("model_type"), **known)


def model_shapes(config) -> tuple[int, int]:
    """(parameter count, largest parameter's element count) of the model, built on the meta device."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    sizes = [p.numel() for p in model.parameters()]
    return sum(sizes), max(sizes)


def plan(
    recipe: dict, launch: Launch, gpu_bytes: float = 80 * GIB, config_override=None, suggest: bool = True
) -> MemoryPlan:
    """The per-GPU memory of a recipe's settings (a dict of parsed values) under `launch`; `config_override`: the
    model config to use instead of `model_name_or_path`'s. When it does not fit (and `suggest`), each single change
    of `CHANGES` is planned too and the ones that make it fit are named (else the closest)."""
    config = config_override or model_config(recipe["model_name_or_path"])
    p = _plan(recipe, launch, gpu_bytes, config)
    if suggest and p.total > 0.9 * gpu_bytes:
        tried = []
        for name, change in CHANGES:
            changed = change(dict(recipe), dataclasses.replace(launch))
            if changed is not None:
                tried.append((_plan(*changed, gpu_bytes, config).total, name))
        fitting = [t for t in tried if t[0] <= 0.9 * gpu_bytes]  # least invasive first, as CHANGES are ordered
        chosen = fitting or sorted(tried)[:2]
        p.suggestions = [f"{name} ({total / GIB:.1f} GiB)" for total, name in chosen]
        if not fitting:
            p.suggestions.insert(0, "no single change is enough; closest")
    return p


def _halve_batch(recipe, launch):
    if int(recipe.get("per_device_train_batch_size", 1)) < 2:
        return None
    recipe["per_device_train_batch_size"] = int(recipe["per_device_train_batch_size"]) // 2
    return recipe, launch


def _set(key, value, needs=None):
    def change(recipe, launch):
        if recipe.get(key) == value or (needs and not recipe.get(needs)):
            return None
        recipe[key] = value
        return recipe, launch

    return change


def _sharding(stage: str, offload_optimizer: bool = False):
    def change(recipe, launch):
        if (launch.sharding, launch.offload_optimizer) == (stage, offload_optimizer) or launch.processes < 2:
            return None
        launch.sharding, launch.offload_optimizer = stage, offload_optimizer
        return recipe, launch

    return change


# Single changes the verdict tries, in the words a user would type.
CHANGES = [
    ("fisher_offload: true", _set("fisher_offload", True, needs="use_ewc")),
    ("fisher_storage_dtype: bfloat16", _set("fisher_storage_dtype", "bfloat16", needs="use_ewc")),
    ("ema_offload: true", _set("ema_offload", True, needs="use_ema")),
    ("gradient_checkpointing: true", _set("gradient_checkpointing", True)),
    ("use_liger_kernel: true", _set("use_liger_kernel", True)),
    ("vllm_mode: server (vLLM on other GPUs)", _set("vllm_mode", "server", needs="use_vllm")),
    ("per_device_train_batch_size halved (gradient_accumulation_steps doubled)", _halve_batch),
    ("ZeRO-2 (recipes/accelerate_configs/zero2.yaml)", _sharding("zero2")),
    ("ZeRO-3 (recipes/accelerate_configs/zero3.yaml)", _sharding("zero3")),
    ("ZeRO-3 with the optimizer on CPU (recipes/accelerate_configs/zero3_offload.yaml)", _sharding("zero3", True)),
]


def _plan(recipe: dict, launch: Launch, gpu_bytes: float, config) -> MemoryPlan:
    params, largest = model_shapes(config)
    W = launch.processes
    is_grpo = recipe.get("is_grpo", "reward_funcs" in recipe)
    dtype = str(recipe.get("dtype") or recipe.get("torch_dtype") or "float32")
    b_w = BYTES.get(dtype, 4)
    mixed = recipe.get("bf16") or recipe.get("fp16") or launch.mixed_precision in ("bf16", "fp16")
    b_act = 2 if (mixed or b_w == 2) else 4
    deepspeed = launch.sharding.startswith("zero")
    stage = int(launch.sharding[4:]) if deepspeed else 0
    sharded = stage == 3 or launch.sharding == "fsdp"
    local = params / W if sharded else params
    p = MemoryPlan(gpu_bytes=gpu_bytes)
    rows = p.rows

    optim = str(recipe.get("optim", "adamw_torch"))
    if launch.sharding == "fsdp" and mixed:
        # accelerate upcasts 16-bit parameters to fp32 under FSDP mixed precision.
        rows.append((ALL, "weights", 4 * local + b_act * largest, "fp32 shard + one gathered parameter (FSDP)"))
        rows.append((ALL, "gradients", 4 * local, "fp32 shard (FSDP)"))
        moments = 0 if launch.offload_params else 8 * local
        rows.append((ALL, "optimizer", moments, "Adam moments fp32 shard (FSDP)"))
    elif deepspeed:
        weights = (b_w * params / W + b_w * largest) if stage == 3 else b_w * params
        if launch.offload_params and stage == 3:
            weights = b_w * largest
        rows.append((ALL, "weights", weights, f"{dtype}{' shard + one gathered parameter' if stage == 3 else ''}"))
        grads = b_w * params / (W if stage >= 2 else 1)
        rows.append((ALL, "gradients", grads, f"{dtype}{', partitioned (ZeRO-2/3)' if stage >= 2 else ''}"))
        if launch.offload_optimizer:
            rows.append((ALL, "optimizer", 0.0, "offloaded to CPU"))
        else:
            master = 4 * params / W if b_w != 4 else 0
            how = "fp32 master, Adam moments and fp32 gradient partition (over W)"
            rows.append((ALL, "optimizer", master + 8 * params / W + 4 * params / W, how))
    else:
        rows.append((ALL, "weights", b_w * params, dtype))
        rows.append((ALL, "gradients", b_w * params, dtype))
        dadamw = recipe.get("custom_optim") == "dadamw"
        per_param = 2 if "8bit" in optim else (8 if dadamw else 2 * b_w)
        name = "dadamw (fp32 moments)" if dadamw else optim
        rows.append((ALL, "optimizer", per_param * params, f"{name}: {per_param} bytes per parameter"))

    h, layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
    batch = int(recipe.get("per_device_train_batch_size", 8))
    if is_grpo:
        length = int(recipe.get("max_prompt_length") or 512) + int(recipe.get("max_completion_length", 256))
        if not recipe.get("max_prompt_length"):
            p.notes.append("prompts of 512 tokens (GRPO does not truncate prompts): longer ones need more")
    else:
        length = int(recipe.get("max_length") or 4096)  # null: untruncated; 4096 as the fork's data are cut
        if recipe.get("max_length") is None:
            p.notes.append("sequences of 4096 tokens (`max_length: null` does not truncate): longer ones need more")
    values = layer_values_of(config)
    context = MemoryContext(params, largest, W, sharded, b_w, b_act, h, layers, vocab, length, recipe, values)
    for method in _enabled_methods(recipe):
        rows.extend(method.memory(context))

    if is_grpo and float(recipe.get("beta", 0.0)) > 0:
        rows.append((ALL, "GRPO reference model", b_w * local, f"frozen copy in {dtype} (beta > 0)"))
    if is_grpo and recipe.get("use_vllm") and recipe.get("vllm_mode", "colocate") == "colocate":
        share = float(recipe.get("vllm_gpu_memory_utilization", 0.3))
        rows.append((ALL, "vLLM (colocated)", share * gpu_bytes, f"vllm_gpu_memory_utilization {share}"))

    tokens = batch * length
    checkpointed = bool(recipe.get("gradient_checkpointing"))
    how = f"{batch} x {length} tokens, " + (
        "checkpointed: layer inputs + one layer" if checkpointed else "every layer"
    )
    rows.append((TRAINING, "activations", context.activations(batch, checkpointed), how))
    if recipe.get("use_liger_kernel"):
        rows.append((TRAINING, "logits", 0.0, "Liger fused linear cross-entropy: not materialised"))
    elif is_grpo:  # TRL's selective log-softmax goes row by row: no fp32 copy of the logits
        rows.append(
            (TRAINING, "logits", tokens * vocab * 2 * b_act, f"{batch} x {length} x {vocab}, and their gradient")
        )
    else:  # the causal-LM loss upcasts the logits to fp32
        how = f"{batch} x {length} x {vocab}, fp32 copy, log-softmax and their gradients"
        rows.append((TRAINING, "logits", tokens * vocab * LOSS_BYTES_PER_LOGIT, how))

    if is_grpo and not recipe.get("use_vllm"):
        # transformers' generate: keys and values of every layer for the generation batch.
        generations = batch * int(recipe.get("steps_per_generation") or recipe.get("gradient_accumulation_steps", 1))
        kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or h // config.num_attention_heads
        # The cache grows by concatenation: at each step one layer's keys and values are copied beside the old ones.
        cache = 2 * layers * generations * length * kv_heads * head_dim * b_act * (1 + 2 / layers)
        how = f"{generations} sequences x {length} tokens, every layer, and one layer's copy as it grows"
        rows.append((GENERATION, "KV cache", cache, how))
        rows.append((GENERATION, "next-token logits", generations * vocab * 4, "fp32, one position at a time"))
    eval_strategy = recipe.get("eval_strategy", "no")
    if str(getattr(eval_strategy, "value", eval_strategy)) != "no":  # the parsed recipe holds an IntervalStrategy
        eval_batch = int(recipe.get("per_device_eval_batch_size", 8))
        how = f"{eval_batch} x {length} tokens, no gradient: one layer's values, the logits, the loss's fp32 copies"
        # The loss upcasts the logits to fp32 (the same tensor when they are fp32) and takes their log-softmax.
        loss_copies = 4 + (4 if b_act < 4 else 0)
        eval_bytes = eval_batch * length * (b_act * h * context.layer_values + vocab * (b_act + loss_copies))
        rows.append((EVALUATION, "forward without gradients", eval_bytes, how))
    if sharded:  # the 16-bit weights are gathered one parameter at a time for the save
        rows.append((SAVE, "gathered parameter", b_w * largest, "the largest parameter, whole, while it is written"))
    return p


def _enabled_methods(recipe: dict):
    """The continual-learning methods a recipe (a dict of its values) turns on, as the trainer would."""
    from ..continual import enabled_methods

    class Values(dict):
        __getattr__ = dict.get  # an absent key reads as unset

    return enabled_methods(Values(recipe))


def plan_recipe(
    path: Path,
    accelerate_config: Path | None,
    processes: int | None,
    gpu_bytes: float,
    bindings: dict[str, str] | None = None,
) -> MemoryPlan:
    """Plan a recipe file: parsed by the entry point's own parser (its defaults count: TRL's gradient checkpointing,
    vLLM's memory share, ...), methods as the trainer enables them; a sweep template's placeholders take `bindings`,
    else a stand-in."""
    import dataclasses

    match = VERSION_IN_NAME.search(path.name)
    raw = yaml.safe_load(bound_text(path, match.group(1) if match else "v00.00", bindings))
    launch = Launch.from_config(accelerate_config, processes)
    kind = entry_point(path, raw)
    parsed, complaint = parse_recipe(
        kind, {k: v for k, v in raw.items() if k in recipe_fields(kind)}, launch.processes
    )
    if complaint is not None:
        raise ValueError(f"the recipe does not parse: {complaint}")
    for check in parsed[1].continual_checks():  # the first turns EWC on for `custom_optim: fisher`
        check()
    recipe = {}
    for args in parsed:
        recipe.update({f.name: getattr(args, f.name) for f in dataclasses.fields(args)})
    recipe["bf16"], recipe["fp16"] = raw.get("bf16", False), raw.get("fp16", False)  # the parse drops them on CPU
    recipe["is_grpo"] = kind == "grpo"
    return plan(recipe, launch, gpu_bytes)


def memory_verdict(
    path: Path,
    accelerate_config: Path | None,
    processes: int | None,
    gpu_bytes: float,
    bindings: dict[str, str] | None = None,
):
    """(problem, note) of a recipe's per-GPU peak under its launch: a problem with the planner's table and suggestions
    when it does not fit, a note when its model cannot be sized here (no local config, offline): named, not guessed.
    A pass-rate filtering recipe only generates: the planner, which plans training, says nothing of it."""
    if entry_point(path, recipe_keys(path)) == "pass_rate":
        return None, f"{path}: memory not planned: pass-rate filtering only generates (one GPU, vLLM)"
    try:
        accelerate_config, processes = launch_of(path, accelerate_config, processes)
        memory_plan = plan_recipe(path, accelerate_config, processes, gpu_bytes, bindings)
    except ValueError as error:
        if str(error).startswith("`model_name_or_path`: no config"):  # cannot be sized offline: named, not guessed
            return None, f"{path}: memory not planned: {error}"
        return f"{path}: memory: {error}", None
    if memory_plan.total <= 0.9 * gpu_bytes:
        assumed = "; ".join(memory_plan.notes)
        return None, (f"{path}: memory fits, assuming {assumed}" if assumed else None)
    where = f"{accelerate_config or 'one process'} x {processes or 1} on {gpu_bytes / GIB:.0f} GiB GPUs"
    return f"{path}: memory: {memory_plan.verdict()} ({where})\n{memory_plan.table()}", None
