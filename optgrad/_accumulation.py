"""Accumulating past updates: momentum (``trace``) and moving averages (``ema``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _check
from ._base import GradientTransformation
from ._numerics import (
    as_scalar,
    bias_correction,
    canonical_dtype,
    safe_increment,
    zero_count,
    zeros_like,
)
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

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`TraceState` (the momentum
            buffer).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.trace(0.5)
        >>> params = {"w": jnp.zeros(2)}
        >>> u, state = tx.update({"w": jnp.ones(2)}, tx.init(params))
        >>> tx.update({"w": jnp.ones(2)}, state)[0]["w"].tolist()
        [1.5, 1.5]
    """
    call = "optgrad.trace"
    _check.non_negative(call, "decay", decay)
    _check.number(call, "dampening", dampening, low=0.0, high=1.0)
    return scaled_trace(decay, nesterov, accumulator_dtype, dampening=dampening, call=call)


def scaled_trace(
    decay: float | jax.Array,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
    *,
    dampening: float | jax.Array = 0.0,
    out_scale: float | jax.Array | None = None,
    call: str = "optgrad.trace",
) -> GradientTransformation:
    """:func:`trace`, its output multiplied by ``out_scale`` (a scalar) when one is given.

    ``chain(add_decayed_weights(wd), trace(mu, nesterov=True), scale(-lr))`` computes
    ``g + wd * p`` once and uses it twice (in the buffer and in ``g + mu * b``); XLA:CPU then
    writes it out as a parameter-sized temporary instead of recomputing it in both loops. With
    the scale applied to each term here, ``-lr * g + (-lr * mu) * b``, every use of the incoming
    update is a product with a scalar and the whole step stays two loops with no temporary
    (``tests/test_step_memory.py``). Same arithmetic up to float32 rounding of the last product.
    """
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
        if out_scale is None:
            if nesterov:
                out = jax.tree.map(lambda g, b: (g + mu * b).astype(g.dtype), updates, new_trace)
            else:
                out = jax.tree.map(lambda g, b: b.astype(g.dtype), updates, new_trace)
        else:
            c = as_scalar(out_scale)
            if nesterov:
                c_mu = c * mu
                out = jax.tree.map(
                    lambda g, b: (c * g + c_mu * b).astype(g.dtype), updates, new_trace
                )
            else:
                out = jax.tree.map(lambda g, b: (c * b).astype(g.dtype), updates, new_trace)
        return out, TraceState(safe_increment(state.count), new_trace)

    return GradientTransformation(init_fn, update_fn)


def _keep_complex(x: Any, dtype: Any) -> Any:
    """``dtype``, made complex (same precision) when ``x`` is complex; ``None`` stays ``None``."""
    if dtype is None or not jnp.issubdtype(x.dtype, jnp.complexfloating):
        return dtype
    return jnp.result_type(dtype, jnp.complex64)


class EmaState(NamedTuple):
    """``count`` updates so far (int32) and the moving average ``ema``."""

    count: jax.Array
    ema: Any


def ema(
    decay: float | jax.Array, debias: bool = True, accumulator_dtype: Any = None
) -> GradientTransformation:
    r"""An exponential moving average of the updates.

    .. math::
        m_t = \beta\, m_{t-1} + (1 - \beta)\, g_t, \quad m_0 = 0, \qquad
        u_t = \begin{cases} m_t / (1 - \beta^t) & \text{debias} \\
        m_t & \text{otherwise}\end{cases}

    with :math:`\beta` = ``decay``. Unlike :func:`trace` (:math:`b_t = \mu b_{t-1} + g_t`) the
    new update enters with weight :math:`1-\beta`, so the average has the scale of the updates;
    the bias correction (Kingma & Ba, 2015, section 3) removes the pull towards :math:`m_0 = 0`
    and is computed as ``-expm1(t log beta)`` (exact in float32 at small ``t``). The average is
    computed at float32 precision or wider and stored in ``accumulator_dtype`` (default: the
    params'); the update derives from the unrounded average.

    Args:
        decay: :math:`\beta` in ``[0, 1)`` (``[0, 1]`` without ``debias``).
        debias: divide by :math:`1-\beta^t`.
        accumulator_dtype: dtype of the stored average (its complex counterpart for complex
            leaves).

    Returns:
        A :class:`GradientTransformation` whose state is an :class:`EmaState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.ema(0.9)
        >>> updates, state = tx.update(jnp.full(2, 4.0), tx.init(jnp.zeros(2)))
        >>> updates.tolist(), [round(x, 6) for x in state.ema.tolist()]
        ([4.0, 4.0], [0.4, 0.4])
    """
    call = "optgrad.ema"
    if callable(decay):
        raise TypeError(
            f"{call}(decay=...) must be a number, got the function {decay!r}; to vary it, "
            "wrap the transformation in optgrad.with_hyperparams"
        )
    _check.scalar_or_schedule(call, "decay", decay)
    if debias:
        _check.unit_interval(call, "decay", decay)
    else:
        _check.number(call, "decay", decay, low=0.0, high=1.0)
    accumulator_dtype = canonical_dtype(accumulator_dtype)

    def init_fn(params):
        # A real accumulator_dtype keeps complex leaves complex (of that precision).
        return EmaState(
            zero_count(),
            jax.tree.map(lambda x: zeros_like(x, _keep_complex(x, accumulator_dtype)), params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.ema, "ema")
        beta = as_scalar(decay)
        count = safe_increment(state.count)
        # `beta` is a float32 array: the average is computed in float32 (or wider) precision.
        new_ema = jax.tree.map(lambda g, m: beta * m + (1.0 - beta) * g, updates, state.ema)
        scale = 1.0 / bias_correction(beta, count) if debias else None
        out = jax.tree.map(
            lambda g, m: (m if scale is None else m * scale).astype(g.dtype), updates, new_ema
        )
        stored = jax.tree.map(lambda m, old: m.astype(old.dtype), new_ema, state.ema)
        return out, EmaState(count, stored)

    return GradientTransformation(init_fn, update_fn)
