"""``scale_by_polyak`` and ``polyak_sgd``, which read the loss (``value=``).

The problem is ``tests/_oracle.py``'s, given a loss: at step ``t`` the loss is
``f_t(theta) = sum 0.5 a (theta + n_t / a)^2 >= 0``, whose gradient is the problem's
``a theta + n_t`` and whose minimum is 0 (the interpolation setting of Loizou et al.). Oracles:

- Optax 0.2.8 run in float64, where its semantics are the intended ones (``scaling = 1``);
- a float64 NumPy implementation of SPS_max (Loizou et al. 2021, eq. 4) and SPS+ (Garrigos et
  al. 2023), with the scaling multiplying the step as Optax documents; Optax 0.2.8 divides by
  it instead (``test_optax_scaling_divides_the_step``).

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

PROB = oracle.problem(seed=20)


def scaling_schedule(count):
    return 0.8 / (1.0 + 0.01 * count)


def run_with_value(txs, dtype=jnp.float32):
    """Trajectories like ``oracle.run_many``'s, passing ``value=f_t(theta)`` to ``update``."""
    cast = lambda t: jax.tree.map(lambda x: jnp.asarray(x, dtype), t)  # noqa: E731
    theta0, a, noise = cast(PROB.theta0), cast(PROB.a), cast(PROB.noise)

    def loss_terms(a_, th, n_):
        return jnp.sum(0.5 * a_ * (th + n_ / a_) ** 2)

    @jax.jit
    def go(theta0, a, noise):
        def step(carry, n_t):
            new = {}
            for name, tx in txs.items():
                theta, state = carry[name]
                g = jax.tree.map(lambda a_, th, n_: a_ * th + n_, a, theta, n_t)
                terms = jax.tree.map(loss_terms, a, theta, n_t)
                updates, state = tx.update(g, state, theta, value=sum(jax.tree.leaves(terms)))
                new[name] = (jax.tree.map(jnp.add, theta, updates), state)
            return new, {name: theta for name, (theta, _) in new.items()}

        init = {name: (theta0, tx.init(theta0)) for name, tx in txs.items()}
        return jax.lax.scan(step, init, noise)[1]

    traj = go(theta0, a, noise)
    first = PROB.flat(PROB.theta0)[None]

    def flat(tree):
        return np.concatenate(
            [np.asarray(x, np.float64).reshape(PROB.steps, -1) for x in jax.tree.leaves(tree)],
            axis=1,
        )

    return {name: np.vstack([first, flat(traj[name])]) for name in txs}


CASES = {
    "polyak_sgd": (og.polyak_sgd(), optax.polyak_sgd()),
    "polyak_capped": (
        og.polyak_sgd(max_learning_rate=0.2, eps=1e-2),
        optax.polyak_sgd(max_learning_rate=0.2, eps=1e-2),
    ),
    "polyak_plus": (
        og.polyak_sgd(f_min=5.0, variant="sps+"),
        optax.polyak_sgd(f_min=5.0, variant="sps+"),
    ),
    "scale_by_polyak": (
        og.chain(og.scale_by_polyak(max_learning_rate=0.5), og.scale(-0.7)),
        optax.chain(optax.scale_by_polyak(max_learning_rate=0.5), optax.scale(-0.7)),
    ),
}
OURS_ONLY = {"polyak_scaled": og.polyak_sgd(max_learning_rate=0.5, scaling=scaling_schedule)}
THEIRS_ONLY = {"polyak_scaled": optax.polyak_sgd(max_learning_rate=0.5, scaling=scaling_schedule)}


@pytest.fixture(scope="module")
def runs():
    ours = run_with_value({**{n: tx for n, (tx, _) in CASES.items()}, **OURS_ONLY})
    with jax.enable_x64(True):
        theirs = run_with_value(
            {**{n: ref for n, (_, ref) in CASES.items()}, **THEIRS_ONLY}, jnp.float64
        )
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name], theirs[name])


