"""``ReduceLROnPlateau`` against the real ``torch.optim.lr_scheduler.ReduceLROnPlateau``.

Both are fed the same metric sequence (descents, exact plateaus, noisy plateaus, small
improvements below and above the threshold); the learning rate after each step must agree
to 1e-6 relative. Metrics are float32 values (optgrad compares in float32, PyTorch in
double); the sequences have no value within float32 rounding of a threshold.
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
from tests._oracle import assert_trajectories_close, problem


def _metrics(seed: int, n: int = 300, *, sign: float = 1.0) -> np.ndarray:
    """Piecewise: descents, exact plateaus, noisy plateaus, tiny and real improvements."""
    r = np.random.default_rng(seed)
    values, level = [], 10.0
    while len(values) < n:
        kind = r.integers(4)
        length = int(r.integers(3, 25))
        if kind == 0:  # descent
            seg = level * np.cumprod(r.uniform(0.9, 0.99, length))
        elif kind == 1:  # exact plateau
            seg = np.full(length, level)
        elif kind == 2:  # noise above the best
            seg = level * (1 + r.uniform(0.001, 0.05, length))
        else:  # improvements smaller than a 1e-4 relative threshold, then a jump
            seg = level * np.cumprod(np.full(length, 1 - 3e-5))
            seg[-1] *= 0.9
        values.extend(seg)
        level = float(np.min(seg))
    return (sign * np.asarray(values[:n])).astype(np.float32)


def _torch_lrs(metrics, lr, steps_per_epoch=1, **kwargs):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    lrs = []  # the rate after each update: it changes after the epoch's last one
    for epoch in metrics.reshape(-1, steps_per_epoch).astype(np.float64):
        lrs.extend([opt.param_groups[0]["lr"]] * (steps_per_epoch - 1))
        sched.step(float(np.float32(np.sum(epoch.astype(np.float32)) / steps_per_epoch)))
        lrs.append(opt.param_groups[0]["lr"])
    return np.asarray(lrs)


def _our_lrs(metrics, lr, steps_per_epoch=1, **kwargs):
    tx = S.ReduceLROnPlateau(og.torch.SGD(lr=lr), steps_per_epoch=steps_per_epoch, **kwargs)
    params = {"w": jnp.zeros(2)}

    @jax.jit
    def go(metrics):
        def step(state, value):
            _, state = tx.update({"w": jnp.ones(2)}, state, params, value=value)
            return state, og.tree.get(state, "lr")

        return jax.lax.scan(step, tx.init(params), metrics)

    state, lrs = go(jnp.asarray(metrics))
    return np.asarray(lrs, np.float64), state


CONFIGS = [
    dict(patience=5),
    dict(patience=0, factor=0.5),
    dict(patience=3, cooldown=4, factor=0.3),
    dict(patience=2, threshold=0.01, threshold_mode="abs", min_lr=1e-3),
    dict(patience=4, threshold=1e-3, factor=0.7, min_lr=0.02, eps=1e-3),
    dict(mode="max", patience=3, cooldown=2),
    dict(mode="max", patience=2, threshold=0.05, threshold_mode="abs", factor=0.2),
    dict(patience=10),  # PyTorch's defaults otherwise
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kwargs", CONFIGS, ids=[repr(c) for c in CONFIGS])
def test_lr_sequence_matches_torch(kwargs, seed):
    sign = -1.0 if kwargs.get("mode") == "max" else 1.0
    metrics = _metrics(seed, sign=sign)
    expected = _torch_lrs(metrics, 0.1, **kwargs)
    assert len(np.unique(expected)) >= 3, "the sequence should trigger several reductions"
    ours, _ = _our_lrs(metrics, 0.1, **kwargs)
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


@pytest.mark.parametrize("steps_per_epoch", [3, 4])
def test_steps_per_epoch_uses_the_epoch_mean(steps_per_epoch):
    metrics = _metrics(5, n=300 - 300 % steps_per_epoch)
    kwargs = dict(patience=2, cooldown=1, factor=0.5)
    expected = _torch_lrs(metrics, 0.1, steps_per_epoch, **kwargs)
    assert len(np.unique(expected)) >= 3
    ours, state = _our_lrs(metrics, 0.1, steps_per_epoch, **kwargs)
    np.testing.assert_allclose(ours, expected, rtol=1e-6)
    assert state.best.dtype == jnp.float32 and state.num_bad_epochs.dtype == jnp.int32


def test_drives_the_optimizer_like_torch():
    """Parameter trajectories: PyTorch's SGD + momentum with ``scheduler.step(metric)`` after
    each ``optimizer.step()``, against the wrapped ``og.torch.SGD`` given ``value=metric``."""
    prob = problem(seed=4, steps=150)
    metrics = _metrics(2, n=150)
    holder = {}

    def make(params):
        opt = torch.optim.SGD(params, lr=0.2, momentum=0.9, weight_decay=0.01)
        holder["sched"] = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=2, factor=0.5)
        return opt

    from tests.torch.conftest import run_torch

    expected = run_torch(make, prob, after_step=lambda o, t: holder["sched"].step(metrics[t]))
    assert holder["sched"].get_last_lr()[0] < 0.2 * 0.5**3

    tx = S.ReduceLROnPlateau(
        og.torch.SGD(lr=0.2, momentum=0.9, weight_decay=0.01), patience=2, factor=0.5
    )
    a = jax.tree.map(jnp.float32, prob.a)

    @jax.jit
    def go(theta, noise, metrics):
        def step(carry, xs):
            theta, state = carry
            n_t, m_t = xs
            g = jax.tree.map(lambda a_, th, n_: a_ * th + n_, a, theta, n_t)
            updates, state = tx.update(g, state, theta, value=m_t)
            theta = og.apply_updates(theta, updates)
            return (theta, state), theta

        return jax.lax.scan(step, (theta, tx.init(theta)), (noise, metrics))[1]

    theta0 = jax.tree.map(jnp.float32, prob.theta0)
    traj = go(theta0, jax.tree.map(jnp.float32, prob.noise), jnp.asarray(metrics))
    rows = [np.asarray(x, np.float64).reshape(prob.steps, -1) for x in jax.tree.leaves(traj)]
    actual = np.vstack([prob.flat(theta0)[None], np.concatenate(rows, axis=1)])
    assert_trajectories_close(actual, expected)


def test_lr_is_read_and_set_by_name():
    tx = S.ReduceLROnPlateau(og.torch.Adam(lr=0.01), patience=0)
    params = {"w": jnp.zeros(3)}
    state = tx.init(params)
    assert float(og.tree.get(state, "lr")) == pytest.approx(0.01)
    state = og.tree.set(state, lr=0.5)
    updates, state = tx.update({"w": jnp.ones(3)}, state, params, value=1.0)
    np.testing.assert_allclose(updates["w"], -0.5, rtol=1e-6)  # Adam's first step is -lr
    _, state = tx.update({"w": jnp.ones(3)}, state, params, value=2.0)
    assert float(og.tree.get(state, "lr")) == pytest.approx(0.05)


C = "optgrad.torch.lr_scheduler.ReduceLROnPlateau"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(factor=1.0), "(factor=...) must be in [0, 1), got factor=1.0"),
        (dict(mode="median"), "(mode=...) must be one of 'min', 'max', got mode='median'"),
        (dict(threshold_mode="pct"), "(threshold_mode=...) must be one of 'rel', 'abs'"),
        (dict(patience=-1), "(patience=...) must be a non-negative integer, got patience=-1"),
        (dict(cooldown=1.5), "(cooldown=...) must be a non-negative integer, got cooldown=1.5"),
        (dict(min_lr=-1.0), "(min_lr=...) must be non-negative, got min_lr=-1.0"),
        (dict(steps_per_epoch=0), "(steps_per_epoch=...) must be a positive integer"),
    ],
)
def test_construction_errors(kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(C + message)):
        S.ReduceLROnPlateau(og.torch.SGD(lr=0.1), **kwargs)


def test_usage_errors():
    with pytest.raises(TypeError, match=re.escape(C + "(optimizer=...) must be an optimizer")):
        S.ReduceLROnPlateau(0.1)
    tx = S.ReduceLROnPlateau(og.sgd(0.1))  # holds `learning_rate`, not PyTorch's `lr`
    with pytest.raises(ValueError, match=re.escape(C + "(optimizer=...) must hold its learning")):
        tx.init({"w": jnp.zeros(2)})
    tx = S.ReduceLROnPlateau(og.torch.SGD(lr=0.1))
    state = tx.init({"w": jnp.zeros(2)})
    with pytest.raises(ValueError, match=re.escape(C + ": update(...) needs the metric as value=")):
        tx.update({"w": jnp.ones(2)}, state, {"w": jnp.zeros(2)})
