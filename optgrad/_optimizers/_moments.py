"""Moment buffers shared by the adaptive families: real-valued zeros, moving averages, casts."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .._numerics import full_like


def real_dtype(dtype: Any) -> Any:
    """The real dtype of ``dtype``: ``float32`` for ``complex64``, ``dtype`` itself if real."""
    return jnp.finfo(dtype).dtype


def real_full_like(tree: Any, value: Any = 0.0) -> Any:
    """``value`` mirroring ``tree`` in each leaf's real dtype (second moments of complex params
    are real: half the memory, and ``max``/``sign`` keep their meaning)."""
    return jax.tree.map(lambda x: full_like(x, value, real_dtype(x.dtype)), tree)


def ema(new: Any, old: Any, decay: jax.Array) -> Any:
    """``decay * old + (1 - decay) * new`` leaf by leaf, at the promoted (float32+) precision."""
    return jax.tree.map(lambda n, o: decay * o + (1.0 - decay) * n, new, old)


def cast_like(values: Any, like: Any) -> Any:
    """``values`` cast leaf by leaf to the dtypes of ``like`` (to store a new state)."""
    return jax.tree.map(lambda v, l: v.astype(l.dtype), values, like)


def safe_divide(num: jax.Array, den: jax.Array) -> jax.Array:
    """``num / den``, with ``num`` itself where ``den == 0`` (never ``0/0``, nor a NaN
    gradient through the branch not taken)."""
    zero = den == 0
    return jnp.where(zero, num, num / jnp.where(zero, 1.0, den))
