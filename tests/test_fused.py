"""``og.fused_step``: the same numbers as ``update`` + ``apply_updates``, chunk by chunk."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optgrad as og
from tests.registry import REGISTRY, Row

CHUNK = 64  # small, so the test-sized leaves below are split into many chunks


def _problem(dtype=jnp.float32):
    """A ragged leaf (1073 = 16 * 64 + 49), an exact one (4 chunks), and one too small to chunk."""
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(1), 4)
    params = {
        "w": jax.random.normal(k1, (37, 29), dtype),
        "v": jax.random.normal(k2, (256,), dtype),
        "b": jax.random.normal(k3, (29,), dtype),
    }
    target = jax.tree.map(lambda x: jax.random.normal(k4, x.shape, x.dtype), params)

    def loss(p):
        terms = jax.tree.map(lambda x, t: jnp.sum((x - t) ** 2 * (1.0 + t**2)), p, target)
        return sum(jax.tree.leaves(terms))

    return params, loss


def _extra(row: Row, loss, p, g):
    return {"value": loss(p), "grad": g, "value_fn": loss} if row.needs_value else {}


@pytest.mark.parametrize("row", REGISTRY, ids=str)
def test_fused_step_follows_the_two_call_step(row: Row):
    """Five steps on a random problem: params and every state leaf agree to float32 rounding."""
    params, loss = _problem()
    tx = row.make(row.lr)

    @jax.jit
    def plain(p, s):
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p, **_extra(row, loss, p, g))
        return og.apply_updates(p, u), s

    @jax.jit
    def fused(p, s):
        g = jax.grad(loss)(p)
        return og.fused_step(tx, g, s, p, chunk_size=CHUNK, **_extra(row, loss, p, g))

    p1 = p2 = params
    s1 = s2 = tx.init(params)
    for _ in range(5):
        p1, s1 = plain(p1, s1)
        p2, s2 = fused(p2, s2)
    assert jax.tree.structure(s1) == jax.tree.structure(s2)
    for a, b in zip(jax.tree.leaves((p1, s1)), jax.tree.leaves((p2, s2))):
        assert a.dtype == b.dtype and a.shape == b.shape
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=2e-5, atol=2e-6)
    moved = max(
        float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(params))
    )
    assert moved > 1e-5, f"{row.name} did not move the params; the comparison would be vacuous"


def _compiled(tx, params, chunk_size):
    def step(p, s, g):
        return og.fused_step(tx, g, s, p, chunk_size=chunk_size)

    return jax.jit(step, donate_argnums=(0, 1)).lower(params, tx.init(params), params).compile()


@pytest.mark.parametrize(
    "make",
    [
        lambda: og.chain(og.clip_by_global_norm(1.0), og.adamw(1e-3, weight_decay=0.01)),
        lambda: og.sgd(1e-3, momentum=0.9, nesterov=True),
        lambda: og.torch.SGD(lr=1e-2, momentum=0.9, nesterov=True, weight_decay=1e-4),
    ],
    ids=["clip_adamw", "sgd_nesterov", "torch.SGD"],
)
def test_the_step_is_a_chunk_loop_writing_in_place(make):
    """A loop per large leaf; no whole-buffer copy and no parameter-sized temporary."""
    params = {"w": jnp.zeros((1024, 1000)), "b": jnp.zeros(1000)}
    compiled = _compiled(make(), params, chunk_size=1 << 16)
    text = compiled.as_text()
    assert " while(" in text
    whole = re.compile(r"= f32\[(1024,1000|1024000)\]\{[0-9,]*\} copy\(")
    assert not whole.search(text), "a parameter-sized buffer is copied"
    analysis = compiled.memory_analysis()
    if analysis is not None:
        param_bytes = sum(x.nbytes for x in jax.tree.leaves(params))
        assert analysis.temp_size_in_bytes < 0.05 * param_bytes


def test_bfloat16_params_stay_bfloat16_and_follow_the_two_call_step():
    params, loss = _problem(jnp.bfloat16)
    tx = og.adamw(1e-2, weight_decay=0.01, mu_dtype=jnp.float32)
    g = jax.grad(loss)(params)
    s = tx.init(params)
    u, s1 = tx.update(g, s, params)
    p1 = og.apply_updates(params, u)
    p2, s2 = jax.jit(lambda g, s, p: og.fused_step(tx, g, s, p, chunk_size=CHUNK))(g, s, params)
    for a, b in zip(jax.tree.leaves((p1, s1)), jax.tree.leaves((p2, s2))):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(
            np.asarray(b, np.float32), np.asarray(a, np.float32), rtol=1e-2, atol=1e-6
        )
    assert jax.tree.leaves(p2)[0].dtype == jnp.bfloat16


def test_no_recompilation_on_later_steps_nor_after_setting_a_hyperparameter():
    params, loss = _problem()
    tx = og.chain(og.clip_by_global_norm(1.0), og.adamw(1e-3, weight_decay=0.01))

    @jax.jit
    def step(p, s):
        return og.fused_step(tx, jax.grad(loss)(p), s, p, chunk_size=CHUNK)

    p, s = step(params, tx.init(params))
    p, s = step(p, s)
    p, s = step(p, og.tree.set(s, learning_rate=5e-4))
    assert step._cache_size() == 1


def test_the_default_chunk_size_leaves_small_models_as_they_are():
    """Leaves under two chunks are not chunked: the program is the two-call one."""
    params, loss = _problem()
    tx = og.adam(1e-3)
    g = jax.grad(loss)(params)
    text = jax.jit(lambda g, s, p: og.fused_step(tx, g, s, p)).lower(g, tx.init(params), params)
    assert " while(" not in text.as_text()


@pytest.mark.parametrize("bad", [0, -4, 2.5, True, "64"])
def test_a_bad_chunk_size_is_refused(bad):
    params = {"w": jnp.zeros(3)}
    tx = og.sgd(0.1)
    with pytest.raises(
        ValueError, match=r"optgrad.fused_step\(chunk_size=...\) must be a positive int"
    ):
        og.fused_step(tx, params, tx.init(params), params, chunk_size=bad)


def test_grads_of_another_structure_are_refused_with_both_structures():
    params = {"w": jnp.zeros(3), "b": jnp.zeros(2)}
    tx = og.sgd(0.1)
    with pytest.raises(ValueError, match=r"optgrad.fused_step: the grads must have the same"):
        og.fused_step(tx, {"w": jnp.zeros(3)}, tx.init(params), params)
