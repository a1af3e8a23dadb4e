"""A check any optimizer can be put through: does it work inside gradient accumulation?

``assert_works_inside_multi_steps(make, params, grad_fn)`` wraps ``make()`` in
``og.MultiSteps(..., every_k_schedule=k)`` and feeds it each gradient ``k`` times. Then:

1. the ``k - 1`` micro-steps between optimizer steps return exact zeros in the gradient's dtype
   and leave the optimizer's state untouched;
2. the accumulated run equals the plain optimizer stepped once per gradient (the mean of ``k``
   copies of ``g`` is ``g`` exactly), to float32 rounding, for ``steps`` optimizer steps;
3. the jitted micro-step compiles once.

The conformance suite can call it for every row, e.g.::

    assert_works_inside_multi_steps(lambda: row.make(row.lr), params, jax.grad(loss))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import optgrad as og


def _comparable(x: Any) -> Any:
    """Typed PRNG keys (``jax.random.key``) compare through their raw key data."""
    if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(x)
    return x


def _assert_same_state(a: Any, b: Any) -> None:
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(_comparable(x), _comparable(y)), a, b)


def assert_works_inside_multi_steps(
    make: Callable[[], Any],
    params: Any,
    grad_fn: Callable[[Any], Any],
    *,
    k: int = 3,
    steps: int = 4,
    extra_args: dict | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    extra = extra_args or {}
    tx, acc = make(), og.MultiSteps(make(), every_k_schedule=k)
    plain_step = jax.jit(lambda g, s, p: tx.update(g, s, p, **extra))
    micro_step = jax.jit(lambda g, s, p: acc.update(g, s, p, **extra))
    p_plain, s_plain = params, tx.init(params)
    p_acc, s_acc = params, acc.init(params)
    for step in range(steps):
        u, s_plain = plain_step(grad_fn(p_plain), s_plain, p_plain)
        p_plain = og.apply_updates(p_plain, u)
        g = grad_fn(p_acc)
        for micro in range(k):
            inner_before = s_acc.inner_opt_state
            u, s_acc = micro_step(g, s_acc, p_acc)
            if micro < k - 1:
                for leaf, grad in zip(jax.tree.leaves(u), jax.tree.leaves(g)):
                    assert leaf.dtype == grad.dtype, (step, micro, leaf.dtype, grad.dtype)
                    assert not np.any(np.asarray(leaf, np.float64)), (step, micro, "non-zero")
                _assert_same_state(inner_before, s_acc.inner_opt_state)
                assert not bool(acc.has_updated(s_acc))
        assert bool(acc.has_updated(s_acc))
        p_acc = og.apply_updates(p_acc, u)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(
            np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol
        ),
        p_acc,
        p_plain,
    )
    assert micro_step._cache_size() == 1
    assert jnp.shape(s_acc.gradient_step) == () and int(s_acc.gradient_step) == steps
