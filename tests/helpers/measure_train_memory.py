# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Peak memory of a real CPU training run, for the memory planner's validation: a Llama of the given size (built
from a config, the world's tokenizer) trained a few steps by the project's SFT trainer with the given methods.

    python tests/helpers/measure_train_memory.py WORLD OUT_JSON --hidden 768 --layers 6 [--ewc] [--ema]

Prints the peak of torch's allocations from just before the model is created to the end of training (the profiler's
memory events: on CPU what `torch.cuda.max_memory_allocated` is on a GPU), and the planner's prediction for the same
settings."""

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("world")
    parser.add_argument("out")
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--ewc", action="store_true")
    parser.add_argument("--ema", action="store_true")
    args = parser.parse_args()

    import torch
    from datasets import Dataset, load_from_disk
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from open_r1.configs import SFTConfig
    from open_r1.memory import allocation_peak
    from open_r1.recipes.memory import Launch, plan
    from open_r1.trainers import ContinualSFTTrainer

    torch.set_num_threads(2)
    world = Path(args.world)
    tokenizer = AutoTokenizer.from_pretrained(world / "base_model")
    # Replies longer than `length` tokens: every batch is exactly `length` long, the planner's assumption.
    update = load_from_disk(str(world / "update"))["train"]
    long_reply = " ".join(row["messages"][1]["content"] for row in update.select(range(40)))
    train = Dataset.from_list(
        [
            {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": long_reply}]}
            for i in range(64)
        ]
    )
    retain = load_from_disk(str(world / "retain"))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden,
        intermediate_size=int(args.hidden * 8 / 3) // 64 * 64,
        num_hidden_layers=args.layers,
        num_attention_heads=args.hidden // 64,
        num_key_value_heads=args.hidden // 64,
        max_position_embeddings=512,
        tie_word_embeddings=False,
    )
    training = SFTConfig(
        output_dir=str(Path(args.out).parent / "run"),
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        assistant_only_loss=True,
        max_length=args.length,
        per_device_train_batch_size=args.batch,
        max_steps=3,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_ewc=args.ewc,
        retain_dataset_id=str(world / "retain") if args.ewc else None,
        ewc_lambda=1.0,
        fisher_num_samples=8,
        fisher_batch_size=2,
        use_ema=args.ema,
    )
    # What the planner predicts for the same settings (one process, fp32, no sharding).
    recipe = {
        "model_name_or_path": None,
        "dtype": "float32",
        "per_device_train_batch_size": args.batch,
        "max_length": args.length,
        "gradient_checkpointing": False,
        "use_ewc": args.ewc,
        "use_ema": args.ema,
        "fisher_batch_size": 2,
    }
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as run:
        model = LlamaForCausalLM(config)
        trainer = ContinualSFTTrainer(
            model=model, args=training, train_dataset=train, processing_class=tokenizer, retain_dataset=retain["train"]
        )
        trainer.train()
    predicted = plan(recipe, Launch(), config_override=config)
    result = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "measured_bytes": allocation_peak(run),
        "predicted_bytes": predicted.total,
        "rows": predicted.rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}), file=sys.stderr)


if __name__ == "__main__":
    main()
