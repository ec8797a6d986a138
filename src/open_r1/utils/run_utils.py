# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""What every entry point does around training: logging set-up and finding the checkpoint to resume from."""

import dataclasses
import datetime
import fcntl
import json
import logging
import os
import pwd
import socket
import sys

import datasets
import transformers

from .checkpoints import RECIPE_FILE, checkpoint_problems, newest_complete_checkpoint


logger = logging.getLogger(__name__)

LOCK_FILE = "_open_r1.lock"  # "_*" files stay out of the Trainer's Hub pushes
# The locks this process holds, by output_dir: held until it exits (the kernel drops them then, even on a kill).
_held_locks: dict[str, object] = {}


def setup_logging(training_args, entry_logger: logging.Logger) -> None:
    """Open R1's logging: the entry point's logger, open_r1's, datasets' and transformers' at the run's level."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    entry_logger.setLevel(log_level)
    logging.getLogger("open_r1").setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()


def hold_output_dir(output_dir: str, process_index: int = 0, key: str = "`output_dir`") -> None:
    """Make sure `output_dir` can be written, and hold it for this run: two runs on one folder wrote each other's
    files and both exited 0. The main process takes an exclusive lock on `output_dir/_open_r1.lock` (written with
    its host, pid and start time) for as long as it lives; a second run stops naming the first. A lock dies with its
    process, so a killed run never blocks its restart. Called by the entry points before any data or model loads
    (and by `testbed compare` on its output folder; `key` names the setting in errors)."""
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"{key}: {output_dir} is a file, not a folder.")
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{key}: {output_dir} cannot be made ({error.strerror}).") from error
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise ValueError(f"{key}: {output_dir} is not writable by this user.")
    lock_path = os.path.join(output_dir, LOCK_FILE)
    if process_index != 0 or _holds(output_dir, lock_path):
        return
    try:
        handle = open(lock_path, "a+")
    except PermissionError:  # a shared, group-writable folder with another user's run in it
        try:
            owner = pwd.getpwuid(os.stat(lock_path).st_uid).pw_name
        except (KeyError, OSError):
            owner = "another user"
        raise ValueError(
            f"{key}: {lock_path} (owner {owner}) is not writable by this user: a run of {owner} used {output_dir}. "
            f"Use another {key}, or have {owner} remove the lock file if that run is over."
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if not isinstance(error, BlockingIOError):  # a file system without locks (NFSv3 without lockd, Lustre noflock)
            logger.warning(
                "%s %s cannot be locked (%s): a second run in it will not be stopped.", key, output_dir, error
            )
            handle.close()
            return
        handle.seek(0)
        holder = handle.read().strip() or "a process that has not written its name yet"
        handle.close()
        raise RuntimeError(
            f"{key} {output_dir} is in use by another run ({holder}): two runs in one folder overwrite each "
            f"other's files. Wait for it, stop it, or use another {key} (on NFS, a lock of a node that "
            "died lasts until the server's lease ends, about 90 s)."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(
        f"host {socket.gethostname()}, pid {os.getpid()}, since {datetime.datetime.now():%Y-%m-%d %H:%M:%S}\n"
    )
    handle.flush()
    _held_locks[output_dir] = handle


def _holds(output_dir: str, lock_path: str) -> bool:
    """Whether this process holds `output_dir`'s lock file as it is now: a folder deleted and made again since (in
    one process: a notebook, `compare` retraining a run) has a new lock file to take."""
    held = _held_locks.get(output_dir)
    if held is None:
        return False
    try:
        now = os.stat(lock_path)
    except FileNotFoundError:
        now = None
    mine = os.fstat(held.fileno())
    if now is not None and (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
        return True
    held.close()
    del _held_locks[output_dir]
    return False


def resume_checkpoint(training_args, **requirements) -> str | None:
    """The checkpoint to resume from: the recipe's `resume_from_checkpoint`, else the newest *complete* one in
    `output_dir` (newer incomplete ones, cut off by a kill while being written, are reported and skipped, never
    deleted). A named checkpoint that is incomplete or damaged stops the run, naming its files and the newest earlier
    complete checkpoint, or, with `resume_fallback`, resumes from that one. `requirements`: what the run's
    continual-learning methods need in a checkpoint (`trainer.checkpoint_requirements()`): a checkpoint without their
    states is incomplete for this run on both paths."""
    output_dir = training_args.output_dir
    named = training_args.resume_from_checkpoint
    if named is None:
        last = newest_complete_checkpoint(output_dir, **requirements)
        if last is None and requirements and (other := newest_complete_checkpoint(output_dir)) is not None:
            # Checkpoints of a run without (some of) these methods: starting over would overwrite that run silently.
            raise ValueError(
                f"{output_dir} holds checkpoints, but none has the states of this run's continual-learning methods: "
                f"{other}: {'; '.join(checkpoint_problems(other, **requirements))}. A run with other methods, another "
                "number of processes or another sharding wrote them; resume as that run did, or use another "
                "`output_dir`."
            )
        if last is not None:
            logger.info("Checkpoint detected, resuming training at %s.", last)
        return last
    if not os.path.isdir(named):
        raise FileNotFoundError(f"`resume_from_checkpoint`: {named} is not a directory.")
    problems = checkpoint_problems(named, **requirements)
    if not problems:
        return named
    earlier = newest_complete_checkpoint(os.path.dirname(os.path.normpath(named)), before=named, **requirements)
    if earlier is not None and getattr(training_args, "resume_fallback", False):
        logger.warning(
            "%s cannot be resumed from (%s); resuming from %s instead.", named, "; ".join(problems), earlier
        )
        return earlier
    hint = (
        f"the newest earlier complete checkpoint is {earlier} (set `resume_fallback: true` to resume from it)"
        if earlier
        else "no earlier checkpoint is complete"
    )
    raise ValueError(f"`resume_from_checkpoint`: {named} cannot be resumed from: {'; '.join(problems)}; {hint}.")


# The keys that define what a run trains, compared on resume: the model and adapter, the data, the loss, the optimizer
# and schedule, the batch, the seeds, and every continual-learning method's keys (by their prefixes). Everything else
# (how long, how to log, save, evaluate, push and launch, speed and memory settings) may change under a resume.
RUN_KEYS = {
    "model_name_or_path", "model_revision", "dtype", "use_peft", "lora_r", "lora_alpha", "lora_dropout",
    "lora_target_modules", "use_dora", "dataset_name", "dataset_config", "dataset_train_split", "dataset_mixture",
    "dataset_prompt_column", "chat_template", "system_prompt", "max_length", "truncation_mode", "packing",
    "assistant_only_loss", "completion_only_loss", "loss_type", "learning_rate", "lr_scheduler_type",
    "lr_scheduler_kwargs", "warmup_steps", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "optim",
    "optim_args", "custom_optim", "max_grad_norm", "per_device_train_batch_size", "gradient_accumulation_steps",
    "seed", "data_seed", "reward_funcs", "reward_weights", "num_generations", "max_completion_length", "beta",
    "epsilon", "epsilon_high", "temperature", "scale_rewards", "num_iterations", "use_ewc", "use_ema", "use_agem",
    "use_retain_distillation", "use_trust_region",
}  # fmt: skip
RUN_KEY_PREFIXES = (
    "ewc_", "fisher_", "recompute_fisher", "replay_", "retain_", "distill_", "agem_", "trust_region_", "ema_",
    "wise_ft_", "preconditioner_", "dynamic_sampling",
)  # fmt: skip
# Where a method's state lives, not what it computes.
MEMORY_KEYS = {"ema_offload", "fisher_offload", "fisher_chunk_size"}
LOCAL_PATH_KEYS = ("model_name_or_path", "dataset_name", "retain_dataset_id")


def recipe_record(*parsed) -> dict:
    """The parsed recipe (script, training and model arguments) as one JSON-safe mapping of key to value, local paths
    made absolute: what each checkpoint records, so that a resume can be compared with the run that wrote it."""
    record = {}
    for args in parsed:
        values = args.to_dict() if hasattr(args, "to_dict") else dataclasses.asdict(args)
        record.update(json.loads(json.dumps(values, default=str)))
    for key in LOCAL_PATH_KEYS:
        if isinstance(record.get(key), str) and os.path.exists(record[key]):
            record[key] = os.path.realpath(record[key])
    if "reward_funcs" in record:
        record["reward_names_version"] = REWARD_NAMES_VERSION
    return record


# The version of reward names a record is written with. Before version 2, `accuracy`, `format`, `tag_count`, `cosine`
# and `soft_overlong` were this project's rewards; since, those names are Open R1's and this project's keep their own.
REWARD_NAMES_VERSION = 2
REWARDS_RENAMED_IN_2 = {
    "accuracy": "boxed_accuracy",
    "format": "think_format",
    "tag_count": "think_tag_count",
    "cosine": "cosine_capped",
    "soft_overlong": "soft_overlong_punishment",
}


def renamed_rewards(recorded: dict) -> dict:
    """A checkpoint's record with its rewards under today's names: a run recorded before version 2 trained the
    rewards that are now `boxed_accuracy`, `think_format`, ... (so resuming it under the old names, which now mean
    Open R1's rewards, is another recipe, and under the new ones is the same)."""
    if recorded.get("reward_names_version", 1) >= REWARD_NAMES_VERSION or "reward_funcs" not in recorded:
        return recorded
    names = [REWARDS_RENAMED_IN_2.get(name, name) for name in recorded["reward_funcs"] or []]
    return {**recorded, "reward_funcs": names, "reward_names_version": REWARD_NAMES_VERSION}


def check_resume_matches(checkpoint: str | None, record: dict) -> None:
    """Stop, before the model loads, when the recipe resuming `checkpoint` is not the run that wrote it: the keys of
    `RUN_KEYS` / `RUN_KEY_PREFIXES` must be as the checkpoint recorded them. The learning rate too: a resume continues
    the checkpoint's optimizer and schedule, so a new rate would be logged and saved but not used."""
    if checkpoint is None:
        return
    path = os.path.join(checkpoint, RECIPE_FILE)
    if not os.path.exists(path):
        logger.warning("%s records no recipe (written before they were recorded): not compared.", checkpoint)
        return
    with open(path) as handle:
        recorded = renamed_rewards(json.load(handle))
    # Keys only one side has (another library version) are not compared.
    changed = [
        f"`{key}`: {recorded[key]!r} in the checkpoint, {record[key]!r} now"
        for key in sorted(set(recorded) & set(record))
        if (key in RUN_KEYS or key.startswith(RUN_KEY_PREFIXES))
        and key not in MEMORY_KEYS
        and recorded[key] != record[key]
    ]
    if changed:
        raise ValueError(
            f"Resuming from {checkpoint}, a run with another recipe: {'; '.join(changed)}. A resume continues that run "
            "(its weights, optimizer, schedule and method states); how long to train and how to log, save, evaluate, "
            "push and launch may change, not what it trains. To train on from it with other settings, start a new `output_dir` with "
            f"`model_name_or_path: {checkpoint}`."
        )


def claim_run(script_args, training_args, model_args) -> dict:
    """What an entry point does before loading anything: hold `output_dir`, and check that a resume is the run its
    checkpoint recorded. Returns the recipe's record, for the trainer's checkpoints (`trainer.run_recipe`)."""
    hold_output_dir(training_args.output_dir, training_args.process_index)
    record = recipe_record(script_args, training_args, model_args)
    check_resume_matches(resume_checkpoint(training_args), record)
    return record


def train_and_save(trainer, script_args, training_args, eval_dataset=None) -> None:
    """Train (resuming if a checkpoint is there), save metrics, state and model, evaluate, push: as Open R1."""
    logger.info("*** Train ***")
    resume = resume_checkpoint(training_args, **trainer.checkpoint_requirements())
    train_result = trainer.train(resume_from_checkpoint=resume)
    metrics = train_result.metrics
    metrics["train_samples"] = len(trainer.train_dataset)
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()

    logger.info("*** Save model ***")
    # Re-enable the KV cache for fast generation after training with gradient checkpointing.
    trainer.model.config.use_cache = True
    trainer.save_model(training_args.output_dir)
    logger.info("Model saved to %s", training_args.output_dir)
    if trainer.accelerator.is_main_process:
        trainer.create_model_card(dataset_name=script_args.dataset_name, tags=["open-r1-safety"])

    if eval_dataset is not None:
        logger.info("*** Evaluate ***")
        metrics = trainer.evaluate()
        metrics["eval_samples"] = len(eval_dataset)
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)

    if training_args.push_to_hub:
        logger.info("Pushing to hub...")
        trainer.push_to_hub(dataset_name=script_args.dataset_name, tags=["open-r1-safety"])

    # Every rank done before the process group goes: left to the interpreter's exit, its threads sometimes abort a
    # rank after its work is saved ("terminate called without an active exception", seen under 2-process ZeRO-3),
    # and the job then fails. Past the barrier every rank says so, for `aborted_after_finishing`.
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.num_processes > 1:
        state = trainer.accelerator.state
        print(FINISHED.format(rank=state.process_index, world=state.num_processes), file=sys.stderr, flush=True)
    trainer.accelerator.end_training()


# Printed by every rank of a multi-process run once all ranks have saved everything (past the final barrier).
FINISHED = "open_r1: rank {rank} of {world} finished; every rank has saved its outputs"
EXIT_ABORT = "terminate called without an active exception"


def aborted_after_finishing(stderr: str, world_size: int) -> bool:
    """Whether a failed multi-process run failed only as it exited, after all its work: every rank printed FINISHED
    and one then aborted. On CPU machines a rank sometimes aborts in its interpreter's teardown (EXIT_ABORT, about 1
    in 20 two-process ZeRO-3 runs here, with the process group already destroyed); its outputs are complete."""
    finished = all(FINISHED.format(rank=rank, world=world_size) in stderr for rank in range(world_size))
    return finished and EXIT_ABORT in stderr
