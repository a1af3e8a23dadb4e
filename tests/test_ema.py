"""``ema`` against Optax 0.2.8's run in float64 on the same problem (``tests/_oracle.py``) and a
float64 NumPy moving average (Kingma & Ba 2015, section 3, for the bias correction).

Tolerance: ``rtol=1e-5``, ``atol=1e-6 * max|theta|`` over 120 steps (``_oracle``).
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

PROB = oracle.problem(seed=18)
LR = 0.05

CASES = {
    "ema": (og.chain(og.ema(0.9), og.scale(-LR)), optax.chain(optax.ema(0.9), optax.scale(-LR))),
    "ema_no_debias": (
        og.chain(og.ema(0.7, debias=False), og.scale(-LR)),
        optax.chain(optax.ema(0.7, debias=False), optax.scale(-LR)),
    ),
    "ema_f32_accumulator": (
        og.chain(og.ema(0.99, accumulator_dtype=jnp.float32), og.scale(-LR)),
        optax.chain(optax.ema(0.99, accumulator_dtype=jnp.float32), optax.scale(-LR)),
    ),
}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many({n: tx for n, (tx, _) in CASES.items()}, PROB, with_state=True)
    theirs = oracle.run_optax64({n: ref for n, (_, ref) in CASES.items()}, PROB)
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name][0], theirs[name])


def moving_average(beta, debias):
    """``m = beta m + (1 - beta) g`` from ``m = 0``, divided by ``1 - beta^t`` if ``debias``."""

    def step(g, theta, t, state):
        state["m"] = beta * state.get("m", 0.0) + (1 - beta) * g
        return -LR * state["m"] / ((1 - beta**t) if debias else 1.0)

    return step


@pytest.mark.parametrize(
    ("name", "beta", "debias"), [("ema", 0.9, True), ("ema_no_debias", 0.7, False)]
)
def test_trajectory_matches_the_float64_average(runs, name, beta, debias):
    ours, _ = runs
    expected = oracle.run_numpy(moving_average(beta, debias), PROB)
    oracle.assert_trajectories_close(ours[name][0], expected)
    oracle.assert_distinguishable(
        expected, oracle.run_numpy(moving_average(beta, not debias), PROB)
    )


def test_state_counts_and_keeps_the_average(runs):
    ours, _ = runs
    state = ours["ema"][1][0]
    assert int(state.count) == PROB.steps and state.count.dtype == jnp.int32
    assert oracle.dtypes(state.ema) == {jnp.dtype(jnp.float32)}


def test_low_precision_accumulator_and_updates():
    tx = og.ema(0.9, accumulator_dtype=jnp.bfloat16)
    grads = {"w": jnp.full(3, 0.3, jnp.float16)}
    updates, state = jax.jit(tx.update)(grads, tx.init(grads))
    assert updates["w"].dtype == jnp.float16 and state.ema["w"].dtype == jnp.bfloat16
    np.testing.assert_allclose(updates["w"].astype(np.float32), 0.3, rtol=1e-3)


BAD_ARGUMENTS = [
    (dict(decay=1.0), ValueError, "optgrad.ema(decay=...) must be in [0, 1), got decay=1.0"),
    (
        dict(decay=1.5, debias=False),
        ValueError,
        "optgrad.ema(decay=...) must be in [0, 1], got decay=1.5",
    ),
    (dict(decay=lambda count: 0.9), TypeError, "optgrad.ema(decay=...) must be a number"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        og.ema(**kwargs)
