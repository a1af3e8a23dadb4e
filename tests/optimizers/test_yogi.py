"""Yogi against independent oracles.

- ``scale_by_yogi`` and ``yogi`` against Optax 0.2.8 run in float64 on the same problem;
- against a float64 NumPy Yogi written from Zaheer et al. (NeurIPS 2018), Algorithm 2, with
  the two conventions Optax (and optgrad) add to it as switches: both moments start at
  ``initial_accumulator_value`` and both are bias-corrected (the paper: ``m_0 = v_0 = 0``,
  no correction). The test shows the two conventions give different trajectories.

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

PROB = oracle.problem(seed=13)
LR = 0.02


def lr_schedule(count):
    return 0.03 / (1.0 + 0.02 * count)


NONDEFAULT = dict(b1=0.8, b2=0.95, eps=1e-2, eps_root=1e-3, initial_accumulator_value=0.1)
CASES = {
    "scale_by_yogi": (
        og.chain(og.scale_by_yogi(), og.scale(-LR)),
        optax.chain(optax.scale_by_yogi(), optax.scale(-LR)),
    ),
    "scale_by_yogi_nondefault": (
        og.chain(og.scale_by_yogi(**NONDEFAULT), og.scale(-LR)),
        optax.chain(optax.scale_by_yogi(**NONDEFAULT), optax.scale(-LR)),
    ),
    "yogi": (og.yogi(LR), optax.yogi(LR)),
    "yogi_schedule": (
        og.yogi(lr_schedule, b1=0.7, b2=0.9, eps=1e-4),
        optax.yogi(lr_schedule, b1=0.7, b2=0.9, eps=1e-4),
    ),
}
OURS_ONLY = {"yogi_b2_09": og.yogi(lr_schedule, b1=0.8, b2=0.9, eps=1e-3)}
THEIRS_ONLY = {"adam": optax.adam(LR, eps=1e-3)}


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


def paper_yogi(lr, b1, b2, eps, *, start=0.0, bias_correction=False):
    """Zaheer et al. (2018), Algorithm 2 in float64:
    ``v_t = v_{t-1} - (1 - b2) sign(v_{t-1} - g^2) g^2``, step ``m_t / (sqrt(v_t) + eps)``;
    ``start`` for ``m_0 = v_0`` and ``bias_correction`` are Optax's additions."""

    def step(g, theta, t, state):
        m = b1 * state.get("m", start) + (1 - b1) * g
        v_prev = state.get("v", start)
        v = v_prev - (1 - b2) * np.sign(v_prev - g * g) * g * g
        state.update(m=m, v=v)
        if bias_correction:
            m, v = m / (1 - b1**t), v / (1 - b2**t)
        return -lr(t - 1) * m / (np.sqrt(v) + eps)

    return step


def test_yogi_matches_the_paper_with_optax_conventions(runs):
    ours, _ = runs
    expected = oracle.run_numpy(
        paper_yogi(lr_schedule, 0.8, 0.9, 1e-3, start=1e-6, bias_correction=True), PROB
    )
    oracle.assert_trajectories_close(ours["yogi_b2_09"][0], expected)
    paper = oracle.run_numpy(paper_yogi(lr_schedule, 0.8, 0.9, 1e-3), PROB)
    oracle.assert_distinguishable(expected, paper)


def test_the_problem_tells_yogi_from_adam(runs):
    _, theirs = runs
    oracle.assert_distinguishable(theirs["yogi"], theirs["adam"])


def test_state_starts_at_the_initial_value_and_second_moment_stays_non_negative(runs):
    ours, _ = runs
    state = og.scale_by_yogi(initial_accumulator_value=0.25).init({"w": jnp.zeros(2)})
    assert isinstance(state, og.ScaleByAdamState)
    np.testing.assert_array_equal(state.mu["w"], 0.25)
    np.testing.assert_array_equal(state.nu["w"], 0.25)
    final = ours["scale_by_yogi_nondefault"][1][0]
    assert all(bool(jnp.all(v >= 0)) for v in jax.tree.leaves(final.nu))


BAD_ARGUMENTS = [
    (og.yogi, dict(learning_rate=-1.0), "optgrad.yogi(learning_rate=...) must be non-negative"),
    (
        og.yogi,
        dict(learning_rate=0.1, b1=1.0),
        "optgrad.yogi(b1=...) must be in [0, 1), got b1=1.0",
    ),
    (
        og.yogi,
        dict(learning_rate=0.1, eps=-1.0),
        "optgrad.yogi(eps=...) must be non-negative, got eps=-1.0",
    ),
    (
        og.scale_by_yogi,
        dict(b2=-0.5),
        "optgrad.scale_by_yogi(b2=...) must be in [0, 1), got b2=-0.5",
    ),
    (
        og.scale_by_yogi,
        dict(initial_accumulator_value=-1.0),
        "optgrad.scale_by_yogi(initial_accumulator_value=...) must be non-negative",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)


def test_hyperparameters_live_in_the_state_and_can_be_set():
    assert_settable(
        lambda **kw: og.yogi(0.1, **kw),
        dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-3),
        b1=0.5,
        b2=0.6,
        eps=0.1,
    )
