# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""KL trust region (TRPO-style): keep the policy close to a frozen reference, the model training started from.

On the tokens the loss trains on (labels != -100), with p_ref and p_theta the next-token distributions:

    KL = mean over trained tokens of  sum_v p_ref(v) * (log p_ref(v) - log p_theta(v))

and the loss gets `beta * KL` per micro-batch (acting once per optimizer step, averaged over ranks).

- Penalty: `trust_region_beta` fixed.
- Constraint `KL <= trust_region_delta`: beta adapts after every optimizer step with the adaptive-KL rule of
  Schulman et al. (2017, PPO section 4): with KL the step's mean over all ranks' micro-batches (so every rank holds
  the same beta), beta *= 2 if KL > 1.5 * delta, beta /= 2 if
  KL < delta / 1.5, else beta stays (bounded to [1e-6, 1e6]). `trust_region_beta` is its starting value.

The policy logits come from the final hidden states of the policy's own forward (the fused LM head never builds
them) times the output embedding, on the trained positions only, so no second policy forward is paid. The
reference model is prepared like TRL's reference models: sharded by DeepSpeed when DeepSpeed is on, never a second
unsharded copy.
"""

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..memory import ALL, TRAINING
from .base import ContinualMethod


BETA_BOUNDS = (1e-6, 1e6)


@dataclass
class TrustRegionConfig:
    use_trust_region: bool = field(
        default=False,
        metadata={
            "help": "SFT: add beta * KL(p_ref || p_theta) on the trained tokens, p_ref the starting model. GRPO: TRL's "
            "own KL term, beta * KL(pi_theta || pi_ref) by its k3 estimator, with beta = `trust_region_beta`. Not "
            "under ZeRO-3 or FSDP yet."
        },
    )
    trust_region_beta: float = field(
        default=0.1,
        metadata={"help": "KL coefficient (penalty), or its starting value when `trust_region_delta` is set."},
    )
    trust_region_delta: float | None = field(
        default=None,
        metadata={"help": "KL bound: beta adapts after each step (x2 if KL > 1.5 delta, /2 if KL < delta / 1.5)."},
    )

    def check_trust_region_args(self) -> None:
        if self.trust_region_beta < 0:
            raise ValueError(f"`trust_region_beta` must be >= 0, got {self.trust_region_beta}.")
        if self.trust_region_delta is not None and self.trust_region_delta <= 0:
            raise ValueError(f"`trust_region_delta` must be > 0, got {self.trust_region_delta}.")


def frozen_copy(model):
    """A frozen, independent copy of `model`.

    TRL's trainers patch `model.forward` on the instance (fused LM head) with a closure over the original model, and
    `copy.deepcopy` keeps that closure: the copy's forward would run the live policy. Dropping the instance attribute
    restores the class's forward on the copy's own weights.
    """
    ref = copy.deepcopy(model)
    vars(ref).pop("forward", None)
    return ref.eval().requires_grad_(False)


def kl_ref_to_policy(ref_logits: torch.Tensor, policy_logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(softmax(ref_logits) || softmax(policy_logits)), in fp32 at least."""
    dtype = torch.promote_types(policy_logits.dtype, torch.float32)
    ref_logp = F.log_softmax(ref_logits.to(dtype), dim=-1)
    policy_logp = F.log_softmax(policy_logits.to(dtype), dim=-1)
    return (ref_logp.exp() * (ref_logp - policy_logp)).sum(-1).mean()


def adapt_beta(beta: float, kl: float, delta: float) -> float:
    if kl > 1.5 * delta:
        beta *= 2.0
    elif kl < delta / 1.5:
        beta /= 2.0
    return min(max(beta, BETA_BOUNDS[0]), BETA_BOUNDS[1])


