"""A check shared by the adaptive families: numeric hyperparameters live in the state by name,
and setting one there is the same as building the optimizer with that value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import optgrad as og
from tests import _oracle as oracle


def assert_settable(make: Callable[..., Any], defaults: dict[str, float], **changes: float):
    """``make(**kwargs)`` builds the alias. Its state reports ``defaults`` by name, and two
    jitted steps after ``og.tree.set(state, **changes)`` equal two steps of
    ``make(**changes)`` (with no recompilation between the two states)."""
    prob = oracle.problem(seed=0, steps=2)
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), prob.theta0)
    grads = [
        jax.tree.map(lambda x, t=t: jnp.asarray(x[t], jnp.float32), prob.noise) for t in (0, 1)
    ]
    tx = make()
    state = tx.init(params)
    for name, value in defaults.items():
        got = og.tree.get(state, name)
        assert got.dtype == jnp.float32, name
        np.testing.assert_allclose(float(got), value, rtol=1e-7, err_msg=name)

    rebuilt = make(**changes)

    def two_steps(tx, state):
        for g in grads:
            updates, state = tx.update(g, state, params)
        return updates

    @jax.jit
    def both(state, rebuilt_state):
        return two_steps(tx, state), two_steps(rebuilt, rebuilt_state)

    both(state, rebuilt.init(params))
    set_updates, expected = both(og.tree.set(state, **changes), rebuilt.init(params))
    assert both._cache_size() == 1  # setting a hyperparameter does not recompile
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9), set_updates, expected
    )
