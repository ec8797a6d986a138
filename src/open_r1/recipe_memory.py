# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Per-GPU memory of a recipe under an accelerate config, from the model's config alone (no weights loaded).

    python -m open_r1.recipes memory RECIPE --accelerate-config CFG [--num-processes N] [--gpu-memory 80GB]

The model is built on PyTorch's `meta` device from its config (`AutoConfig`: a local directory, the Hub, or, offline,
the copies of the versioned recipes' model configs below), which gives every parameter's shape without memory. Each
component is then counted per GPU, P parameters, W processes:

- weights: P x the recipe's dtype; ZeRO-3/FSDP keep P/W plus the largest parameter gathered for compute;
- gradients and optimizer: DeepSpeed mixed precision keeps 16-bit gradients, an fp32 master copy and fp32 Adam
  moments (the master copy and moments partitioned from ZeRO-1, gradients from ZeRO-2, weights at ZeRO-3; offloaded
  optimizer states are on CPU); FSDP with mixed precision upcasts to fp32 (4 + 4 + 8 bytes per parameter over W);
  without either, torch's AdamW keeps its moments in the parameters' dtype; 8-bit optimizers 2 bytes; DAdamW fp32;
- methods: EWC's Fisher and anchors (`fisher_storage_dtype`, per rank's shard under ZeRO-3/FSDP, 0 with
  `fisher_offload`), the per-sample gradients of the Fisher estimation (`fisher_chunk_size` x the largest parameter,
  1/W of it under ZeRO-3/FSDP, fp32, before training), the EMA shadow (fp32, 0 with `ema_offload`), the trust-region reference (a copy in dtype),
  GRPO's reference model when `beta` > 0, vLLM colocated (`vllm_gpu_memory_utilization` of the GPU);
- activations: with gradient checkpointing each layer's input (B x S x h) plus one layer's recomputation
  (34 B S h values: `ACTIVATION_VALUES_PER_LAYER`), else 34 B S h per layer. S is `max_length` (SFT; null: 4096)
  or `max_prompt_length` (default 512) + `max_completion_length` (GRPO). Logits: B x S x V in 16-bit and their
  gradient; SFT's loss adds an fp32 copy (the causal-LM loss upcasts), GRPO's selective log-softmax does not; none
  with Liger's fused loss.

Not counted: the CUDA context and allocator fragmentation (reported as a margin: the verdict wants 10% free),
communication buckets, vLLM's own activations beyond its reservation. Validated against measured peak memory on CPU
(`tests/test_recipe_memory.py`).
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml


