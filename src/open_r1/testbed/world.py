# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Build the testbed world: data sets, tokenizer, a tiny Llama, and a base model trained on the retain task.

Everything is deterministic from `WorldConfig.seed` on one kind of CPU and runs offline (the base model's weights
also depend on the vector kernels ATen picks for the CPU: `build_record`). Layout of a built world:

    <root>/retain/           DatasetDict (train, validation, test) saved with `save_to_disk`: validation and test
                             hold whole tasks (`data.split_tasks`), never trained on
    <root>/update/           DatasetDict (train, validation, test)
    <root>/code/             DatasetDict (train, test): tiny programming tasks for the code rewards
    <root>/eval/             the held-out splits as JSONL, `{retain,update,instructions}/{validation,test}.jsonl`;
                             instructions: the held-out benign tasks with a format instruction each, in IFEval's
                             format. Every choice (sweeps, `recommended`) is made on validation; test is reported
    <root>/init_model/       tokenizer + randomly initialised LlamaForCausalLM
    <root>/base_model/       the init model after SFT on retain/train: the starting point of every experiment
    <root>/world.json        the config it was built from, the build record and the base model's scores
"""

import dataclasses
import hashlib
import json
import logging
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from .data import make_code_splits, make_instruction_splits, make_retain_splits, make_update_splits, split_tasks


logger = logging.getLogger(__name__)

DEFAULT_ROOT = Path(os.environ.get("OPEN_R1_TESTBED_DIR", "data/testbed"))

# Chat roles are special tokens; `<think>` tags are plain added tokens so decoding keeps them.
SPECIAL_TOKENS = ["<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
THINK_TOKENS = ["<think>", "</think>"]

# `{% generation %}` marks the assistant tokens, so TRL's `assistant_only_loss` and the Fisher masks see them.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' }}{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


@dataclass
class WorldConfig:
    """Sizes of the world. `default` is the embedded default; `small` trades a little quality for test speed."""

    seed: int = field(default=42, metadata={"help": "Seed of the data, tokenizer, initial weights and training."})
    harmful_held_out_per_category: int = field(
        default=1,
        metadata={
            "help": "Harmful tasks per harm category held out for validation, and as many for test (every phrasing "
            "of a held-out task is held out)."
        },
    )
    benign_held_out_tasks: int = field(
        default=14, metadata={"help": "Benign tasks held out for validation, and as many for test."}
    )
    instructions: bool = field(
        default=True,
        metadata={
            "help": "Format-instruction rows (IFEval's checkers) on the benign train tasks join retain/train; the "
            "validation and test benign tasks get instruction prompts of their own (the instruction-following score)."
        },
    )
    update_train_size: int = field(default=2000, metadata={"help": "Number of training word problems."})
    update_validation_size: int = field(default=200, metadata={"help": "Number of validation word problems."})
    update_test_size: int = field(default=200, metadata={"help": "Number of test word problems."})
    vocab_size: int = field(default=768, metadata={"help": "BPE vocabulary size, special tokens included."})
    hidden_size: int = field(default=128, metadata={"help": "Llama hidden size."})
    intermediate_size: int = field(default=384, metadata={"help": "Llama MLP size."})
    num_hidden_layers: int = field(default=4, metadata={"help": "Number of decoder layers."})
    num_attention_heads: int = field(default=4, metadata={"help": "Number of attention heads."})
    max_position_embeddings: int = field(default=256, metadata={"help": "Longest sequence the model takes."})
    base_epochs: float = field(default=12.0, metadata={"help": "Epochs of retain SFT that make the base model."})
    base_learning_rate: float = field(default=3e-3, metadata={"help": "Peak learning rate of the base model SFT."})
    base_batch_size: int = field(default=32, metadata={"help": "Batch size of the base model SFT."})
    base_max_steps: int = field(default=-1, metadata={"help": "Cap on base SFT steps (-1: run all epochs)."})

    @classmethod
    def preset(cls, name: str, **overrides) -> "WorldConfig":
        presets = {
            "default": {},
            "small": {
                "update_train_size": 600,
                "update_validation_size": 100,
                "update_test_size": 100,
                "base_epochs": 10.0,
            },
        }
        if name not in presets:
            raise ValueError(f"Unknown testbed preset {name!r}; choose one of {sorted(presets)}.")
        return cls(**{**presets[name], **overrides})


@dataclass
class WorldPaths:
    root: Path

    @property
    def retain(self) -> Path:
        return self.root / "retain"

    @property
    def update(self) -> Path:
        return self.root / "update"

    @property
    def code(self) -> Path:
        """Tiny programming tasks for the code rewards (not part of the tokenizer or the base model)."""
        return self.root / "code"

    @property
    def init_model(self) -> Path:
        return self.root / "init_model"

    @property
    def base_model(self) -> Path:
        return self.root / "base_model"

    @property
    def manifest(self) -> Path:
        return self.root / "world.json"

    @property
    def eval_dir(self) -> Path:
        """The held-out splits as JSONL, the form lighteval's `load_dataset` reads (`testbed:*` tasks)."""
        return self.root / "eval"

    def eval_file(self, name: str, split: str = "test") -> Path:
        """The JSONL of one held-out split: `name` retain, update or instructions; `split` validation or test."""
        return self.eval_dir / name / f"{split}.jsonl"

    @property
    def instructions_eval(self) -> Path:
        """Test instruction-following prompts in IFEval's format (`testbed:instructions`); absent in worlds without
        them."""
        return self.eval_file("instructions")

    @property
    def has_validation(self) -> bool:
        """Whether the world has a validation split to select on (worlds built before it have train and test)."""
        return self.eval_file("retain", "validation").exists()


