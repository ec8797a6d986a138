# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Moving recipes from the fork (Neelectric/open-r1_safety) and from huggingface/open-r1 to this project's keys.

    python -m open_r1.recipes migrate SRC... [--out DIR | --in-place]

Each rule says what an old key becomes, keeping its meaning: TRL/transformers renames (`warmup_ratio`, `torch_dtype`,
`wandb_log_unique_prompts`), keys those libraries removed (commented out, with the reason), and the fork's own keys
(`fisher_num_batches`, EMA callbacks, `ewc_lambda` under the fork's `lambda * penalty`). Comments and key order are
kept: the file is edited line by line, a key's block (its line and the indented or list lines under it) at a time.
The recipe checker uses the same rules to say, for an unknown key, what it is called now.
"""

import re
from pathlib import Path

import yaml


# Old key -> new key, same value.
RENAMED = {
    "warmup_ratio": "warmup_steps",  # TRL 1.16 / transformers 5: a value below 1 is a ratio of the training steps
    "torch_dtype": "dtype",
    "wandb_log_unique_prompts": "log_unique_prompts",
}
# Old key -> why it is gone (the line is commented out).
REMOVED = {
    "overwrite_output_dir": "transformers 5 removed it; a restart resumes from the newest complete checkpoint",
    "max_prompt_length": "TRL 1.16's GRPOConfig has no prompt truncation (prompts are kept whole)",
    "vllm_device": "TRL's vLLM colocate/server modes place vLLM themselves",
    "fisher_completion_only_loss": "the Fisher is computed on the tokens the training loss trains on "
    "(`assistant_only_loss` / `completion_only_loss`)",
    "logging_dir": "transformers 5 removed it",
    "evaluation_strategy": "renamed `eval_strategy` long ago; set that",
    "code_sandbox_unisolated": "the local sandbox always isolates programs (bubblewrap); where it cannot, run them "
    "elsewhere with `code_provider: e2b | morph | piston`",
}
# What replaces the fork's benchmark_callback, which ran lighteval inside the training process at every save.
BENCHMARK_CALLBACK = (
    "the fork ran lighteval inside training at each save; here each checkpoint pushed with `push_to_hub_revision` "
    "has its `benchmarks` submitted as Slurm jobs, and `make evaluate MODEL=<checkpoint>` evaluates one anywhere"
)
# The fork's callbacks that are recipe keys here.
CALLBACK_KEYS = {"ema_callback": {"use_ema": True}, "sharded_ema_callback": {"use_ema": True}}
# Open R1 rewards whose score here differs from Open R1's, and how (said for each recipe that names one).
REWARDS_THAT_DIFFER = {
    "cosine": "a gold answer that does not parse scores None here (TRL leaves the completion out), 1.0 in Open R1; "
    "golds are read as `accuracy` reads them, so a plain number such as 7 parses here (Open R1's cosine reads golds "
    "as LaTeX only: there every completion of such a gold scores 1.0)",
    "length": "golds are read as `accuracy` reads them, so a plain number such as 7 parses here and answers are "
    "graded (Open R1's length reads golds as LaTeX only: there every completion of such a gold counts as right)",
    "code": "outputs must match line for line here; Open R1 zips the lines, so a program printing only the first "
    "lines of the expected output passes there",
    "binary_code": "outputs must match line for line here; Open R1 zips the lines (see `code`)",
    "ioi_code": "not built here (IOI graders); use `cf_code` or `code`",
}
# Keys of files that are not training recipes.
ACCELERATE_CONFIG_KEYS = {"compute_environment", "distributed_type", "num_processes", "machine_rank"}


def suggestion(key: str) -> str | None:
    """What the checker tells a user about an unknown key that a rule knows."""
    if key in RENAMED:
        return f"now `{RENAMED[key]}`"
    if key in REMOVED:
        return f"removed: {REMOVED[key]}"
    if key == "fisher_num_batches":
        return "now `fisher_num_samples` = fisher_num_batches x fisher_batch_size"
    return None


def _key_blocks(lines: list[str]) -> list[tuple[str, int, int]]:
    """Each top-level key's block in order, (key, first line, end line); a key given twice has two."""
    starts = [(i, m.group(1)) for i, line in enumerate(lines) if (m := re.match(r"^([A-Za-z_][\w.-]*)\s*:", line))]
    blocks = []
    for n, (start, key) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1  # trailing blank and comment lines belong to what follows
        blocks.append((key, start, end))
    return blocks


def _blocks(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Top-level key -> (first line, end line) of its block (its last, as YAML reads it)."""
    return {key: (start, end) for key, start, end in _key_blocks(lines)}


def _render(key: str, value) -> list[str]:
    text = yaml.safe_dump({key: value}, default_flow_style=False, sort_keys=False, width=1_000_000).rstrip("\n")
    return text.split("\n")


def _drop_repeated_keys(text: str) -> tuple[str, list[str]]:
    """A top-level key given twice: YAML kept the last value silently, and this project's reader refuses it. The
    earlier blocks are commented out, so the recipe keeps the value it had."""
    lines = text.split("\n")
    last = _blocks(lines)
    changed = []
    for key, start, end in _key_blocks(lines):
        if last[key][0] != start:
            lines[start:end] = [f"# [migrate] {line}" for line in lines[start:end]]
            changed.append(
                f"{key}: given again at line {last[key][0] + 1}; this one (line {start + 1}) commented out, "
                "the later value kept (YAML kept it)"
            )
    return "\n".join(lines), changed


def migrate_text(text: str, version: str | None = None) -> tuple[str, list[str], list[str]]:
    """(migrated text, what changed, what could not be mapped and why). `version` (from the file name, e.g. v00.24)
    is replaced by `${VERSION}` where the recipe spelt it out in its output directory, run name or Hub ids."""
    text, repeated = _drop_repeated_keys(text)
    config = yaml.safe_load(text.replace("${", "$_{")) or {}
    if not isinstance(config, dict):
        return text, [], ["not a YAML mapping"]
    if ACCELERATE_CONFIG_KEYS <= set(config):
        return text, [], ["an accelerate config, not a recipe: use it with `accelerate launch --config_file`"]
    lines = text.split("\n")
    changed, unmapped = repeated, []
    replacements: dict[str, list[str] | None] = {}  # key -> new block lines (None: comment the block out)
    additions: list[str] = []

    for old, new in RENAMED.items():
        if old in config:
            if new in config:
                replacements[old] = None
                changed.append(f"{old}: dropped, `{new}` is set too")
            else:
                block = _blocks(lines)[old]
                replacements[old] = [re.sub(rf"^{old}(\s*:)", rf"{new}\1", lines[block[0]])] + lines[
                    block[0] + 1 : block[1]
                ]
                changed.append(f"{old} -> {new}")
    for old, why in REMOVED.items():
        if old in config:
            replacements[old] = None
            changed.append(f"{old}: removed ({why})")
    if "fisher_num_batches" in config:
        batches, batch_size = config["fisher_num_batches"], config.get("fisher_batch_size", 8)
        if isinstance(batches, int) and isinstance(batch_size, int):
            estimator = "per_sample" if batch_size == 1 else "batched"
            replacements["fisher_num_batches"] = [
                *_render("fisher_num_samples", batches * batch_size),
                *_render("fisher_estimator", estimator),
            ]
            changed.append(
                f"fisher_num_batches {batches} x fisher_batch_size {batch_size} -> fisher_num_samples "
                f"{batches * batch_size}, fisher_estimator {estimator} (the fork squared each batch's gradient)"
            )
        else:
            unmapped.append(f"fisher_num_batches: {batches!r} is not a number (a sweep placeholder?)")
    uses_ewc = config.get("custom_optim") == "fisher" or config.get("use_ewc") is True
    if uses_ewc and isinstance(config.get("ewc_lambda"), (int, float)):
        # The fork added lambda * sum F (theta - theta*)^2; here the seed's (lambda / 2) * ... : the same penalty needs
        # twice the lambda.
        doubled = 2 * float(config["ewc_lambda"])
        replacements["ewc_lambda"] = _render("ewc_lambda", doubled)
        changed.append(f"ewc_lambda {config['ewc_lambda']} -> {doubled} (the fork's penalty had no 1/2)")
    if config.get("retain_dataset_config") == "None":
        replacements["retain_dataset_config"] = None
        changed.append("retain_dataset_config: 'None' removed (the fork read it as the default config)")
    if isinstance(config.get("callbacks"), list):
        kept = []
        for name in config["callbacks"]:
            if name == "benchmark_callback":
                changed.append(f"callbacks: benchmark_callback removed ({BENCHMARK_CALLBACK})")
            elif name in CALLBACK_KEYS:
                for key, value in CALLBACK_KEYS[name].items():
                    if key not in config:
                        additions += _render(key, value)
                changed.append(
                    f"callbacks: {name} -> " + ", ".join(f"{k}: {v}" for k, v in CALLBACK_KEYS[name].items())
                )
            else:
                kept.append(name)
                if name != "push_to_hub_revision":
                    unmapped.append(f"callbacks: {name!r} has no counterpart here (known: push_to_hub_revision)")
        if "benchmark_callback" in config["callbacks"] and config.get("push_to_hub") and config.get("benchmarks"):
            if "push_to_hub_revision" not in kept:  # what evaluates each checkpoint here
                kept.append("push_to_hub_revision")
                changed.append("callbacks + push_to_hub_revision (each pushed checkpoint's `benchmarks` run on Slurm)")
        ema_added = any(name in CALLBACK_KEYS for name in config["callbacks"])
        if ema_added and config.get("push_to_hub") and config.get("hub_strategy", "every_save") != "end":
            # The fork pushed each checkpoint's raw weights; with `use_ema` each checkpoint's EMA goes to its own branch.
            kept = [*kept, "push_to_hub_revision"] if "push_to_hub_revision" not in kept else kept
            replacements["hub_strategy"] = _render("hub_strategy", "end")
            if "hub_strategy" not in config:
                additions += _render("hub_strategy", "end")
            changed.append(
                "hub_strategy -> end, callbacks + push_to_hub_revision (the EMA of each checkpoint is pushed)"
            )
        if kept != config["callbacks"]:
            replacements["callbacks"] = _render("callbacks", kept) if kept else None
    if version:
        for key in ("output_dir", "run_name", "hub_model_id", "hub_model_revision"):
            value = config.get(key)
            if isinstance(value, str) and version in value and "${VERSION}" not in value and key not in replacements:
                replacements[key] = _render(key, value.replace(version, "${VERSION}"))
                changed.append(f"{key}: {version} -> ${{VERSION}}")
    rewards = config.get("reward_funcs")
    for name in rewards if isinstance(rewards, list) else []:
        if name in REWARDS_THAT_DIFFER:
            unmapped.append(f"reward `{name}` differs from Open R1's: {REWARDS_THAT_DIFFER[name]}")
    placeholders = sorted(set(re.findall(r"\$\{(\w+)\}", text)) - {"VERSION"})
    for name in placeholders:
        unmapped.append(f"${{{name}}}: a sweep script's placeholder, kept; render it before launching")

    blocks = _blocks(lines)
    out: list[str] = []
    index = 0
    for key, (start, end) in sorted(blocks.items(), key=lambda item: item[1][0]):
        out += lines[index:start]
        if key in replacements:
            new = replacements[key]
            out += [f"# [migrate] {line}" for line in lines[start:end]] if new is None else new
        else:
            out += lines[start:end]
        index = end
    out += lines[index:]
    if additions:
        while out and not out[-1].strip():
            out.pop()
        out += ["", "# [migrate] from the fork's callbacks", *additions, ""]
    return "\n".join(out), changed, unmapped


def migrate_file(source: Path, target: Path) -> tuple[list[str], list[str]]:
    match = re.search(r"_(v\d+\.\d+)", source.name)
    text, changed, unmapped = migrate_text(source.read_text(), match.group(1) if match else None)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return changed, unmapped
