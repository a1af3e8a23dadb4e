"""``flatten`` against Optax 0.2.8's ``optax.flatten`` (float64 trajectories), and the
bookkeeping of cutting the vector back: shapes, dtypes, ``None`` leaves, abstract init."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og
from tests import _oracle as oracle

PROB = oracle.problem(seed=11, steps=120)
LR = 0.05

# name: (optgrad, Optax); clip_by_block_rms sees one block when flattened, one per leaf when not.
CASES = {
    "adam": (og.flatten(og.adam(LR)), optax.flatten(optax.adam(LR))),
    "block_rms_sgd": (
        og.flatten(og.chain(og.clip_by_block_rms(0.5), og.sgd(LR, momentum=0.9))),
        optax.flatten(optax.chain(optax.clip_by_block_rms(0.5), optax.sgd(LR, momentum=0.9))),
    ),
    "adamw_reads_params": (
        og.flatten(og.adamw(LR, weight_decay=0.5)),
        optax.flatten(optax.adamw(LR, weight_decay=0.5)),
    ),
}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many(
        {name: tx for name, (tx, _) in CASES.items()}
        | {"block_rms_per_leaf": og.chain(og.clip_by_block_rms(0.5), og.sgd(LR, momentum=0.9))},
        PROB,
    )
    return ours, oracle.run_optax64({name: tx for name, (_, tx) in CASES.items()}, PROB)


@pytest.mark.parametrize("name", CASES)
def test_matches_optax_in_float64(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name], theirs[name])


def test_the_inner_transformation_sees_one_vector(runs):
    ours, _ = runs
    oracle.assert_distinguishable(ours["block_rms_sgd"], ours["block_rms_per_leaf"])
    state = og.flatten(og.adam(LR)).init(PROB.theta0)
    mu = og.tree.get(state, "mu")
    assert mu.shape == (sum(PROB.sizes),)


def test_shapes_dtypes_and_none_leaves_come_back():
    params = {
        "a": jnp.ones((2, 3), jnp.bfloat16),
        "b": None,
        "c": [jnp.ones((), jnp.float32), jnp.ones((4,), jnp.float32)],
    }
    grads = jax.tree.map(lambda x: jnp.full_like(x, 0.5), params)
    tx = og.flatten(og.adam(0.1))
    state = tx.init(params)
    assert og.tree.get(state, "mu").dtype == jnp.float32  # the promoted dtype
    updates, state = jax.jit(tx.update)(grads, state, params)
    assert jax.tree.structure(updates) == jax.tree.structure(params)
    for u, p in zip(jax.tree.leaves(updates), jax.tree.leaves(params)):
        assert u.shape == p.shape and u.dtype == p.dtype
    np.testing.assert_allclose(np.asarray(updates["c"][1]), -0.1, rtol=1e-6)


def test_init_on_abstract_params_and_extra_arguments():
    params = {"a": jnp.ones((2, 3)), "b": jnp.ones(5)}
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    tx = og.flatten(og.adam(0.1))
    shapes = jax.tree.map(jnp.shape, tx.init(abstract))
    assert shapes == jax.tree.map(jnp.shape, jax.eval_shape(tx.init, params))
    # Optax members take no extra arguments; og's flatten leaves them out for them.
    optax_inner = og.flatten(optax.sgd(0.1))
    u, _ = optax_inner.update(params, optax_inner.init(params), params, value=1.0)
    np.testing.assert_allclose(u["b"], -0.1)
    with pytest.raises(TypeError, match=r"optgrad\.flatten: member inner must be a gradient"):
        og.flatten(0.1)


def test_an_empty_tree_is_fine():
    tx = og.flatten(og.adam(0.1))
    updates, _ = tx.update({}, tx.init({}), {})
    assert updates == {}
