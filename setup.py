# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
#
# Dependencies are pinned in `_deps`, as in Open R1, and installed through the extras below.
# torch is only lower-bounded so that a CUDA build already installed on a GPU node is kept; on CPU machines
# `make install` installs torch==2.13.0 first (see the Makefile), before anything that depends on it.

import re

from setuptools import find_packages, setup


_deps = [
    "accelerate==1.15.0",
    "bitsandbytes>=0.45",
    "datasets==5.2.0",
    "deepspeed==0.19.8",
    "e2b-code-interpreter>=1.0.4",
    "hf_transfer>=0.1.4",
    "huggingface-hub>=1.0",
    "flash-attn>=2.7",
    "gguf>=0.17",
    "hypothesis>=6.100",
    "jieba>=0.42.1",
    "langdetect==1.0.9",
    "liger-kernel>=0.5",
    "math-verify==0.9.0",
    "matplotlib>=3.8",
    "morphcloud>=0.1.67",
    "nltk==3.9.1",
    "packaging>=23.0",
    "peft==0.21.2",
    "pytest",
    "python-dotenv>=1.0",
    "pyyaml>=6.0",
    "requests>=2.31",
    "ruff>=0.9.0",
    "safetensors>=0.4.5",
    "sentencepiece>=0.1.99",
    "tokenizers>=0.22",
    "torch>=2.6.0",
    "transformers==5.24.0",
    "trl==1.16.0",
    "vllm<=0.31.0",
    "wandb>=0.19.1",
]

# {"accelerate": "accelerate==1.15.0", ...}
deps = {b: a for a, b in (re.findall(r"^(([^!=<>~ \[\]]+)(?:\[[^\]]+\])?(?:[!=<>~ ].*)?$)", x)[0] for x in _deps)}


def deps_list(*pkgs):
    return [deps[pkg] for pkg in pkgs]


extras = {}
# DeepSpeed runs on CPU (gloo), so its ZeRO code paths are tested in CI too.
extras["tests"] = deps_list("pytest", "hypothesis", "deepspeed", "gguf", "jieba")
extras["quality"] = deps_list("ruff")
extras["plots"] = deps_list("matplotlib")
extras["wandb"] = deps_list("wandb")
extras["deepspeed"] = deps_list("deepspeed")
extras["vllm"] = deps_list("vllm")  # CUDA only; generation falls back to transformers without it
# Kernels and optimizers the fork's recipes use (`use_liger_kernel`, `attn_implementation: flash_attention_2`,
# `optim: paged_adamw_8bit`): GPU only (flash-attn compiles against the installed CUDA torch), never needed on CPU.
extras["liger"] = deps_list("liger-kernel")
extras["flash"] = deps_list("flash-attn")
extras["bnb"] = deps_list("bitsandbytes")
extras["gguf"] = deps_list("gguf")  # `python -m open_r1.utils.gguf_import`: train on a GGUF checkpoint
# Remote code sandboxes for the code rewards (`code_provider: e2b | morph` without a router); the local sandbox and
# Piston need nothing beyond the base install.
extras["code"] = deps_list("e2b-code-interpreter", "morphcloud")
# `repetition_language: zh` splits words with jieba, as Open R1.
extras["zh"] = deps_list("jieba")
extras["dev"] = extras["quality"] + extras["tests"] + extras["plots"]

# nltk and langdetect: IFEval's instruction checkers (lighteval's, installed by `make install` without its
# dependencies), which score the worlds' instruction-following prompts.
install_requires = deps_list(
    "accelerate",
    "datasets",
    "hf_transfer",
    "huggingface-hub",
    "langdetect",
    "math-verify",
    "nltk",
    "packaging",
    "peft",
    "python-dotenv",
    "pyyaml",
    "requests",
    "safetensors",
    "sentencepiece",
    "tokenizers",
    "torch",
    "transformers",
    "trl",
)

setup(
    name="open-r1-safety",
    version="0.1.0.dev0",
    author="The open-r1-safety authors",
    description="Safety-preserving continual learning for reasoning models, on top of Open R1",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache 2.0",
    url="https://github.com/Neelectric/open-r1_safety",
    package_dir={"": "src"},
    packages=find_packages("src"),
    package_data={"open_r1.eval": ["ifeval_fixture/*.jsonl"]},  # IFEval's offline fixture (not under data/: ignored)
    zip_safe=False,
    extras_require=extras,
    python_requires=">=3.10.9",
    install_requires=install_requires,
    classifiers=[
        "Intended Audience :: Science/Research",
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
