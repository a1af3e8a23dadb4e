"""Adaptive gradient clipping (AGC): clip each unit's gradient relative to its weight's norm."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _check
from ._base import GradientTransformation
from ._numerics import abs_sq, as_scalar
from .tree._arith import AxisName

_DIV_EPS = 1e-6  # keeps g / ||g|| finite; only reached when max_norm itself is below it
_CALL = "optgrad.adaptive_grad_clip"


class AdaptiveGradClipState(NamedTuple):
    """What the last update measured (float32 scalars): ``global_norm``, the norm of all the
    updates before clipping; ``max_ratio``, the largest unit ratio
    :math:`\\lVert g_u\\rVert / \\max(\\lVert w_u\\rVert, \\epsilon)`; ``clipped_fraction``, the
    fraction of all units that were rescaled."""

    global_norm: jax.Array
    max_ratio: jax.Array
    clipped_fraction: jax.Array


def _default_axes(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The axes of a unit for a leaf of this shape; ``None`` means the whole leaf."""
    if sum(d != 1 for d in shape) <= 1:  # scalars, vectors and squeezable vectors
        return None
    return {2: (0,), 3: (0,), 4: (0, 1, 2), 5: (0, 1, 2, 3)}.get(len(shape), ())


def _unit_sq_norms(x: jax.Array, axis: Any, axis_name: AxisName) -> jax.Array:
    """The squared norm of every unit of ``x`` (kept dims), in float32 or wider."""
    if axis is None:
        axes = _default_axes(x.shape)
        if axes == ():
            raise ValueError(
                f"{_CALL}: the default units cover leaves of 1 to 5 dimensions, got a leaf of "
                f"shape {x.shape}; pass axis=... to say which axes a unit spans"
            )
    else:
        axes = axis
    sq = abs_sq(x.astype(jnp.promote_types(x.dtype, jnp.float32)))
    total = jnp.sum(sq, axis=axes, keepdims=True)
    return total if axis_name is None else jax.lax.psum(total, axis_name)


def adaptive_grad_clip(
    clipping: float | jax.Array,
    eps: float | jax.Array = 1e-3,
    axis: int | tuple[int, ...] | None = None,
    *,
    axis_name: AxisName = None,
) -> GradientTransformation:
    r"""Adaptive gradient clipping: clips each unit's gradient to ``clipping`` times the norm of
    that unit's weights.

    For every unit :math:`u` (a slice of a leaf, see below), with :math:`\lambda` = ``clipping``
    and :math:`\epsilon` = ``eps``:

    .. math::
        m_u = \lambda \max(\lVert w_u \rVert_2, \epsilon), \qquad
        g_u \leftarrow \begin{cases} g_u & \lVert g_u\rVert_2 < m_u \\
        g_u\, m_u / \max(\lVert g_u\rVert_2, 10^{-6}) & \text{otherwise} \end{cases}

    The floor :math:`\epsilon` keeps zero-initialised weights (biases) from freezing. Units, as
    in Optax: a scalar or vector leaf is one unit; a 2-D kernel ``(in, out)`` or a 3-D
    multi-head kernel has one unit per output (norms over axis 0); a 4-D ``HWIO`` conv kernel
    over axes ``(0, 1, 2)``; a 5-D ``DHWIO`` kernel over ``(0, 1, 2, 3)``. ``axis`` overrides
    this for every leaf. Needs ``params`` in ``update``. What it measured is kept in the state
    (:class:`AdaptiveGradClipState`).

    Args:
        clipping: :math:`\lambda`, the largest allowed ratio of gradient norm to weight norm,
            non-negative (0.01 in the paper for batch size 4096, larger for small batches).
        eps: :math:`\epsilon`, the smallest weight norm, non-negative.
        axis: the axes of a unit for every leaf (default: by rank, as above).
        axis_name: inside ``shard_map``/``pmap``/a named ``vmap`` where each device holds a
            shard of the leaves *split along the unit axes* (e.g. a kernel split by input
            rows), the mapped axis: unit norms are ``lax.psum``-ed over it. Do not pass it
            when the leaves are split along the units (by output columns): each device then
            already holds whole units.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state (:class:`AdaptiveGradClipState`) holds
            what the last step measured.

    References:
        Brock, De, Smith & Simonyan, "High-Performance Large-Scale Image Recognition Without
        Normalization" (ICML 2021), section 4.1.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.adaptive_grad_clip(0.1)
        >>> params, grads = {"w": jnp.array([3.0, 4.0])}, {"w": jnp.array([30.0, 40.0])}
        >>> updates, state = tx.update(grads, tx.init(params), params)
        >>> [round(x, 4) for x in updates["w"].tolist()], float(state.max_ratio)
        ([0.3, 0.4], 10.0)
    """
    _check.non_negative(_CALL, "clipping", clipping)
    _check.non_negative(_CALL, "eps", eps)
    if axis is not None and not (
        isinstance(axis, int) or (isinstance(axis, tuple) and all(isinstance(a, int) for a in axis))
    ):
        raise TypeError(f"{_CALL}(axis=...) must be None, an int or a tuple of ints, got {axis!r}")

    def init_fn(params):
        del params
        zero = jnp.zeros([], jnp.float32)
        return AdaptiveGradClipState(zero, zero, zero)

    def update_fn(updates, state, params=None, **extra_args):
        del state, extra_args
        if params is None:
            raise ValueError(
                f"{_CALL}.update needs the params (it clips relative to the weights' norms): "
                "call `update(grads, state, params)`"
            )
        lam, floor = as_scalar(clipping), as_scalar(eps)
        g_leaves, treedef = jax.tree.flatten(updates)
        w_leaves = treedef.flatten_up_to(params)
        out, sums, ratios, clipped, units = [], [], [], [], 0
        for g, w in zip(g_leaves, w_leaves):
            g_norm = jnp.sqrt(_unit_sq_norms(g, axis, axis_name))
            w_norm = jnp.maximum(jnp.sqrt(_unit_sq_norms(jnp.asarray(w), axis, axis_name)), floor)
            max_norm = lam * w_norm
            factor = jnp.where(g_norm < max_norm, 1.0, max_norm / jnp.maximum(g_norm, _DIV_EPS))
            out.append((g * factor.astype(g.dtype)).astype(g.dtype))
            sums.append(jnp.sum(g_norm * g_norm).astype(jnp.float32))
            ratios.append(jnp.max(g_norm / w_norm).astype(jnp.float32))
            clipped.append(jnp.sum(g_norm > max_norm, dtype=jnp.int32))
            units += g_norm.size
        new_state = AdaptiveGradClipState(
            jnp.sqrt(jnp.sum(jnp.stack(sums))) if sums else jnp.zeros([], jnp.float32),
            jnp.max(jnp.stack(ratios)) if ratios else jnp.zeros([], jnp.float32),
            (jnp.sum(jnp.stack(clipped)) / max(units, 1)).astype(jnp.float32)
            if clipped
            else jnp.zeros([], jnp.float32),
        )
        return treedef.unflatten(out), new_state

    return GradientTransformation(init_fn, update_fn)