def build_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE trained on `texts`, wrapped as a `PreTrainedTokenizerFast` with the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS + THINK_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<|pad|>", eos_token="<|end|>", model_max_length=256
    )
    # The BPE trainer registered the think tags as special; re-add them as ordinary tokens (same ids).
    wrapped.add_tokens(THINK_TOKENS, special_tokens=False)
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def build_init_model(config: WorldConfig, tokenizer):
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(config.seed)
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_attention_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(model_config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False, max_new_tokens=64
    )
    return model


def _save_splits(splits: dict[str, list[dict]], path: Path) -> None:
    from datasets import Dataset, DatasetDict

    DatasetDict({name: Dataset.from_list(rows) for name, rows in splits.items()}).save_to_disk(str(path))


def write_jsonl(rows, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_eval_splits(paths: WorldPaths) -> None:
    """`eval/{retain,update}/{validation,test}.jsonl`: the held-out splits, for scoring and the `testbed:*` tasks."""
    from datasets import load_from_disk

    for name in ("retain", "update"):
        data = load_from_disk(str(paths.root / name))
        for split in ("validation", "test"):
            if split in data:
                write_jsonl(data[split], paths.eval_file(name, split))


def train_base_model(config: WorldConfig, paths: WorldPaths, train_rows: list[dict]) -> None:
    """SFT of the initial model on retain/train, through the same TRL trainer the project's SFT uses."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(paths.init_model)
    model = AutoModelForCausalLM.from_pretrained(paths.init_model)
    # In memory, so that no map caches land in the world directory and its bytes stay a function of the seed.
    train = Dataset.from_list([{"messages": row["messages"]} for row in train_rows])
    args = SFTConfig(
        output_dir=str(paths.root / "base_model_run"),
        seed=config.seed,
        num_train_epochs=config.base_epochs,
        max_steps=config.base_max_steps,
        per_device_train_batch_size=config.base_batch_size,
        learning_rate=config.base_learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        weight_decay=0.0,
        assistant_only_loss=True,
        max_length=config.max_position_embeddings,
        bf16=False,
        gradient_checkpointing=False,
        use_cpu=True,
        save_strategy="no",
        report_to="none",
        logging_steps=20,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    trainer.train()
    # Not `trainer.save_model`: its training_args.bin holds run paths, which would make worlds differ by location.
    trainer.model.save_pretrained(paths.base_model)
    tokenizer.save_pretrained(paths.base_model)
    shutil.rmtree(args.output_dir, ignore_errors=True)


def build_record(base_model: Path) -> dict:
    """What a build's base model is, beyond its config: the sha256 of its weights (of `model.safetensors`, as
    `sha256sum` gives it; of a sharded save, of its shards in name order), and the torch and CPU kernels (ATen's
    vector ISA) that trained it. The same seed and config give the same data but other weights on another kind of
    CPU (float sums in another order), so runs and tables are comparable within one build only."""
    import torch

    shards = sorted(base_model.glob("*.safetensors"))
    if not shards:
        raise FileNotFoundError(f"{base_model}: no .safetensors weights to record")
    sha256 = hashlib.sha256()
    for shard in shards:
        with open(shard, "rb") as weights:
            for block in iter(lambda: weights.read(1 << 20), b""):
                sha256.update(block)
    return {
        "base_model_sha256": sha256.hexdigest(),
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def build_world(
    root: str | os.PathLike = DEFAULT_ROOT, config: WorldConfig | None = None, force: bool = False, score: bool = True
) -> WorldPaths:
    """Build (or reuse, when a world of the same config is already at `root`) the whole testbed world."""
    config = config or WorldConfig()
    paths = WorldPaths(Path(root))
    config_dict = dataclasses.asdict(config)
    if paths.manifest.exists() and not force:
        manifest = json.loads(paths.manifest.read_text())
        if manifest["config"] == config_dict:
            logger.info("Reusing the testbed world at %s", paths.root)
            if not paths.eval_dir.exists():  # worlds built before the evaluation tasks existed
                write_eval_splits(paths)
            if not paths.code.exists():  # worlds built before the code tasks existed
                _save_splits(make_code_splits(config.seed), paths.code)
            return paths
        raise FileExistsError(
            f"A testbed world built from another config is at {paths.root}; pass force=True (--force; make demo "
            f"FORCE=1) to rebuild it or choose another directory. Differences: "
            f"{ {k: (manifest['config'].get(k), v) for k, v in config_dict.items() if manifest['config'].get(k) != v} }"
        )
    if paths.root.exists():
        shutil.rmtree(paths.root)
    paths.root.mkdir(parents=True)
    datasets.disable_progress_bars()

    tasks = split_tasks(config.seed, config.harmful_held_out_per_category, config.benign_held_out_tasks)
    retain = make_retain_splits(tasks, config.seed)
    instructions = {}
    if config.instructions:
        instructions = make_instruction_splits(tasks, config.seed)
        retain["train"] = retain["train"] + instructions.pop("train")
        random.Random(config.seed).shuffle(retain["train"])
    update = make_update_splits(
        config.seed, config.update_train_size, config.update_validation_size, config.update_test_size
    )
    _save_splits(retain, paths.retain)
    _save_splits(update, paths.update)
    _save_splits(make_code_splits(config.seed), paths.code)
    write_eval_splits(paths)
    for split, rows in instructions.items():
        write_jsonl(rows, paths.eval_file("instructions", split))

    # From the train splits alone: a held-out task's words reach the model as pieces it trained on, not as tokens
    # whose embeddings no training step ever touched.
    texts = [message["content"] for row in retain["train"] + update["train"] for message in row["messages"]]
    tokenizer = build_tokenizer(texts, config.vocab_size)
    model = build_init_model(config, tokenizer)
    model.save_pretrained(paths.init_model)
    tokenizer.save_pretrained(paths.init_model)
    logger.info("Initial model: %.2fM parameters", model.num_parameters() / 1e6)

    train_base_model(config, paths, retain["train"])

    manifest = {"config": config_dict, "build": build_record(paths.base_model)}
    if score:
        from .scoring import score_model

        manifest["base_scores"] = score_model(paths.base_model, paths).as_dict()
        manifest["base_validation_scores"] = score_model(paths.base_model, paths, split="validation").as_dict()
    paths.manifest.write_text(json.dumps(manifest, indent=2) + "\n")
    return paths
