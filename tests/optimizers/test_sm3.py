"""``scale_by_sm3`` and ``sm3`` against independent oracles.

- Optax 0.2.8 run in float64 on the same problem (``tests/_oracle.py``): SM3-II with momentum
  (``b2 = 1``) and the decayed variant (``b2 < 1``);
- a float64 NumPy implementation of SM3-II from the paper (Anil et al. 2019, Algorithm 2 with
  the covers "rows, columns, ..." of each tensor), without momentum.

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

PROB = oracle.problem(seed=14)


def lr_schedule(count):
    return 0.1 / (1.0 + 0.02 * count)


CASES = {
    "sm3": (og.sm3(0.1), optax.sm3(0.1)),
    "sm3_no_momentum": (og.sm3(0.1, momentum=0.0), optax.sm3(0.1, momentum=0.0)),
    "sm3_momentum_05": (og.sm3(0.05, momentum=0.5), optax.sm3(0.05, momentum=0.5)),
    "scale_by_sm3_decayed": (
        og.chain(og.scale_by_sm3(b1=0.5, b2=0.9, eps=1e-3), og.scale(-0.02)),
        optax.chain(optax.scale_by_sm3(b1=0.5, b2=0.9, eps=1e-3), optax.scale(-0.02)),
    ),
}
OURS_ONLY = {"sm3_schedule": og.sm3(lr_schedule, momentum=0.0)}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many(
        {**{name: tx for name, (tx, _) in CASES.items()}, **OURS_ONLY}, PROB, with_state=True
    )
    theirs = oracle.run_optax64({name: ref for name, (_, ref) in CASES.items()}, PROB)
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name][0], theirs[name])


def sm3_ii(lr, *, full=False):
    """SM3-II (Anil et al. 2019, Algorithm 2) in float64, no momentum: for every tensor entry
    ``nu = min over the covers containing it of mu + g^2``; each cover's ``mu`` becomes the max
    of ``nu`` over its entries; the step is ``-lr g / sqrt(nu)`` (0 where ``nu = 0``).
    ``full=True`` is the *wrong* (memory-hungry) rule: Adagrad's per-entry sum."""
    shapes = [np.shape(x) for x in jax.tree.leaves(PROB.theta0)]

    def step(g, theta, t, state):
        out, start = [], 0
        for k, shape in enumerate(shapes):
            size = int(np.prod(shape))
            gk = g[start : start + size].reshape(shape)
            start += size
            if full or len(shape) < 2:
                nu = state.get(k, 0.0) + gk**2
                state[k] = nu
            else:
                mus = state.get(k, [np.zeros(n) for n in shape])
                covers = [
                    m.reshape([1] * r + [n] + [1] * (len(shape) - r - 1))
                    for r, (m, n) in enumerate(zip(mus, shape))
                ]
                nu = np.minimum.reduce(np.broadcast_arrays(*covers)) + gk**2
                axes = range(len(shape))
                state[k] = [nu.max(axis=tuple(i for i in axes if i != r)) for r in axes]
            safe = np.where(nu > 0, nu, 1.0)
            out.append(np.where(nu > 0, -lr(t - 1) * gk / np.sqrt(safe), 0.0).ravel())
        return np.concatenate(out)

    return step


def test_trajectory_matches_the_papers_sm3_ii(runs):
    ours, _ = runs
    # eps = 1e-8 inside optgrad's root: 1e-8 / nu of relative change, far below the tolerance.
    expected = oracle.run_numpy(sm3_ii(lr_schedule), PROB)
    oracle.assert_trajectories_close(ours["sm3_schedule"][0], expected)
    oracle.assert_distinguishable(expected, oracle.run_numpy(sm3_ii(lr_schedule, full=True), PROB))


@pytest.mark.parametrize(("a", "b"), [("sm3", "sm3_no_momentum"), ("sm3", "scale_by_sm3_decayed")])
def test_the_problem_tells_the_variants_apart(runs, a, b):
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a], theirs[b])


def test_state_keeps_one_accumulator_per_axis(runs):
    ours, _ = runs
    mu = og.tree.get(ours["sm3"][1], "mu")
    assert [m.shape for m in mu["a"]] == [(4,), (5,)]
    assert [m.shape for m in mu["b"]] == [(7,)]
    assert [m.shape for m in mu["c"]["d"]] == [(2,), (3,), (5,)]


def test_complex_gradients_use_the_squared_modulus():
    """Optax rejects complex params; optgrad's SM3 uses ``|g|^2``, so a complex leaf behaves as
    its modulus: the update of ``g`` is ``g / |g|`` times that of ``|g|``."""
    g = jnp.array([[1.0 + 2.0j, -0.5j], [3.0, 1.0 - 1.0j]], jnp.complex64)
    tx = og.scale_by_sm3(b1=0.0)
    u_complex, _ = tx.update(g, tx.init(g))
    u_real, _ = tx.update(jnp.abs(g), tx.init(jnp.abs(g)))
    np.testing.assert_allclose(u_complex, u_real * g / jnp.abs(g), rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_zero_gradients_give_zero_updates(dtype):
    tx = og.sm3(0.1)
    params = {"w": jnp.ones((2, 3), dtype), "b": jnp.ones(3, dtype)}
    zeros = jax.tree.map(jnp.zeros_like, params)
    state = tx.init(params)
    for _ in range(2):
        updates, state = jax.jit(tx.update)(zeros, state, params)
        for u in jax.tree.leaves(updates):
            assert u.dtype == dtype
            np.testing.assert_array_equal(u, 0.0)


BAD_ARGUMENTS = [
    (og.sm3, dict(learning_rate=-0.1), "optgrad.sm3(learning_rate=...) must be non-negative"),
    (
        og.sm3,
        dict(learning_rate=0.1, momentum=1.5),
        "optgrad.sm3(momentum=...) must be in [0, 1], got momentum=1.5",
    ),
    (og.scale_by_sm3, dict(b2=2.0), "optgrad.scale_by_sm3(b2=...) must be in [0, 1], got b2=2.0"),
    (og.scale_by_sm3, dict(eps=-1.0), "optgrad.scale_by_sm3(eps=...) must be non-negative"),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)
