"""Applying updates to parameters."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._base import Params, Updates
from ._numerics import stochastic_round


def _is_none(x: Any) -> bool:
    return x is None


def check_same_structure(call: str, expected: Any, got: Any, what: str = "updates") -> None:
    """Raises a ``ValueError`` that shows both tree structures when they differ."""
    expected_def = jax.tree.structure(expected, is_leaf=_is_none)
    got_def = jax.tree.structure(got, is_leaf=_is_none)
    if expected_def != got_def:
        raise ValueError(
            f"{call}: the {what} must have the same tree structure as the params.\n"
            f"  expected (params): {expected_def}\n  got ({what}):      {got_def}"
        )


def check_state_mirrors(call: str, updates: Any, state_tree: Any, field: str) -> None:
    """Raises a ``ValueError`` when a state buffer does not mirror the updates' tree.

    A structure check costs nothing at run time: it happens once, while tracing.
    """
    expected = jax.tree.structure(updates, is_leaf=_is_none)
    got = jax.tree.structure(state_tree, is_leaf=_is_none)
    if expected != got:
        raise ValueError(
            f"{call}.update: the state's `{field}` does not mirror the updates.\n"
            f"  expected (updates): {expected}\n  got (state.{field}): {got}\n"
            "Was `init` called with params of a different structure than these gradients?"
        )


def apply_updates(params: Params, updates: Updates, *, key: jax.Array | None = None) -> Params:
    """``params + updates`` leaf by leaf, each result cast back to its parameter's dtype.

    The sum is taken in the promoted dtype (a bf16 parameter plus a float32 update adds in
    float32 and rounds once). ``None`` leaves in ``params`` stay ``None``. With a PRNG ``key``,
    bfloat16 parameters are rounded stochastically (:func:`optgrad.stochastic_round`), so
    updates smaller than half a bf16 ulp are not lost; pass a fresh key every step, e.g.
    ``jax.random.fold_in(key, step)``.

    Args:
        params: the current parameters.
        updates: a tree of the structure of ``params`` to add.
        key: a PRNG key for stochastic rounding of bfloat16 leaves; ``None`` (default) rounds to
            nearest.

    Returns:
        The new parameters, each leaf in its old dtype.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.apply_updates({"w": jnp.ones(2, jnp.bfloat16)}, {"w": jnp.full(2, 0.5)})["w"].dtype
        dtype(bfloat16)
    """
    check_same_structure("optgrad.apply_updates", params, updates)

    leaves, treedef = jax.tree.flatten(params, is_leaf=_is_none)
    keys = list(jax.random.split(key, len(leaves))) if key is not None else [None] * len(leaves)

    def add(p, u, k):
        if p is None:
            return None
        p = jnp.asarray(p)
        total = jnp.asarray(p + u)
        if k is not None and p.dtype == jnp.bfloat16:
            return stochastic_round(total.astype(jnp.float32), p.dtype, k)
        return total.astype(p.dtype)

    update_leaves = treedef.flatten_up_to(updates)
    return treedef.unflatten([add(p, u, k) for p, u, k in zip(leaves, update_leaves, keys)])
