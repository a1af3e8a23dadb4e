"""Lion against independent oracles.

- ``scale_by_lion`` (its three modes) and ``lion`` against Optax 0.2.8 run in float64 on the
  same problem, with weight decay, masks and schedules;
- against a float64 NumPy Lion written from Chen et al. (NeurIPS 2023), Algorithm 2.

Tolerance: ``rtol=1e-5``, ``atol=1e-6 * max|theta|`` over 120 steps. (A sign can flip between
float32 and float64 only where the interpolation is within rounding of zero; it does not
happen on these problems, and it would show as a failure, not pass silently.)
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

PROB = oracle.problem(seed=16)
LR = 0.01
MASK = {"a": True, "b": False, "c": {"d": True}}


def lr_schedule(count):
    return 0.02 / (1.0 + 0.02 * count)


def wd_schedule(count):
    return 0.5 / (1.0 + 0.05 * count)


def matrices_only(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


def scaled(**kwargs):
    return (
        og.chain(og.scale_by_lion(**kwargs), og.scale(-LR)),
        optax.chain(optax.scale_by_lion(**kwargs), optax.scale(-LR)),
    )


CASES = {
    "scale_by_lion": scaled(),
    "scale_by_lion_nondefault": scaled(b1=0.8, b2=0.95),
    "scale_by_lion_smooth": scaled(b1=0.8, mode="smooth", smooth_beta=3.0),
    "scale_by_lion_refined": scaled(b2=0.9, mode="refined"),
    "lion": (og.lion(LR), optax.lion(LR)),
    "lion_decay_mask_tree_schedules": (
        og.lion(lr_schedule, b1=0.8, b2=0.95, weight_decay=wd_schedule, mask=MASK),
        optax.lion(lr_schedule, b1=0.8, b2=0.95, weight_decay=wd_schedule, mask=MASK),
    ),
    "lion_decay_mask_fn": (
        og.lion(LR, weight_decay=1.0, mask=matrices_only),
        optax.lion(LR, weight_decay=1.0, mask=matrices_only),
    ),
}
THEIRS_ONLY = {"signum": optax.signum(LR, beta=0.99)}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many({name: tx for name, (tx, _) in CASES.items()}, PROB, with_state=True)
    theirs = oracle.run_optax64(
        {**{name: ref for name, (_, ref) in CASES.items()}, **THEIRS_ONLY}, PROB
    )
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name][0], theirs[name])


def paper_lion(lr, b1, b2, wd, mask):
    """Chen et al. (2023), Algorithm 2 in float64: ``c = b1 m + (1 - b1) g``,
    ``theta -= lr (sign(c) + wd theta)``, then ``m = b2 m + (1 - b2) g``."""

    def step(g, theta, t, state):
        m = state.get("m", 0.0)
        c = b1 * m + (1 - b1) * g
        state["m"] = b2 * m + (1 - b2) * g
        return -lr(t - 1) * (np.sign(c) + wd(t - 1) * mask * theta)

    return step


def test_lion_matches_the_paper(runs):
    ours, _ = runs
    decayed = np.concatenate(
        [np.full(x.size, m) for x, m in zip(jax.tree.leaves(PROB.theta0), [1.0, 0.0, 1.0])]
    )
    expected = oracle.run_numpy(paper_lion(lr_schedule, 0.8, 0.95, wd_schedule, decayed), PROB)
    oracle.assert_trajectories_close(ours["lion_decay_mask_tree_schedules"][0], expected)
    # The momentum of the interpolation is the *old* one: using the new one is another method.
    wrong = oracle.run_numpy(paper_lion(lr_schedule, 0.8 * 0.95, 0.95, wd_schedule, decayed), PROB)
    oracle.assert_distinguishable(expected, wrong)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("scale_by_lion", "scale_by_lion_nondefault"),
        ("scale_by_lion", "scale_by_lion_smooth"),
        ("scale_by_lion", "scale_by_lion_refined"),
        ("lion", "lion_decay_mask_fn"),
        ("scale_by_lion", "signum"),
    ],
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


def test_momentum_dtype_is_honoured_and_updates_keep_the_param_dtype():
    params = {"w": jnp.ones(3, jnp.bfloat16), "v": jnp.ones(2, jnp.float32)}
    tx = og.lion(1e-3, mu_dtype=jnp.bfloat16)
    updates, state = jax.jit(tx.update)(params, tx.init(params), params)
    assert {x.dtype for x in jax.tree.leaves(og.tree.get(state, "mu"))} == {jnp.dtype(jnp.bfloat16)}
    assert updates["w"].dtype == jnp.bfloat16 and updates["v"].dtype == jnp.float32


def test_complex_sign_is_the_unit_phase():
    g = jnp.array([3 + 4j, -2j, 0], jnp.complex64)
    tx = og.scale_by_lion()
    updates, _ = tx.update(g, tx.init(g))
    np.testing.assert_allclose(np.asarray(updates), [0.6 + 0.8j, -1j, 0], atol=1e-7)


BAD_ARGUMENTS = [
    (og.lion, dict(learning_rate=-1.0), "optgrad.lion(learning_rate=...) must be non-negative"),
    (
        og.lion,
        dict(learning_rate=0.1, b1=1.0),
        "optgrad.lion(b1=...) must be in [0, 1), got b1=1.0",
    ),
    (
        og.lion,
        dict(learning_rate=0.1, weight_decay=-1.0),
        "optgrad.lion(weight_decay=...) must be non-negative",
    ),
    (og.scale_by_lion, dict(b2=1.0), "optgrad.scale_by_lion(b2=...) must be in [0, 1), got b2=1.0"),
    (
        og.scale_by_lion,
        dict(mode="soft"),
        "optgrad.scale_by_lion(mode=...) must be one of 'hard', 'smooth', 'refined', "
        "got mode='soft'",
    ),
    (
        og.scale_by_lion,
        dict(smooth_beta=0.0),
        "optgrad.scale_by_lion(smooth_beta=...) must be positive, got smooth_beta=0.0",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)


def test_hyperparameters_live_in_the_state_and_can_be_set():
    assert_settable(
        lambda **kw: og.lion(0.1, **kw),
        dict(learning_rate=0.1, b1=0.9, b2=0.99, weight_decay=1e-3),
        b1=0.5,
        b2=0.6,
        weight_decay=0.3,
    )
