# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The protocol every continual-learning method follows, and the trainer mixin that runs any set of them.

A method is one file (see ARCHITECTURE.md): a dataclass of its recipe fields with their validation, mixed into
`SFTConfig`/`GRPOConfig`, and a `ContinualMethod` subclass that says when it is enabled, how it is built from the
parsed arguments, which shardings it cannot run under, and implements the hooks it needs. Its life cycle inside
`ContinualSFTTrainer` / `ContinualGRPOTrainer`:

- `from_args(args, retain)`: built from the recipe before the trainer (`retain`: the retain split, loaded once
  for every method that declares `needs_retain_data`);
- `prepare_train_dataset(dataset)`: the training data before the trainer tokenises it (replay mixes in retain rows);
- `on_trainer_init(trainer)`: the trainer is built, no checkpoint loaded and the model not wrapped yet (the place
  to snapshot the *starting* model, e.g. a reference model);
- `setup(trainer)`: at the start of training, model prepared (DDP/DeepSpeed/FSDP), before the first step;
- `loss_term(trainer, model, inputs, hidden_states)`: an extra term for this micro-batch's loss, or None. The mixin
  scales it so that it acts once per optimizer step whatever the gradient accumulation;
- `after_backward(trainer, grad_scale)`: once per optimizer step, after the backward of the micro-batch that
  synchronises and its data-parallel reduction, before clipping and the step, on each rank's part of the gradients
  (`grad_scale`: the fp16 loss scale they still carry). One process, DDP and FSDP after `accelerator.backward`, ZeRO-3
  between the engine's backward and its step; not under DeepSpeed ZeRO-1/2, whose gradients live in flat partitions
  (`after_backward_available` says which);
- `on_step_end(trainer)`: after each optimizer step;
- `on_save_checkpoint(trainer, checkpoint_dir)`: right after a checkpoint's model is written, before its optimizer and
  trainer state, the Hub push and the checkpoint rotation (e.g. the EMA writes its own model beside it);
- `evaluation_weights(trainer)`: a context manager around every evaluation, in training and after it, that may put
  other weights into the model for its duration (the EMA's);
- `on_train_end(trainer)`: after the last step (and after the Trainer loaded the best checkpoint, with
  `load_best_model_at_end`), before the model is saved;
- `state_dict()` / `load_state_dict(state)`: saved in every checkpoint (`continual_state*.pt`, atomically, before the
  checkpoint counts as complete) and restored on `resume_from_checkpoint`, so a pre-empted job resumes in the
  method's exact state;
- `metrics()`: numbers logged under `<name>/...` with the trainer's own logs, averaged since the last log (values
  added to `self.logged`).
"""

import contextlib
import dataclasses
import errno
import json
import logging
import os
import shutil
from collections import defaultdict

import torch
from transformers import TrainerCallback

from ..utils.checkpoints import (
    RECIPE_FILE,
    atomic_torch_save,
    atomic_write_text,
    newest_complete_checkpoint,
    rotate_complete_checkpoints,
    state_file_problem,
)
from .sharding import is_sharded, is_zero3, local_grad, local_tensor


logger = logging.getLogger(__name__)


STATE_FILE = "continual_state.pt"
# The key of the trainer's own resumable counters in the state file (beside one key per method).
TRAINER_STATE_KEY = "_trainer"


@contextlib.contextmanager
def eval_mode(model):
    """`model` in eval mode for the block (no dropout: the model as it predicts), then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


class MetricAverager:
    """Collects values between two logs and averages them. Tensors are read only at log time, so a value added at
    every step costs no device synchronisation."""

    def __init__(self):
        self._values = defaultdict(list)

    def add(self, key: str, value: float | torch.Tensor) -> None:
        self._values[key].append(value)

    def pop(self) -> dict[str, float]:
        averaged = {key: sum(map(float, values)) / len(values) for key, values in self._values.items() if values}
        self._values.clear()
        return averaged


