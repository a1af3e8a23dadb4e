"""``keep_params_nonnegative`` against Optax 0.2.8's (float64 trajectories)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og
from tests import _oracle as oracle

# Positive starting points; the noise keeps pushing coordinates across zero.
_P = oracle.problem(seed=5, steps=120, noise=2.0)
PROB = dataclasses.replace(_P, theta0=jax.tree.map(np.abs, _P.theta0))


def test_matches_optax_and_keeps_params_nonnegative():
    ours = oracle.run_many(
        {
            "kept": og.chain(og.sgd(0.1, momentum=0.5), og.keep_params_nonnegative()),
            "free": og.sgd(0.1, momentum=0.5),
        },
        PROB,
    )
    theirs = oracle.run_optax64(
        {"kept": optax.chain(optax.sgd(0.1, momentum=0.5), optax.keep_params_nonnegative())},
        PROB,
    )
    oracle.assert_trajectories_close(ours["kept"], theirs["kept"])
    assert ours["kept"].min() >= 0.0
    assert np.mean(ours["kept"][1:] == 0.0) > 0.05  # the constraint binds often
    oracle.assert_distinguishable(ours["kept"], ours["free"])


def test_dtypes_none_leaves_and_missing_params():
    tx = og.keep_params_nonnegative()
    params = {"w": jnp.array([1.0, 0.5], jnp.bfloat16), "n": None}
    updates = {"w": jnp.array([-2.0, 0.25], jnp.bfloat16), "n": None}
    out, state = jax.jit(tx.update)(updates, tx.init(params), params)
    assert state == og.EmptyState()
    assert out["n"] is None and out["w"].dtype == jnp.bfloat16
    assert out["w"].tolist() == [-1.0, 0.25]
    with pytest.raises(ValueError, match=r"keep_params_nonnegative\.update needs `params`"):
        tx.update(updates, tx.init(params))
