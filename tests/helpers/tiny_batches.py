"""The tiny model and assistant-masked batches for the torchrun helpers, built without a Trainer (no accelerate
state inside a hand-made process group), with the labels `test_grpo_fisher_data_masks_like_sft` shows equal to SFT's."""

from pathlib import Path

from datasets import load_from_disk
from transformers import AutoModelForCausalLM, AutoTokenizer

from open_r1.continual.retain_data import labelled_batches


def load_model(world_dir: Path):
    return AutoModelForCausalLM.from_pretrained(world_dir / "base_model", attn_implementation="eager")


def make_batches(world_dir: Path, split: str, n_rows: int, batch_size: int) -> list[dict]:
    """Rows of the world's `split` data set (retain or update) with assistant-only labels, right-padded; no Trainer
    inside the hand-made process group."""
    tokenizer = AutoTokenizer.from_pretrained(world_dir / "base_model")
    return labelled_batches(
        load_from_disk(str(world_dir / split))["train"].select(range(n_rows)), tokenizer, batch_size
    )
