# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""DAdam: Adam with a diagonal preconditioner raised to a configurable power.

With Adam's bias-corrected moments m_hat and v_hat (v_hat estimates the diagonal of the empirical Fisher), each step
is

    theta <- theta - lr * m_hat / (v_hat ** gamma + eps),        gamma = preconditioner_power in [0.5, 1]

- gamma = 0.5 is exactly Adam (`torch.optim.Adam`; `DAdamW` at 0.5 is exactly `torch.optim.AdamW`);
- gamma = 1.0 is a diagonal natural-gradient step (empirical Fisher), m_hat / v_hat;
- values in between interpolate.

Learning rate and eps at gamma > 0.5. The preconditioned step is no longer scale-free: for a steady gradient g it
is about lr * |g|^(1 - 2 * gamma), i.e. lr / |g| at gamma = 1. Gradients of LLM weights are small (RMS ~1e-4 to
1e-2), so at gamma = 1 the same lr gives steps 100x to 10,000x larger than Adam's. Start from the Adam learning rate
times the typical gradient magnitude, about `lr = lr_adam * 1e-3` (and warm up). `eps` also changes meaning: it is
added to v_hat ** gamma, so it caps the step of a coordinate at lr * |g| / eps and, over all |g|, at
lr / (2 * sqrt(eps)) for gamma = 1. Adam's 1e-8 is far too small there; use eps ~ 1e-6 to 1e-4 at gamma = 1
(`DAdam.default_eps(gamma)` gives 1e-8 at 0.5, rising log-linearly to 1e-6 at 1.0).

Moments and the update are kept in fp32 whatever the parameter dtype (bf16 weights get fp32 state), and the
multi-tensor (`torch._foreach_*`) path is the default.
"""

import torch
from torch.optim import Optimizer


# Optimizer state kept in fp32 whatever the parameter dtype.
MOMENTS = ("exp_avg", "exp_avg_sq")


class DAdam(Optimizer):
    """Adam with preconditioner power `preconditioner_power` and L2 (coupled) weight decay, as `torch.optim.Adam`.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        betas: coefficients of the running averages of the gradient and its square, each in [0, 1).
        eps: added to `v_hat ** preconditioner_power` for numerical stability (>= 0); see the module docstring.
        weight_decay: weight decay coefficient (>= 0).
        preconditioner_power: gamma in [0.5, 1]; 0.5 is Adam, 1.0 the diagonal natural gradient.
        foreach: use the multi-tensor path (default) or the single-tensor loop.
    """

    decoupled_weight_decay = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        preconditioner_power: float = 0.5,
        foreach: bool = True,
    ):
        _check_args(lr, betas, eps, weight_decay, preconditioner_power)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            preconditioner_power=preconditioner_power,
            foreach=foreach,
        )
        super().__init__(params, defaults)

    @staticmethod
    def default_eps(preconditioner_power: float) -> float:
        """A sane eps for a preconditioner power: 1e-8 (Adam's) at 0.5, 1e-6 at 1.0, log-linear in between."""
        return 10 ** (-8 + 4 * (preconditioner_power - 0.5))

    def add_param_group(self, param_group: dict) -> None:
        merged = {**self.defaults, **param_group}
        _check_args(
            merged["lr"], merged["betas"], merged["eps"], merged["weight_decay"], merged["preconditioner_power"]
        )
        super().add_param_group(param_group)

    def load_state_dict(self, state_dict: dict) -> None:
        """torch's `load_state_dict` casts floating-point state to each parameter's dtype; the moments stay fp32 here
        (a bf16 parameter's would otherwise become bf16, and the next step would fail on the mixed dtypes)."""
        moments = {
            param_id: {key: value for key, value in state.items() if key in MOMENTS}
            for param_id, state in state_dict["state"].items()
        }
        super().load_state_dict(state_dict)
        saved_ids = [param_id for group in state_dict["param_groups"] for param_id in group["params"]]
        params = [param for group in self.param_groups for param in group["params"]]
        for param_id, param in zip(saved_ids, params):
            for key, value in moments.get(param_id, {}).items():
                self.state[param][key] = value.to(device=param.device, dtype=torch.float32)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("DAdam does not support sparse gradients.")
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(p.grad)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
                steps.append(state["step"])
            if not params:
                continue
            update = _foreach_update if group["foreach"] else _single_tensor_update
            update(params, grads, exp_avgs, exp_avg_sqs, steps, group, self.decoupled_weight_decay)
        return loss


def _check_args(lr, betas, eps, weight_decay, preconditioner_power) -> None:
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate `lr`: {lr} (must be >= 0).")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon `eps`: {eps} (must be >= 0).")
    if len(betas) != 2 or not all(0.0 <= beta < 1.0 for beta in betas):
        raise ValueError(f"Invalid `betas`: {betas} (each must be in [0, 1)).")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid `weight_decay`: {weight_decay} (must be >= 0).")
    if not 0.5 <= preconditioner_power <= 1.0:
        raise ValueError(f"Invalid `preconditioner_power`: {preconditioner_power} (must be in [0.5, 1.0]).")


