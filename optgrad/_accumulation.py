"""Accumulating past updates: momentum (``trace``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _check
from ._base import GradientTransformation
from ._numerics import as_scalar, canonical_dtype, safe_increment, zero_count, zeros_like
from ._update import check_state_mirrors


class TraceState(NamedTuple):
    """``count`` updates so far (int32) and the momentum buffer ``trace``."""

    count: jax.Array
    trace: Any


def trace(
    decay: float | jax.Array,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
    *,
    dampening: float | jax.Array = 0.0,
) -> GradientTransformation:
    r"""Momentum: keeps a buffer ``b`` of past updates and returns it (or its Nesterov form).

    .. math::
        b_1 = g_1, \qquad b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t, \qquad
        u_t = \begin{cases} g_t + \mu\, b_t & \text{nesterov} \\ b_t & \text{otherwise}\end{cases}

    with :math:`\mu` = ``decay`` and :math:`\tau` = ``dampening``. The first buffer is the
    gradient itself, undamped, as in ``torch.optim.SGD``; with ``dampening=0`` this is the same
    as Optax's zero-initialised ``trace``. Heavy-ball momentum: Polyak (1964); Nesterov's form as
    written by Sutskever et al. (2013).

    Args:
        decay: the momentum :math:`\mu \ge 0` (usually in ``[0, 1)``).
        nesterov: return the Nesterov look-ahead :math:`g + \mu b`.
        accumulator_dtype: dtype of the buffer (default: that of the params).
        dampening: :math:`\tau` in ``[0, 1]``; torch's ``dampening``.
    """
    call = "optgrad.trace"
    _check.non_negative(call, "decay", decay)
    _check.number(call, "dampening", dampening, low=0.0, high=1.0)
    accumulator_dtype = canonical_dtype(accumulator_dtype)

    def init_fn(params):
        return TraceState(zero_count(), zeros_like(params, accumulator_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.trace, "trace")
        mu, keep = as_scalar(decay), 1.0 - as_scalar(dampening)
        first = state.count == 0

        def buffer(g, b):
            return jnp.where(first, g, mu * b + keep * g).astype(b.dtype)

        new_trace = jax.tree.map(buffer, updates, state.trace)
        if nesterov:
            out = jax.tree.map(lambda g, b: (g + mu * b).astype(g.dtype), updates, new_trace)
        else:
            out = jax.tree.map(lambda g, b: b.astype(g.dtype), updates, new_trace)
        return out, TraceState(safe_increment(state.count), new_trace)

    return GradientTransformation(init_fn, update_fn)
