# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The SFT trainer that adds the continual-learning methods a recipe selects to TRL's `SFTTrainer`.

`ContinualSFTTrainer` is TRL's trainer running any set of the methods in `open_r1.continual` (built from the recipe
by `build_methods`) and the recipe's `custom_optim`. The named trainers of the seed README are presets, kept so code
that names them works. The GRPO trainer is in `open_r1.grpo_trainer`.
"""

from trl import SFTTrainer

from .continual import ContinualTrainerMixin, build_methods
from .optims import custom_optimizer_cls_and_kwargs


def attach_continual(trainer, methods: list) -> None:
    """Swap in the recipe's optimizer class and attach the recipe's methods (before any checkpoint is loaded)."""
    custom = custom_optimizer_cls_and_kwargs(trainer.args)
    if custom is not None:
        # The Trainer's own `create_optimizer` still groups the parameters (no decay on biases and norm weights)
        # and the recipe's LR scheduler wraps the result: only the class and its kwargs change.
        trainer.optimizer_cls_and_kwargs = custom
    trainer.init_continual(methods)


class ContinualSFTTrainer(ContinualTrainerMixin, SFTTrainer):
    # A preset's `custom_optim`; when set it overrides the recipe's.
    preset_custom_optim: str | None = None

    def __init__(self, model, args, train_dataset=None, retain_dataset=None, **kwargs):
        """`retain_dataset`: the retain split when the caller has loaded it already (else loaded here if needed)."""
        if self.preset_custom_optim is not None:
            args.custom_optim = self.preset_custom_optim
            args.check_continual_args()
        methods = build_methods(args, retain_dataset)
        for method in methods:  # before TRL tokenises it: e.g. replay mixes retain rows in
            train_dataset = method.prepare_train_dataset(train_dataset)
        super().__init__(model=model, args=args, train_dataset=train_dataset, **kwargs)
        if train_dataset is not None and hasattr(self.train_dataset, "__len__") and len(self.train_dataset) == 0:
            raise ValueError(
                f"No training row has a labelled token within `max_length` {args.max_length} (TRL drops such rows; "
                f"all {len(train_dataset)} were): raise `max_length`, or check `truncation_mode`."
            )
        attach_continual(self, methods)


class SFTTrainerWithDAdamW(ContinualSFTTrainer):
    """SFT with DAdamW whatever the recipe's `custom_optim`; `preconditioner_power` comes from the recipe."""

    preset_custom_optim = "dadamw"


class SFTTrainerWithFisher(ContinualSFTTrainer):
    """SFT with EWC (the seed's `custom_optim: fisher`); its Fisher and schedule keys come from the recipe."""

    preset_custom_optim = "fisher"
