"""Clipping: by value, by the global norm of the whole tree, by the RMS of each leaf."""

from __future__ import annotations

import weakref
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _check
from ._base import GradientTransformation, init_empty_state
from ._numerics import abs_sq, as_scalar
from .tree import norm as tree_norm
from .tree._arith import AxisName
from .tree._state import leaf_paths


def clip(max_delta: float | jax.Array) -> GradientTransformation:
    """Clips every element of the updates to ``[-max_delta, max_delta]``.

    Args:
        max_delta: the largest absolute value an element may keep.

    Returns:
        A :class:`optgrad.GradientTransformation` without state.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.clip(1.0)
        >>> tx.update({"w": jnp.array([-3.0, 0.5])}, tx.init(None))[0]["w"].tolist()
        [-1.0, 0.5]
    """
    _check.non_negative("optgrad.clip", "max_delta", max_delta)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        bound = as_scalar(max_delta)
        return jax.tree.map(lambda u: jnp.clip(u, -bound, bound).astype(u.dtype), updates), state

    return GradientTransformation(init_empty_state, update_fn)


# update function of every `clip_by_global_norm` -> its `max_norm`, so that `optgrad.monitor` can
# derive the clipped norm, min(norm, max_norm), instead of reading the gradients again.
_GLOBAL_NORM_BOUNDS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _global_norm_bound(tx: GradientTransformation) -> Any | None:
    """``max_norm`` if ``tx`` is a :func:`clip_by_global_norm`, else ``None``."""
    try:
        return _GLOBAL_NORM_BOUNDS.get(tx.update)
    except TypeError:  # not weak-referenceable: not ours
        return None


class ClipByGlobalNormState(NamedTuple):
    """``global_norm``: the norm of the updates *before* clipping, at the last update."""

    global_norm: jax.Array


def clip_by_global_norm(
    max_norm: float | jax.Array, *, axis_name: AxisName = None
) -> GradientTransformation:
    r"""Rescales the updates so that their global L2 norm is at most ``max_norm``.

    .. math:: u \leftarrow u \cdot \min\!\left(1, \frac{c}{\lVert u \rVert_2}\right)

    Updates whose norm is below ``c`` pass unchanged (Optax's semantics; for torch's
    ``clip_grad_norm_``, which always multiplies by ``c / (norm + 1e-6)``, use
    :func:`optgrad.torch.clip_grad_norm`). The pre-clip norm is kept in the state, so it can be
    logged without computing it twice: ``optgrad.tree.get(state, "global_norm")``.

    Args:
        max_norm: :math:`c`, positive.
        axis_name: inside ``shard_map``/``pmap``/a named ``vmap`` where each device holds a
            shard of every leaf, the name of the mapped axis: the norm is then that of the
            whole tree (partial sums of squares ``lax.psum``-ed), the same on every device.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the pre-clip ``global_norm``.

    References:
        Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks"
        (ICML 2013).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.clip_by_global_norm(1.0)
        >>> updates, state = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init(None))
        >>> updates["w"].tolist(), float(og.tree.get(state, "global_norm"))
        ([0.6000000238418579, 0.800000011920929], 5.0)
    """
    _check.positive("optgrad.clip_by_global_norm", "max_norm", max_norm)

    def init_fn(params):
        del params
        return ClipByGlobalNormState(jnp.zeros([], jnp.float32))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        g_norm = tree_norm(updates, axis_name=axis_name)
        factor = jnp.where(g_norm < max_norm, 1.0, as_scalar(max_norm) / g_norm)
        updates = jax.tree.map(lambda u: (u * factor.astype(u.dtype)).astype(u.dtype), updates)
        return updates, ClipByGlobalNormState(g_norm.astype(jnp.float32))

    _GLOBAL_NORM_BOUNDS[update_fn] = max_norm
    return GradientTransformation(init_fn, update_fn)


def _wide(dtype):
    """At least float32 (complex stays complex), for sums of squares of low-precision leaves."""
    return jnp.promote_types(dtype, jnp.float32)


class ClipByBlockRmsState(NamedTuple):
    """``block_rms``: the root-mean-square of each leaf *before* clipping, at the last update,
    as a dict from the leaf's ``/``-separated path to a float32 scalar."""

    block_rms: dict[str, jax.Array]


def clip_by_block_rms(threshold: float | jax.Array) -> GradientTransformation:
    r"""Rescales each leaf (block) so that its root-mean-square is at most ``threshold``.

    .. math::
        \operatorname{rms}(u) = \sqrt{\tfrac{1}{n}\textstyle\sum_i |u_i|^2}, \qquad
        u \leftarrow u / \max\!\left(1, \operatorname{rms}(u) / c\right)

    Optax's semantics. The measured pre-clip RMS of every leaf is kept in the state,
    ``optgrad.tree.get(state, "block_rms")``, keyed by the leaf's path.

    Args:
        threshold: :math:`c`, the largest allowed RMS of a leaf.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state records each leaf's pre-clip RMS.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.clip_by_block_rms(1.0)
        >>> grads = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([0.5])}
        >>> updates, state = tx.update(grads, tx.init(grads))
        >>> {k: round(float(v), 4) for k, v in og.tree.get(state, "block_rms").items()}
        {'a': 3.5355, 'b': 0.5}
    """
    _check.positive("optgrad.clip_by_block_rms", "threshold", threshold)

    def init_fn(params):
        return ClipByBlockRmsState(
            {path: jnp.zeros([], jnp.float32) for path in leaf_paths(params)}
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        c = as_scalar(threshold)
        leaves, treedef = jax.tree.flatten(updates)
        rms = [
            jnp.sqrt(jnp.mean(abs_sq(u.astype(_wide(u.dtype))))).astype(jnp.float32) for u in leaves
        ]
        clipped = [
            (u / jnp.maximum(1.0, r / c).astype(u.dtype)).astype(u.dtype)
            for u, r in zip(leaves, rms)
        ]
        block_rms = dict(zip(leaf_paths(updates), rms))
        return treedef.unflatten(clipped), ClipByBlockRmsState(block_rms)

    return GradientTransformation(init_fn, update_fn)