class TrustRegion(ContinualMethod):
    name = "trust_region"
    enable_key = "use_trust_region"
    config_class = TrustRegionConfig
    needs_hidden_states = True
    unsupported_sharding = ("ZeRO-3", "FSDP")  # the policy's output embedding would be partitioned

    @classmethod
    def memory(cls, context) -> list[tuple[str, str, float, str]]:
        """SFT: the frozen reference copy, and in the training step the KL of `kl_ref_to_policy`: the reference's
        logits and the policy's again (16-bit), fp32 copies and log-probabilities of both, the reference's
        probabilities, their difference and its product (~2 x 16-bit + 20 bytes a logit). GRPO: TRL's reference model
        (`beta` > 0), which the planner counts."""
        if context.recipe.get("is_grpo"):
            return []
        tokens = int(context.recipe.get("per_device_train_batch_size", 8)) * context.length
        return [
            (ALL, "trust-region reference", context.weight_bytes * context.params, "frozen copy"),
            (
                TRAINING,
                "reference logits and KL",
                tokens * context.vocab * (2 * context.activation_bytes + 20),
                "16-bit logits of both, fp32 copies, log-probabilities and the KL's terms",
            ),
        ]

    @classmethod
    def from_args(cls, args, retain=None) -> ContinualMethod:
        import trl

        if isinstance(args, trl.GRPOConfig):
            return GRPOTrustRegion(delta=args.trust_region_delta)
        return cls(beta=args.trust_region_beta, delta=args.trust_region_delta)

    def __init__(self, beta: float, delta: float | None = None):
        self.beta = beta
        self.delta = delta
        self.ref_model = None
        self._step_kls: list[torch.Tensor] = []  # this optimizer step's micro-batch KLs on this rank

    def on_trainer_init(self, trainer) -> None:
        # Snapshot now: no checkpoint is loaded yet and the model is not wrapped, so this is the starting model.
        self.ref_model = frozen_copy(trainer.model)

    def setup(self, trainer) -> None:
        from trl.models.utils import prepare_deepspeed

        if trainer.is_deepspeed_enabled:
            self.ref_model = prepare_deepspeed(self.ref_model, trainer.accelerator)
        else:
            self.ref_model = trainer.accelerator.prepare_model(self.ref_model, evaluation_mode=True)

    def loss_term(self, trainer, model, inputs, hidden_states):
        labels = inputs["labels"][:, 1:]
        mask = labels != -100
        if not mask.any():
            return None
        with torch.no_grad():
            ref_inputs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "position_ids")}
            ref_logits = self.ref_model(**ref_inputs).logits[:, :-1][mask]
        output_embedding = trainer.accelerator.unwrap_model(model).get_output_embeddings()
        policy_logits = output_embedding(hidden_states[:, :-1][mask])
        kl = kl_ref_to_policy(ref_logits, policy_logits)
        self._step_kls.append(kl.detach())
        return self.beta * kl

    def on_step_end(self, trainer) -> None:
        # The step's mean KL over every rank's micro-batches: each rank adapts the same beta from the same value (a
        # per-rank beta would mix coefficients in the averaged gradient, and a resume would restore rank 0's on all).
        device = trainer.args.device
        kls = torch.stack(self._step_kls).double() if self._step_kls else torch.zeros(0, dtype=torch.float64)
        local = torch.stack([kls.sum().cpu(), torch.tensor(float(kls.numel()), dtype=torch.float64)]).to(device)
        total, count = trainer.accelerator.reduce(local, "sum").tolist()
        self._step_kls = []
        if count:
            kl = total / count
            self.logged.add("kl", kl)
            if self.delta is not None:
                self.beta = adapt_beta(self.beta, kl, self.delta)
        self.logged.add("beta", self.beta)

    def state_dict(self) -> dict:
        return {"beta": self.beta}

    def load_state_dict(self, state: dict) -> None:
        self.beta = state["beta"]


class GRPOTrustRegion(ContinualMethod):
    """The KL constraint for GRPO, on TRL's own KL term.

    GRPO already penalises `beta * KL(pi || pi_ref)` per token (TRL's estimator, against the reference model TRL
    loads when beta > 0), so the penalty form needs no code: `use_trust_region` sets `beta` to `trust_region_beta`.
    With `trust_region_delta`, this method adapts `trainer.beta` after every optimizer step from the KL TRL measured
    during that step, by the same rule as the SFT trust region.
    """

    name = "trust_region"
    config_class = TrustRegionConfig

    def __init__(self, delta: float | None):
        self.delta = delta
        self.beta: float | None = None
        self._kls, self._seen = None, 0

    def setup(self, trainer) -> None:
        self._trainer = trainer  # a resumed beta must reach TRL's loss before the first step
        self.beta = trainer.beta

    def on_step_end(self, trainer) -> None:
        kls = trainer._metrics["train"].get("kl", [])
        # TRL clears its metrics dict at each log, so a new list object holds only values since then.
        new = kls[self._seen :] if kls is self._kls else kls
        self._kls, self._seen = kls, len(kls)
        if self.delta is not None and new:
            self.beta = adapt_beta(self.beta, sum(new) / len(new), self.delta)
            trainer.beta = self.beta
        self.logged.add("beta", self.beta)

    def state_dict(self) -> dict:
        return {"beta": self.beta}

    def load_state_dict(self, state: dict) -> None:
        self.beta = self._trainer.beta = state["beta"]
