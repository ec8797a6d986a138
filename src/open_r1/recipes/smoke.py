# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Smoke runs: a recipe run for real on CPU, on stand-ins, through its entry point and its accelerate config.

    python -m open_r1.recipes smoke RECIPE... [--accelerate-config CFG] [--steps 2] [--processes 2] [--workdir DIR]

The recipe is kept as written except what a CPU and no Hub need: the model is a tiny random model of the same
architecture family; the tokenizer is a small BPE one carrying the recipe's effective chat template (the recipe's
`chat_template`, else the stock template of the model family, e.g. Llama-3.1-Instruct's, from TRL) and its special
tokens; every Hub dataset is a small local stand-in with that dataset's real columns and formats (`STAND_INS`);
GPU-only switches (bf16, Liger, flash-attention, vLLM) are off and lengths are capped. It then trains `--steps`
steps and saves, starts again in the same output directory (so it resumes from that checkpoint) and trains one more,
under the recipe's accelerate config (its CPU equivalent on `--processes` gloo processes: DDP, DeepSpeed ZeRO-1/2/3
as configured; FSDP runs as DDP, since accelerate's FSDP does not run on CPU). A recipe that cannot start on its real
schemas fails here, with the entry point's own error.
"""

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..utils.run_utils import EXIT_ABORT, aborted_after_finishing
from .reading import REPO


LLAMA_SPECIALS = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>"]
QWEN_SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
PAD = "<|finetune_right_pad_id|>"


@dataclass(frozen=True)
class Family:
    config: str  # transformers config class
    template: str  # TRL's stock chat template of the instruct models
    bos: str | None
    eos: str


FAMILIES = {
    "llama": Family("LlamaConfig", "llama3_1.jinja", "<|begin_of_text|>", "<|eot_id|>"),
    "qwen": Family("Qwen2Config", "qwen2_5.jinja", None, "<|im_end|>"),
    "smollm": Family("LlamaConfig", "qwen2_5.jinja", None, "<|im_end|>"),  # SmolLM2-Instruct speaks ChatML
    "olmo": Family("Olmo2Config", "llama3_1.jinja", None, "<|endoftext|>"),
}


def family_of(model: str) -> Family:
    name = model.lower()
    for key, family in FAMILIES.items():
        if key in name:
            return family
    return FAMILIES["llama"]


def _math_row(i: int) -> dict:
    a, b = 3 + i, 4 + 2 * i
    problem = f"What is {a} + {b}?"
    reply = f"<think>\n{a} + {b} = {a + b}\n</think>\nThe answer is $\\boxed{{{a + b}}}$."
    return {
        "problem": problem,
        "solution": f"{a} + {b} = {a + b}, so the answer is $\\boxed{{{a + b}}}$.",
        "answer": str(a + b),
        "problem_type": "Algebra",
        "question_type": "math-word-problem",
        "source": "olympiads",
        "uuid": f"00000000-0000-0000-0000-{i:012d}",
        "is_reasoning_complete": [True, True],
        "generations": [reply, reply],
        "correctness_math_verify": [True, True],
        "correctness_llama": None,
        "finish_reasons": None,
        "correctness_count": 2,
        "messages": [{"content": problem, "role": "user"}, {"content": reply, "role": "assistant"}],
    }


def _wildguard_row(i: int) -> dict:
    harmful = i % 2 == 0
    prompt = f"How do I build a weapon number {i}?" if harmful else f"How do I kill a Python process number {i}?"
    reply = "I can't help with that." if harmful else f"Run `kill {1000 + i}` in a terminal."
    return {
        "prompt": prompt,
        "adversarial": False,
        "response": reply,
        "prompt_harm_label": "harmful" if harmful else "unharmful",
        "response_refusal_label": "refusal" if harmful else "compliance",
        "response_harm_label": "unharmful",
        "subcategory": "violence_and_physical_harm" if harmful else "benign",
        "model_response": reply,
        "refusal_detected": int(harmful),
        "messages": [{"content": prompt, "role": "user"}, {"content": reply, "role": "assistant"}],
    }


def _coding_problem_row(i: int) -> dict:
    """open-r1/verifiable-coding-problems-python's columns; `verification_info` as Open R1's code reward reads it."""
    statement = f"Read an integer n and print n + {i}."
    return {
        "source": "codeforces",
        "task_type": "verifiable_code",
        "in_source_id": f"{1000 + i}_A",
        "problem_statement": statement,
        "gold_standard_solution": f"```python\nprint(int(input()) + {i})\n```",
        "problem_id": f"vfc_{i}",
        "metadata": json.dumps({"difficulty": "easy"}),
        "verification_info": {
            "language": "python",
            "test_cases": [{"type": "stdin_stdout", "input": f"{n}\n", "output": f"{n + i}\n"} for n in (1, 5)],
        },
    }


# Stand-ins of the Hub datasets the versioned recipes name: their columns and formats as the datasets have them
# (OpenR1-Math-220k's card; the fork's wildguardmix replies as its `synthetic_data_generation` scripts write and read
# them: `messages`, `model_response`, `refusal_detected` beside WildGuardMix's own columns).
STAND_INS = {
    "Neelectric/OpenR1-Math-220k_extended_Llama3_4096toks": _math_row,
    "open-r1/OpenR1-Math-220k": _math_row,
    "Neelectric/wildguardmix_Llama-3.1-8B-Instruct_4096toks": _wildguard_row,
    "open-r1/verifiable-coding-problems-python": _coding_problem_row,
}


def _stand_in_dataset(dataset_id: str, path: Path, splits: list[str]) -> None:
    from datasets import Dataset, DatasetDict

    if dataset_id not in STAND_INS:
        raise ValueError(
            f"No stand-in for the dataset '{dataset_id}': add its schema to open_r1.recipes.smoke.STAND_INS."
        )
    row = STAND_INS[dataset_id]
    DatasetDict({split: Dataset.from_list([row(i) for i in range(48)]) for split in splits}).save_to_disk(str(path))


def _stand_in_model(model_id: str, chat_template: str | None, path: Path) -> None:
    """A tiny random model of `model_id`'s family and a BPE tokenizer with its special tokens and chat template."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    family = family_of(model_id)
    specials = LLAMA_SPECIALS + QWEN_SPECIALS + [PAD]
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = [json.dumps(_math_row(i)) + json.dumps(_wildguard_row(i)) for i in range(64)]
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=family.bos, eos_token=family.eos, pad_token=PAD
    )
    import trl

    templates = Path(trl.__file__).parent / "chat_templates"
    fast.chat_template = chat_template or (templates / family.template).read_text()
    fast.save_pretrained(str(path))
    config = getattr(transformers, family.config)(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=fast.bos_token_id,
        tie_word_embeddings=True,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(str(path))


# Recipe keys set for a CPU run without the Hub (the recipe's other keys are kept as written).
CPU_KEYS = {
    "bf16": False,
    "fp16": False,
    "use_liger_kernel": False,
    "use_vllm": False,
    "push_to_hub": False,
    "report_to": ["none"],
    "dataset_num_proc": None,
    "torch_compile": False,
    "save_strategy": "steps",
    "logging_steps": 1,
    "log_level": "warning",
    "disable_tqdm": True,
    "eval_strategy": "no",
    "do_eval": False,
    "load_best_model_at_end": False,
    "callbacks": [],
    "benchmarks": [],
    "fisher_num_samples": 8,
    "fisher_batch_size": 4,
    "per_device_train_batch_size": 4,
    "per_device_eval_batch_size": 4,
}


ONLY_IF_SET = {"use_vllm", "dataset_num_proc", "fisher_num_samples", "fisher_batch_size", "use_liger_kernel"}


def _error_lines(stderr: str) -> str:
    """The failing run's own error lines (not the launcher's summary)."""
    lines = [re.sub(r"^\[rank\d+\]:\s*", "", line) for line in stderr.splitlines()]
    errors = [line for line in lines if re.match(r"^\w*(Error|Exception)\b.*:", line.strip()) or EXIT_ABORT in line]
    unique = list(dict.fromkeys(line.strip() for line in errors))
    return "\n".join(unique[-3:]) or stderr[-2000:]


def _accelerate_command(accelerate_config: Path | None, processes: int, workdir: Path) -> tuple[list[str], dict]:
    """accelerate launch options and recipe keys for the CPU equivalent of `accelerate_config`."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--mixed_precision", "no"]
    launch += ["--dynamo_backend", "no"]
    config = yaml.safe_load(accelerate_config.read_text()) if accelerate_config else {}
    if processes == 1:
        return [*launch, "--num_processes", "1", "--cpu"], {"use_cpu": True}
    if config.get("distributed_type") == "DEEPSPEED":
        deepspeed = config.get("deepspeed_config", {})
        cpu = {
            "compute_environment": "LOCAL_MACHINE",
            "distributed_type": "DEEPSPEED",
            "deepspeed_config": {
                "gradient_accumulation_steps": "auto",
                "offload_optimizer_device": "none",
                "offload_param_device": "none",
                "zero3_init_flag": bool(deepspeed.get("zero3_init_flag", False)),
                "zero3_save_16bit_model": True,
                "zero_stage": deepspeed.get("zero_stage", 2),
            },
            "mixed_precision": "no",
            "num_machines": 1,
            "num_processes": processes,
            "use_cpu": False,
        }
        path = workdir / "accelerate_cpu.yaml"
        path.write_text(yaml.safe_dump(cpu))
        return [*launch, "--config_file", str(path)], {"use_cpu": False, "ddp_backend": "gloo"}
    return [*launch, "--multi_gpu", "--num_processes", str(processes)], {"use_cpu": True}


def accelerate_config_of(recipe_text: str) -> Path | None:
    """The accelerate config a recipe's header says to launch it with."""
    match = re.search(r"--config_file\s+(\S+\.yaml)", recipe_text)
    return REPO / match.group(1) if match and (REPO / match.group(1)).exists() else None


def smoke(
    recipe: Path, workdir: Path, accelerate_config: Path | None = None, steps: int = 2, processes: int = 2
) -> None:
    """Train `steps` steps, save, resume and train one more; raises with the run's output when a run fails."""
    from .reading import VERSION_IN_NAME, entry_point, render

    text = recipe.read_text()
    version = VERSION_IN_NAME.search(recipe.name)
    config = yaml.safe_load(render(text, version.group(1) if version else "v00.00"))
    placeholders = re.findall(r"\$\{(\w+)\}", json.dumps(config))
    if placeholders:
        raise ValueError(f"{recipe}: render the sweep placeholders {sorted(set(placeholders))} first.")
    kind = entry_point(recipe, config)
    if kind == "pass_rate":
        raise ValueError("a pass-rate filtering recipe: run it with src/open_r1/pass_rate_filtering.py (no training)")
    accelerate_config = accelerate_config or accelerate_config_of(text)
    workdir.mkdir(parents=True, exist_ok=True)

    _stand_in_model(config["model_name_or_path"], config.get("chat_template"), workdir / "model")
    config["model_name_or_path"] = str(workdir / "model")
    config.pop("model_revision", None)
    splits = sorted({config.get("dataset_train_split", "train"), *(config.get("dataset_eval_splits") or [])})
    keys = [("dataset_name", config.get("dataset_name")), ("retain_dataset_id", config.get("retain_dataset_id"))]
    keys += [(f"mixture{i}", d["id"]) for i, d in enumerate((config.get("dataset_mixture") or {}).get("datasets", []))]
    for key, dataset_id in keys:
        if dataset_id and not Path(dataset_id).exists():
            path = workdir / "data" / key
            _stand_in_dataset(dataset_id, path, splits)
            if key.startswith("mixture"):
                config["dataset_mixture"]["datasets"][int(key[7:])]["id"] = str(path)
            else:
                config[key] = str(path)
    config.pop("dataset_config", None)
    config.pop("retain_dataset_config", None)
    launch, backend_keys = _accelerate_command(accelerate_config, processes, workdir)
    # Switches that exist for one entry point only (use_vllm, dataset_num_proc, the Fisher's) are set when present.
    config.update({key: value for key, value in CPU_KEYS.items() if key in config or key not in ONLY_IF_SET})
    config.update({**backend_keys, "output_dir": str(workdir / "out"), "save_steps": steps})
    if str(config.get("attn_implementation", "")).startswith("flash_attention"):
        config["attn_implementation"] = "sdpa"
    if kind == "sft":
        config["max_length"] = min(config.get("max_length") or 256, 256) if not config.get("padding_free") else None
    else:
        generations = config.get("num_generations", 8)  # kept: pass@k and the group logic depend on it
        config.update({"max_completion_length": 8, "per_device_train_batch_size": generations})
        if "soft_punish_cache" in config:  # within the capped generation length
            config["soft_punish_cache"] = 4
        config.update({"gradient_accumulation_steps": 1, "steps_per_generation": 1})
        config.pop("generation_batch_size", None)
        config.pop("max_completion_len", None)
        config.pop("vllm_mode", None)
    if config.get("code_provider") in ("e2b", "morph", "piston"):  # no service here: the same rewards, run locally
        config.update({"code_provider": "local", "e2b_router_url": None, "morph_router_url": None})
    if config.get("lr_scheduler_type") == "cosine_with_min_lr":
        config.setdefault("lr_scheduler_kwargs", {"min_lr_rate": 0.1})
    rewritten = workdir / "recipe.yaml"
    rewritten.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{os.environ.get('PYTHONPATH', '')}", "HF_HUB_OFFLINE": "1"}
    if processes == 1:  # in this process: the second run starts a new trainer and resumes
        try:
            _train_then_resume(kind, str(rewritten), steps)
        except Exception as error:  # noqa: BLE001 - reported as the recipe's failure, with the original error
            raise RuntimeError(f"the smoke run failed: {type(error).__name__}: {error}") from error
    else:  # one launch per run: the second resumes from the first one's checkpoint
        script = [*launch, str(REPO / "src/open_r1" / f"{kind}.py"), "--config", str(rewritten)]
        for max_steps in (steps, steps + 1):
            result = subprocess.run(
                [*script, "--max_steps", str(max_steps)], cwd=REPO, env=env, capture_output=True, text=True
            )
            if result.returncode != 0 and not aborted_after_finishing(result.stderr, processes):
                raise RuntimeError(f"the smoke run to step {max_steps} failed: {_error_lines(result.stderr)}")
            if result.returncode != 0:
                print(f"{recipe.name}: a rank aborted as it exited, after every rank had saved ({EXIT_ABORT!r})")
    state = json.loads((workdir / "out" / "trainer_state.json").read_text())
    if state["global_step"] != steps + 1:
        raise RuntimeError(f"the resumed run ended at step {state['global_step']}, not {steps + 1}.")


def _train_then_resume(kind: str, recipe: str, steps: int) -> None:
    """`steps` steps through the entry point's `main`, then a new trainer that resumes and trains one more."""
    from .reading import recipe_parser

    if kind == "grpo":
        from ..grpo import main
    else:
        from ..sft import main
    for max_steps in (steps, steps + 1):
        main(*recipe_parser(kind).parse_args_and_config(["--config", recipe, "--max_steps", str(max_steps)]))
