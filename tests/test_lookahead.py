"""``lookahead`` against Optax 0.2.8's ``optax.lookahead`` (float64) and a float64 NumPy
reference written from Zhang et al. (2019), Algorithm 1.

The trajectories are of the fast weights (the ones gradients are taken at); after every
synchronisation they equal the slow weights, so they pin down both. The final slow weights are
compared too. Tolerance: ``assert_trajectories_close``'s default.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og
from tests import _oracle as oracle
from tests.rows_averaging import on_plain_params

PROB = oracle.problem(seed=3, steps=150)
LR = 0.05


def og_la(inner, k, alpha, reset=False):
    return on_plain_params(og.lookahead(inner, k, alpha, reset_state=reset))


def optax_la(inner, k, alpha, reset=False):
    return on_plain_params(optax.lookahead(inner, k, alpha, reset), optax.LookaheadParams)


# name: (optgrad, Optax)
CASES = {
    "adam_k5": (og_la(og.adam(LR), 5, 0.5), optax_la(optax.adam(LR), 5, 0.5)),
    "adam_k6_reset": (
        og_la(og.adam(LR), 6, 0.8, reset=True),
        optax_la(optax.adam(LR), 6, 0.8, reset=True),
    ),
    "sgd_momentum_k1": (
        og_la(og.sgd(LR, momentum=0.9), 1, 0.3),
        optax_la(optax.sgd(LR, momentum=0.9), 1, 0.3),
    ),
    "sgd_momentum_k4_reset": (
        og_la(og.sgd(LR, momentum=0.9), 4, 0.5, reset=True),
        optax_la(optax.sgd(LR, momentum=0.9), 4, 0.5, reset=True),
    ),
}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many(
        {name: tx for name, (tx, _) in CASES.items()}
        | {"plain_adam": og.adam(LR), "numpy_check": og_la(og.sgd(LR, momentum=0.9), 4, 0.5)},
        PROB,
        with_state=True,
    )
    theirs = oracle.run_optax64(
        {name: tx for name, (_, tx) in CASES.items()}, PROB, with_state=True
    )
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_matches_optax_in_float64(runs, name):
    ours, theirs = runs
    (traj, state), (expected, expected_state) = ours[name], theirs[name]
    oracle.assert_trajectories_close(traj, expected)
    slow = PROB.flat(state[1])
    np.testing.assert_allclose(slow, PROB.flat(expected_state[1]), rtol=1e-5, atol=1e-6)


def _numpy_lookahead(k, alpha, reset, lr=LR, mu=0.9):
    """Algorithm 1 of Zhang et al. with SGD + momentum (``m = mu m + g``, ``u = -lr m``)."""

    def step(g, theta, t, state):
        m = mu * state.get("m", 0.0) + g
        fast = theta - lr * m
        state["m"] = m
        if t % k == 0:
            slow = state.get("slow", PROB.flat(PROB.theta0))
            slow = slow + alpha * (fast - slow)
            state["slow"], fast = slow, slow
            if reset:
                state["m"] = 0.0
        return fast - theta

    return oracle.run_numpy(step, PROB)


def test_matches_the_paper_in_numpy(runs):
    ours, _ = runs
    expected = _numpy_lookahead(4, 0.5, reset=False)
    oracle.assert_trajectories_close(ours["numpy_check"][0], expected)
    oracle.assert_trajectories_close(
        ours["sgd_momentum_k4_reset"][0], _numpy_lookahead(4, 0.5, reset=True)
    )
    # The test can fail: lookahead differs from its inner optimizer, and resetting matters.
    oracle.assert_distinguishable(expected, _numpy_lookahead(4, 0.5, reset=True))
    oracle.assert_distinguishable(expected, _numpy_lookahead(4, 1.0, reset=False))
    oracle.assert_distinguishable(ours["adam_k5"][0], ours["plain_adam"][0])


def test_eval_params_are_the_slow_weights_and_step_size_is_settable():
    params = og.LookaheadParams.init_synced({"w": jnp.ones(3), "b": jnp.ones(())})
    tx = og.lookahead(og.sgd(0.1), sync_period=3, slow_step_size=0.5)
    loss = lambda p: sum(jnp.sum(x**2) for x in jax.tree.leaves(p))  # noqa: E731

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss)(params.fast), state, params)
        return og.apply_updates(params, updates), state

    state = tx.init(params)
    assert float(og.tree.get(state, "slow_step_size")) == 0.5
    state = og.tree.set(state, slow_step_size=1.0)  # slow weights jump to the fast ones
    for _ in range(3):
        params, state = step(params, state)
    assert step._cache_size() == 1
    jax.tree.map(np.testing.assert_array_equal, og.eval_params(state, params), params.slow)
    np.testing.assert_allclose(params.slow["w"], 0.8**3, rtol=1e-6)
    jax.tree.map(np.testing.assert_array_equal, params.slow, params.fast)
    params, state = step(params, state)  # between syncs slow stays put
    np.testing.assert_allclose(og.eval_params(state, params)["w"], 0.8**3, rtol=1e-6)
    assert int(og.tree.get(state, "steps_since_sync")) == 1


def test_dtypes_are_preserved():
    params = og.LookaheadParams.init_synced({"w": jnp.ones(4, jnp.bfloat16)})
    tx = og.lookahead(og.adam(0.1), 2, 0.5)
    state = tx.init(params)
    for _ in range(2):
        updates, state = jax.jit(tx.update)({"w": jnp.ones(4, jnp.bfloat16)}, state, params)
        params = og.apply_updates(params, updates)
    assert {x.dtype for x in jax.tree.leaves(updates)} == {jnp.dtype(jnp.bfloat16)}
    assert state.inner_state.steps_since_sync.dtype == jnp.int32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sync_period": 0}, r"optgrad.lookahead\(sync_period=...\) must be a positive integer"),
        ({"sync_period": 2.0}, r"sync_period=2.0"),
        ({"slow_step_size": 1.5}, r"slow_step_size=...\) must be in \[0, 1\], got"),
    ],
)
def test_bad_arguments_fail_at_build_time(kwargs, message):
    args = {"fast_optimizer": og.sgd(0.1), "sync_period": 2, "slow_step_size": 0.5} | kwargs
    with pytest.raises(ValueError, match=message):
        og.lookahead(**args)
    with pytest.raises(TypeError, match=r"fast_optimizer=\.\.\.\) must be a gradient"):
        og.lookahead(0.1, 2, 0.5)


def test_plain_params_are_rejected_with_a_recipe():
    tx = og.lookahead(og.sgd(0.1), 2, 0.5)
    params = {"w": jnp.ones(2)}
    state = tx.init(params)  # like Optax, init accepts the fast params alone
    with pytest.raises(ValueError, match=r"LookaheadParams\.init_synced"):
        tx.update(params, state, params)
    with pytest.raises(ValueError, match="the updates must have the same tree structure"):
        tx.update({"v": jnp.ones(2)}, state, og.LookaheadParams.init_synced(params))