class ContinualMethod:
    name = "method"
    # The recipe key that turns the method on (a true or positive value).
    enable_key = ""
    # The dataclass of its recipe keys (their values go into the model card).
    config_class: type | None = None
    # Whether `loss_term` wants the final hidden states of the policy forward (the trust region does).
    needs_hidden_states = False
    # Whether `from_args` needs the retain split.
    needs_retain_data = False
    # Shardings it cannot run under yet ("ZeRO-1/2", "ZeRO-3", "FSDP"): the trainer refuses them at start, the recipe
    # checker before a job is submitted.
    unsupported_sharding: tuple[str, ...] = ()

    @classmethod
    def supported_sharding(cls) -> str:
        """What it runs under, for error messages: 'DDP or ZeRO-1/2 or ...'."""
        return " or ".join(s for s in ("DDP", "ZeRO-1/2", "ZeRO-3", "FSDP") if s not in cls.unsupported_sharding)

    @classmethod
    def enabled(cls, args) -> bool:
        """Whether the parsed recipe `args` turn this method on."""
        return bool(getattr(args, cls.enable_key))

    @classmethod
    def from_args(cls, args, retain=None) -> "ContinualMethod":
        raise NotImplementedError

    @classmethod
    def memory(cls, context) -> list[tuple[str, str, float, str]]:
        """The GPU memory it adds, per GPU: rows (phase, component, bytes, how) for the memory planner, from its
        `MemoryContext` (`open_r1.memory`: the model's sizes, the launch, the recipe's values). A phase of
        `open_r1.memory.ALL` is held through the run; TRAINING, FISHER, ... only while that phase runs."""
        return []

    @property
    def logged(self) -> MetricAverager:
        if "_logged" not in vars(self):
            self._logged = MetricAverager()
        return self._logged

    def prepare_train_dataset(self, dataset):
        return dataset

    def on_trainer_init(self, trainer) -> None:
        pass

    def setup(self, trainer) -> None:
        pass

    def loss_term(self, trainer, model, inputs, hidden_states):
        return None

    def after_backward(self, trainer, grad_scale: float) -> None:
        pass

    def on_step_end(self, trainer) -> None:
        pass

    def on_save_checkpoint(self, trainer, checkpoint_dir: str) -> None:
        pass

    def evaluation_weights(self, trainer):
        return contextlib.nullcontext()

    def on_train_end(self, trainer) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def metrics(self) -> dict[str, float]:
        return self.logged.pop()


def sharding_of(trainer) -> str | None:
    """ "ZeRO-1/2", "ZeRO-3", "FSDP" or None (one process, DDP): how the trainer partitions its training state."""
    if trainer.is_fsdp_enabled:
        return "FSDP"
    if trainer.is_deepspeed_enabled:
        return "ZeRO-3" if is_zero3(trainer) else "ZeRO-1/2"
    return None


def launch_sharding() -> str | None:
    """The sharding `accelerate launch` set up for this process, read from the environment it passes down (known
    before the model loads): "FSDP", "ZeRO-3", "ZeRO-1/2", or None (one process, DDP, or a stage it does not say)."""
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return "FSDP"
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() != "true":
        return None
    stage = os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE")
    config_file = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE", "")
    if stage is None and os.path.isfile(config_file):
        with open(config_file) as handle:
            stage = str(json.load(handle).get("zero_optimization", {}).get("stage"))
    if stage is None and not config_file:
        return "ZeRO-1/2"  # accelerate's own default stage is 2
    return {"3": "ZeRO-3", "0": "ZeRO-1/2", "1": "ZeRO-1/2", "2": "ZeRO-1/2"}.get(stage)


def check_sharding(methods, sharding: str | None) -> None:
    """Refuse, naming every one of them, the methods (classes or instances) that do not support `sharding`."""
    refused = [method for method in methods if sharding in method.unsupported_sharding]
    if refused:
        names = ", ".join(f"`{method.name}` (runs under {method.supported_sharding()})" for method in refused)
        raise ValueError(
            f"The continual-learning methods {names} do not support {sharding} yet "
            "(`python -m open_r1.recipes check --accelerate-config` reports this before a job starts)."
        )


def after_backward_available(trainer) -> bool:
    """Whether `after_backward` runs under this trainer's backend (everywhere but DeepSpeed ZeRO-1/2)."""
    return not trainer.is_deepspeed_enabled or is_zero3(trainer)


def state_file(checkpoint_dir: str, process_index: int, sharded: bool) -> str:
    """Sharded states are saved per rank; replicated ones once, by rank 0, and read by every rank."""
    name = f"continual_state_rank{process_index}.pt" if sharded else STATE_FILE
    return os.path.join(checkpoint_dir, name)


