"""Whole-tree arithmetic against NumPy in float64; reductions balanced over many leaves; sharded
reductions (``axis_name``) equal to the unsharded ones."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optgrad as og

RNG = np.random.default_rng(0)
TREE64 = {"a": RNG.normal(size=(4, 6)), "b": [RNG.normal(size=8), RNG.normal(size=(2, 2, 6))]}
OTHER64 = jax.tree.map(lambda x: RNG.normal(size=x.shape), TREE64)
TREE = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), TREE64)
OTHER = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), OTHER64)


def flat(tree):
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


X, Y = flat(TREE), flat(OTHER)


@pytest.mark.parametrize("order", [2, None, 1, 3.5, "inf", float("inf")])
def test_norm_matches_numpy(order):
    p = np.inf if order in ("inf", float("inf")) else (2 if order is None else order)
    expected = np.linalg.norm(X, p)
    np.testing.assert_allclose(og.tree.norm(TREE, order), expected, rtol=1e-6)
    np.testing.assert_allclose(og.tree.norm(TREE, order, squared=True), expected**2, rtol=1e-6)


def test_reductions_match_numpy():
    np.testing.assert_allclose(og.tree.sum(TREE), X.sum(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(og.tree.vdot(TREE, OTHER), X @ Y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(og.tree.sum_of_squares(TREE), X @ X, rtol=1e-6)
    assert float(og.tree.max(TREE)) == np.float32(X.max())
    assert float(og.tree.min(TREE)) == np.float32(X.min())
    assert og.tree.size(TREE) == X.size == 24 + 8 + 24


def test_vdot_conjugates_the_first_argument():
    x = {"z": jnp.asarray([1 + 2j, 3 - 1j], jnp.complex64)}
    y = {"z": jnp.asarray([2 - 1j, 1j], jnp.complex64)}
    np.testing.assert_allclose(og.tree.vdot(x, y), np.vdot(np.asarray(x["z"]), y["z"]), rtol=1e-6)
    np.testing.assert_allclose(og.tree.norm(x), np.linalg.norm(np.asarray(x["z"])), rtol=1e-6)
    np.testing.assert_array_equal(og.tree.conj(x)["z"], np.conj(x["z"]))
    np.testing.assert_array_equal(og.tree.real(x)["z"], np.real(x["z"]))


def test_elementwise_match_numpy():
    cases = {
        "add": (og.tree.add(TREE, OTHER, TREE), 2 * X + Y),
        "sub": (og.tree.sub(TREE, OTHER), X - Y),
        "mul": (og.tree.mul(TREE, OTHER), X * Y),
        "div": (og.tree.div(TREE, OTHER), X / Y),
        "scale": (og.tree.scale(-1.5, TREE), -1.5 * X),
        "add_scale": (og.tree.add_scale(TREE, 0.25, OTHER), X + 0.25 * Y),
        "clip": (og.tree.clip(TREE, -0.5, 0.7), np.clip(X, -0.5, 0.7)),
        "clip_max_only": (og.tree.clip(TREE, max_value=0.0), np.minimum(X, 0.0)),
        "where_scalar": (og.tree.where(jnp.bool_(True), TREE, OTHER), X),
        "where_tree": (
            og.tree.where(jax.tree.map(lambda x: x > 0, TREE), TREE, OTHER),
            np.where(X > 0, X, Y),
        ),
    }
    for name, (got, expected) in cases.items():
        assert jax.tree.structure(got) == jax.tree.structure(TREE), name
        np.testing.assert_allclose(flat(got), expected, rtol=1e-6, atol=1e-7, err_msg=name)


def test_leaf_dtypes_are_kept_by_scalars():
    bf = {"w": jnp.ones(3, jnp.bfloat16), "n": jnp.arange(3, dtype=jnp.int32)}
    assert og.tree.scale(jnp.float32(0.5), {"w": bf["w"]})["w"].dtype == jnp.bfloat16
    got = og.tree.add_scale({"w": bf["w"]}, jnp.float32(2.0), {"w": bf["w"]})
    assert got["w"].dtype == jnp.bfloat16
    assert og.tree.clip(bf, 0, 1)["n"].dtype == jnp.int32
    assert og.tree.scale(1j, {"w": jnp.ones(2)})["w"].dtype == jnp.complex64
    # reductions accumulate in float32, not bfloat16: 1 + 2**-9 * 1000 is lost in bf16 steps
    many = {"w": jnp.full(1024, 1.0, jnp.bfloat16)}
    assert og.tree.sum(many).dtype == jnp.float32 and float(og.tree.sum(many)) == 1024.0


def test_empty_trees():
    assert float(og.tree.sum({})) == 0.0
    assert float(og.tree.sum_of_squares({})) == 0.0
    assert float(og.tree.norm({}, 1)) == 0.0
    assert float(og.tree.max({})) == -np.inf and float(og.tree.min({})) == np.inf
    assert og.tree.size({}) == 0


def test_structure_mismatch_is_named():
    with pytest.raises(ValueError, match=re.escape("optgrad.tree.add: `tree_y` must have")):
        og.tree.add({"a": 1.0}, {"b": 1.0})
    with pytest.raises(ValueError, match=re.escape("optgrad.tree.vdot")):
        og.tree.vdot({"a": 1.0}, [1.0])
    with pytest.raises(ValueError, match=re.escape("optgrad.tree.norm(ord=...) must be positive")):
        og.tree.norm(TREE, "fro")


# ---- balanced reductions -------------------------------------------------------------------


def _depth(jaxpr) -> int:
    """The longest chain of dependent equations in a jaxpr (inner jaxprs counted as one)."""
    depth = {}
    for eqn in jaxpr.eqns:
        d = 1 + max((depth.get(v, 0) for v in eqn.invars if not hasattr(v, "val")), default=0)
        for v in eqn.outvars:
            depth[v] = d
    return max((depth.get(v, 0) for v in jaxpr.outvars if not hasattr(v, "val")), default=0)


def test_reductions_over_2000_leaves_have_logarithmic_depth():
    n = 2000
    tree = {f"p{i:04d}": jax.ShapeDtypeStruct((3,), jnp.float32) for i in range(n)}
    fns = {
        "sum": og.tree.sum,
        "sum_of_squares": og.tree.sum_of_squares,
        "norm1": lambda t: og.tree.norm(t, 1),
        "norm_inf": lambda t: og.tree.norm(t, "inf"),
        "max": og.tree.max,
        "vdot": lambda t: og.tree.vdot(t, t),
    }
    for name, fn in fns.items():
        depth = _depth(jax.make_jaxpr(fn)(tree).jaxpr)
        # a chain of additions would be ~2000 deep; log2(2000) ~ 11
        assert depth <= 2 * int(np.ceil(np.log2(n))), (name, depth)


# ---- sharded reductions ----------------------------------------------------------------------

DEVICES = 4


def shard(tree):
    """Each leaf split along its first axis into ``DEVICES`` shards: a leading mapped axis."""
    return jax.tree.map(lambda x: x.reshape(DEVICES, x.shape[0] // DEVICES, *x.shape[1:]), tree)


SHARDABLE = {"a": TREE["a"], "b": TREE["b"][0], "c": TREE["b"][1].reshape(4, 6)}
SHARDABLE_Y = {"a": OTHER["a"], "b": OTHER["b"][0], "c": OTHER["b"][1].reshape(4, 6)}


def test_axis_name_gives_the_unsharded_result():
    fns = {
        "sum": lambda t, u: og.tree.sum(t, axis_name="d"),
        "sum_of_squares": lambda t, u: og.tree.sum_of_squares(t, axis_name="d"),
        "norm": lambda t, u: og.tree.norm(t, axis_name="d"),
        "norm1": lambda t, u: og.tree.norm(t, 1, axis_name="d"),
        "norm_inf": lambda t, u: og.tree.norm(t, "inf", axis_name="d"),
        "max": lambda t, u: og.tree.max(t, axis_name="d"),
        "min": lambda t, u: og.tree.min(t, axis_name="d"),
        "vdot": lambda t, u: og.tree.vdot(t, u, axis_name="d"),
    }
    plain = {
        "sum": og.tree.sum(SHARDABLE),
        "sum_of_squares": og.tree.sum_of_squares(SHARDABLE),
        "norm": og.tree.norm(SHARDABLE),
        "norm1": og.tree.norm(SHARDABLE, 1),
        "norm_inf": og.tree.norm(SHARDABLE, "inf"),
        "max": og.tree.max(SHARDABLE),
        "min": og.tree.min(SHARDABLE),
        "vdot": og.tree.vdot(SHARDABLE, SHARDABLE_Y),
    }
    sharded = jax.jit(jax.vmap(lambda t, u: {k: f(t, u) for k, f in fns.items()}, axis_name="d"))(
        shard(SHARDABLE), shard(SHARDABLE_Y)
    )
    for name, expected in plain.items():
        got = np.asarray(sharded[name])
        assert got.shape == (DEVICES,)
        np.testing.assert_allclose(got, np.full(DEVICES, expected), rtol=1e-6, err_msg=name)
        # without the collective each device sees only its shard: the test can tell
    local = jax.vmap(og.tree.sum_of_squares)(shard(SHARDABLE))
    assert not np.allclose(local, plain["sum_of_squares"])
