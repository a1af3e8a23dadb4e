"""Elementwise forms that round as torch's kernels round.

``torch.lerp(start, end, w)`` computes ``start + w (end - start)`` for ``|w| < 0.5`` and
``end - (end - start)(1 - w)`` otherwise, so that ``w = 1`` gives ``end`` exactly. The two
forms round differently from ``w * end + (1 - w) * start``; matching torch's keeps the
trajectories of ``optgrad.torch`` within float32 rounding of torch's.

XLA fuses ``x * y + z`` into one fused multiply-add, rounding once; torch's kernels do so
in some places (``add`` with ``alpha``, ``lerp``) and not in others (``mul_`` then ``add_``).
:func:`rounded` keeps a product rounded where torch rounds it; only Muon needs that (its
bfloat16 iteration turns a one-ulp difference into a visible one).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def lerp(start: jax.Array, end: jax.Array, weight: Any) -> jax.Array:
    """``start + weight * (end - start)`` written as torch's ``lerp`` writes it."""
    diff = end - start
    return jnp.where(jnp.abs(weight) < 0.5, start + weight * diff, end - diff * (1.0 - weight))


def rounded(x: jax.Array) -> jax.Array:
    """``x`` itself, in a form the compiler cannot fuse into a following addition.

    ``where(x == x, x, 0)`` is ``x`` for every non-NaN value; a NaN becomes 0, which only
    happens here when the inputs were already NaN.
    """
    return jnp.where(x == x, x, jnp.zeros_like(x))
