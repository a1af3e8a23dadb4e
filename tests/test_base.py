"""The contract's small pieces: identity, set_to_zero, stateless, apply_updates."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import optgrad as og


def test_identity_and_set_to_zero():
    u = {"a": jnp.ones(2), "b": jnp.full((2, 2), 3.0, jnp.bfloat16)}
    assert og.identity().update(u, og.EmptyState())[0] is u
    zeros, _ = og.set_to_zero().update(u, og.EmptyState())
    assert zeros["b"].dtype == jnp.bfloat16 and float(jnp.abs(zeros["b"]).sum()) == 0.0


def test_stateless_sees_params():
    tx = og.stateless(lambda u, p: {"w": u["w"] * p["w"]})
    out, state = tx.update({"w": jnp.array(2.0)}, tx.init(None), {"w": jnp.array(3.0)})
    assert float(out["w"]) == 6.0 and state == og.EmptyState()


def test_apply_updates_adds_in_the_promoted_dtype_and_casts_back():
    params = {"w": jnp.array([1.0, 256.0], jnp.bfloat16), "skip": None}
    updates = {"w": jnp.array([1e-3, 1.0], jnp.float32), "skip": None}
    new = og.apply_updates(params, updates)
    assert new["skip"] is None and new["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(
        new["w"], (params["w"].astype(jnp.float32) + updates["w"]).astype(jnp.bfloat16)
    )


def test_apply_updates_reports_both_structures_on_mismatch():
    with pytest.raises(ValueError, match=r"expected \(params\).*'a'.*\n.*got \(updates\).*'b'"):
        og.apply_updates({"a": jnp.ones(1)}, {"b": jnp.ones(1)})


@pytest.mark.parametrize(
    "tx",
    [
        og.adam(0.1),
        og.amsgrad(0.1),
        og.rmsprop(0.1, centered=True),
        og.rmsprop(0.1),
        og.adagrad(0.1),
        og.sgd(0.1, momentum=0.9),
    ],
    ids=["adam", "amsgrad", "rmsprop_centered", "rmsprop", "adagrad", "sgd_momentum"],
)
def test_a_state_for_other_params_is_a_clear_error(tx):
    state = tx.init({"w": jnp.zeros(2)})
    with pytest.raises(ValueError, match=r"does not mirror the updates.*\n.*'b'.*\n.*'w'"):
        tx.update({"b": jnp.zeros(2)}, state)
