"""torch's gradient clipping, ``clip_grad_norm_`` and ``clip_grad_value_``, as transformations."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _check
from .._base import GradientTransformation
from .._clipping import clip
from .._numerics import as_scalar, safe_increment, zero_count
from ..tree import norm as tree_norm

_TORCH_EPS = 1e-6  # torch's `max_norm / (total_norm + 1e-6)`


class ClipGradNormState(NamedTuple):
    """``total_norm``: the norm of the gradients *before* clipping at the last update (what
    torch's ``clip_grad_norm_`` returns), float32; ``nonfinite``: how many updates so far had a
    non-finite ``total_norm`` (int32; counted only with ``error_if_nonfinite=True``)."""

    total_norm: jax.Array
    nonfinite: jax.Array


def _norm_type(call: str, norm_type: Any) -> float:
    try:
        p = float(norm_type)  # torch does the same: 'inf' is accepted
    except (TypeError, ValueError):
        raise ValueError(
            f"{call}(norm_type=...) must be a positive number or 'inf', got norm_type={norm_type!r}"
        ) from None
    _check.number(call, "norm_type", p, low=0.0, low_open=True, allow_inf=True)
    return p


def clip_grad_norm(
    max_norm: float | jax.Array, norm_type: float | str = 2.0, error_if_nonfinite: bool = False
) -> GradientTransformation:
    r"""``torch.nn.utils.clip_grad_norm_`` as a transformation: rescale by the global norm.

    .. math::
        n = \Big(\sum_{\text{leaves}} \sum_i |g_i|^p\Big)^{1/p}, \qquad
        c = \min\!\Big(\frac{\texttt{max\_norm}}{n + 10^{-6}},\ 1\Big), \qquad g \leftarrow c\, g

    with :math:`p` = ``norm_type`` (2, any :math:`p > 0`, or ``inf`` / ``'inf'`` for
    :math:`\max_i |g_i|`), the norm of all the leaves taken as one vector. As in torch, the
    gradients are *always* multiplied by :math:`c` (there is no branch): a norm above
    ``max_norm`` comes out at :math:`\texttt{max\_norm}\cdot n/(n + 10^{-6})`, just below it, and
    a non-finite norm gives zeros where the gradient was finite and NaN elsewhere. Pascanu et
    al., "On the difficulty of training recurrent neural networks" (2013).

    The pre-clip norm, what torch returns, is kept in the state for logging:
    ``optgrad.tree.get(state, "total_norm")``.

    ``error_if_nonfinite``: torch raises a ``RuntimeError`` when the norm is NaN or infinite. A
    jitted step cannot raise on a value it computes, so here the state counts those updates
    instead (``nonfinite``, int32; it stays 0 without ``error_if_nonfinite=True``) and the
    gradients are clipped as torch would without the check. Check it after the step, outside
    ``jit``, to get torch's behaviour::

        updates, state = step(...)
        if og.tree.get(state, "nonfinite"):
            raise RuntimeError("the gradient norm was not finite")

    Differences from :func:`optgrad.clip_by_global_norm`: that one (Optax's semantics) has no
    ``1e-6`` and leaves gradients whose norm is below ``max_norm`` untouched; it handles only
    the 2-norm.

    Args:
        max_norm: the largest allowed total norm of the gradients.
        norm_type: the order of the norm (``2.0`` by default, ``"inf"`` for the largest entry).
        error_if_nonfinite: raise when the total norm is not finite (default ``False``).

    Returns:
        A :class:`optgrad.GradientTransformation`; its state records the measured norm or stays
            empty.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.torch.clip_grad_norm(1.0)
        >>> updates, state = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init(None))
        >>> [round(x, 6) for x in updates["w"].tolist()], og.tree.get(state, "total_norm").item()
        ([0.6, 0.8], 5.0)
    """
    call = "optgrad.torch.clip_grad_norm"
    _check.scalar_or_schedule(call, "max_norm", max_norm)
    if callable(max_norm):
        raise TypeError(f"{call}(max_norm=...) must be a number, got a function: {max_norm!r}")
    _check.non_negative(call, "max_norm", max_norm)
    p = _norm_type(call, norm_type)

    def init_fn(params):
        del params
        return ClipGradNormState(jnp.zeros([], jnp.float32), zero_count())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        total = tree_norm(updates, p).astype(jnp.float32)
        coef = jnp.minimum(as_scalar(max_norm) / (total + _TORCH_EPS), 1.0)
        updates = jax.tree.map(lambda g: (g * coef).astype(g.dtype), updates)
        nonfinite = state.nonfinite
        if error_if_nonfinite:
            nonfinite = jnp.where(jnp.isfinite(total), nonfinite, safe_increment(nonfinite))
        return updates, ClipGradNormState(total, nonfinite)

    return GradientTransformation(init_fn, update_fn)


def clip_grad_value(clip_value: float | jax.Array) -> GradientTransformation:
    r"""``torch.nn.utils.clip_grad_value_`` as a transformation: clamp every element into
    :math:`[-c, c]`, :math:`c` = ``clip_value``. The same as :func:`optgrad.clip`.

    Args:
        clip_value: the largest absolute value a gradient entry may keep.

    Returns:
        A :class:`optgrad.GradientTransformation`; its state records the measured norm or stays
            empty.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.torch.clip_grad_value(1.0)
        >>> tx.update({"w": jnp.array([-3.0, 0.5])}, tx.init(None))[0]["w"].tolist()
        [-1.0, 0.5]
    """
    call = "optgrad.torch.clip_grad_value"
    _check.scalar_or_schedule(call, "clip_value", clip_value)
    if callable(clip_value):
        raise TypeError(f"{call}(clip_value=...) must be a number, got a function: {clip_value!r}")
    _check.non_negative(call, "clip_value", clip_value)
    return clip(clip_value)
