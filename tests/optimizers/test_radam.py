"""RAdam against independent oracles.

- ``scale_by_radam`` and ``radam`` against Optax 0.2.8 run in float64 on the same problem
  (thresholds, Nesterov, schedules);
- against a float64 NumPy RAdam written from Liu et al. (ICLR 2020), Algorithm 2, with the
  paper's threshold (rectify when ``rho_t > 4``) and torch's (``rho_t > 5``);
- the rectifier of the first steps against float64, to float32 precision.

Tolerance: ``rtol=1e-5``, ``atol=1e-6 * max|theta|`` over 120 steps.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og
from tests import _oracle as oracle
from tests.optimizers._settable import assert_settable

PROB = oracle.problem(seed=14)
LR = 0.02


def lr_schedule(count):
    return 0.03 / (1.0 + 0.02 * count)


NONDEFAULT = dict(b1=0.8, b2=0.95, eps=1e-3, eps_root=1e-4)
CASES = {
    "scale_by_radam": (
        og.chain(og.scale_by_radam(), og.scale(-LR)),
        optax.chain(optax.scale_by_radam(), optax.scale(-LR)),
    ),
    "scale_by_radam_nondefault": (
        og.chain(og.scale_by_radam(**NONDEFAULT), og.scale(-LR)),
        optax.chain(optax.scale_by_radam(**NONDEFAULT), optax.scale(-LR)),
    ),
    "scale_by_radam_threshold_4_nesterov": (
        og.chain(og.scale_by_radam(**NONDEFAULT, threshold=4.0, nesterov=True), og.scale(-LR)),
        optax.chain(
            optax.scale_by_radam(**NONDEFAULT, threshold=4.0, nesterov=True), optax.scale(-LR)
        ),
    ),
    "radam": (og.radam(LR), optax.radam(LR)),
    "radam_schedule": (
        og.radam(lr_schedule, b1=0.7, b2=0.99, threshold=8.0),
        optax.radam(lr_schedule, b1=0.7, b2=0.99, threshold=8.0),
    ),
    "radam_nesterov": (og.radam(LR, nesterov=True), optax.radam(LR, nesterov=True)),
}
OURS_ONLY = {
    "radam_paper": og.radam(lr_schedule, b1=0.8, b2=0.95, eps=0.0, threshold=4.0),
    "radam_torch_threshold": og.radam(lr_schedule, b1=0.8, b2=0.95, eps=0.0, threshold=5.0),
}
THEIRS_ONLY = {"adam": optax.adam(LR), "momentum": optax.sgd(LR, momentum=0.9)}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many({**{name: tx for name, (tx, _) in CASES.items()}, **OURS_ONLY}, PROB)
    theirs = oracle.run_optax64(
        {**{name: ref for name, (_, ref) in CASES.items()}, **THEIRS_ONLY}, PROB
    )
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name], theirs[name])


def paper_radam(lr, b1, b2, *, rectify_above):
    """Liu et al. (2020), Algorithm 2 in float64 (no epsilon): adaptive rectified step when
    ``rho_t > rectify_above`` (the paper: 4; ``torch.optim.RAdam``: 5), else ``m_hat``."""
    rho_inf = 2 / (1 - b2) - 1

    def step(g, theta, t, state):
        m = b1 * state.get("m", 0.0) + (1 - b1) * g
        v = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        state.update(m=m, v=v)
        m_hat = m / (1 - b1**t)
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho <= rectify_above:
            return -lr(t - 1) * m_hat
        r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        return -lr(t - 1) * r * m_hat * np.sqrt((1 - b2**t) / v)

    return step


def test_radam_matches_the_paper_and_torchs_threshold(runs):
    """b2 = 0.95 gives rho_4 = 3.87, rho_5 = 4.80, rho_6 = 5.70: the paper's rule rectifies
    from step 5, torch's (and Optax's default) from step 6, and the trajectories differ."""
    ours, _ = runs
    paper = oracle.run_numpy(paper_radam(lr_schedule, 0.8, 0.95, rectify_above=4.0), PROB)
    torch_rule = oracle.run_numpy(paper_radam(lr_schedule, 0.8, 0.95, rectify_above=5.0), PROB)
    oracle.assert_trajectories_close(ours["radam_paper"], paper)
    oracle.assert_trajectories_close(ours["radam_torch_threshold"], torch_rule)
    oracle.assert_distinguishable(paper, torch_rule)


@pytest.mark.parametrize(
    ("a", "b"),
    [("radam", "adam"), ("radam", "momentum"), ("scale_by_radam", "radam_nesterov")],
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


@pytest.mark.parametrize("b2", [0.999, 0.99, 0.95, 0.9999])
def test_the_rectifier_keeps_float32_precision(b2):
    """With ``g = 1`` at every step, ``m_hat = v_hat = 1`` and the update is ``r_t`` itself.
    ``rho_t`` is a difference of numbers near ``2 / (1 - b2)``: computed directly in float32
    it moves ``r_6`` by 8e-5 at ``b2 = 0.999``; optgrad stays within 1e-6."""
    tx = og.scale_by_radam(b2=b2, eps=0.0)
    grads = jnp.ones((300, 1), jnp.float32)
    step = lambda s, g: tx.update(g, s)[::-1]  # noqa: E731
    _, updates = jax.jit(lambda gs: jax.lax.scan(step, tx.init(gs[0]), gs))(grads)
    b = float(np.float32(b2))
    t = np.arange(1, 301)
    rho_inf = 2 / (1 - b) - 1
    rho = rho_inf - 2 * t * b**t / (1 - b**t)
    with np.errstate(invalid="ignore"):
        r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    expected = np.where(rho >= 5.0, r, 1.0)
    np.testing.assert_allclose(np.asarray(updates)[:, 0], expected, rtol=1e-6)


def test_radam_is_differentiable_through_the_first_steps():
    """The rectifier is NaN-free below ``rho = 4``, so ``jax.grad`` through the momentum-SGD
    phase is finite (a ``where`` would otherwise pass NaN cotangents)."""
    tx = og.radam(0.1)

    def loss_after(p):
        s = tx.init(p)
        for _ in range(3):
            u, s = tx.update(2.0 * p, s)
            p = og.apply_updates(p, u)
        return jnp.sum(p**2)

    g = jax.jit(jax.grad(loss_after))(jnp.array([1.0, -2.0]))
    assert bool(jnp.all(jnp.isfinite(g)))


BAD_ARGUMENTS = [
    (og.radam, dict(learning_rate=-1.0), "optgrad.radam(learning_rate=...) must be non-negative"),
    (
        og.radam,
        dict(learning_rate=0.1, b2=1.0),
        "optgrad.radam(b2=...) must be in [0, 1), got b2=1.0",
    ),
    (
        og.radam,
        dict(learning_rate=0.1, threshold=-1.0),
        "optgrad.radam(threshold=...) must be non-negative, got threshold=-1.0",
    ),
    (
        og.scale_by_radam,
        dict(b1=1.5),
        "optgrad.scale_by_radam(b1=...) must be in [0, 1), got b1=1.5",
    ),
    (
        og.scale_by_radam,
        dict(eps_root=-1.0),
        "optgrad.scale_by_radam(eps_root=...) must be non-negative",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)


def test_hyperparameters_live_in_the_state_and_can_be_set():
    assert_settable(
        lambda **kw: og.radam(0.1, **kw),
        dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, threshold=5.0),
        b1=0.5,
        b2=0.9,
        eps=0.1,
        eps_root=0.01,
        threshold=1.5,
    )