# How often a trainer looks for its launcher (one small collective when it does).
LAUNCHER_POLL_STEPS = 5
LAUNCHERS = {"accelerate", "torchrun"}
LAUNCHER_MODULES = {"accelerate.commands.launch", "torch.distributed.run", "torch.distributed.launch"}


def _is_launcher(pid: int) -> bool:
    """Whether process `pid` is accelerate's or torch's launcher, from its command line's program and first
    arguments (`accelerate launch`, `torchrun`, `python [-u] -m accelerate.commands.launch|torch.distributed.run`,
    `python .../bin/accelerate`); False where /proc does not say."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().decode(errors="replace").split("\0")
    except OSError:
        return False
    programs = [os.path.basename(arg) for arg in argv[:2]]
    modules = [argv[i + 1] for i, arg in enumerate(argv[:4]) if arg == "-m" and i + 1 < len(argv)]
    return bool(LAUNCHERS & set(programs)) or bool(LAUNCHER_MODULES & set(modules))


def _overrides(method, hook: str) -> bool:
    return getattr(type(method), hook) is not getattr(ContinualMethod, hook)


class _MethodsCallback(TrainerCallback):
    def __init__(self, trainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        trainer = self.trainer
        check_sharding(trainer.continual_methods, sharding_of(trainer))  # the entry points check the launch earlier
        if trainer.is_deepspeed_enabled and args.nonfinite_steps == "skip":
            raise ValueError(
                "`nonfinite_steps: skip` does not run under DeepSpeed (its engine steps inside the "
                "backward); use `stop`."
            )
        trainer.install_after_backward()
        for method in trainer.continual_methods:
            method.setup(trainer)
        if trainer.continual_resume_checkpoint is not None:
            trainer.load_checkpoint_state(trainer.continual_resume_checkpoint)

    def on_step_end(self, args, state, control, **kwargs):
        for method in self.trainer.continual_methods:
            method.on_step_end(self.trainer)
        if self.trainer.launcher_gone():
            logger.error(
                "Step %d: the process that launched this run (pid %d) is gone (killed: accelerate's launcher does not "
                "pass SIGTERM on); saving a checkpoint and stopping. Restart the job to resume from it.",
                state.global_step,
                self.trainer.launcher_pid,
            )
            control.should_save = True
            control.should_training_stop = True
            self.trainer.stopped_orphaned = True

    def on_train_end(self, args, state, control, **kwargs):
        for method in self.trainer.continual_methods:
            method.on_train_end(self.trainer)


class ContinualTrainerMixin:
    """Runs `self.continual_methods` inside a TRL trainer; put it before the TRL trainer in the bases."""

    continual_methods: list
    continual_resume_checkpoint: str | None  # the checkpoint this run resumes from (methods skip what it restores)
    run_recipe: dict | None

    def init_continual(self, methods: list) -> None:
        names = [method.name for method in methods]
        if len(set(names)) != len(names):
            raise ValueError(f"Each continual-learning method can be enabled once, got {names}.")
        self.continual_methods = methods
        self.continual_resume_checkpoint = None
        self.run_recipe = None  # the parsed recipe, recorded in every checkpoint (see utils.run_utils.recipe_record)
        # The launcher (accelerate launch, torchrun): when it dies the run would go on as an orphan, and a restart
        # beside it would be two runs in one folder. Only a launcher: a shell that exits (nohup) ends nothing.
        self.launcher_pid = os.getppid() if _is_launcher(os.getppid()) else None
        self.stopped_orphaned = False
        self._after_backward_installed = False
        for method in methods:
            method.on_trainer_init(self)
        self.add_callback(_MethodsCallback(self))

    def create_model_card(self, model_name=None, dataset_name=None, tags=None, **kwargs):
        """TRL's card (base model, dataset, tags, its citation), tagged with each continual-learning method used, and a
        section naming the base model and every method's settings (Trainer.push_to_hub writes the card through here
        too)."""
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        tags += [method.name for method in self.continual_methods if method.name not in tags]
        super().create_model_card(model_name=model_name, dataset_name=dataset_name, tags=tags, **kwargs)
        card = os.path.join(self.args.output_dir, "README.md")
        if not self.is_world_process_zero() or not os.path.exists(card):
            return
        recipe = self.run_recipe or {}
        lines = ["", "## Continual learning (open-r1-safety)", ""]
        lines.append(f"Base model: `{recipe.get('model_name_or_path', self.model.config.name_or_path)}`.")
        if dataset_name:
            lines.append(f"Update data: `{dataset_name}`.")
        if not self.continual_methods:
            lines.append("Methods: none (plain fine-tuning).")
        else:
            lines += ["", "| method | setting | value |", "|---|---|---|"]
            for method in self.continual_methods:
                for field in dataclasses.fields(method.config_class) if method.config_class else ():
                    value = getattr(self.args, field.name, recipe.get(field.name))
                    lines.append(f"| {method.name} | `{field.name}` | `{value}` |")
        with open(card, "a") as handle:
            handle.write("\n".join(lines) + "\n")

    def install_after_backward(self) -> None:
        """The one place the backward is wrapped: after it (and its data-parallel reduction), on the micro-batch that
        synchronises, every method's `after_backward` runs, then the gradient is checked to be finite
        (`nonfinite_steps`), before the Trainer clips and steps. Where the backend allows it (not under DeepSpeed
        ZeRO-1/2, whose loss `compute_loss` checks instead); once, however often `train` is called."""
        methods = [m for m in self.continual_methods if _overrides(m, "after_backward")]
        # With fp16's loss scaler an inf gradient is routine: the scaler skips that step and lowers its scale.
        check = not self.is_deepspeed_enabled and self.accelerator.scaler is None
        if self._after_backward_installed or not after_backward_available(self) or not (methods or check):
            return
        self._after_backward_installed = True

        def after_backward(grad_scale: float) -> None:
            for method in methods:
                method.after_backward(self, grad_scale)
            if check:
                self._handle_nonfinite_gradient()

        if is_zero3(self):
            # accelerate's DeepSpeedEngineWrapper.backward runs the engine's step right after its backward: this is
            # that method with the hooks inserted between the two.
            wrapper = self.accelerator.deepspeed_engine_wrapped
            engine = wrapper.engine

            def zero3_backward(loss, sync_gradients=True, **kwargs):
                engine.set_gradient_accumulation_boundary(is_boundary=sync_gradients)
                engine.backward(loss, **kwargs)
                if sync_gradients:
                    after_backward(float(engine.optimizer.loss_scale))
                    engine.step()

            wrapper.backward = zero3_backward
        else:  # one process, DDP, FSDP: the Trainer clips and steps after accelerator.backward
            accelerator = self.accelerator
            accelerator_backward = accelerator.backward

            def backward(loss, **kwargs):
                accelerator_backward(loss, **kwargs)
                if accelerator.sync_gradients:
                    after_backward(accelerator.scaler.get_scale() if accelerator.scaler is not None else 1.0)

            accelerator.backward = backward

    def checkpoint_requirements(self) -> dict:
        """What a checkpoint must hold for this run to resume from it beyond the Trainer's files (`checkpoint_problems`'
        keyword arguments): the continual-state files this run reads (every rank's when the states are sharded), each
        with a state for every method. Nothing for a run without methods."""
        if not self.continual_methods:
            return {}
        sharded = is_sharded(self)
        ranks = range(self.args.world_size) if sharded else [0]
        return {
            "state_files": [os.path.basename(state_file("", rank, sharded)) for rank in ranks],
            "state_keys": [method.name for method in self.continual_methods],
        }

    def _any_rank(self, flag) -> bool:
        """Whether `flag` (a bool or a 0-d tensor) holds on any rank: every rank decides alike, so none raises or
        skips alone while the others wait in a collective."""
        flag = torch.as_tensor(flag, dtype=torch.float32).to(self.args.device)
        if self.args.world_size > 1 and torch.distributed.is_initialized():
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag)

    def _handle_nonfinite_gradient(self) -> None:
        """Stop before the optimizer step, or skip it, when this step's gradient holds a NaN or an inf (agreed over
        ranks). One norm per gradient (a multi-tensor kernel, no gradient-sized temporary), one sync a step."""
        grads = [grad for p in self.model.parameters() if (grad := local_grad(p)) is not None]
        norms = [norm.to(self.args.device) for norm in torch._foreach_norm(grads)] if grads else []
        if not self._any_rank(not torch.stack(norms).isfinite().all() if norms else False):
            return
        step = self.state.global_step + 1
        if self.args.nonfinite_steps == "skip":
            for param in self.model.parameters():
                param.grad = None  # the optimizer leaves a parameter without a gradient as it is
            self._nonfinite_skipped = getattr(self, "_nonfinite_skipped", 0) + 1
            logger.warning("Step %d: the gradient is not finite; skipped (nonfinite_steps: skip).", step)
            return
        raise FloatingPointError(
            f"Step {step}: the gradient is not finite (NaN or inf); stopped before the optimizer step, so no "
            f"non-finite weight was written (the newest checkpoint in {self.args.output_dir} is the last finite one). "
            f"Lower `learning_rate` (now {self.args.learning_rate}), or set `nonfinite_steps: skip` to skip such steps."
        )

    def _check_finite_loss(self, loss) -> None:
        """Under DeepSpeed, whose engine steps inside the backward, the loss is what can be checked before a step:
        each micro-batch's, agreed over ranks."""
        if self.is_deepspeed_enabled and self._any_rank(not torch.isfinite(loss.detach()).all()):
            raise FloatingPointError(
                f"Step {self.state.global_step + 1}: the loss is not finite on some rank; stopped before the backward, "
                f"so no non-finite weight was written. Lower `learning_rate` (now {self.args.learning_rate})."
            )

    def _check_finite_weights(self, output_dir: str) -> None:
        """Never write a model with a NaN or inf (what a step under DeepSpeed or a method's own update could leave)."""
        bad = [name for name, p in self.model.named_parameters() if not local_tensor(p).isfinite().all()]
        if self._any_rank(bool(bad)):  # under ZeRO-3 / FSDP each rank sees its own partition
            bad = bad or ["on another rank"]
            raise FloatingPointError(
                f"Not writing {output_dir}: the weights are not finite ({len(bad)} tensors, e.g. `{bad[0]}`). The "
                f"newest checkpoint in {self.args.output_dir} is the last finite one; lower `learning_rate`."
            )

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        try:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        except RuntimeError as error:
            if "size mismatch" not in str(error):
                raise
            mismatch = next((line.strip() for line in str(error).splitlines() if "size mismatch" in line), "")
            raise ValueError(
                f"Resuming from {resume_from_checkpoint}: its weights do not fit the model ({mismatch}): the model "
                "changed shape since that run. Resume with the model it trained, or start in another `output_dir`."
            ) from error

    def launcher_gone(self) -> bool:
        """Whether the process that started this one has died (this one was re-parented), on any rank, looked at every
        `LAUNCHER_POLL_STEPS` steps: agreed over the ranks, so that all of them save and stop at the same step."""
        if getattr(self, "_watch_launcher", None) is None:  # once: whether any rank has a launcher to watch
            self._watch_launcher = self._any_rank(self.launcher_pid is not None)
        if not self._watch_launcher or self.state.global_step % LAUNCHER_POLL_STEPS:
            return False
        return self._any_rank(self.launcher_pid is not None and os.getppid() != self.launcher_pid)

    def train(self, resume_from_checkpoint=None, **kwargs):
        if resume_from_checkpoint is True:
            resume_from_checkpoint = newest_complete_checkpoint(self.args.output_dir, **self.checkpoint_requirements())
            if resume_from_checkpoint is None:  # as the Trainer: asked to resume, never start over silently
                raise ValueError(f"No checkpoint in {self.args.output_dir} is complete for this run (see the log).")
        self.continual_resume_checkpoint = resume_from_checkpoint
        result = super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        if self.stopped_orphaned:  # no final model: the run is not finished, its checkpoint resumes it
            raise SystemExit(f"Stopped at step {self.state.global_step}: the launcher is gone; checkpoint saved.")
        return result

    def _run_epoch(self, *args, **kwargs):
        # Resumed from the last step's checkpoint (a kill after it was written, e.g. during the rotation of older
        # ones), the Trainer would skip the trained batches and then take one step more than `max_steps`.
        if 0 < self.state.max_steps <= self.state.global_step:
            self.control.should_training_stop = True
            return None
        return super()._run_epoch(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        with contextlib.ExitStack() as weights:
            for method in self.continual_methods:
                weights.enter_context(method.evaluation_weights(self))
            return super().evaluate(*args, **kwargs)

    @contextlib.contextmanager
    def _naming_a_full_disk(self, what: str):
        """A save that fails on a full file system says so, with the folder and what is safe, instead of torch's
        `enforce fail at inline_container.cc` or `basic_ios::clear: iostream error`."""
        try:
            yield
        except Exception as error:  # torch, safetensors and the OS each word it their own way
            free = shutil.disk_usage(self.args.output_dir).free if os.path.isdir(self.args.output_dir) else None
            full = getattr(error, "errno", None) == errno.ENOSPC or "No space left" in str(error)
            if not (full or (free is not None and free < 1 << 20)):
                raise
            newest = newest_complete_checkpoint(self.args.output_dir, **self.checkpoint_requirements())
            raise OSError(
                errno.ENOSPC,
                f"No space left on the file system of {self.args.output_dir} ({free} bytes free) writing {what} "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). Nothing was lost: "
                f"the newest complete checkpoint is {newest}. Free space (or lower `save_total_limit`) and restart.",
            ) from error

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        self._check_finite_weights(output_dir or self.args.output_dir)
        if _internal_call:  # inside a checkpoint's save, which names a full disk itself
            super().save_model(output_dir, _internal_call)
        else:
            with self._naming_a_full_disk(output_dir or self.args.output_dir):
                super().save_model(output_dir, _internal_call)
        if _internal_call and output_dir is not None and os.path.basename(output_dir).startswith("checkpoint-"):
            # A checkpoint: the Trainer writes its optimizer, scheduler and RNG states and `trainer_state.json` next,
            # so what is written here is part of what makes the checkpoint complete.
            for method in self.continual_methods:
                method.on_save_checkpoint(self, output_dir)
            self._save_checkpoint_state(output_dir)

    def _save_checkpoint_state(self, checkpoint: str) -> None:
        """The methods' states (and SFT's token count) into the checkpoint, atomically, every rank's before any rank
        goes on: a kill before this returns leaves the checkpoint without `trainer_state.json`, i.e. incomplete. The
        run's recipe (`run_recipe`, set by the entry points) beside them, for a resume to be compared with."""
        if self.run_recipe is not None and self.args.process_index == 0:
            atomic_write_text(json.dumps(self.run_recipe, indent=1), os.path.join(checkpoint, RECIPE_FILE))
        sharded = is_sharded(self)
        if sharded or self.args.process_index == 0:
            states = {method.name: method.state_dict() for method in self.continual_methods}
            states[TRAINER_STATE_KEY] = {"total_train_tokens": getattr(self, "_total_train_tokens", None)}
            atomic_torch_save(states, state_file(checkpoint, self.args.process_index, sharded))
        self.accelerator.wait_for_everyone()

    def load_checkpoint_state(self, checkpoint: str) -> None:
        """Restore what `_save_checkpoint_state` wrote; a missing or damaged file, or one without some method's
        state, stops with its path, what is wrong with it, and the newest earlier complete checkpoint."""
        path = state_file(checkpoint, self.args.process_index, is_sharded(self))

        def fail(problem: str):
            earlier = newest_complete_checkpoint(
                os.path.dirname(os.path.normpath(checkpoint)), before=checkpoint, **self.checkpoint_requirements()
            )
            hint = (
                f"; the newest earlier complete checkpoint is {earlier}" if earlier else "; no earlier one is complete"
            )
            raise ValueError(f"Resuming from {checkpoint}: {path}: {problem}{hint}.")

        if not os.path.exists(path):
            if not self.continual_methods:
                return  # written by a run without methods (or before states were always written)
            fail("missing")
        problem = state_file_problem(path)
        if problem:
            fail(problem)
        try:
            states = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # noqa: BLE001 - whatever the unpickler says, name the file
            fail(f"cannot be loaded ({type(error).__name__}: {error})")
        if not isinstance(states, dict):
            fail(f"holds a {type(states).__name__}, not a dict of method states")
        missing = [method.name for method in self.continual_methods if method.name not in states]
        if missing:
            fail(f"has no state for {missing} (it holds {sorted(k for k in states if k != TRAINER_STATE_KEY)})")
        for method in self.continual_methods:
            try:
                method.load_state_dict(states[method.name])
            except (KeyError, TypeError, RuntimeError) as error:
                fail(f"the state of `{method.name}` does not fit this run ({type(error).__name__}: {error})")
        tokens = states.get(TRAINER_STATE_KEY, {}).get("total_train_tokens")
        if tokens is not None and hasattr(self, "_total_train_tokens"):
            self._total_train_tokens = tokens  # SFT's logged `num_tokens` continues across the resume

    def _save_checkpoint(self, model, trial) -> None:
        """The Trainer's checkpoint, with its rotation replaced: `save_total_limit` counts complete checkpoints only,
        never deletes the newest complete one nor an incomplete one (a kill may have left one to inspect)."""
        limit = self.args.save_total_limit
        self.args.save_total_limit = None
        try:
            with self._naming_a_full_disk(f"checkpoint-{self.state.global_step}"):
                super()._save_checkpoint(model, trial)
        finally:
            self.args.save_total_limit = limit
        if self.args.should_save:
            rotate_complete_checkpoints(
                self._get_output_dir(trial=trial),
                limit,
                self.state.best_model_checkpoint,
                **self.checkpoint_requirements(),
            )

    def _save_rng_state(self, output_dir: str) -> None:
        """The Trainer's per-rank RNG file, written whole or not at all (into a staging folder, then renamed), and every
        rank's before rank 0 writes `trainer_state.json`: a kill in between leaves an incomplete checkpoint, never a
        complete-looking one whose `rng_state_k.pth` is missing or cut off."""
        staging = os.path.join(output_dir, f".rng-staging-{self.args.process_index}")
        super()._save_rng_state(staging)
        for name in os.listdir(staging):
            os.replace(os.path.join(staging, name), os.path.join(output_dir, name))
        os.rmdir(staging)
        self.accelerator.wait_for_everyone()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.model.training or not self.continual_methods:
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if self.model.training:
                self._check_finite_loss(result[0] if return_outputs else result)
            return result
        captured = {}
        handle = None
        if any(method.needs_hidden_states for method in self.continual_methods):
            # The policy's own forward already computes the final hidden states; keep them instead of running a
            # second forward for logits (TRL's fused LM head never builds them). Only the first forward that builds
            # a graph: with label smoothing or a `compute_loss_func` TRL runs another one under no_grad for its
            # metrics, whose hidden states would carry the KL's gradient to the output embedding alone.
            def keep_hidden_states(module, args, output):
                if torch.is_grad_enabled() and "hidden" not in captured:
                    captured["hidden"] = output.last_hidden_state

            decoder = self.accelerator.unwrap_model(model).get_decoder()
            handle = decoder.register_forward_hook(keep_hidden_states)
        try:
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            if handle is not None:
                handle.remove()
        loss, outputs = result if return_outputs else (result, None)
        self._check_finite_loss(loss)
        scale = self._once_per_step_scale(num_items_in_batch)
        for method in self.continual_methods:
            term = method.loss_term(self, model, inputs, captured.get("hidden"))
            if term is not None:
                loss = loss + term * scale
        return (loss, outputs) if return_outputs else loss

    def _once_per_step_scale(self, num_items_in_batch) -> float:
        """Factor that makes a per-micro-batch term count once per optimizer step.

        When the trainer's loss is already normalised for gradient accumulation (`num_items_in_batch` counts the
        whole step's tokens), the Trainer does not divide it again, so the term is divided here.
        """
        scaled = self.loss_is_scaled_for_ga
        if scaled is None:
            scaled = (self.model_accepts_loss_kwargs and num_items_in_batch is not None) or (
                self.compute_loss_func is not None
            )
        return 1.0 / self.current_gradient_accumulation_steps if scaled else 1.0

    def log(self, logs: dict, *args, **kwargs):
        if "loss" in logs and getattr(self, "_nonfinite_skipped", 0):
            logs["nonfinite/skipped_steps"] = self._nonfinite_skipped
        if "loss" in logs:  # a training log; evaluation logs carry eval_loss
            for method in self.continual_methods:
                logs.update({f"{method.name}/{key}": value for key, value in method.metrics().items()})
        super().log(logs, *args, **kwargs)
