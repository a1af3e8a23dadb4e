"""Numerical building blocks shared by the primitives: counters, bias corrections, casts."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

_INT32_MAX = jnp.iinfo(jnp.int32).max


def zero_count() -> jax.Array:
    """The initial step count: an int32 scalar."""
    return jnp.zeros([], jnp.int32)


def safe_increment(count: jax.Array) -> jax.Array:
    """``count + 1`` that saturates at the largest int32 instead of wrapping to negative."""
    return jnp.where(count < _INT32_MAX, count + 1, _INT32_MAX).astype(count.dtype)


def as_scalar(value: Any) -> jax.Array:
    """A hyperparameter value as a float32 scalar (never weakly typed, so it never recompiles)."""
    return jnp.asarray(value, dtype=jnp.float32).reshape(())


def bias_correction(decay: Any, count: jax.Array) -> jax.Array:
    """``1 - decay**count`` in float32, computed as ``-expm1(count * log(decay))``.

    The direct form loses about 2e-5 relative accuracy at small ``count`` for ``decay=0.999``
    (catastrophic cancellation); this form stays within float32 rounding of a float64 reference.
    ``decay == 0`` gives 1 (``log 0 = -inf``).
    """
    decay = as_scalar(decay)
    return -jnp.expm1(count.astype(jnp.float32) * jnp.log(decay))


def zeros_like(tree: Any, dtype: Any = None) -> Any:
    """Zeros mirroring ``tree`` (works on arrays and ``jax.ShapeDtypeStruct``)."""
    return jax.tree.map(lambda x: jnp.zeros(x.shape, dtype or x.dtype), tree)


def full_like(tree: Any, value: Any, dtype: Any = None) -> Any:
    return jax.tree.map(lambda x: jnp.full(x.shape, value, dtype or x.dtype), tree)


def canonical_dtype(dtype: Any) -> Any:
    return None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)


def abs_sq(x: jax.Array) -> jax.Array:
    """``|x|**2``, real for complex ``x``."""
    return (x.conj() * x).real if jnp.iscomplexobj(x) else x * x
