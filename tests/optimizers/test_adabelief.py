"""AdaBelief against independent oracles.

- ``scale_by_belief`` and ``adabelief`` (with and without Nesterov) against Optax 0.2.8 run in
  float64 on the same problem (``tests/_oracle.py``);
- against a float64 NumPy AdaBelief written from Zhuang et al. (NeurIPS 2020), Algorithm 2,
  which adds epsilon twice; optgrad (like Optax and the authors' code) adds ``eps_root`` once.

Tolerance: ``rtol=1e-5``, ``atol=1e-6 * max|theta|`` over 120 steps.
"""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og
from tests import _oracle as oracle
from tests.optimizers._settable import assert_settable

PROB = oracle.problem(seed=12)
LR = 0.02


def lr_schedule(count):
    return 0.03 / (1.0 + 0.02 * count)


NONDEFAULT = dict(b1=0.8, b2=0.95, eps=1e-3, eps_root=1e-4)
CASES = {
    "scale_by_belief": (
        og.chain(og.scale_by_belief(), og.scale(-LR)),
        optax.chain(optax.scale_by_belief(), optax.scale(-LR)),
    ),
    "scale_by_belief_nondefault": (
        og.chain(og.scale_by_belief(**NONDEFAULT), og.scale(-LR)),
        optax.chain(optax.scale_by_belief(**NONDEFAULT), optax.scale(-LR)),
    ),
    "scale_by_belief_nesterov": (
        og.chain(og.scale_by_belief(**NONDEFAULT, nesterov=True), og.scale(-LR)),
        optax.chain(optax.scale_by_belief(**NONDEFAULT, nesterov=True), optax.scale(-LR)),
    ),
    "adabelief": (og.adabelief(LR), optax.adabelief(LR)),
    "adabelief_schedule_nesterov": (
        og.adabelief(lr_schedule, b1=0.7, b2=0.9, eps=1e-4, eps_root=1e-6, nesterov=True),
        optax.adabelief(lr_schedule, b1=0.7, b2=0.9, eps=1e-4, eps_root=1e-6, nesterov=True),
    ),
}
OURS_ONLY = {
    "adabelief_big_eps_root": og.adabelief(lr_schedule, b1=0.8, b2=0.95, eps=1e-3, eps_root=1e-3)
}
THEIRS_ONLY = {"adam": optax.adam(LR, eps=1e-16)}


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


def paper_adabelief(lr, b1, b2, eps, *, eps_in_correction=True):
    """Zhuang et al. (2020), Algorithm 2 in float64: ``s_t = b2 s + (1-b2)(g - m_t)^2 + eps``,
    ``s_hat = (s_t + eps) / (1 - b2^t)``, step ``m_hat / (sqrt(s_hat) + eps)``.
    ``eps_in_correction=False`` drops the second ``eps`` (Optax's and optgrad's convention)."""

    def step(g, theta, t, state):
        m = b1 * state.get("m", 0.0) + (1 - b1) * g
        s = b2 * state.get("s", 0.0) + (1 - b2) * (g - m) ** 2 + eps
        state.update(m=m, s=s)
        s_hat = ((s + eps) if eps_in_correction else s) / (1 - b2**t)
        return -lr(t - 1) * (m / (1 - b1**t)) / (np.sqrt(s_hat) + eps)

    return step


def test_adabelief_matches_the_paper_at_its_epsilon(runs):
    """At the default 1e-16 the paper's second epsilon changes nothing: exactly Algorithm 2."""
    ours, _ = runs
    constant = lambda count: LR  # noqa: E731
    expected = oracle.run_numpy(paper_adabelief(constant, 0.9, 0.999, 1e-16), PROB)
    oracle.assert_trajectories_close(ours["adabelief"][0], expected)


def test_eps_root_is_added_once_as_in_optax_not_twice_as_in_the_paper(runs):
    ours, _ = runs
    once = oracle.run_numpy(
        paper_adabelief(lr_schedule, 0.8, 0.95, 1e-3, eps_in_correction=False), PROB
    )
    twice = oracle.run_numpy(paper_adabelief(lr_schedule, 0.8, 0.95, 1e-3), PROB)
    oracle.assert_trajectories_close(ours["adabelief_big_eps_root"][0], once)
    oracle.assert_distinguishable(once, twice)


@pytest.mark.parametrize(
    ("a", "b"),
    [("adabelief", "adam"), ("scale_by_belief_nondefault", "scale_by_belief_nesterov")],
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


def test_state_and_complex_support():
    state = og.adabelief(0.1).init({"w": jnp.zeros(3, jnp.complex64)})
    belief = og.tree.get(state, "nu")["w"]
    assert belief.dtype == jnp.float32  # the belief in a complex gradient is real
    tx = og.scale_by_belief()
    g = jnp.array([1 + 1j, -2j, 0.5], jnp.complex64)
    updates, state = tx.update(g, tx.init(g))
    assert isinstance(state, og.ScaleByBeliefState) and updates.dtype == jnp.complex64
    # Step 1: m = 0.1 g and s = 0.001 |0.9 g|^2, so the step is g / (0.9 |g|): a unit phase.
    np.testing.assert_allclose(np.asarray(updates), np.asarray(g / (0.9 * jnp.abs(g))), rtol=1e-5)


BAD_ARGUMENTS = [
    (
        og.adabelief,
        dict(learning_rate=-1.0),
        "optgrad.adabelief(learning_rate=...) must be non-negative",
    ),
    (
        og.adabelief,
        dict(learning_rate=0.1, b1=1.0),
        "optgrad.adabelief(b1=...) must be in [0, 1), got b1=1.0",
    ),
    (
        og.adabelief,
        dict(learning_rate=0.1, eps_root=-1e-16),
        "optgrad.adabelief(eps_root=...) must be non-negative",
    ),
    (
        og.scale_by_belief,
        dict(b2=1.0),
        "optgrad.scale_by_belief(b2=...) must be in [0, 1), got b2=1.0",
    ),
    (
        og.scale_by_belief,
        dict(eps=-1.0),
        "optgrad.scale_by_belief(eps=...) must be non-negative, got eps=-1.0",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)


def test_hyperparameters_live_in_the_state_and_can_be_set():
    assert_settable(
        lambda **kw: og.adabelief(0.1, **kw),
        dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16),
        b1=0.5,
        b2=0.6,
        eps=1e-3,
        eps_root=1e-2,
    )
