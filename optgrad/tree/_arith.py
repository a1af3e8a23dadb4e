"""Arithmetic over whole trees, written to keep XLA graphs small for trees with many leaves."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .._numerics import abs_sq


def _leaves(tree: Any) -> list[jax.Array]:
    return [x for x in jax.tree.leaves(tree) if x is not None]


def sum_of_squares(tree: Any) -> jax.Array:
    """``sum |x|**2`` over every element of every leaf, in float32 (or wider) precision.

    The per-leaf partial sums are stacked and reduced once, so the reduction is balanced rather
    than a chain of ``len(leaves)`` dependent additions.
    """
    leaves = _leaves(tree)
    if not leaves:
        return jnp.zeros([], jnp.float32)
    parts = [jnp.sum(abs_sq(x), dtype=jnp.promote_types(x.real.dtype, jnp.float32)) for x in leaves]
    dtype = jnp.result_type(*parts)
    return jnp.sum(jnp.stack([p.astype(dtype) for p in parts]))


def norm(tree: Any, ord: float | int | str = 2) -> jax.Array:  # noqa: A002 - numpy's name
    """The norm of all the elements of a tree taken as one vector.

    ``ord`` is ``2`` (default), any positive number, or ``inf`` / ``"inf"`` for the largest
    absolute value. Matches ``torch.nn.utils.get_total_norm`` for the same ``norm_type``.
    """
    leaves = _leaves(tree)
    if ord == 2:
        return jnp.sqrt(sum_of_squares(tree))
    if not leaves:
        return jnp.zeros([], jnp.float32)
    if ord in ("inf", float("inf")):
        return jnp.max(jnp.stack([jnp.max(jnp.abs(x)).astype(jnp.float32) for x in leaves]))
    p = float(ord)
    parts = [jnp.sum(jnp.abs(x).astype(jnp.float32) ** p) for x in leaves]
    return jnp.sum(jnp.stack(parts)) ** (1.0 / p)
