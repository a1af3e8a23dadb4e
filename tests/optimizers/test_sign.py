"""``scale_by_sign``, ``sign_sgd`` and ``signum`` against Optax 0.2.8 run in float64 on the same
problem (``tests/_oracle.py``; Optax's semantics are Bernstein et al.'s), and ``signum`` against
a float64 NumPy Signum (Bernstein et al. 2018, Algorithm 3).

Tolerance: ``rtol=1e-5``, ``atol=1e-6 * max|theta|`` over 120 steps (``_oracle``). A sign can
differ between float32 and float64 only for a gradient within rounding of 0, which this problem
never produces (its noise keeps every coordinate's gradient away from 0 by far more).
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

PROB = oracle.problem(seed=15)


def lr_schedule(count):
    return 0.05 / (1.0 + 0.05 * count)


CASES = {
    "scale_by_sign": (
        og.chain(og.scale_by_sign(), og.scale(-0.01)),
        optax.chain(optax.scale_by_sign(), optax.scale(-0.01)),
    ),
    "sign_sgd": (og.sign_sgd(lr_schedule), optax.sign_sgd(lr_schedule)),
    "signum": (og.signum(lr_schedule), optax.signum(lr_schedule)),
    "signum_beta_05": (og.signum(0.02, beta=0.5), optax.signum(0.02, beta=0.5)),
    "signum_f32_accumulator": (
        og.signum(0.02, beta=0.95, accumulator_dtype=jnp.float32),
        optax.signum(0.02, beta=0.95, accumulator_dtype=jnp.float32),
    ),
}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many({name: tx for name, (tx, _) in CASES.items()}, PROB)
    theirs = oracle.run_optax64({name: ref for name, (_, ref) in CASES.items()}, PROB)
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name], theirs[name])


def signum_reference(lr, beta):
    """Signum in float64: ``m = beta m + (1 - beta) g``, step ``-lr sign(m)``."""

    def step(g, theta, t, state):
        state["m"] = beta * state.get("m", 0.0) + (1 - beta) * g
        return -lr(t - 1) * np.sign(state["m"])

    return step


def test_signum_matches_the_papers_rule(runs):
    ours, theirs = runs
    expected = oracle.run_numpy(signum_reference(lr_schedule, 0.9), PROB)
    oracle.assert_trajectories_close(ours["signum"], expected)
    oracle.assert_distinguishable(expected, theirs["sign_sgd"])


def test_the_problem_tells_the_betas_apart(runs):
    _, theirs = runs
    oracle.assert_distinguishable(theirs["signum_beta_05"], theirs["signum_f32_accumulator"])


def test_complex_sign_is_the_unit_phase():
    g = jnp.array([3.0 + 4.0j, 0.0, -2.0j], jnp.complex64)
    u, _ = og.scale_by_sign().update(g, og.EmptyState())
    np.testing.assert_allclose(u, [0.6 + 0.8j, 0.0, -1.0j], rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_keeps_the_dtype_and_zero_gives_zero(dtype):
    tx = og.signum(0.1)
    params = {"w": jnp.ones(3, dtype)}
    updates, _ = jax.jit(tx.update)({"w": jnp.zeros(3, dtype)}, tx.init(params), params)
    assert updates["w"].dtype == dtype
    np.testing.assert_array_equal(updates["w"], 0.0)


BAD_ARGUMENTS = [
    (
        og.sign_sgd,
        dict(learning_rate=-0.1),
        "optgrad.sign_sgd(learning_rate=...) must be non-negative, got learning_rate=-0.1",
    ),
    (
        og.signum,
        dict(learning_rate=0.1, beta=1.5),
        "optgrad.signum(beta=...) must be in [0, 1], got beta=1.5",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)
