"""Masks and labels: which leaves a transformation applies to."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _paths(tree: Any) -> list[tuple[Any, ...]]:
    return [path for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _describe_mismatch(mask: Any, params: Any, what: str) -> str:
    """Which entries of ``mask`` name nothing in ``params`` and which params it leaves out."""
    mask_paths, param_paths = _paths(mask), _paths(params)

    def covers(prefix, path):
        return len(prefix) <= len(path) and all(
            str(a) == str(b) for a, b in zip(prefix, path[: len(prefix)])
        )

    extra = [m for m in mask_paths if not any(covers(m, p) for p in param_paths)]
    missing = [p for p in param_paths if not any(covers(m, p) for m in mask_paths)]
    lines = []
    if extra:
        shown = ", ".join(jax.tree_util.keystr(m) or "<root>" for m in extra[:5])
        lines.append(f"  in the {what} but not in the params: {shown}")
    if missing:
        shown = ", ".join(jax.tree_util.keystr(p) or "<root>" for p in missing[:5])
        lines.append(f"  params the {what} does not cover: {shown}")
    return "\n".join(lines)


def resolve_mask(call: str, mask: Any, params: Any, what: str = "mask") -> Any:
    """A full tree of mask leaves (booleans, or labels) mirroring ``params`` from ``mask``.

    ``mask`` is a tree with the structure of ``params`` (or a prefix of it: one leaf for a
    whole subtree), or a function ``params -> such a tree``. ``what`` names it in errors.
    """
    if callable(mask):
        mask = mask(params)
    try:
        return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: m, sub), mask, params)
    except ValueError:
        detail = _describe_mismatch(mask, params, what)
        raise ValueError(
            f"{call}: the {what} must have the tree structure of the params (or a prefix of "
            f"it: one entry for a whole subtree).\n"
            f"  params: {jax.tree.structure(params)}\n"
            f"  {what}:{' ' * max(1, 7 - len(what))}{jax.tree.structure(mask)}"
            + (f"\n{detail}" if detail else "")
        ) from None


def static_bools(call: str, mask_tree: Any) -> Any:
    """Every leaf of a resolved mask as a Python ``bool``; a traced leaf is an error.

    Masks that decide which leaves keep state must be known when the step is traced.
    """

    def as_bool(m):
        if isinstance(m, (bool, np.bool_)):
            return bool(m)
        if isinstance(m, jax.core.Tracer):
            raise TypeError(
                f"{call}: the mask must be static (Python booleans, or a function of the "
                "params' structure and shapes), got a traced value. A mask computed from "
                "array values inside `jit` cannot decide which leaves keep state."
            )
        array = np.asarray(m)
        if array.shape != () or array.dtype != np.bool_:
            raise TypeError(
                f"{call}: every mask entry must be a boolean, got {type(m).__name__}: {m!r}"
            )
        return bool(array)

    return jax.tree.map(as_bool, mask_tree)


def where_mask(mask_leaf: Any, on: Any, off: Any) -> Any:
    """``on`` where the mask is true, else ``off``; a Python bool picks statically."""
    if isinstance(mask_leaf, bool):
        return on if mask_leaf else off
    return jnp.where(mask_leaf, on, off)
