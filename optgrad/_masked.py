"""``masked``: apply a transformation to some leaves only, keeping state for those alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from ._base import GradientTransformation
from ._combine import _as_transformation, _extra_args_filter
from ._masking import resolve_mask, static_bools


class MaskedNode(NamedTuple):
    """Stands in for a leaf a mask leaves out: a tree node without children, so it holds no
    memory and ``jax.tree.map`` passes over it. The inner transformation of :func:`masked`
    sees it in place of every masked-out parameter, gradient and state buffer."""


class MaskedState(NamedTuple):
    """The state of the inner transformation, built on the masked-in leaves only."""

    inner_state: Any


def _is_masked_node(x: Any) -> bool:
    return isinstance(x, MaskedNode)


def mask_tree(tree: Any, bools: Any) -> Any:
    """``tree`` with every leaf where ``bools`` is false replaced by :class:`MaskedNode`."""
    return jax.tree.map(lambda m, x: x if m else MaskedNode(), bools, tree)


def full_mask(call: str, mask: Any, like: Any, what: str = "mask") -> Any:
    """The static boolean mask (one ``bool`` per leaf of ``like``) that ``mask`` describes."""
    return static_bools(call, resolve_mask(call, mask, like, what))


def masked_update(
    inner: GradientTransformation,
    accepts: Callable[[dict], dict],
    bools: Any,
    updates: Any,
    inner_state: Any,
    params: Any,
    extra_args: dict,
    mask_compatible_extra_args: bool = False,
) -> tuple[Any, Any]:
    """Runs ``inner`` on the leaves ``bools`` selects; the other updates pass through."""
    extra = accepts(extra_args)
    if mask_compatible_extra_args:
        structure = jax.tree.structure(updates)
        extra = {
            k: mask_tree(v, bools) if jax.tree.structure(v) == structure else v
            for k, v in extra.items()
        }
    inner_params = None if params is None else mask_tree(params, bools)
    new, inner_state = inner.update(mask_tree(updates, bools), inner_state, inner_params, **extra)
    merged = jax.tree.map(
        lambda m, n, u: n if m else u, bools, new, updates, is_leaf=_is_masked_node
    )
    return merged, inner_state


def masked(
    inner: Any, mask: Any, *, mask_compatible_extra_args: bool = False
) -> GradientTransformation:
    r"""Applies ``inner`` to the leaves ``mask`` selects; the other updates pass unchanged.

    .. math::
        u_i \leftarrow \begin{cases} \mathrm{inner}(u)_i & m_i \\ u_i & \text{otherwise}
        \end{cases}

    ``inner`` sees only the selected leaves: every other parameter, gradient and state buffer
    is a :class:`MaskedNode`, a placeholder without memory, so ``masked(adam(...), mask)``
    keeps Adam's moments for the selected leaves alone. Masks nest: a ``masked`` inside another
    sees the outer placeholders and keeps them. Same semantics as ``optax.masked``; a mask that
    does not fit the params is reported with both structures and the entries that differ.

    Args:
        inner: the transformation to apply to the selected leaves.
        mask: a tree of booleans with the structure of the params, or a prefix of it (one
            boolean for a whole subtree), or a function ``params -> such a tree``. It must be
            static: Python booleans, not traced arrays.
        mask_compatible_extra_args: also mask every extra argument (``update(...,
            name=tree)``) whose tree has the structure of the updates.

    Returns:
        A transformation whose state is a :class:`MaskedState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
        >>> decay = og.masked(og.add_decayed_weights(0.5), lambda p: {"w": True, "b": False})
        >>> updates, _ = decay.update(params, decay.init(params), params)
        >>> updates["w"][0].tolist(), updates["b"].tolist()
        ([1.5, 1.5], [1.0, 1.0])
    """
    call = "optgrad.masked"
    inner = _as_transformation(call, "inner", inner)
    accepts = _extra_args_filter(inner.update)
    if not callable(mask):
        jax.tree.map(lambda m: static_bools(call, m), mask)  # a bad leaf fails at build time

    def init_fn(params):
        return MaskedState(inner.init(mask_tree(params, full_mask(call, mask, params))))

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, MaskedState):
            raise ValueError(
                f"{call}.update: expected a MaskedState (the state made by this wrapper's "
                f"`init`), got {type(state).__name__}. Was `init` called with another optimizer?"
            )
        bools = full_mask(call, mask, updates)
        updates, inner_state = masked_update(
            inner,
            accepts,
            bools,
            updates,
            state.inner_state,
            params,
            extra_args,
            mask_compatible_extra_args,
        )
        return updates, MaskedState(inner_state)

    return GradientTransformation(init_fn, update_fn)
