"""Masks: which leaves a transformation applies to."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def resolve_mask(call: str, mask: Any, params: Any) -> Any:
    """A full tree of booleans mirroring ``params`` from ``mask``.

    ``mask`` is a tree of booleans with the structure of ``params`` (or a prefix of it: a
    boolean for a whole subtree), or a function ``params -> such a tree``.
    """
    if callable(mask):
        mask = mask(params)
    try:
        return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: m, sub), mask, params)
    except ValueError:
        raise ValueError(
            f"{call}: the mask must have the tree structure of the params (or a prefix of it).\n"
            f"  params: {jax.tree.structure(params)}\n  mask:   {jax.tree.structure(mask)}"
        ) from None


def where_mask(mask_leaf: Any, on: Any, off: Any) -> Any:
    """``on`` where the mask is true, else ``off``; a Python bool picks statically."""
    if isinstance(mask_leaf, bool):
        return on if mask_leaf else off
    return jnp.where(mask_leaf, on, off)
