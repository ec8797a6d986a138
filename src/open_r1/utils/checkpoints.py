# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Which checkpoints a run can resume from, and files written so that a kill never leaves half a file.

A checkpoint is *complete* when everything the Trainer and the continual-learning methods write into it is there and
readable. The Trainer writes the model, then the methods' states (`continual_state*.pt`, every rank's before any rank
goes on), then the optimizer, scheduler and RNG states (every rank's, whole, before any rank goes on), and
`trainer_state.json` last but for the Hub push and the rotation of old checkpoints: a checkpoint without a readable
`trainer_state.json` was cut off while being written. The weights are any of the layouts the Trainer writes: one
safetensors or bin file, a sharded safetensors index and its shards, FSDP's sharded state dict (a
`pytorch_model_fsdp_0/` distributed-checkpoint directory) or its per-rank files, or DeepSpeed's own (`latest` and
its `global_step*/` model states, ZeRO-3 without 16-bit weights). Checks read headers, archive
directories and file sizes only, never whole weight files, so they take milliseconds whatever the model's size.

A run with continual-learning methods also needs their states: `state_files` (the files the resuming run will read)
and `state_keys` (its methods' names) make a checkpoint without them, or whose state lacks a method, incomplete for
that run, on every path that picks a checkpoint (a plain restart, a named one, the rotation).
"""

import glob
import json
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence

import torch


logger = logging.getLogger(__name__)

CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
# The recipe of the run that wrote a checkpoint (see utils.run_utils.check_resume_matches).
RECIPE_FILE = "open_r1_recipe.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "adapter_model.safetensors")
# FSDP's own layouts (accelerate's `save_fsdp_model`): SHARDED_STATE_DICT, a distributed-checkpoint directory per model;
# LOCAL_STATE_DICT, one torch.save file per rank; FULL_STATE_DICT, one torch.save file.
FSDP_WEIGHTS = ("pytorch_model_fsdp_*", "pytorch_model_fsdp*.bin")


def _atomic_write(path: str, write, suffix: str) -> None:
    """`write(temporary)` into a temporary file beside `path`, then rename: `path` is either the old file or the whole
    new one. Its folder is made if missing: under ZeRO-3 a rank may write its state before rank 0 has written the
    model."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".tmp-", suffix=suffix)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def atomic_torch_save(obj, path: str) -> None:
    """torch.save into `path`, whole or not at all."""
    _atomic_write(path, lambda temporary: torch.save(obj, temporary), ".pt")


def atomic_write_text(text: str, path: str) -> None:
    """`text` into `path`, whole or not at all."""

    def write(temporary: str) -> None:
        with open(temporary, "w") as handle:
            handle.write(text)

    _atomic_write(path, write, ".txt")


def _safetensors_problem(path: str) -> str | None:
    """Why a safetensors file cannot be loaded, from its header: unreadable, or shorter than the tensors it lists."""
    name, size = os.path.basename(path), os.path.getsize(path)
    try:
        with open(path, "rb") as handle:
            header_length = int.from_bytes(handle.read(8), "little")
            if not 0 < header_length <= size - 8:
                raise ValueError(f"header length {header_length} for a file of {size} bytes")
            header = json.loads(handle.read(header_length))
        end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        return f"{name} is not a readable safetensors file ({error})"
    if 8 + header_length + end > size:
        return f"{name} is truncated ({size} bytes of {8 + header_length + end})"
    return None


def state_file_problem(path: str) -> str | None:
    """Why a `torch.save` file cannot be loaded (truncated, not a torch file), read from its archive directory."""
    name = os.path.basename(path)
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(entry.endswith("data.pkl") for entry in archive.namelist()):
                return f"{name} is a zip archive but not a torch.save file"
    except zipfile.BadZipFile:
        return f"{name} is truncated or not a torch.save file (no readable archive directory)"
    return None


def _safetensors_index_problems(path: str) -> list[str]:
    """Why the shards a `model.safetensors.index.json` lists cannot be loaded: the index, or a shard missing or damaged."""
    try:
        with open(path) as handle:
            shards = sorted(set(json.load(handle)["weight_map"].values()))
        if not all(isinstance(shard, str) for shard in shards):
            raise TypeError("its weight_map's values are not file names")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as error:
        return [f"{os.path.basename(path)} is not a readable safetensors index ({error})"]
    problems = []
    for shard in shards:
        shard_path = os.path.join(os.path.dirname(path), shard)
        if not os.path.isfile(shard_path):
            problems.append(f"{shard} (listed in {os.path.basename(path)}) is missing")
        elif problem := _safetensors_problem(shard_path):
            problems.append(problem)
    return problems


def _distributed_checkpoint_problems(directory: str) -> list[str]:
    """Why a torch distributed checkpoint directory (FSDP's sharded state dict) cannot be loaded: its `.metadata`
    unreadable, or a file it lists missing or shorter than the tensors it places there."""
    from torch.distributed.checkpoint import FileSystemReader

    name = os.path.basename(directory)
    try:
        metadata = FileSystemReader(directory).read_metadata()
    except Exception as error:  # noqa: BLE001 - missing, truncated or foreign: name the directory
        return [f"{name}/.metadata cannot be read ({type(error).__name__}: {error})"]
    needed: dict[str, int] = {}
    for info in (metadata.storage_data or {}).values():
        needed[info.relative_path] = max(needed.get(info.relative_path, 0), info.offset + info.length)
    problems = []
    for relative_path, size in sorted(needed.items()):
        path = os.path.join(directory, relative_path)
        if not os.path.isfile(path):
            problems.append(f"{name}/{relative_path} is missing")
        elif os.path.getsize(path) < size:
            problems.append(f"{name}/{relative_path} is truncated ({os.path.getsize(path)} bytes of {size})")
    return problems


def _deepspeed_problems(checkpoint: str) -> list[str]:
    """DeepSpeed's own layout (ZeRO-3 without `zero3_save_16bit_model`: no consolidated weights): `latest` names a
    `global_step*` folder whose model-state files must be whole."""
    try:
        with open(os.path.join(checkpoint, "latest")) as handle:
            tag = handle.read().strip()
    except (OSError, UnicodeDecodeError) as error:
        return [f"latest cannot be read ({error})"]
    states = sorted(glob.glob(os.path.join(checkpoint, glob.escape(tag), "*model_states.pt")))
    if not tag or not states:
        return [f"latest names {tag!r}, which holds no *model_states.pt"]
    return [f"{tag}/{problem}" for path in states if (problem := state_file_problem(path))]


def _weight_problems(checkpoint: str) -> list[str]:
    weights = [name for name in WEIGHT_FILES if os.path.exists(os.path.join(checkpoint, name))]
    fsdp = sorted({path for pattern in FSDP_WEIGHTS for path in glob.glob(os.path.join(checkpoint, pattern))})
    if not weights and not fsdp:
        if os.path.exists(os.path.join(checkpoint, "latest")):
            return _deepspeed_problems(checkpoint)
        return [f"no model weights ({', '.join(WEIGHT_FILES + FSDP_WEIGHTS)}, or DeepSpeed's `latest`)"]
    problems = []
    for name in weights:
        path = os.path.join(checkpoint, name)
        if name.endswith(".safetensors"):
            problems += [problem] if (problem := _safetensors_problem(path)) else []
        elif name.endswith(".index.json"):
            problems += _safetensors_index_problems(path)
        else:
            problems += [problem] if (problem := state_file_problem(path)) else []
    for path in fsdp:
        if os.path.isdir(path):
            problems += _distributed_checkpoint_problems(path)
        elif problem := state_file_problem(path):
            problems.append(problem)
    return problems


def _state_problems(checkpoint: str, state_files: Sequence[str], state_keys: Sequence[str]) -> list[str]:
    """Why the continual states a resuming run reads are not all there: a file missing, or without some method's state
    (read through a memory map: the tensors are not loaded)."""
    problems = []
    for name in state_files:
        path = os.path.join(checkpoint, name)
        if not os.path.exists(path):
            problems.append(f"{name} is missing (the run's methods {list(state_keys)} need their states)")
            continue
        if state_file_problem(path):
            continue  # reported with every state file's damage
        try:
            states = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except Exception as error:  # noqa: BLE001 - whatever the unpickler says, name the file
            problems.append(f"{name} cannot be loaded ({type(error).__name__}: {error})")
            continue
        missing = [key for key in state_keys if not isinstance(states, dict) or key not in states]
        if missing:
            problems.append(f"{name} has no state for {missing}")
    return problems


def checkpoint_problems(checkpoint: str, state_files: Sequence[str] = (), state_keys: Sequence[str] = ()) -> list[str]:
    """What makes `checkpoint` incomplete or damaged; empty when a run can resume from it (a run with methods: with
    the `state_files` it reads, holding `state_keys`)."""
    problems = []
    state = os.path.join(checkpoint, "trainer_state.json")
    if not os.path.exists(state):
        problems.append("trainer_state.json is missing (the checkpoint was cut off while being written)")
    else:
        try:
            with open(state) as handle:
                json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            problems.append(f"trainer_state.json does not parse ({error})")
    problems += _weight_problems(checkpoint)
    for name in sorted(os.listdir(checkpoint)):
        is_state = name.startswith("continual_state") and name.endswith(".pt")
        if is_state or (name.startswith("rng_state") and name.endswith(".pth")):
            problem = state_file_problem(os.path.join(checkpoint, name))
            if problem:
                problems.append(problem)
    return problems + _state_problems(checkpoint, state_files, state_keys)


def checkpoints_newest_first(output_dir: str) -> list[str]:
    if not os.path.isdir(output_dir):
        return []
    found = [(int(m.group(1)), name) for name in os.listdir(output_dir) if (m := CHECKPOINT_NAME.match(name))]
    return [os.path.join(output_dir, name) for _, name in sorted(found, reverse=True)]


def newest_complete_checkpoint(output_dir: str, before: str | None = None, **requirements) -> str | None:
    """The newest complete checkpoint in `output_dir` (older than `before`, when given; `requirements`: the
    continual states the run needs, as `checkpoint_problems` takes them); each newer incomplete one is reported and
    skipped, never deleted."""
    for checkpoint in checkpoints_newest_first(output_dir):
        if before is not None and _step(checkpoint) >= _step(before):
            continue
        problems = checkpoint_problems(checkpoint, **requirements)
        if not problems:
            return checkpoint
        logger.warning("Skipping incomplete checkpoint %s: %s", checkpoint, "; ".join(problems))
    return None


def _step(checkpoint: str) -> int:
    match = CHECKPOINT_NAME.match(os.path.basename(os.path.normpath(checkpoint)))
    return int(match.group(1)) if match else -1


def rotate_complete_checkpoints(
    output_dir: str, save_total_limit: int | None, keep: str | None = None, **requirements
) -> None:
    """Delete the oldest complete checkpoints beyond `save_total_limit`: the newest complete one and `keep` (the best
    model's) always stay, and incomplete ones are neither counted nor deleted."""
    if not save_total_limit or save_total_limit <= 0:
        return
    complete = [c for c in checkpoints_newest_first(output_dir) if not checkpoint_problems(c, **requirements)]
    protected = {os.path.normpath(c) for c in complete[:1] + ([keep] if keep else [])}
    room = max(save_total_limit, len(protected)) - len(protected)
    for checkpoint in complete:  # newest first
        if os.path.normpath(checkpoint) in protected:
            continue
        if room > 0:
            room -= 1
            continue
        logger.info("Deleting checkpoint %s (save_total_limit %d)", checkpoint, save_total_limit)
        shutil.rmtree(checkpoint, ignore_errors=True)
