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
- `state_dict()` / `load_state_dict(state)`: saved in every checkpoint (`continual_state*.pt`) and restored on
  `resume_from_checkpoint`, so a pre-empted job resumes in the method's exact state;
- `metrics()`: numbers logged under `<name>/...` with the trainer's own logs, averaged since the last log (values
  added to `self.logged`).
"""

import contextlib
import os
from collections import defaultdict

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from .sharding import is_sharded, is_zero3


STATE_FILE = "continual_state.pt"


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
    # Whether `loss_term` wants the final hidden states of the policy forward (the trust region does).
    needs_hidden_states = False
    # Whether `from_args` needs the retain split.
    needs_retain_data = False
    # Shardings it cannot run under yet ("ZeRO-3", "FSDP"): the trainer refuses them at start, the recipe checker
    # before a job is submitted.
    unsupported_sharding: tuple[str, ...] = ()

    @classmethod
    def enabled(cls, args) -> bool:
        """Whether the parsed recipe `args` turn this method on."""
        return bool(getattr(args, cls.enable_key))

    @classmethod
    def from_args(cls, args, retain=None) -> "ContinualMethod":
        raise NotImplementedError

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
    """ "ZeRO-3", "FSDP" or None: how the trainer partitions parameters."""
    if trainer.is_fsdp_enabled:
        return "FSDP"
    return "ZeRO-3" if is_zero3(trainer) else None


def after_backward_available(trainer) -> bool:
    """Whether `after_backward` runs under this trainer's backend (everywhere but DeepSpeed ZeRO-1/2)."""
    return not trainer.is_deepspeed_enabled or is_zero3(trainer)


def state_file(checkpoint_dir: str, process_index: int, sharded: bool) -> str:
    """Sharded states are saved per rank; replicated ones once, by rank 0, and read by every rank."""
    name = f"continual_state_rank{process_index}.pt" if sharded else STATE_FILE
    return os.path.join(checkpoint_dir, name)


def _overrides(method, hook: str) -> bool:
    return getattr(type(method), hook) is not getattr(ContinualMethod, hook)


class _MethodsCallback(TrainerCallback):
    def __init__(self, trainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        trainer = self.trainer
        sharding = sharding_of(trainer)
        for method in trainer.continual_methods:
            if sharding in method.unsupported_sharding:
                raise ValueError(
                    f"The continual-learning method `{method.name}` does not support {sharding} yet; use ZeRO-1/2 or "
                    "DDP (`python -m open_r1.recipes check --accelerate-config` reports this before a job starts)."
                )
        trainer.install_after_backward()
        for method in trainer.continual_methods:
            method.setup(trainer)
        checkpoint = trainer.continual_resume_checkpoint
        if checkpoint is not None:
            path = state_file(checkpoint, args.process_index, is_sharded(trainer))
            if not os.path.exists(path):
                raise FileNotFoundError(f"Resuming from {checkpoint}: the continual-learning state {path} is missing.")
            states = torch.load(path, map_location="cpu", weights_only=False)
            for method in trainer.continual_methods:
                method.load_state_dict(states[method.name])

    def on_step_end(self, args, state, control, **kwargs):
        for method in self.trainer.continual_methods:
            method.on_step_end(self.trainer)

    def on_train_end(self, args, state, control, **kwargs):
        for method in self.trainer.continual_methods:
            method.on_train_end(self.trainer)

    def on_save(self, args, state, control, **kwargs):
        sharded = is_sharded(self.trainer)
        if not sharded and not state.is_world_process_zero:
            return
        checkpoint = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        states = {method.name: method.state_dict() for method in self.trainer.continual_methods}
        torch.save(states, state_file(checkpoint, args.process_index, sharded))


class ContinualTrainerMixin:
    """Runs `self.continual_methods` inside a TRL trainer; put it before the TRL trainer in the bases."""

    continual_methods: list
    continual_resume_checkpoint: str | None  # the checkpoint this run resumes from (methods skip what it restores)

    def init_continual(self, methods: list) -> None:
        names = [method.name for method in methods]
        if len(set(names)) != len(names):
            raise ValueError(f"Each continual-learning method can be enabled once, got {names}.")
        self.continual_methods = methods
        self.continual_resume_checkpoint = None
        self._after_backward_installed = False
        for method in methods:
            method.on_trainer_init(self)
        if methods:
            self.add_callback(_MethodsCallback(self))

    def install_after_backward(self) -> None:
        """The one place the backward is wrapped: after it (and its data-parallel reduction), on the micro-batch that
        synchronises, every method's `after_backward` runs, before the Trainer clips and steps. Only when some method
        has the hook and the backend allows it; once, however often `train` is called."""
        methods = [m for m in self.continual_methods if _overrides(m, "after_backward")]
        if not methods or self._after_backward_installed or not after_backward_available(self):
            return
        self._after_backward_installed = True

        def after_backward(grad_scale: float) -> None:
            for method in methods:
                method.after_backward(self, grad_scale)

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

    def train(self, resume_from_checkpoint=None, **kwargs):
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
        self.continual_resume_checkpoint = resume_from_checkpoint if self.continual_methods else None
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def evaluate(self, *args, **kwargs):
        with contextlib.ExitStack() as weights:
            for method in self.continual_methods:
                weights.enter_context(method.evaluation_weights(self))
            return super().evaluate(*args, **kwargs)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call)
        if _internal_call and output_dir is not None and os.path.basename(output_dir).startswith("checkpoint-"):
            for method in self.continual_methods:  # a checkpoint: the Trainer writes its optimizer and state next
                method.on_save_checkpoint(self, output_dir)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.model.training or not self.continual_methods:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
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
        if "loss" in logs:  # a training log; evaluation logs carry eval_loss
            for method in self.continual_methods:
                logs.update({f"{method.name}/{key}": value for key, value in method.metrics().items()})
        super().log(logs, *args, **kwargs)