GIB = 2**30
# Values kept for the backward per token and hidden unit in one decoder layer: 34 measured for a Llama (SwiGLU,
# SDPA) on CPU in fp32 (tests/helpers/measure_train_memory.py: 30-33 at batch 4-16); Korthikanti et al. (2022) count
# 17 for a GPT block (34 bytes in 16-bit).
ACTIVATION_VALUES_PER_LAYER = 34
BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2, "auto": 2, None: 4}
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
    rows: list[tuple[str, float, str]] = field(default_factory=list)  # (component, bytes per GPU, how)
    gpu_bytes: float = 80 * GIB
    suggestions: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(b for _, b, _ in self.rows)

    def verdict(self) -> str:
        budget = 0.9 * self.gpu_bytes  # 10% for the CUDA context, fragmentation and buffers
        if self.total <= budget:
            return f"fits: {self.total / GIB:.1f} GiB of {self.gpu_bytes / GIB:.0f} GiB ({(budget - self.total) / GIB:.1f} GiB spare after a 10% margin)"
        over = (self.total - budget) / GIB
        tips = "; ".join(self.suggestions) or "a larger GPU or more processes"
        return (
            f"does not fit: {self.total / GIB:.1f} GiB, {over:.1f} GiB over 90% of {self.gpu_bytes / GIB:.0f} GiB. "
            f"Fits with: {tips}"
        )

    def table(self) -> str:
        lines = ["| component | GiB per GPU | how |", "|---|---|---|"]
        lines += [f"| {name} | {value / GIB:.2f} | {how} |" for name, value, how in self.rows]
        lines.append(f"| **total** | **{self.total / GIB:.2f}** | {self.verdict()} |")
        return "\n".join(lines)


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
    ("ZeRO-3 with offload_optimizer_device: cpu", _sharding("zero3", offload_optimizer=True)),
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

    optim = str(recipe.get("optim", "adamw_torch"))
    if launch.sharding == "fsdp" and mixed:
        # accelerate upcasts 16-bit parameters to fp32 under FSDP mixed precision.
        p.rows.append(("weights", 4 * local + b_act * largest, "fp32 shard + one gathered parameter (FSDP)"))
        p.rows.append(("gradients", 4 * local, "fp32 shard (FSDP)"))
        moments = 0 if launch.offload_params else 8 * local
        p.rows.append(("optimizer", moments, "Adam moments fp32 shard (FSDP)"))
    elif deepspeed:
        weights = (b_w * params / W + b_w * largest) if stage == 3 else b_w * params
        if launch.offload_params and stage == 3:
            weights = b_w * largest
        p.rows.append(("weights", weights, f"{dtype}{' shard + one gathered parameter' if stage == 3 else ''}"))
        grads = b_w * params / (W if stage >= 2 else 1)
        p.rows.append(("gradients", grads, f"{dtype}{', partitioned (ZeRO-2/3)' if stage >= 2 else ''}"))
        if launch.offload_optimizer:
            p.rows.append(("optimizer", 0.0, "offloaded to CPU"))
        else:
            master = 4 * params / W if b_w != 4 else 0
            p.rows.append(
                (
                    "optimizer",
                    master + 8 * params / W + 4 * params / W,
                    "fp32 master, Adam moments and fp32 gradient partition (over W)",
                )
            )
    else:
        p.rows.append(("weights", b_w * params, dtype))
        p.rows.append(("gradients", b_w * params, dtype))
        per_param = 2 if "8bit" in optim else (8 if recipe.get("use_dadamw") else 2 * b_w)
        p.rows.append(("optimizer", per_param * params, f"{optim}: {per_param} bytes per parameter"))

    if recipe.get("use_ewc"):
        store = BYTES.get(recipe.get("fisher_storage_dtype", "float32"), 4)
        on_gpu = 0 if recipe.get("fisher_offload") else 2 * store * local
        p.rows.append(
            (
                "EWC Fisher + anchors",
                on_gpu,
                "offloaded to CPU" if recipe.get("fisher_offload") else f"2 x {store} bytes per local parameter",
            )
        )
        chunk = int(recipe.get("fisher_chunk_size") or recipe.get("fisher_batch_size", 8))
        # Partitioned, a rank forms only the rows of each parameter its partition touches: ~1/W of the largest.
        rows_held = largest / W if sharded else largest
        held = "the rows of the largest parameter this rank holds" if sharded else "largest parameter"
        p.rows.append(
            (
                "Fisher estimation (transient, before training)",
                0.0,
                f"{chunk} x {held} fp32: {chunk * 4 * rows_held / GIB:.2f} GiB, not at once with training",
            )
        )
    if recipe.get("use_ema"):
        p.rows.append(
            (
                "EMA shadow",
                0 if recipe.get("ema_offload") else 4 * local,
                "fp32 per local parameter" if not recipe.get("ema_offload") else "offloaded",
            )
        )
    if recipe.get("use_trust_region"):
        p.rows.append(("trust-region reference", b_w * params / (W if stage == 3 else 1), f"frozen copy in {dtype}"))
    if is_grpo and float(recipe.get("beta", 0.0)) > 0:
        p.rows.append(("GRPO reference model", b_w * local, f"frozen copy in {dtype} (beta > 0)"))
    if is_grpo and recipe.get("use_vllm") and recipe.get("vllm_mode", "colocate") == "colocate":
        share = float(recipe.get("vllm_gpu_memory_utilization", 0.3))
        p.rows.append(("vLLM (colocated)", share * gpu_bytes, f"vllm_gpu_memory_utilization {share}"))

    h, layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
    if is_grpo:
        batch = int(recipe.get("per_device_train_batch_size", 8))
        length = int(recipe.get("max_prompt_length") or 512) + int(recipe.get("max_completion_length", 256))
    else:
        batch = int(recipe.get("per_device_train_batch_size", 8))
        length = int(recipe.get("max_length") or 4096)  # null: untruncated; 4096 as the fork's data are cut
    tokens = batch * length
    if recipe.get("gradient_checkpointing"):
        activations = b_act * tokens * h * (layers + ACTIVATION_VALUES_PER_LAYER)
        how = f"checkpointed: {batch} x {length} tokens, layer inputs + one layer"
    else:
        activations = b_act * tokens * h * ACTIVATION_VALUES_PER_LAYER * layers
        how = f"{batch} x {length} tokens, every layer's activations"
    p.rows.append(("activations", activations, how))
    if recipe.get("use_liger_kernel"):
        p.rows.append(("logits", 0.0, "Liger fused linear cross-entropy: not materialised"))
    elif is_grpo:  # TRL's selective log-softmax goes row by row: no fp32 copy of the logits
        p.rows.append(("logits", tokens * vocab * 2 * b_act, f"{batch} x {length} x {vocab}, and their gradient"))
    else:  # the causal-LM loss upcasts the logits to fp32
        p.rows.append(
            ("logits", tokens * vocab * (b_act + 8), f"{batch} x {length} x {vocab}, fp32 copy and its gradient")
        )
    return p


