"""``masked``: trajectories against Optax 0.2.8's ``masked`` (float64), state kept only for the
selected leaves, nested and prefix masks, extra arguments, and the errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og
from tests._oracle import (
    assert_distinguishable,
    assert_trajectories_close,
    problem,
    run_many,
    run_optax64,
)

MATRICES = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)  # noqa: E731
VECTORS = lambda p: jax.tree.map(lambda x: x.ndim == 1, p)  # noqa: E731
PREFIX = {"a": True, "b": False, "c": True}  # one boolean for the whole subtree "c"
INNER = {"a": False, "b": True, "c": True}


def _configs(lib):
    return {
        "adam_and_sgd": lib.chain(
            lib.masked(lib.adam(0.05), MATRICES),
            lib.masked(lib.sgd(0.05, momentum=0.9), VECTORS),
        ),
        "prefix_decay": lib.chain(
            lib.masked(lib.add_decayed_weights(0.3), PREFIX), lib.sgd(0.05, momentum=0.5)
        ),
        "nested": lib.chain(lib.masked(lib.masked(lib.scale(0.2), INNER), PREFIX), lib.sgd(0.1)),
        "tree_mask": lib.chain(
            lib.masked(lib.clip(0.2), {"a": False, "b": True, "c": {"d": False}}),
            lib.sgd(0.1),
        ),
    }


def test_trajectories_match_optax_masked():
    prob = problem(11)
    ours = run_many(_configs(og), prob)
    expected = run_optax64(_configs(optax), prob)
    for name in ours:
        assert_trajectories_close(ours[name], expected[name])
    unmasked = run_many({"tx": og.chain(og.scale(0.2), og.sgd(0.1))}, prob)["tx"]
    assert_distinguishable(ours["nested"], unmasked)


def _nbytes(tree) -> int:
    return sum(np.asarray(x).nbytes for x in jax.tree.leaves(tree))


def test_state_is_kept_only_for_the_selected_leaves():
    params = {"w": jnp.ones((64, 32)), "b": jnp.ones(32), "emb": jnp.ones((100, 16))}
    mask = {"w": True, "b": False, "emb": False}
    state = og.masked(og.adam(1e-3), mask).init(params)
    assert _nbytes(state) == _nbytes(og.adam(1e-3).init({"w": params["w"]}))
    mu = state.inner_state.inner_state[0].mu
    assert isinstance(mu["b"], og.MaskedNode) and isinstance(mu["emb"], og.MaskedNode)
    _, new_state = jax.jit(og.masked(og.adam(1e-3), mask).update)(params, state, params)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)


def test_nested_masks_keep_the_outer_placeholders():
    params = {"a": jnp.ones(2), "b": jnp.ones(3), "c": {"d": jnp.ones(4)}}
    tx = og.masked(og.masked(og.trace(0.9), INNER), PREFIX)
    state = tx.init(params)
    buffer = state.inner_state.inner_state.trace
    assert isinstance(buffer["a"], og.MaskedNode)  # left out by the inner mask
    assert isinstance(buffer["b"], og.MaskedNode)  # left out by the outer mask
    assert buffer["c"]["d"].shape == (4,)
    grads = jax.tree.map(lambda x: 2 * x, params)
    out, _ = tx.update(grads, state)
    np.testing.assert_array_equal(out["c"]["d"], 2.0)
    np.testing.assert_array_equal(out["b"], 2.0)


def test_a_mask_that_does_not_fit_the_params_shows_both_structures():
    params = {"a": jnp.ones(2), "b": jnp.ones(3)}
    with pytest.raises(ValueError) as info:
        og.masked(og.sgd(0.1), {"a": True, "bias": False}).init(params)
    message = str(info.value)
    assert "optgrad.masked" in message and "params: PyTreeDef({'a': *, 'b': *})" in message
    assert "mask:   PyTreeDef({'a': *, 'bias': *})" in message
    assert "in the mask but not in the params: ['bias']" in message
    assert "params the mask does not cover: ['b']" in message


def test_mask_errors():
    with pytest.raises(TypeError, match=r"every mask entry must be a boolean, got str"):
        og.masked(og.sgd(0.1), {"a": "yes"})
    params = {"a": jnp.ones(2)}
    traced = og.masked(og.sgd(0.1), lambda p: jax.tree.map(lambda x: x[0] > 0, p))
    with pytest.raises(TypeError, match=r"the mask must be static"):
        jax.jit(traced.init)(params)
    with pytest.raises(ValueError, match=r"expected a MaskedState.*got tuple"):
        og.masked(og.sgd(0.1), True).update(params, (og.EmptyState(),))


def test_extra_arguments_reach_the_inner_transformation_and_can_be_masked():
    def scale_by_extra():
        def update_fn(updates, state, params=None, *, factor=None):
            return jax.tree.map(lambda u, f: u * f, updates, factor), state

        return og.GradientTransformation(og.init_empty_state, update_fn)

    params = {"a": jnp.ones(2), "b": jnp.ones(3)}
    factor = {"a": jnp.full(2, 3.0), "b": jnp.full(3, 5.0)}
    tx = og.masked(scale_by_extra(), {"a": True, "b": False}, mask_compatible_extra_args=True)
    out, _ = tx.update(params, tx.init(params), factor=factor, unknown="dropped")
    np.testing.assert_array_equal(out["a"], 3.0)
    np.testing.assert_array_equal(out["b"], 1.0)


def test_hyperparameters_through_the_masked_state_without_recompiling():
    params = {"a": jnp.ones(2), "b": jnp.ones(3)}
    tx = og.masked(og.sgd(0.1), {"a": True, "b": False})
    step = jax.jit(tx.update)
    state = tx.init(params)
    u, state = step(params, state)
    np.testing.assert_allclose(u["a"], -0.1, rtol=1e-6)
    state = og.tree.set(state, learning_rate=2.0)
    u, state = step(params, state)
    np.testing.assert_allclose(u["a"], -2.0)
    np.testing.assert_array_equal(u["b"], 1.0)
    assert float(og.tree.get(state, "learning_rate")) == 2.0
    assert step._cache_size() == 1
