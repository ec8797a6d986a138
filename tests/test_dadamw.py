import copy

import pytest
import torch

from open_r1.optims import DAdam, DAdamW


def _params(seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(7, 5), (5,), (3, 4, 2), (1,)]
    return [torch.nn.Parameter(torch.randn(s, generator=gen).to(dtype)) for s in shapes]


def _grads(params, step):
    gen = torch.Generator().manual_seed(1000 + step)
    # Gradient scales spread over orders of magnitude, as in real models.
    return [torch.randn(p.shape, generator=gen) * 10 ** (-i) for i, p in enumerate(params)]


def _run(optimizer_cls, steps=50, params=None, **kwargs):
    params = params if params is not None else _params()
    optimizer = optimizer_cls(params, **kwargs)
    for step in range(steps):
        for p, g in zip(params, _grads(params, step)):
            p.grad = g.to(p.dtype)
        optimizer.step()
    return params, optimizer


def _reference(steps, lr, betas, eps, weight_decay, gamma, decoupled):
    """Plain-Python DAdam(W), element by element, in float64."""
    params = [p.detach().double().flatten().tolist() for p in _params()]
    m = [[0.0] * len(p) for p in params]
    v = [[0.0] * len(p) for p in params]
    beta1, beta2 = betas
    for t in range(1, steps + 1):
        grads = [g.double().flatten().tolist() for g in _grads(_params(), t - 1)]
        for i in range(len(params)):
            for j in range(len(params[i])):
                g = grads[i][j]
                if decoupled:
                    params[i][j] *= 1 - lr * weight_decay
                else:
                    g += weight_decay * params[i][j]
                m[i][j] = beta1 * m[i][j] + (1 - beta1) * g
                v[i][j] = beta2 * v[i][j] + (1 - beta2) * g * g
                m_hat = m[i][j] / (1 - beta1**t)
                v_hat = v[i][j] / (1 - beta2**t)
                params[i][j] -= lr * m_hat / (v_hat**gamma + eps)
    return [torch.tensor(p, dtype=torch.float64).reshape(q.shape) for p, q in zip(params, _params())]


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("foreach", [True, False])
def test_gamma_half_is_torch_adamw(weight_decay, foreach):
    ours, _ = _run(DAdamW, lr=1e-2, weight_decay=weight_decay, preconditioner_power=0.5, foreach=foreach)
    theirs, _ = _run(torch.optim.AdamW, lr=1e-2, weight_decay=weight_decay, foreach=True)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_dadam_gamma_half_is_torch_adam_with_l2_decay():
    ours, _ = _run(DAdam, lr=1e-2, weight_decay=0.1)
    theirs, _ = _run(torch.optim.Adam, lr=1e-2, weight_decay=0.1, foreach=True)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.75, 1.0])
@pytest.mark.parametrize("optimizer_cls", [DAdam, DAdamW])
def test_other_powers_match_a_plain_python_reference(gamma, optimizer_cls):
    kwargs = dict(lr=1e-4, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.05)
    ours, _ = _run(optimizer_cls, steps=20, preconditioner_power=gamma, **kwargs)
    reference = _reference(
        20,
        kwargs["lr"],
        kwargs["betas"],
        kwargs["eps"],
        kwargs["weight_decay"],
        gamma,
        decoupled=optimizer_cls is DAdamW,
    )
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("gamma", [0.5, 0.8, 1.0])
def test_foreach_and_single_tensor_paths_agree(gamma):
    a, _ = _run(DAdamW, lr=1e-3, eps=1e-6, weight_decay=0.1, preconditioner_power=gamma, foreach=True)
    b, _ = _run(DAdamW, lr=1e-3, eps=1e-6, weight_decay=0.1, preconditioner_power=gamma, foreach=False)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_state_dict_round_trip_continues_bit_identically(dtype):
    """A resumed optimizer continues exactly, bf16 parameters included: torch's `load_state_dict` casts state to the
    parameter's dtype, which turned the fp32 moments of bf16 weights into bf16 (and the next step failed)."""
    kwargs = dict(lr=1e-3, eps=1e-6, weight_decay=0.1, preconditioner_power=0.9)
    straight, _ = _run(DAdamW, steps=30, params=_params(dtype=dtype), **kwargs)

    params, optimizer = _run(DAdamW, steps=15, params=_params(dtype=dtype), **kwargs)
    saved_params, saved_state = copy.deepcopy([p.detach() for p in params]), copy.deepcopy(optimizer.state_dict())
    resumed = [torch.nn.Parameter(p.clone()) for p in saved_params]
    optimizer = DAdamW(resumed, **kwargs)
    optimizer.load_state_dict(saved_state)
    assert all(optimizer.state[p]["exp_avg"].dtype == torch.float32 for p in resumed)
    for step in range(15, 30):
        for p, g in zip(resumed, _grads(resumed, step)):
            p.grad = g.to(dtype)
        optimizer.step()
    for a, b in zip(straight, resumed):
        assert torch.equal(a, b)


def test_bf16_params_keep_fp32_state():
    params, optimizer = _run(DAdamW, steps=5, params=_params(dtype=torch.bfloat16), lr=1e-2)
    full, _ = _run(DAdamW, steps=5, lr=1e-2)
    for p, q in zip(params, full):
        state = optimizer.state[p]
        assert p.dtype == torch.bfloat16
        assert state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.float32
        torch.testing.assert_close(p.float(), q, rtol=2e-2, atol=2e-2)


def test_parameters_without_gradients_are_skipped():
    params = _params()
    optimizer = DAdamW(params, lr=1e-2)
    before = params[1].detach().clone()
    params[0].grad = torch.ones_like(params[0])
    optimizer.step()
    assert torch.equal(params[1], before) and params[1] not in optimizer.state


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(preconditioner_power=0.4), "preconditioner_power"),
        (dict(preconditioner_power=1.01), "preconditioner_power"),
        (dict(lr=-1.0), "lr"),
        (dict(eps=-1e-8), "eps"),
        (dict(betas=(1.0, 0.999)), "betas"),
        (dict(betas=(0.9, -0.1)), "betas"),
        (dict(weight_decay=-0.1), "weight_decay"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DAdamW(_params(), **kwargs)


def test_default_eps_grows_with_the_power():
    assert DAdam.default_eps(0.5) == pytest.approx(1e-8)
    assert DAdam.default_eps(1.0) == pytest.approx(1e-6)
