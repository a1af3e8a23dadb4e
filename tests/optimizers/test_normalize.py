"""``normalize_by_update_norm`` and ``centralize`` against Optax 0.2.8 run in float64 on the
same problem (``tests/_oracle.py``), centralisation against a float64 NumPy implementation of
Yong et al. (2020), eq. (1), and the zero-gradient cases Optax gets wrong (0/0).

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

PROB = oracle.problem(seed=17)

CASES = {
    "normalize": (
        og.chain(og.normalize_by_update_norm(), og.scale(-0.05)),
        optax.chain(optax.normalize_by_update_norm(), optax.scale(-0.05)),
    ),
    "normalize_scaled": (
        og.chain(og.normalize_by_update_norm(scale_factor=0.2, eps=0.5), og.scale(-0.3)),
        optax.chain(optax.normalize_by_update_norm(scale_factor=0.2, eps=0.5), optax.scale(-0.3)),
    ),
    "centralize": (
        og.chain(og.centralize(), og.scale(-0.1)),
        optax.chain(optax.centralize(), optax.scale(-0.1)),
    ),
    "centralize_sgd_momentum": (
        og.chain(og.centralize(), og.sgd(0.05, momentum=0.9)),
        optax.chain(optax.centralize(), optax.sgd(0.05, momentum=0.9)),
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


def centralized_gd(lr, *, centre_vectors=False):
    """Gradient centralisation in float64: each leaf with 2+ axes loses its mean over all axes
    but the first. ``centre_vectors=True`` is the *wrong* rule that also centres vectors."""
    shapes = [np.shape(x) for x in jax.tree.leaves(PROB.theta0)]

    def step(g, theta, t, state):
        out, start = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            gk = g[start : start + size].reshape(shape)
            start += size
            if len(shape) >= 2:
                gk = gk - gk.mean(axis=tuple(range(1, len(shape))), keepdims=True)
            elif centre_vectors:
                gk = gk - gk.mean()
            out.append(-lr * gk.ravel())
        return np.concatenate(out)

    return step


def test_centralize_matches_the_papers_rule(runs):
    ours, _ = runs
    expected = oracle.run_numpy(centralized_gd(0.1), PROB)
    oracle.assert_trajectories_close(ours["centralize"], expected)
    oracle.assert_distinguishable(
        expected, oracle.run_numpy(centralized_gd(0.1, centre_vectors=True), PROB)
    )


def test_the_problem_tells_the_variants_apart(runs):
    _, theirs = runs
    oracle.assert_distinguishable(theirs["normalize"], theirs["normalize_scaled"])


def test_normalized_updates_have_the_requested_norm():
    tx = og.normalize_by_update_norm(scale_factor=3.0, eps=0.0)
    grads = {"a": jnp.arange(6.0).reshape(2, 3), "b": -jnp.ones(4)}
    updates, _ = tx.update(grads, tx.init(grads))
    np.testing.assert_allclose(og.tree.norm(updates), 3.0, rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
@pytest.mark.parametrize("eps", [0.0, 1e-6])
def test_zero_updates_stay_zero(dtype, eps):
    """Optax divides by ``norm + eps``, which is 0/0 (NaN) for a zero update with ``eps=0``;
    optgrad returns zeros, in every dtype."""
    tx = og.chain(og.centralize(), og.normalize_by_update_norm(eps=eps))
    zeros = {"a": jnp.zeros((2, 3), dtype), "b": jnp.zeros(4, dtype)}
    updates, _ = jax.jit(tx.update)(zeros, tx.init(zeros))
    for u in jax.tree.leaves(updates):
        assert u.dtype == dtype
        np.testing.assert_array_equal(u, 0.0)


def test_meta_gradient_through_a_zero_norm_is_finite():
    def f(x):
        updates, _ = og.normalize_by_update_norm().update({"w": x * 0.0}, og.EmptyState())
        return jnp.sum(updates["w"])

    assert bool(jnp.all(jnp.isfinite(jax.grad(f)(jnp.ones(3)))))


def test_bad_arguments_are_rejected_when_built():
    message = "optgrad.normalize_by_update_norm(eps=...) must be non-negative, got eps=-1.0"
    with pytest.raises(ValueError, match=re.escape(message)):
        og.normalize_by_update_norm(eps=-1.0)
