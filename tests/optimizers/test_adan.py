"""Adan against independent oracles.

Optax 0.2.8 weights the gradient difference by ``1 - b2`` where the paper and the authors'
code use ``b2`` (Optax PR #1715); optgrad follows the paper. So:

- against a float64 NumPy Adan written from Xie et al. (arXiv:2208.06677), Algorithm 1, in the
  paper's own beta convention (``beta_paper = 1 - b``), with the authors' bias correction and
  ``g_0 = g_1``, at the default ``b2 = 0.92`` and others;
- against Optax 0.2.8 in float64 at ``b2 = 0.5``, where ``1 - b2 = b2`` and Optax's formula is
  the paper's (weight decay, masks, schedules, every other hyperparameter);
- Optax's formula at the default ``b2`` is shown to be a different trajectory, and the paper's
  proximal weight decay likewise (optgrad follows Optax's decoupled decay).

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

PROB = oracle.problem(seed=15)
LR = 0.02
MASK = {"a": True, "b": False, "c": {"d": True}}


def lr_schedule(count):
    return 0.03 / (1.0 + 0.02 * count)


def wd_schedule(count):
    return 0.2 / (1.0 + 0.05 * count)


def matrices_only(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


NONDEFAULT = dict(b1=0.9, b2=0.5, b3=0.95, eps=1e-3, eps_root=1e-4)
CASES = {  # b2 = 0.5: where Optax 0.2.8's formula is the paper's
    "scale_by_adan": (
        og.chain(og.scale_by_adan(b2=0.5), og.scale(-LR)),
        optax.chain(optax.scale_by_adan(b2=0.5), optax.scale(-LR)),
    ),
    "scale_by_adan_nondefault": (
        og.chain(og.scale_by_adan(**NONDEFAULT), og.scale(-LR)),
        optax.chain(optax.scale_by_adan(**NONDEFAULT), optax.scale(-LR)),
    ),
    "adan": (og.adan(LR, b2=0.5), optax.adan(LR, b2=0.5)),
    "adan_decay_mask_tree_schedules": (
        og.adan(lr_schedule, **NONDEFAULT, weight_decay=wd_schedule, mask=MASK),
        optax.adan(lr_schedule, **NONDEFAULT, weight_decay=wd_schedule, mask=MASK),
    ),
    "adan_decay_mask_fn": (
        og.adan(LR, b2=0.5, weight_decay=0.3, mask=matrices_only),
        optax.adan(LR, b2=0.5, weight_decay=0.3, mask=matrices_only),
    ),
}
OURS_ONLY = {
    "adan_default_b2": og.adan(LR),
    "adan_paper_betas_decay": og.adan(
        lr_schedule, b1=0.9, b2=0.8, b3=0.95, eps=1e-4, eps_root=0.0, weight_decay=0.5
    ),
}
THEIRS_ONLY = {"optax_adan_default_b2": optax.adan(LR)}


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
def test_trajectory_matches_optax_where_optax_is_the_paper(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name][0], theirs[name])


def paper_adan(lr, b1, b2, b3, eps, eps_root=0.0, weight_decay=0.0, *, proximal=False):
    """Xie et al., Algorithm 1 in float64, in the paper's convention ``beta = 1 - b`` (so the
    paper's ``beta_1 = 0.02`` is ``b1 = 0.98``), with the authors' bias corrections and
    ``g_0 = g_1``. Decay: decoupled ``theta - lr (u + wd theta)``, or the paper's proximal
    ``(theta - lr u) / (1 + lr wd)``."""
    p1, p2, p3 = 1 - b1, 1 - b2, 1 - b3

    def step(g, theta, t, state):
        diff = g - state.get("g", g)
        m = (1 - p1) * state.get("m", 0.0) + p1 * g
        v = (1 - p2) * state.get("v", 0.0) + p2 * diff
        n = (1 - p3) * state.get("n", 0.0) + p3 * (g + (1 - p2) * diff) ** 2
        state.update(g=g, m=m, v=v, n=n)
        m_hat, v_hat = m / (1 - (1 - p1) ** t), v / (1 - (1 - p2) ** t)
        n_hat = n / (1 - (1 - p3) ** t)
        u = (m_hat + (1 - p2) * v_hat) / (np.sqrt(n_hat + eps_root) + eps)
        eta = lr(t - 1)
        if proximal:
            return (theta - eta * u) / (1 + eta * weight_decay) - theta
        return -eta * (u + weight_decay * theta)

    return step


def constant(count):
    return LR


def test_adan_matches_the_paper_at_the_default_betas_where_optax_does_not(runs):
    ours, theirs = runs
    expected = oracle.run_numpy(paper_adan(constant, 0.98, 0.92, 0.99, 1e-8, 1e-8), PROB)
    oracle.assert_trajectories_close(ours["adan_default_b2"][0], expected)
    oracle.assert_distinguishable(expected, theirs["optax_adan_default_b2"])


def test_adan_with_decay_matches_the_paper_with_decoupled_decay(runs):
    ours, _ = runs
    args = (lr_schedule, 0.9, 0.8, 0.95, 1e-4, 0.0, 0.5)
    decoupled = oracle.run_numpy(paper_adan(*args), PROB)
    proximal = oracle.run_numpy(paper_adan(*args, proximal=True), PROB)
    oracle.assert_trajectories_close(ours["adan_paper_betas_decay"][0], decoupled)
    oracle.assert_distinguishable(decoupled, proximal)


@pytest.mark.parametrize(
    ("a", "b"), [("adan", "adan_decay_mask_fn"), ("scale_by_adan", "scale_by_adan_nondefault")]
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


def test_state_keeps_the_last_gradient_and_a_real_second_moment(runs):
    ours, _ = runs
    traj, (state, *_) = ours["scale_by_adan"]
    assert isinstance(state, og.ScaleByAdanState) and int(state.count) == PROB.steps
    noise = np.concatenate(
        [np.reshape(x, (PROB.steps, -1)) for x in jax.tree.leaves(PROB.noise)], 1
    )
    last_gradient = PROB.flat(PROB.a) * traj[-2] + noise[-1]
    np.testing.assert_allclose(PROB.flat(state.g), last_gradient, rtol=1e-5, atol=1e-6)
    assert og.scale_by_adan().init(jnp.zeros(2, jnp.complex64)).n.dtype == jnp.float32


def test_a_float16_zero_gradient_step_is_zero_not_nan():
    """Optax #1789: Adan's ``eps=1e-8`` underflows in float16 and gives ``0/0``."""
    tx = og.scale_by_adan()
    params = jnp.zeros(4, jnp.float16)
    updates, state = tx.update(params, tx.init(params))
    updates, _ = tx.update(params, state)
    assert updates.dtype == jnp.float16
    np.testing.assert_array_equal(np.asarray(updates, np.float32), 0.0)


BAD_ARGUMENTS = [
    (og.adan, dict(learning_rate=-1.0), "optgrad.adan(learning_rate=...) must be non-negative"),
    (
        og.adan,
        dict(learning_rate=0.1, b3=1.0),
        "optgrad.adan(b3=...) must be in [0, 1), got b3=1.0",
    ),
    (
        og.adan,
        dict(learning_rate=0.1, weight_decay=-1.0),
        "optgrad.adan(weight_decay=...) must be non-negative",
    ),
    (og.scale_by_adan, dict(b2=2.0), "optgrad.scale_by_adan(b2=...) must be in [0, 1), got b2=2.0"),
    (
        og.scale_by_adan,
        dict(eps=-1.0),
        "optgrad.scale_by_adan(eps=...) must be non-negative, got eps=-1.0",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)


def test_hyperparameters_live_in_the_state_and_can_be_set():
    assert_settable(
        lambda **kw: og.adan(0.1, **kw),
        dict(learning_rate=0.1, b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=1e-8),
        b1=0.5,
        b2=0.6,
        b3=0.7,
        eps=0.1,
        eps_root=0.01,
        weight_decay=0.3,
    )
