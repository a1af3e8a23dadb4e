"""``chain`` and ``named_chain``: order, extra arguments, state checks, and Optax members."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og


def _reads_value():
    """A transformation that scales updates by the ``value`` extra argument."""

    def update_fn(updates, state, params=None, *, value=1.0, **extra_args):
        return jax.tree.map(lambda u: u * value, updates), state

    return og.GradientTransformation(og.init_empty_state, update_fn)


def test_chain_applies_in_order():
    tx = og.chain(og.scale(2.0), og.clip(1.0))
    np.testing.assert_allclose(tx.update(jnp.array([0.3, 0.8]), tx.init(None))[0], [0.6, 1.0])


def test_extra_arguments_reach_members_that_accept_them_only():
    strict = og.GradientTransformation(og.init_empty_state, lambda u, s, p=None: (u, s))
    named = og.GradientTransformation(
        og.init_empty_state, lambda u, s, p=None, value=0.0: (u * value, s)
    )
    tx = og.chain(strict, _reads_value(), named)
    out, _ = tx.update(jnp.ones(2), tx.init(None), None, value=3.0, unused="x")
    np.testing.assert_allclose(out, 9.0)


def test_named_chain_keys_state_by_name_and_forwards_extra_args():
    tx = og.named_chain(("scale", _reads_value()), ("opt", og.sgd(0.5)))
    state = tx.init({"w": jnp.zeros(2)})
    assert list(state) == ["scale", "opt"]
    out, _ = tx.update({"w": jnp.ones(2)}, state, value=2.0)
    np.testing.assert_allclose(out["w"], -1.0)


def test_named_chain_rejects_repeated_names():
    with pytest.raises(ValueError, match=r"repeated: \['a'\]"):
        og.named_chain(("a", og.identity()), ("a", og.identity()))


def test_chain_rejects_a_state_from_another_chain():
    tx = og.chain(og.identity(), og.identity())
    with pytest.raises(ValueError, match=r"tuple of 2 entries.*got a tuple of 1 entries"):
        tx.update(jnp.ones(1), (og.EmptyState(),))


def test_chain_rejects_non_transformations():
    with pytest.raises(
        TypeError, match=r"optgrad.chain: member 1 must be a gradient transformation"
    ):
        og.chain(og.identity(), 3)


def test_optax_transformations_work_inside_optgrad_chain():
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    grads = {"w": jnp.array([3.0, 4.0, 12.0])}
    mixed = og.chain(optax.clip_by_global_norm(1.0), og.adam(0.1))
    ours = og.chain(og.clip_by_global_norm(1.0), og.adam(0.1))
    for tx_a, tx_b in [(mixed, ours)]:
        sa, sb = tx_a.init(params), tx_b.init(params)
        for _ in range(3):
            ua, sa = tx_a.update(grads, sa, params, value=1.0)
            ub, sb = tx_b.update(grads, sb, params)
            np.testing.assert_allclose(ua["w"], ub["w"], rtol=1e-6)


def test_optgrad_transformations_work_inside_optax_chain_with_extra_args():
    params = {"w": jnp.ones(2)}
    tx = optax.chain(og.to_optax(_reads_value()), og.to_optax(og.sgd(1.0)))
    out, _ = tx.update({"w": jnp.ones(2)}, tx.init(params), params, value=4.0)
    np.testing.assert_allclose(out["w"], -4.0)
    # Without the adapter, optax.chain drops the extra argument for foreign types.
    plain = optax.chain(_reads_value(), og.sgd(1.0))
    out, _ = plain.update({"w": jnp.ones(2)}, plain.init(params), params, value=4.0)
    np.testing.assert_allclose(out["w"], -1.0)


def test_optgrad_optimizer_matches_optax_inside_optax_chain():
    params = {"w": jnp.array([1.0, -2.0])}
    a = optax.chain(optax.clip(0.5), og.adam(0.1))
    b = optax.chain(optax.clip(0.5), optax.adam(0.1))
    sa, sb = a.init(params), b.init(params)
    for i in range(5):
        g = {"w": jnp.array([0.3, -0.7]) * (i + 1)}
        ua, sa = a.update(g, sa, params)
        ub, sb = b.update(g, sb, params)
        # Optax computes Adam's bias correction as 1 - b**t in float32, which is off by up to
        # 5e-5 relative at small t; optgrad's -expm1(t log b) is exact to rounding (checked
        # against float64 in tests/optimizers). This test checks the wiring, not that rounding.
        np.testing.assert_allclose(ua["w"], ub["w"], rtol=1e-4)
