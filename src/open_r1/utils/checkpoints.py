# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Which checkpoints a run can resume from, and files written so that a kill never leaves half a file.

A checkpoint is *complete* when everything the Trainer and the continual-learning methods write into it is there and
readable. The Trainer writes the model, then the methods' states (`continual_state*.pt`, every rank's before any rank
goes on), then the optimizer, scheduler and RNG states, and `trainer_state.json` last but for the Hub push and the
rotation of old checkpoints: a checkpoint without a readable `trainer_state.json` was cut off while being written.
Checks read headers and archive directories only, never whole weight files, so they take milliseconds whatever the
model's size.
"""

import json
import logging
import os
import re
import shutil
import tempfile
import zipfile

import torch


logger = logging.getLogger(__name__)

CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "adapter_model.safetensors")


def atomic_torch_save(obj, path: str) -> None:
    """torch.save to a temporary file beside `path`, then rename: `path` is either the old file or the whole new one."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".tmp-", suffix=".pt")
    os.close(handle)
    try:
        torch.save(obj, temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


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


def checkpoint_problems(checkpoint: str) -> list[str]:
    """What makes `checkpoint` incomplete or damaged; empty when a run can resume from it."""
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
    weights = [name for name in WEIGHT_FILES if os.path.exists(os.path.join(checkpoint, name))]
    if not weights:
        problems.append(f"no model weights ({', '.join(WEIGHT_FILES)})")
    for name in weights:
        if name.endswith(".safetensors"):
            problem = _safetensors_problem(os.path.join(checkpoint, name))
            if problem:
                problems.append(problem)
    for name in sorted(os.listdir(checkpoint)):
        if name.startswith("continual_state") and name.endswith(".pt"):
            problem = state_file_problem(os.path.join(checkpoint, name))
            if problem:
                problems.append(problem)
    return problems


def checkpoints_newest_first(output_dir: str) -> list[str]:
    if not os.path.isdir(output_dir):
        return []
    found = [(int(m.group(1)), name) for name in os.listdir(output_dir) if (m := CHECKPOINT_NAME.match(name))]
    return [os.path.join(output_dir, name) for _, name in sorted(found, reverse=True)]


def newest_complete_checkpoint(output_dir: str, before: str | None = None) -> str | None:
    """The newest complete checkpoint in `output_dir` (older than `before`, when given); each newer incomplete one is
    reported and skipped, never deleted."""
    for checkpoint in checkpoints_newest_first(output_dir):
        if before is not None and _step(checkpoint) >= _step(before):
            continue
        problems = checkpoint_problems(checkpoint)
        if not problems:
            return checkpoint
        logger.warning("Skipping incomplete checkpoint %s: %s", checkpoint, "; ".join(problems))
    return None


def _step(checkpoint: str) -> int:
    match = CHECKPOINT_NAME.match(os.path.basename(os.path.normpath(checkpoint)))
    return int(match.group(1)) if match else -1


def rotate_complete_checkpoints(output_dir: str, save_total_limit: int | None, keep: str | None = None) -> None:
    """Delete the oldest complete checkpoints beyond `save_total_limit`: the newest complete one and `keep` (the best
    model's) always stay, and incomplete ones are neither counted nor deleted."""
    if not save_total_limit or save_total_limit <= 0:
        return
    complete = [c for c in checkpoints_newest_first(output_dir) if not checkpoint_problems(c)]
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
