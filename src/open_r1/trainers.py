# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""Trainers that add the continual-learning methods a recipe selects to TRL's trainers.

`ContinualSFTTrainer` is TRL's `SFTTrainer` running any set of the methods in `open_r1.continual` (built from the
recipe by `build_methods`) and the recipe's `custom_optim`. The named trainers of the seed README are presets of
it, kept so code that names them works.
"""

from trl import SFTTrainer

from .continual import ContinualTrainerMixin, build_methods
from .optims import custom_optimizer_cls_and_kwargs


class ContinualSFTTrainer(ContinualTrainerMixin, SFTTrainer):
    # A preset's optimizer; when set it overrides the recipe's `custom_optim`.
    preset_custom_optim: str | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.preset_custom_optim is not None:
            self.args.custom_optim = self.preset_custom_optim
        custom = custom_optimizer_cls_and_kwargs(self.args)
        if custom is not None:
            # The Trainer's own `create_optimizer` still groups the parameters (no decay on biases and norm
            # weights) and the recipe's LR scheduler wraps the result: only the class and its kwargs change.
            self.optimizer_cls_and_kwargs = custom
        self.init_continual(build_methods(self.args, self.model))


class SFTTrainerWithDAdamW(ContinualSFTTrainer):
    """SFT with DAdamW whatever the recipe's `custom_optim`; `preconditioner_power` comes from the recipe."""

    preset_custom_optim = "dadamw"
