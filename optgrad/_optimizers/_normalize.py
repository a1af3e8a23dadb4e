"""Normalising updates: by their global norm, and gradient centralisation."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import _check
from .._base import GradientTransformation, init_empty_state
from .._numerics import as_scalar
from ..tree import sum_of_squares


def normalize_by_update_norm(
    scale_factor: float | jax.Array = 1.0, eps: float | jax.Array = 1e-6
) -> GradientTransformation:
    r"""Divides the updates by their global norm: :math:`u = s\, g / (\|g\| + \epsilon)`.

    :math:`\|g\|` is taken over every leaf together, in float32 or wider. A zero update stays
    zero, even with ``eps=0`` (no 0/0) and in float16; the root of a zero norm has a zero
    derivative, so meta-gradients stay finite.

    Args:
        scale_factor: :math:`s`, the norm of the result (for :math:`\epsilon \to 0`).
        eps: :math:`\epsilon \ge 0`.

    Returns:
        A stateless :class:`GradientTransformation`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.normalize_by_update_norm(eps=0.0)
        >>> tx.update({"w": jnp.array([3.0, 4.0])}, tx.init(None))[0]["w"].tolist()
        [0.6000000238418579, 0.800000011920929]
    """
    call = "optgrad.normalize_by_update_norm"
    _check.scalar_or_schedule(call, "scale_factor", scale_factor)
    _check.number(call, "scale_factor", scale_factor)
    _check.scalar_or_schedule(call, "eps", eps)
    _check.non_negative(call, "eps", eps)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        sq = sum_of_squares(updates)
        positive = sq > 0
        norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)
        denominator = norm + as_scalar(eps)
        safe = denominator > 0
        factor = jnp.where(safe, as_scalar(scale_factor) / jnp.where(safe, denominator, 1.0), 0.0)
        return jax.tree.map(lambda g: (g * factor).astype(g.dtype), updates), state

    return GradientTransformation(init_empty_state, update_fn)


def centralize() -> GradientTransformation:
    r"""Gradient centralisation: subtracts from each leaf with two or more axes its mean over
    all axes but the first, :math:`u_{i\cdot} = g_{i\cdot} - \operatorname{mean}(g_{i\cdot})`
    (each output unit's incoming weights get a zero-mean gradient); vectors and scalars pass
    through. As Optax's ``centralize``, whose leading axis is the output axis (PyTorch's
    convention for ``Linear`` and ``Conv`` weights; Flax puts the output axis *last*, so for a
    Flax ``Dense`` kernel this centres over the outputs instead).

    Returns:
        A stateless :class:`GradientTransformation`.

    References:
        Yong, Huang, Hua & Zhang, "Gradient Centralization: A New Optimization Technique for
        Deep Neural Networks" (ECCV 2020), eq. (1).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.centralize().update(jnp.array([[1.0, 2.0, 3.0]]), og.EmptyState())[0].tolist()
        [[-1.0, 0.0, 1.0]]
    """

    def centred(g):
        if g.ndim < 2:
            return g
        axes = tuple(range(1, g.ndim))
        mean = jnp.mean(g, axis=axes, keepdims=True, dtype=jnp.promote_types(g.dtype, jnp.float32))
        return (g - mean).astype(g.dtype)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(centred, updates), state

    return GradientTransformation(init_empty_state, update_fn)
