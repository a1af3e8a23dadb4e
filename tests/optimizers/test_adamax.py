"""AdaMax against independent oracles.

- ``scale_by_adamax``, ``adamax``, ``adamaxw`` against Optax 0.2.8 run in float64 on the same
  problem (``tests/_oracle.py``), with schedules, weight decay and masks;
- ``adamax(eps=0)`` against a float64 NumPy AdaMax written from Kingma & Ba (2015),
  Algorithm 2 (which has no epsilon).

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

PROB = oracle.problem(seed=11)
LR = 0.03
MASK = {"a": True, "b": False, "c": {"d": True}}


def lr_schedule(count):
    return 0.05 / (1.0 + 0.02 * count)


def wd_schedule(count):
    return 0.2 / (1.0 + 0.05 * count)


def matrices_only(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


CASES = {
    "scale_by_adamax": (
        og.chain(og.scale_by_adamax(b1=0.8, b2=0.95, eps=1e-3), og.scale(-LR)),
        optax.chain(optax.scale_by_adamax(b1=0.8, b2=0.95, eps=1e-3), optax.scale(-LR)),
    ),
    "adamax": (og.adamax(LR), optax.adamax(LR)),
    "adamax_schedule": (
        og.adamax(lr_schedule, b1=0.7, b2=0.9, eps=1e-2),
        optax.adamax(lr_schedule, b1=0.7, b2=0.9, eps=1e-2),
    ),
    "adamaxw": (og.adamaxw(LR, weight_decay=0.1), optax.adamaxw(LR, weight_decay=0.1)),
    "adamaxw_mask_tree_schedules": (
        og.adamaxw(lr_schedule, b1=0.8, weight_decay=wd_schedule, mask=MASK),
        optax.adamaxw(lr_schedule, b1=0.8, weight_decay=wd_schedule, mask=MASK),
    ),
    "adamaxw_mask_fn": (
        og.adamaxw(LR, b2=0.9, weight_decay=0.3, mask=matrices_only),
        optax.adamaxw(LR, b2=0.9, weight_decay=0.3, mask=matrices_only),
    ),
}
OURS_ONLY = {"adamax_no_eps": og.adamax(lr_schedule, b1=0.8, b2=0.95, eps=0.0)}
THEIRS_ONLY = {"adam": optax.adam(LR)}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many(
        {**{name: tx for name, (tx, _) in CASES.items()}, **OURS_ONLY}, PROB, with_state=True
    )
    theirs = oracle.run_optax64(
        {**{name: ref for name, (_, ref) in CASES.items()}, **THEIRS_ONLY}, PROB
    )
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name][0], theirs[name])


def paper_adamax(lr, b1, b2, *, bias_correction=True):
    """Kingma & Ba (2015), Algorithm 2 in float64: ``u = max(b2 u, |g|)``, no epsilon."""

    def step(g, theta, t, state):
        m = b1 * state.get("m", 0.0) + (1 - b1) * g
        u = np.maximum(b2 * state.get("u", 0.0), np.abs(g))
        state.update(m=m, u=u)
        correction = 1 - b1**t if bias_correction else 1.0
        return -lr(t - 1) / correction * m / u

    return step


def test_adamax_matches_the_paper(runs):
    ours, _ = runs
    expected = oracle.run_numpy(paper_adamax(lr_schedule, 0.8, 0.95), PROB)
    oracle.assert_trajectories_close(ours["adamax_no_eps"][0], expected)
    # The problem tells the bias correction of the first moment from its absence.
    uncorrected = oracle.run_numpy(
        paper_adamax(lr_schedule, 0.8, 0.95, bias_correction=False), PROB
    )
    oracle.assert_distinguishable(expected, uncorrected)


@pytest.mark.parametrize(
    ("a", "b"), [("adamax", "adam"), ("adamax", "adamaxw"), ("adamaxw", "adamaxw_mask_fn")]
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


def test_state_holds_a_real_infinity_norm(runs):
    ours, _ = runs
    state = ours["scale_by_adamax"][1][0]
    assert isinstance(state, og.ScaleByAdamaxState)
    assert int(state.count) == PROB.steps
    assert all(bool(jnp.all(x >= 0)) for x in jax.tree.leaves(state.nu))
    complex_state = og.scale_by_adamax().init(jnp.zeros(3, jnp.complex64))
    assert complex_state.mu.dtype == jnp.complex64 and complex_state.nu.dtype == jnp.float32


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_zero_gradients_stay_finite_even_without_eps(dtype):
    """Optax #1768: ``eps`` underflows in float16 and ``0/0`` follows; here the infinity norm
    is computed in float32 and a zero norm (``eps=0``) gives a zero step."""
    for tx in (og.scale_by_adamax(), og.scale_by_adamax(eps=0.0)):
        params = jnp.zeros(4, dtype)
        state = tx.init(params)
        for _ in range(2):
            updates, state = jax.jit(tx.update)(jnp.zeros(4, dtype), state)
            assert updates.dtype == dtype
            np.testing.assert_array_equal(np.asarray(updates, np.float32), 0.0)


BAD_ARGUMENTS = [
    (og.adamax, dict(learning_rate=-1.0), "optgrad.adamax(learning_rate=...) must be non-negative"),
    (
        og.adamax,
        dict(learning_rate=0.1, b1=1.0),
        "optgrad.adamax(b1=...) must be in [0, 1), got b1=1.0",
    ),
    (
        og.adamax,
        dict(learning_rate=0.1, eps=-1.0),
        "optgrad.adamax(eps=...) must be non-negative, got eps=-1.0",
    ),
    (
        og.adamaxw,
        dict(learning_rate=0.1, weight_decay=-0.1),
        "optgrad.adamaxw(weight_decay=...) must be non-negative, got weight_decay=-0.1",
    ),
    (
        og.adamaxw,
        dict(learning_rate=0.1, b2=1.5),
        "optgrad.adamaxw(b2=...) must be in [0, 1), got b2=1.5",
    ),
    (
        og.scale_by_adamax,
        dict(b2=float("nan")),
        "optgrad.scale_by_adamax(b2=...) must be in [0, 1), got b2=nan",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)


def test_hyperparameters_live_in_the_state_and_can_be_set():
    assert_settable(
        lambda **kw: og.adamaxw(0.1, **kw),
        dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4),
        b1=0.5,
        b2=0.6,
        eps=0.1,
        weight_decay=0.3,
    )
