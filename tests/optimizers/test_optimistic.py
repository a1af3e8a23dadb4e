"""``scale_by_optimistic_gradient``, ``optimistic_gradient_descent`` and ``optimistic_adam_v2``
against Optax 0.2.8 run in float64 on the same problem (``tests/_oracle.py``), and OGD against a
float64 NumPy implementation of Mokhtari et al.'s rule, including on a bilinear min-max game
where OGD converges and plain simultaneous gradient descent-ascent does not.

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

PROB = oracle.problem(seed=16)


def lr_schedule(count):
    return 0.05 / (1.0 + 0.02 * count)


CASES = {
    "ogd": (og.optimistic_gradient_descent(0.05), optax.optimistic_gradient_descent(0.05)),
    "ogd_alpha_beta": (
        og.optimistic_gradient_descent(lr_schedule, alpha=0.7, beta=0.4),
        optax.optimistic_gradient_descent(lr_schedule, alpha=0.7, beta=0.4),
    ),
    "ogd_beta_0": (
        og.optimistic_gradient_descent(0.05, beta=0.0),
        optax.optimistic_gradient_descent(0.05, beta=0.0),
    ),
    "optimistic_adam_v2": (og.optimistic_adam_v2(0.02), optax.optimistic_adam_v2(0.02)),
    "optimistic_adam_v2_nondefault": (
        og.optimistic_adam_v2(
            lr_schedule, alpha=0.5, beta=2.0, b1=0.8, b2=0.99, eps=1e-3, nesterov=False
        ),
        optax.optimistic_adam_v2(
            lr_schedule, alpha=0.5, beta=2.0, b1=0.8, b2=0.99, eps=1e-3, nesterov=False
        ),
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


def ogd_reference(lr, alpha, beta, *, first_uses_zero=False):
    """``theta -= lr ((alpha + beta) g_t - beta g_{t-1})`` with ``g_0 = g_1`` (the first step is
    ``alpha g_1``). ``first_uses_zero=True`` is the *wrong* start ``g_0 = 0``."""

    def step(g, theta, t, state):
        prev = state.get("prev", np.zeros_like(g) if first_uses_zero else g)
        state["prev"] = g
        return -lr(t - 1) * ((alpha + beta) * g - beta * prev)

    return step


def test_ogd_matches_the_papers_rule(runs):
    ours, _ = runs
    expected = oracle.run_numpy(ogd_reference(lr_schedule, 0.7, 0.4), PROB)
    oracle.assert_trajectories_close(ours["ogd_alpha_beta"], expected)
    wrong = oracle.run_numpy(ogd_reference(lr_schedule, 0.7, 0.4, first_uses_zero=True), PROB)
    oracle.assert_distinguishable(expected, wrong, factor=10.0)


@pytest.mark.parametrize(
    ("a", "b"), [("ogd", "ogd_beta_0"), ("optimistic_adam_v2", "optimistic_adam_v2_nondefault")]
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


def test_ogd_converges_on_a_bilinear_game_where_gradient_descent_ascent_does_not():
    """``min_x max_y x y``: the players' descent directions are ``(y, -x)``. Simultaneous
    gradient descent-ascent spirals out; OGD converges to the equilibrium (0, 0)."""

    def play(tx):
        z = jnp.array([1.0, 1.0])

        def body(carry, _):
            z, state = carry
            g = jnp.array([z[1], -z[0]])
            u, state = tx.update(g, state)
            return (z + u, state), None

        return jax.lax.scan(body, (z, tx.init(z)), length=500)[0][0]

    assert float(jnp.linalg.norm(play(og.optimistic_gradient_descent(0.3)))) < 1e-2
    assert float(jnp.linalg.norm(play(og.scale(-0.3)))) > 1.4


BAD_ARGUMENTS = [
    (
        og.optimistic_gradient_descent,
        dict(learning_rate=0.1, beta=-1.0),
        "optgrad.optimistic_gradient_descent(beta=...) must be non-negative, got beta=-1.0",
    ),
    (
        og.optimistic_adam_v2,
        dict(learning_rate=0.1, b1=1.0),
        "optgrad.optimistic_adam_v2(b1=...) must be in [0, 1), got b1=1.0",
    ),
    (
        og.scale_by_optimistic_gradient,
        dict(alpha=-1.0),
        "optgrad.scale_by_optimistic_gradient(alpha=...) must be non-negative, got alpha=-1.0",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)
