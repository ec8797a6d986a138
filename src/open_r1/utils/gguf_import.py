# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Import a GGUF checkpoint as a normal transformers checkpoint directory, to train on it.

    python -m open_r1.utils.gguf_import MODEL.gguf OUT_DIR [--dtype float32]

transformers reads GGUF files (with the `gguf` package: `pip install -e ".[gguf]"`) and dequantises them, but a
model loaded that way keeps a GGUF `quantization_config` and refuses `save_pretrained`. This builds the same
architecture from the config without it, loads the dequantised weights into it and saves weights, config, tokenizer and
chat template, so every entry point (and `from_pretrained`) can use the directory. Architectures transformers cannot
dequantise, and files that are not GGUF, stop with the file named and what is wrong.
"""

import argparse
import sys
from pathlib import Path

import torch


GGUF_MAGIC = b"GGUF"


def import_gguf(gguf_file: str | Path, out_dir: str | Path, dtype: str = "float32") -> Path:
    """Write `gguf_file` as a transformers checkpoint in `out_dir`; returns `out_dir`."""
    path, out_dir = Path(gguf_file), Path(out_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such GGUF file.")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise ValueError(f"{path}: not a GGUF file (it starts with {magic!r}, a GGUF file with {GGUF_MAGIC!r}).")
    try:
        import gguf  # noqa: F401 - transformers' reader needs it
    except ImportError as error:
        raise ImportError("Reading GGUF files needs the `gguf` package: pip install -e '.[gguf]'.") from error
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype)
    try:
        loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch_dtype)
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except (ValueError, KeyError, NotImplementedError, RuntimeError) as error:
        raise ValueError(f"{path}: transformers cannot load this GGUF checkpoint ({error}).") from error
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(loaded)(config).to(torch_dtype)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m open_r1.utils.gguf_import", description=__doc__)
    parser.add_argument("gguf_file", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = parser.parse_args(argv)
    out = import_gguf(args.gguf_file, args.out_dir, args.dtype)
    print(f"{args.gguf_file} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