def plan_recipe(path: Path, accelerate_config: Path | None, processes: int | None, gpu_bytes: float) -> MemoryPlan:
    """Plan a recipe file: parsed by the entry point's own parser (its defaults count: TRL's gradient checkpointing,
    vLLM's memory share, ...), methods as the trainer enables them."""
    import dataclasses

    from .continual import enabled_methods
    from .recipes import VERSION_IN_NAME, _fields, _parse, entry_point, render

    match = VERSION_IN_NAME.search(path.name)
    raw = yaml.safe_load(render(path.read_text(), match.group(1) if match else "v00.00"))
    launch = Launch.from_config(accelerate_config, processes)
    kind = entry_point(path, raw)
    parsed, complaint = _parse(kind, {k: v for k, v in raw.items() if k in _fields(kind)}, launch.processes)
    if complaint is not None:
        raise ValueError(f"the recipe does not parse: {complaint}")
    recipe = {}
    for args in parsed:
        recipe.update({f.name: getattr(args, f.name) for f in dataclasses.fields(args)})
    recipe["bf16"], recipe["fp16"] = raw.get("bf16", False), raw.get("fp16", False)  # the parse drops them on CPU
    for check in parsed[1].continual_checks():  # the first turns EWC on for `custom_optim: fisher`
        check()
    methods = {method.name for method in enabled_methods(parsed[1])}
    recipe.update(
        {"use_ewc": "ewc" in methods, "use_ema": "ema" in methods, "use_trust_region": "trust_region" in methods}
    )
    recipe["is_grpo"] = kind == "grpo"
    return plan(recipe, launch, gpu_bytes)


def resident_kib(field: str = "VmRSS") -> int:
    """This process's resident memory from /proc/self/status (Linux), KiB: `VmRSS` now, `VmHWM` its peak. How the
    planner is checked against real runs (tests/helpers/measure_train_memory.py) and the benchmarks' peaks."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def parse_size(text: str) -> float:
    """'80GB', '80GiB', '141 GB' -> bytes (GB read as GiB, as GPU memory is quoted)."""
    number = float("".join(c for c in text if c.isdigit() or c == "."))
    unit = text.strip().upper().rstrip("IB").rstrip("B")[-1:]
    return number * {"G": GIB, "T": 1024 * GIB, "M": 2**20}.get(unit, GIB)
