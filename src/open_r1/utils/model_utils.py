# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Tokenizer and model loading from a hub id or a local directory (Open R1's `get_tokenizer` / `get_model`)."""

import torch
from accelerate import PartialState
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizer
from trl import ModelConfig, get_quantization_config

from .data import check_source


def get_tokenizer(model_args: ModelConfig, training_args) -> PreTrainedTokenizer:
    """The model's tokenizer, with the recipe's `chat_template` when it sets one."""
    tokenizer = AutoTokenizer.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
    )
    if getattr(training_args, "chat_template", None) is not None:
        tokenizer.chat_template = training_args.chat_template
    return tokenizer


def get_model(model_args: ModelConfig, training_args) -> AutoModelForCausalLM:
    """The causal LM with the recipe's dtype, attention implementation and optional k-bit quantization."""
    dtype = model_args.dtype if model_args.dtype in ("auto", None) else getattr(torch, model_args.dtype)
    quantization_config = get_quantization_config(model_args)
    return AutoModelForCausalLM.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
        attn_implementation=model_args.attn_implementation,
        dtype=dtype,
        use_cache=not training_args.gradient_checkpointing,
        # k-bit weights cannot be moved after loading, so each process loads them onto its own device.
        device_map={"": PartialState().local_process_index} if quantization_config is not None else None,
        quantization_config=quantization_config,
    )


def check_model_args(model_args: ModelConfig) -> None:
    """The model keys' values (the recipe checker runs this too)."""
    if not model_args.model_name_or_path:
        raise ValueError("`model_name_or_path` must be set.")
    dtype = model_args.dtype
    if dtype not in ("auto", None) and not isinstance(getattr(torch, str(dtype), None), torch.dtype):
        raise ValueError(f"`dtype`: unknown torch dtype {dtype!r}; use auto, bfloat16, float16 or float32.")


def check_model_source(model_args: ModelConfig) -> None:
    """The model's values and its path (or Hub reachability), before anything is loaded."""
    check_model_args(model_args)
    check_source(model_args.model_name_or_path, "model_name_or_path", kind="model")
