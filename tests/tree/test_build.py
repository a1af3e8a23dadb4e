"""Constructors, casts, dtypes and random trees."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optgrad as og

TREE = {"w": jnp.zeros((2, 3), jnp.bfloat16), "b": jnp.zeros(3, jnp.float32), "n": jnp.int32(4)}


def test_fills_keep_structure_shapes_and_dtypes():
    for make, value in ((og.tree.zeros_like, 0), (og.tree.ones_like, 1)):
        out = make(TREE)
        assert jax.tree.structure(out) == jax.tree.structure(TREE)
        for x, like in zip(jax.tree.leaves(out), jax.tree.leaves(TREE)):
            assert x.shape == like.shape and x.dtype == like.dtype
            np.testing.assert_array_equal(x, np.full(like.shape, value))
    full = og.tree.full_like(TREE, 2.5, jnp.float32)
    assert og.tree.dtype(full) == jnp.float32
    assert float(og.tree.sum(full)) == 2.5 * og.tree.size(TREE)
    spec = jax.eval_shape(lambda: TREE)
    assert og.tree.zeros_like(spec)["w"].shape == (2, 3)
    assert og.tree.zeros_like({"x": 1.0})["x"].shape == ()


def test_full_like_accepts_a_traced_value():
    out = jax.jit(lambda v: og.tree.full_like(TREE, v))(jnp.float32(3.0))
    assert out["w"].dtype == jnp.bfloat16 and float(out["w"][0, 0]) == 3.0


def test_cast_and_cast_like():
    assert og.tree.dtype(og.tree.cast(TREE, jnp.float16)) == jnp.float16
    assert og.tree.cast(TREE, None) is TREE
    other = {"w": jnp.zeros(1, jnp.float32), "b": jnp.zeros(1, jnp.bfloat16), "n": jnp.float32(0)}
    out = og.tree.cast_like(TREE, other)
    assert [x.dtype for x in jax.tree.leaves(out)] == [x.dtype for x in jax.tree.leaves(other)]
    with pytest.raises(ValueError, match=r"optgrad\.tree\.cast_like: `other_tree` must have"):
        og.tree.cast_like(TREE, {"w": 1.0})


def test_dtype_handlers():
    floats = {"a": jnp.ones(1, jnp.bfloat16), "b": jnp.ones(1, jnp.float32)}
    assert og.tree.dtype({"a": jnp.ones(1)}) == jnp.float32
    assert og.tree.dtype(floats, "promote") == jnp.float32
    assert og.tree.dtype(floats, "highest") == jnp.float32
    assert og.tree.dtype(floats, "lowest") == jnp.bfloat16
    assert og.tree.dtype({}) == jnp.float32
    with pytest.raises(ValueError, match="the leaves have different dtypes"):
        og.tree.dtype(floats)
    unordered = {"a": jnp.ones(1, jnp.bfloat16), "b": jnp.ones(1, jnp.float16)}
    assert og.tree.dtype(unordered, "promote") == jnp.float32
    with pytest.raises(ValueError, match="have no highest element"):
        og.tree.dtype(unordered, "highest")
    with pytest.raises(ValueError, match=r"mixed_dtype_handler=\.\.\.\) must be one of"):
        og.tree.dtype(floats, "max")


def test_random_like_draws_independent_leaves_of_the_right_shape_and_dtype():
    target = {"a": jnp.zeros((200, 50), jnp.bfloat16), "b": jnp.zeros((200, 50))}
    out = og.tree.random_like(jax.random.key(1), target)
    assert out["a"].dtype == jnp.bfloat16 and out["b"].dtype == jnp.float32
    a, b = np.asarray(out["a"], np.float64).ravel(), np.asarray(out["b"]).ravel()
    assert abs(a.mean()) < 0.05 and abs(a.std() - 1) < 0.05
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.05  # different keys per leaf
    uniform = og.tree.random_like(jax.random.key(2), target, jax.random.uniform, jnp.float32)
    assert og.tree.dtype(uniform) == jnp.float32 and 0 <= float(og.tree.min(uniform))
    keys = og.tree.split_key_like(jax.random.key(0), target)
    assert jax.tree.structure(keys) == jax.tree.structure(target)
    assert not np.array_equal(jax.random.key_data(keys["a"]), jax.random.key_data(keys["b"]))
