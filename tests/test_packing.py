"""og.pack / og.unpack: many leaves as a few buffers, with the same training trajectory."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optgrad as og


def _tree(seed=0, n=6):
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(n):
        d_in, d_out = int(rng.integers(2, 6)), int(rng.integers(2, 6))
        layers.append(
            {
                "w": jnp.asarray(rng.standard_normal((d_in, d_out)), jnp.float32),
                "b": jnp.asarray(rng.standard_normal(d_out), jnp.float32),
                "scale": jnp.float32(1.0 + i),
            }
        )
    return {"layers": layers, "emb": jnp.asarray(rng.standard_normal((3, 4)), jnp.bfloat16)}


def _loss(params):
    total = 0.0
    for i, layer in enumerate(params["layers"]):
        total += jnp.sum(jnp.tanh(layer["w"]) * (i + 1)) + jnp.sum(layer["b"] ** 2)
        total += layer["scale"] ** 2
    return total + jnp.sum(params["emb"].astype(jnp.float32) ** 2)


def test_unpack_returns_the_packed_tree_exactly():
    params = _tree()
    packed = og.pack(params)
    assert packed.groups == ("bfloat16", "float32")  # first appearance, in tree order
    back = og.unpack(packed)
    assert jax.tree.structure(back) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


def test_packing_inside_jit_equals_packing_outside():
    params = _tree()
    inside = jax.jit(og.pack)(params)
    outside = og.pack(params)
    assert jax.tree.structure(inside) == jax.tree.structure(outside)
    jax.tree.map(np.testing.assert_array_equal, inside, outside)


def test_groups_by_label_and_dtype():
    params = _tree()

    def label(path, x):
        return "decay" if x.ndim > 1 else "no_decay"

    packed = og.pack(params, groups=label)
    # "decay" holds float32 matrices and the bfloat16 embedding: split by dtype.
    assert set(packed.groups) == {"decay:float32", "no_decay", "decay:bfloat16"}
    sizes = dict(zip(packed.groups, packed.spec.sizes))
    assert sizes["no_decay"] == sum(l["b"].size + 1 for l in params["layers"])
    back = og.unpack(packed)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), back, params)


def test_the_gradient_through_unpack_is_the_packed_gradient():
    params = _tree()
    packed = og.pack(params)
    got = jax.jit(jax.grad(lambda p: _loss(og.unpack(p))))(packed)
    want = og.pack(jax.jit(jax.grad(_loss))(params))
    jax.tree.map(np.testing.assert_array_equal, got, want)


def _train(tx, params, loss, steps=60):
    @jax.jit
    def run(params):
        def body(_, carry):
            p, s = carry
            u, s = tx.update(jax.grad(loss)(p), s, p)
            return og.apply_updates(p, u), s

        return jax.lax.fori_loop(0, steps, body, (params, tx.init(params)))[0]

    return run(params)


def test_training_packed_equals_training_the_tree_with_group_masks():
    """AdamW with weight decay on matrices only: per-group masks on the packed buffers give
    the tree's trajectory; elementwise optimizers see the same numbers, so equality is exact
    up to the order XLA fuses operations in."""
    params = jax.tree.map(lambda x: x.astype(jnp.float32), _tree())

    def is_matrix(path, x):
        return "matrix" if x.ndim > 1 else "other"

    tree_tx = og.adamw(0.05, weight_decay=0.1, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p))
    packed_tx = og.adamw(
        0.05,
        weight_decay=0.1,
        mask=lambda p: jax.tree_util.tree_map_with_path(lambda k, _: k[0].key == "matrix", p),
    )
    want = _train(tree_tx, params, _loss)
    packed = og.pack(params, groups=is_matrix)
    got = og.unpack(_train(packed_tx, packed, lambda p: _loss(og.unpack(p))))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), got, want)
    # The mask mattered: without it the trajectory differs.
    other = og.unpack(
        _train(og.adamw(0.05, weight_decay=0.1), packed, lambda p: _loss(og.unpack(p)))
    )
    assert (
        max(
            float(jnp.max(jnp.abs(a - b)))
            for a, b in zip(jax.tree.leaves(other), jax.tree.leaves(want))
        )
        > 1e-3
    )


def test_global_norm_clipping_sees_the_same_norm_packed():
    params = jax.tree.map(lambda x: x.astype(jnp.float32), _tree())
    tx = og.chain(og.clip_by_global_norm(0.5), og.sgd(0.1, momentum=0.9))
    want = _train(tx, params, _loss)
    got = og.unpack(_train(tx, og.pack(params), lambda p: _loss(og.unpack(p))))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, want)


def _n_equations(n_leaves):
    rng = np.random.default_rng(n_leaves)
    params = {
        f"p{i}": jnp.asarray(rng.standard_normal(int(rng.integers(3, 9)))) for i in range(n_leaves)
    }
    packed = og.pack(params)
    tx = og.chain(og.clip_by_global_norm(1.0), og.adamw(1e-3, weight_decay=0.01))
    jaxpr = jax.make_jaxpr(tx.update)(packed, tx.init(packed), packed)
    return len(jaxpr.eqns), len(jax.tree.leaves(tx.init(packed)))


def test_the_optimizer_step_on_packed_params_does_not_grow_with_the_number_of_leaves():
    """What XLA compiles and launches per step is independent of the leaf count."""
    assert _n_equations(10) == _n_equations(400)


def test_a_jitted_step_on_packed_params_compiles_once():
    params = _tree()
    packed = og.pack(params)
    tx = og.adam(1e-2)

    @jax.jit
    def step(p, s):
        u, s = tx.update(jax.grad(lambda q: _loss(og.unpack(q)))(p), s, p)
        return og.apply_updates(p, u), s

    p, s = step(packed, tx.init(packed))
    p, s = step(p, s)
    assert step._cache_size() == 1
    assert isinstance(p, og.Packed) and p.spec == packed.spec
    assert og.unpack(p)["emb"].dtype == jnp.bfloat16


def test_errors_name_the_call_and_what_came():
    with pytest.raises(ValueError, match=r"optgrad.pack\(params\) needs at least one array"):
        og.pack({})
    with pytest.raises(TypeError, match=r"optgrad.pack\(groups=...\) must return a str.*'b'"):
        og.pack({"b": jnp.ones(2)}, groups=lambda path, x: 3)
    with pytest.raises(TypeError, match=r"optgrad.unpack\(packed\) expects the Packed tree.*dict"):
        og.unpack({"b": jnp.ones(2)})
