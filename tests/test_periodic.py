"""``periodic_update`` and ``incremental_update`` against Optax 0.2.8's."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og

RNG = np.random.default_rng(0)
NEW = {"a": jnp.asarray(RNG.standard_normal((3, 4)), jnp.float32), "b": [jnp.float32(2.0)]}
OLD = {"a": jnp.asarray(RNG.standard_normal((3, 4)), jnp.float32), "b": [jnp.float32(-1.0)]}


def test_periodic_update_matches_optax_under_jit():
    ours = jax.jit(og.periodic_update, static_argnums=3)
    for steps in range(0, 13):
        for period in (1, 3, 5):
            got = ours(NEW, OLD, jnp.int32(steps), period)
            expected = optax.periodic_update(NEW, OLD, steps, period)
            jax.tree.map(np.testing.assert_array_equal, got, expected)
    # Traced period too.
    got = jax.jit(og.periodic_update)(NEW, OLD, jnp.int32(6), jnp.int32(4))
    jax.tree.map(np.testing.assert_array_equal, got, OLD)


def test_incremental_update_matches_optax():
    for tau in (0.0, 0.005, 0.3, 1.0):
        got = jax.jit(og.incremental_update)(NEW, OLD, tau)
        expected = optax.incremental_update(NEW, OLD, tau)
        jax.tree.map(
            lambda g, e: np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7), got, expected
        )
    # A polyak average run for 200 steps equals its float64 closed form.
    target, tau, online = OLD["a"], 0.05, NEW["a"]
    for _ in range(200):
        target = og.incremental_update(online, target, tau)
    w = (1 - tau) ** 200
    expected = w * np.asarray(OLD["a"], np.float64) + (1 - w) * np.asarray(online, np.float64)
    np.testing.assert_allclose(target, expected, rtol=1e-5, atol=1e-6)


def test_dtypes_and_none_leaves():
    new = {"w": jnp.ones(2, jnp.float32), "n": None}
    old = {"w": jnp.zeros(2, jnp.bfloat16), "n": None}
    soft = og.incremental_update(new, old, jnp.float32(0.5))
    hard = og.periodic_update(new, old, 4, 2)
    assert soft["n"] is None and hard["n"] is None
    assert soft["w"].dtype == jnp.bfloat16 and hard["w"].dtype == jnp.bfloat16
    assert soft["w"].tolist() == [0.5, 0.5] and hard["w"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: og.incremental_update(NEW, OLD, 1.5), r"step_size=...\) must be in \[0, 1\]"),
        (lambda: og.periodic_update(NEW, OLD, 3, 0), r"update_period=...\) must be a positive"),
        (lambda: og.periodic_update(NEW, OLD, 3, 2.5), r"update_period=2.5"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