def sps(max_lr, f_min=0.0, eps=0.0, scaling=lambda t: 1.0, *, plus=False, cap=True):
    """SPS_max in float64: ``theta -= s_t min((f - f*) / (|g|^2 + eps), max_lr) g``, with
    ``(f - f*)_+`` for SPS+. ``cap=False`` is the *wrong* rule without the maximum step."""
    a = PROB.flat(PROB.a).astype(np.float32).astype(np.float64)
    noise = (
        np.concatenate(
            [np.reshape(x, (PROB.steps, -1)) for x in jax.tree.leaves(PROB.noise)], axis=1
        )
        .astype(np.float32)
        .astype(np.float64)
    )

    def step(g, theta, t, state):
        value = np.sum(0.5 * a * (theta + noise[t - 1] / a) ** 2)
        gap = max(value - f_min, 0.0) if plus else value - f_min
        gamma = gap / (g @ g + eps)
        return -scaling(t - 1) * (min(gamma, max_lr) if cap else gamma) * g

    return step


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("polyak_sgd", dict(max_lr=1.0)),
        ("polyak_capped", dict(max_lr=0.2, eps=1e-2)),
        ("polyak_plus", dict(max_lr=1.0, f_min=5.0, plus=True)),
        ("polyak_scaled", dict(max_lr=0.5, scaling=scaling_schedule)),
    ],
)
def test_trajectory_matches_the_papers_rule(runs, name, kwargs):
    ours, _ = runs
    expected = oracle.run_numpy(sps(**kwargs), PROB)
    oracle.assert_trajectories_close(ours[name], expected)


def test_the_problem_tells_the_variants_apart(runs):
    _, theirs = runs
    oracle.assert_distinguishable(theirs["polyak_sgd"], theirs["polyak_capped"])
    oracle.assert_distinguishable(theirs["polyak_sgd"], theirs["polyak_plus"])
    uncapped = oracle.run_numpy(sps(0.2, eps=1e-2, cap=False), PROB)
    oracle.assert_distinguishable(theirs["polyak_capped"], uncapped)


def test_optax_scaling_divides_the_step(runs):
    """Optax 0.2.8 computes the Polyak step from the norm of the *scaled* gradient, so its
    ``scaling`` divides the uncapped step (contrary to its docstring); optgrad multiplies."""
    ours, theirs = runs
    oracle.assert_distinguishable(ours["polyak_scaled"], theirs["polyak_scaled"])
    params, grads = {"w": jnp.array([2.0])}, {"w": jnp.array([4.0])}  # f = w^2 = 4
    for tx, expected in (
        (og.polyak_sgd(10.0, scaling=2.0), -2.0),
        (optax.polyak_sgd(10.0, scaling=2.0), -0.5),
    ):
        updates, _ = tx.update(grads, tx.init(params), params, value=jnp.array(4.0))
        np.testing.assert_allclose(updates["w"], [expected])


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_zero_gradient_gives_a_zero_step(dtype):
    tx = og.polyak_sgd(eps=0.0)
    params = {"w": jnp.ones(3, dtype)}
    updates, _ = jax.jit(tx.update)(
        {"w": jnp.zeros(3, dtype)}, tx.init(params), params, value=jnp.asarray(1.0, dtype)
    )
    assert updates["w"].dtype == dtype
    np.testing.assert_array_equal(updates["w"], 0.0)


def test_the_loss_is_required():
    tx = og.polyak_sgd()
    params = {"w": jnp.ones(3)}
    with pytest.raises(
        ValueError, match=re.escape("optgrad.scale_by_polyak.update needs the loss")
    ):
        tx.update(params, tx.init(params), params)


BAD_ARGUMENTS = [
    (
        og.polyak_sgd,
        dict(variant="sps++"),
        "optgrad.polyak_sgd(variant=...) must be one of 'sps', 'sps+', got variant='sps++'",
    ),
    (
        og.polyak_sgd,
        dict(max_learning_rate=-1.0),
        "optgrad.polyak_sgd(max_learning_rate=...) must be non-negative, "
        "got max_learning_rate=-1.0",
    ),
    (
        og.scale_by_polyak,
        dict(eps=-1.0),
        "optgrad.scale_by_polyak(eps=...) must be non-negative, got eps=-1.0",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)
