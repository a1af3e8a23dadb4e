"""Per-example clipping against Optax 0.2.8 and a float64 NumPy reference (Abadi et al. 2016;
McMahan et al. 2018)."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og

BATCH = 16
SHAPES = {"w": (5, 3), "b": (3,), "c": (2, 2, 2)}


def per_example_grads(seed):
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.05, 3.0, size=BATCH)  # some examples far above the bound, some below
    return {k: rng.normal(size=(BATCH, *s)) * scales.reshape(-1, *[1] * len(s))
            for k, s in SHAPES.items()}  # fmt: skip


def f32(tree):
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), tree)


def numpy_clip_sum(leaves, bound):
    """Clip each example of ``leaves`` (a list of (batch, ...) arrays) to norm ``bound``."""
    norms = np.sqrt(sum(np.sum(g.reshape(BATCH, -1) ** 2, axis=1) for g in leaves))
    factors = np.minimum(1.0, bound / norms)
    return [np.tensordot(factors, g, 1) for g in leaves], int(np.sum(factors < 1))


@pytest.mark.parametrize("bound", [0.5, 2.0, 6.0])
def test_global_norm_clip_matches_numpy_and_optax(bound):
    grads = per_example_grads(0)
    total, n = jax.jit(og.per_example_global_norm_clip)(f32(grads), bound)
    names = sorted(SHAPES)  # jax.tree order of the dict
    expected, expected_n = numpy_clip_sum([grads[k] for k in names], bound)
    assert 0 < expected_n < BATCH or bound == 0.5
    for k, e in zip(names, expected):
        np.testing.assert_allclose(total[k], e, rtol=1e-5, atol=1e-6 * np.max(np.abs(e)))
    assert int(n) == expected_n and n.dtype == jnp.int32
    theirs, their_n = optax.per_example_global_norm_clip(f32(grads), bound)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), total, theirs)
    assert int(their_n) == int(n)


@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("bound", [1.0, 4.0])
def test_layer_norm_clip_matches_numpy_and_optax(uniform, bound):
    grads = per_example_grads(1)
    total, counts = og.per_example_layer_norm_clip(f32(grads), bound, uniform)
    sizes = {k: int(np.prod(s)) for k, s in SHAPES.items()}
    for k in SHAPES:
        share = 1 / len(SHAPES) if uniform else sizes[k] / sum(sizes.values())
        (expected,), expected_n = numpy_clip_sum([grads[k]], bound * np.sqrt(share))
        np.testing.assert_allclose(total[k], expected, rtol=1e-5, atol=1e-6, err_msg=k)
        assert int(counts[k]) == expected_n
    theirs, their_counts = optax.per_example_layer_norm_clip(f32(grads), bound, uniform)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), total, theirs)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), counts, their_counts)
    # the two budgets differ, so the test can tell uniform from proportional
    other, _ = og.per_example_layer_norm_clip(f32(grads), bound, not uniform)
    assert not np.allclose(other["w"], total["w"])


def test_edge_bounds_follow_optax():
    grads = [jnp.asarray([[0, 0, 0], [0, 3, 4], [4, 0, 3], [3, 4, 0]], jnp.float32)]
    for bound, expected, clipped in ((jnp.inf, 7.0, 0), (0.0, 0.0, 3), (1.25, 1.75, 3)):
        total, n = og.per_example_global_norm_clip(grads, bound)
        np.testing.assert_allclose(total[0], np.full(3, expected), rtol=1e-6)
        assert int(n) == clipped
        total, n = og.per_example_layer_norm_clip(grads, bound)
        np.testing.assert_allclose(total[0], np.full(3, expected), rtol=1e-6)
        assert int(n[0]) == clipped


def test_dtypes_kept():
    grads = {"w": jnp.ones((4, 3), jnp.bfloat16)}
    total, _ = og.per_example_global_norm_clip(grads, 1.0)
    assert total["w"].dtype == jnp.bfloat16 and total["w"].shape == (3,)
    np.testing.assert_allclose(np.asarray(total["w"], np.float32), 4 / np.sqrt(3), rtol=1e-2)


def test_a_missing_or_inconsistent_batch_axis_is_named():
    message = "every leaf of `grads` must hold per-example gradients with the examples on axis 0"
    with pytest.raises(ValueError, match=re.escape(message)):
        og.per_example_global_norm_clip({"a": jnp.ones((4, 2)), "b": jnp.ones((3,))}, 1.0)
    with pytest.raises(ValueError, match=re.escape(message)):
        og.per_example_layer_norm_clip({"a": jnp.ones(())}, 1.0)
    with pytest.raises(ValueError, match=re.escape("(l2_norm_clip=...) must be non-negative")):
        og.per_example_global_norm_clip({"a": jnp.ones((4, 2))}, -1.0)
    with pytest.raises(TypeError, match=re.escape("(uniform=...) must be a bool")):
        og.per_example_layer_norm_clip({"a": jnp.ones((4, 2))}, 1.0, "yes")
