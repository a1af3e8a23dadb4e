"""``CyclicLR`` and ``OneCycleLR`` (rates and momenta) against the real PyTorch schedulers,
and driving ``og.torch.SGD`` / ``og.torch.Adam`` end to end against PyTorch's loop.

Rates and momenta: PyTorch steps the scheduler after every ``optimizer.step()`` and we
record ``param_groups[0]['lr']`` and ``['momentum']`` (``betas[0]`` for Adam) in effect for
each step; optgrad's schedules at that update count must agree to
``1e-6 |torch| + 1e-15 max|torch|``.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import optgrad as og
import optgrad.torch
from optgrad.torch import lr_scheduler as S
from tests._oracle import assert_distinguishable, assert_trajectories_close, problem, run

T = torch.optim.lr_scheduler


def _torch_values(make, steps, *, adam=False, lr=0.1):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = (
        torch.optim.Adam([param], lr=lr) if adam else torch.optim.SGD([param], lr=lr, momentum=0.5)
    )
    sched = make(opt)
    lrs, moms = [], []
    for t in range(steps):
        group = opt.param_groups[0]
        lrs.append(group["lr"])
        moms.append(group["betas"][0] if adam else group["momentum"])
        if t + 1 < steps:
            opt.step()
            sched.step()
    return np.asarray(lrs), np.asarray(moms)


def _check(ours, expected, steps_per_epoch=1):
    expected = np.repeat(expected, steps_per_epoch)
    counts = jnp.arange(len(expected), dtype=jnp.int32)
    values = np.asarray(jax.jit(jax.vmap(ours))(counts), np.float64)
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-15 * np.max(np.abs(expected)))


CYCLIC = [
    dict(base_lr=0.01, max_lr=0.1, step_size_up=20),
    dict(base_lr=0.001, max_lr=0.05, step_size_up=10, step_size_down=30, mode="triangular2"),
    dict(base_lr=0.02, max_lr=0.3, step_size_up=15, mode="exp_range", gamma=0.995,
         base_momentum=0.7, max_momentum=0.95),
    dict(base_lr=0.05, max_lr=0.2, step_size_up=7, step_size_down=3,
         scale_fn=lambda x: 1.0 / (1.0 + 0.01 * x), scale_mode="iterations"),
    dict(base_lr=0.05, max_lr=0.2, step_size_up=4, scale_fn=lambda x: 0.5 ** (x - 1) + 0.1),
    dict(base_lr=0.1, max_lr=0.01, step_size_up=9, mode="triangular2"),  # max below base
    dict(base_lr=0.01, max_lr=0.1, step_size_up=1, step_size_down=2, steps_per_epoch=3),
]  # fmt: skip


@pytest.mark.parametrize("kwargs", CYCLIC, ids=range(len(CYCLIC)))
@pytest.mark.parametrize("adam", [False, True], ids=["SGD", "Adam"])
def test_cyclic_lr_and_momentum_match_torch(kwargs, adam):
    theirs = {k: v for k, v in kwargs.items() if k != "steps_per_epoch"}
    lrs, moms = _torch_values(lambda o: T.CyclicLR(o, **theirs), 400, adam=adam)
    ours = S.CyclicLR(**kwargs)
    _check(ours, lrs, kwargs.get("steps_per_epoch", 1))
    _check(ours.momentum, moms, kwargs.get("steps_per_epoch", 1))
    if adam:
        b1, b2 = ours.betas(0.98)
        assert b1 == ours.momentum and b2 == 0.98


ONE_CYCLE = [
    dict(max_lr=0.1, total_steps=100),
    dict(max_lr=0.5, total_steps=300, anneal_strategy="linear"),
    dict(max_lr=0.2, total_steps=337, three_phase=True),
    dict(max_lr=0.2, total_steps=301, pct_start=0.25, three_phase=True, anneal_strategy="linear"),
    dict(max_lr=1.0, epochs=30, steps_per_epoch=11, pct_start=0.1, div_factor=10.0,
         final_div_factor=100.0, base_momentum=0.8, max_momentum=0.9),
    dict(max_lr=0.05, total_steps=120, pct_start=0.005),  # the peak before step 0
    dict(max_lr=0.05, total_steps=50, pct_start=0.9, three_phase=True),  # phases overlap
    dict(max_lr=0.3, total_steps=200, cycle_momentum=False),
]  # fmt: skip


@pytest.mark.parametrize("kwargs", ONE_CYCLE, ids=range(len(ONE_CYCLE)))
def test_one_cycle_lr_and_momentum_match_torch(kwargs):
    total = kwargs.get("total_steps") or kwargs["epochs"] * kwargs["steps_per_epoch"]
    # PyTorch computes count `total` too (one step past the schedule), then raises.
    lrs, moms = _torch_values(lambda o: T.OneCycleLR(o, **kwargs), total + 1)
    ours = S.OneCycleLR(**kwargs)
    _check(ours, lrs)
    if kwargs.get("cycle_momentum", True):
        _check(ours.momentum, moms)
        _, moms_adam = _torch_values(lambda o: T.OneCycleLR(o, **kwargs), total + 1, adam=True)
        _check(ours.betas()[0], moms_adam)
    else:
        with pytest.raises(ValueError, match="cycle_momentum=False"):
            ours.momentum  # noqa: B018
    # Past the schedule (PyTorch raises): the value at `total` is kept.
    np.testing.assert_array_equal(ours(jnp.arange(total, total + 5)), ours(total))


def _end_to_end(make_ours, make_theirs, steps=150, seed=3):
    """optgrad's optimizer with scheduled lr/momentum vs PyTorch's optimizer + scheduler."""
    prob = problem(seed=seed, steps=steps)
    holder = {}

    def make(params):
        opt, holder["sched"] = make_theirs(params)
        return opt

    from tests.torch.conftest import run_torch

    expected = run_torch(make, prob, after_step=lambda opt, t: holder["sched"].step())
    actual = run(make_ours(), prob)
    assert_trajectories_close(actual, expected)
    return prob, actual


def test_cyclic_lr_drives_sgd_like_torch():
    s = S.CyclicLR(0.01, 0.2, step_size_up=13, step_size_down=29, mode="triangular2",
                   base_momentum=0.6, max_momentum=0.95)  # fmt: skip
    prob, actual = _end_to_end(
        lambda: og.torch.SGD(lr=s, momentum=s.momentum, nesterov=True),
        lambda p: (
            opt := torch.optim.SGD(p, lr=0.5, momentum=0.3, nesterov=True),
            T.CyclicLR(opt, 0.01, 0.2, 13, 29, "triangular2", base_momentum=0.6,
                       max_momentum=0.95),
        ),
    )  # fmt: skip
    # The cycled momentum matters: a constant one gives a visibly different trajectory.
    assert_distinguishable(actual, run(og.torch.SGD(lr=s, momentum=0.95, nesterov=True), prob))


def test_cyclic_lr_drives_adam_like_torch():
    s = S.CyclicLR(0.005, 0.05, step_size_up=10, mode="exp_range", gamma=0.99)
    _end_to_end(
        lambda: og.torch.Adam(lr=s, betas=s.betas(0.99)),
        lambda p: (
            opt := torch.optim.Adam(p, lr=0.5, betas=(0.5, 0.99)),
            T.CyclicLR(opt, 0.005, 0.05, 10, mode="exp_range", gamma=0.99),
        ),
    )


def test_one_cycle_drives_sgd_like_torch():
    s = S.OneCycleLR(0.3, total_steps=150)
    prob, actual = _end_to_end(
        lambda: og.torch.SGD(lr=s, momentum=s.momentum),
        # momentum=0 in PyTorch's constructor: OneCycleLR still sets it (to max_momentum).
        lambda p: (opt := torch.optim.SGD(p, lr=1.0), T.OneCycleLR(opt, 0.3, total_steps=150)),
    )
    assert_distinguishable(actual, run(og.torch.SGD(lr=s, momentum=0.95), prob))


def test_one_cycle_three_phase_drives_adamw_like_torch():
    s = S.OneCycleLR(0.05, total_steps=160, pct_start=0.2, three_phase=True,
                     anneal_strategy="linear")  # fmt: skip
    _end_to_end(
        lambda: og.torch.AdamW(lr=s, betas=s.betas(0.995), weight_decay=0.05),
        lambda p: (
            opt := torch.optim.AdamW(p, lr=1.0, betas=(0.1, 0.995), weight_decay=0.05),
            T.OneCycleLR(opt, 0.05, total_steps=160, pct_start=0.2, three_phase=True,
                         anneal_strategy="linear"),
        ),
        steps=160,
    )  # fmt: skip


def test_reprs():
    s = S.CyclicLR(0.01, 0.1, step_size_up=5)
    assert repr(s) == (
        "CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=5, step_size_down=None, "
        "mode='triangular', gamma=1.0, scale_fn=None, scale_mode='cycle', cycle_momentum=True, "
        "base_momentum=0.8, max_momentum=0.9, steps_per_epoch=1)"
    )
    assert repr(s.momentum) == repr(s) + ".momentum"
    assert repr(S.OneCycleLR(0.1, 100)).startswith("OneCycleLR(max_lr=0.1, total_steps=100, ")


C = "optgrad.torch.lr_scheduler."


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: S.OneCycleLR(0.1), ValueError,
         "OneCycleLR(total_steps=...) is required, or both epochs=... and steps_per_epoch=...; "
         "got total_steps=None, epochs=None, steps_per_epoch=None"),
        (lambda: S.OneCycleLR(0.1, epochs=3), ValueError,
         "OneCycleLR(total_steps=...) is required"),
        (lambda: S.OneCycleLR(0.1, 0), ValueError,
         "OneCycleLR(total_steps=...) must be a positive integer, got total_steps=0"),
        (lambda: S.OneCycleLR(0.1, 100, pct_start=1.5), ValueError,
         "OneCycleLR(pct_start=...) must be in [0, 1], got pct_start=1.5"),
        (lambda: S.OneCycleLR(0.1, 100, pct_start=-0.1), ValueError,
         "OneCycleLR(pct_start=...) must be in [0, 1], got pct_start=-0.1"),
        (lambda: S.OneCycleLR(0.1, 100, pct_start=0.01), ValueError,
         "OneCycleLR(pct_start=...) makes a phase of the schedule empty"),
        (lambda: S.OneCycleLR(0.1, 100, pct_start=1.0), ValueError,
         "OneCycleLR(pct_start=...) makes a phase of the schedule empty"),
        (lambda: S.OneCycleLR(0.1, 100, anneal_strategy="exp"), ValueError,
         "OneCycleLR(anneal_strategy=...) must be one of 'cos', 'linear', got "
         "anneal_strategy='exp'"),
        (lambda: S.CyclicLR(0.01, 0.1, step_size_up=0), ValueError,
         "CyclicLR(step_size_up=...) must be a positive integer, got step_size_up=0"),
        (lambda: S.CyclicLR(0.01, 0.1, mode="cosine"), ValueError,
         "CyclicLR(mode=...) must be one of 'triangular', 'triangular2', 'exp_range', got "
         "mode='cosine'"),
        (lambda: S.CyclicLR(0.01, 0.1, scale_mode="epoch"), ValueError,
         "CyclicLR(scale_mode=...) must be one of 'cycle', 'iterations'"),
        (lambda: S.CyclicLR(-0.01, 0.1), ValueError,
         "CyclicLR(base_lr=...) must be non-negative, got base_lr=-0.01"),
        (lambda: S.CyclicLR(0.01, 0.1, steps_per_epoch=0), ValueError,
         "CyclicLR(steps_per_epoch=...) must be a positive integer, got steps_per_epoch=0"),
    ],
)  # fmt: skip
def test_construction_errors(make, error, message):
    with pytest.raises(error, match="^" + re.escape(C + message)):
        make()