def _bias_corrections(step: float, beta1: float, beta2: float, gamma: float) -> tuple[float, float]:
    """(lr scale 1 / (1 - beta1^t), preconditioner scale (1 - beta2^t)^gamma)."""
    return 1.0 / (1.0 - beta1**step), (1.0 - beta2**step) ** gamma


def _single_tensor_update(params, grads, exp_avgs, exp_avg_sqs, steps, group, decoupled):
    beta1, beta2 = group["betas"]
    lr, eps, weight_decay, gamma = group["lr"], group["eps"], group["weight_decay"], group["preconditioner_power"]
    for param, grad, exp_avg, exp_avg_sq, step in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
        step += 1
        master = param if param.dtype == torch.float32 else param.float()
        grad = grad.float()
        if weight_decay != 0:
            if decoupled:
                master.mul_(1 - lr * weight_decay)
            else:
                grad = grad.add(master, alpha=weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        lr_scale, precond_scale = _bias_corrections(step.item(), beta1, beta2, gamma)
        # v_hat^gamma = exp_avg_sq^gamma / (1 - beta2^t)^gamma; sqrt at gamma = 0.5 keeps Adam's exact arithmetic.
        powered = exp_avg_sq.sqrt() if gamma == 0.5 else exp_avg_sq.pow(gamma)
        denom = powered.div_(precond_scale).add_(eps)
        master.addcdiv_(exp_avg, denom, value=-lr * lr_scale)
        if master is not param:
            param.copy_(master)


def _foreach_update(params, grads, exp_avgs, exp_avg_sqs, steps, group, decoupled):
    beta1, beta2 = group["betas"]
    lr, eps, weight_decay, gamma = group["lr"], group["eps"], group["weight_decay"], group["preconditioner_power"]
    # Parameters of another dtype get fp32 masters for the update; the moments are fp32 already.
    masters = [p if p.dtype == torch.float32 else p.float() for p in params]
    grads = [g if g.dtype == torch.float32 else g.float() for g in grads]
    torch._foreach_add_(steps, 1)
    if weight_decay != 0:
        if decoupled:
            torch._foreach_mul_(masters, 1 - lr * weight_decay)
        else:
            grads = torch._foreach_add(grads, masters, alpha=weight_decay)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    # Step counts can differ inside a group when some parameters had no gradient at some steps.
    scales = [_bias_corrections(step.item(), beta1, beta2, gamma) for step in steps]
    denom = torch._foreach_sqrt(exp_avg_sqs) if gamma == 0.5 else torch._foreach_pow(exp_avg_sqs, gamma)
    torch._foreach_div_(denom, [precond_scale for _, precond_scale in scales])
    torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(masters, exp_avgs, denom, [-lr * lr_scale for lr_scale, _ in scales])
    for param, master in zip(params, masters):
        if master is not param:
            param.copy_(master)
