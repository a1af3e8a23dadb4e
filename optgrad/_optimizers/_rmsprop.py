"""RMSprop: scaling by the root of a running average of squared gradients."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._accumulation import trace
from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import abs_sq, as_scalar, full_like, safe_increment, zero_count, zeros_like
from .._numerics import bias_correction as _bias_correction
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from ._common import check_hyperparams


class ScaleByRmsState(NamedTuple):
    """``count`` (int32) and the running average ``nu`` of squared updates."""

    count: jax.Array
    nu: Any


class ScaleByRStdDevState(NamedTuple):
    """``count``, running averages ``mu`` of updates and ``nu`` of their squares."""

    count: jax.Array
    mu: Any
    nu: Any


def _denominator(variance, eps, eps_in_sqrt):
    return jnp.sqrt(variance + eps) if eps_in_sqrt else jnp.sqrt(variance) + eps


def _variance(mu, nu, c=1.0):
    """``nu - mu^2`` (each times the bias correction ``c``), clipped at 0.

    It is >= 0 in exact arithmetic, but rounding can take it below 0 (with bias correction it
    is exactly 0 at the first step), whose root is NaN.
    """
    return jnp.maximum(nu * c - abs_sq(mu * c), 0.0)


def _check_rms(call, decay, eps, initial_scale):
    check_hyperparams(call, decay=("closed_unit", decay), eps=("nonneg", eps))
    check_hyperparams(call, initial_scale=("nonneg", initial_scale))


def scale_by_rms(
    decay: float | jax.Array = 0.9,
    eps: float | jax.Array = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    r"""Divides updates by the root of a running average of their squares (RMSprop).

    .. math::
        v_t = \rho v_{t-1} + (1-\rho) g_t^2, \qquad
        u_t = \frac{g_t}{\sqrt{\hat v_t + \epsilon}} \;\text{(eps_in_sqrt)}
        \quad\text{or}\quad \frac{g_t}{\sqrt{\hat v_t} + \epsilon}\;\text{(torch)}

    with :math:`\rho` = ``decay``, :math:`v_0` = ``initial_scale`` and
    :math:`\hat v_t = v_t/(1-\rho^t)` if ``bias_correction`` else :math:`v_t`. Tieleman &
    Hinton, Lecture 6.5 of "Neural Networks for Machine Learning" (2012).

    Args:
        decay: the decay of the squared-gradient average (default 0.9).
        eps: :math:`\epsilon` (default ``1e-8``).
        initial_scale: the starting value of that average (default 0).
        eps_in_sqrt: add ``eps`` inside the root (default) rather than outside.
        bias_correction: correct the average for its zero start (default ``False``).

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`ScaleByRmsState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_rms()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)
    """
    _check_rms("optgrad.scale_by_rms", decay, eps, initial_scale)
    correct = bias_correction

    def init_fn(params):
        return ScaleByRmsState(zero_count(), full_like(params, initial_scale))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors("optgrad.scale_by_rms", updates, state.nu, "nu")
        rho, e = as_scalar(decay), as_scalar(eps)
        count = safe_increment(state.count)
        c = 1.0 / _bias_correction(rho, count) if correct else 1.0
        nu = jax.tree.map(
            lambda g, v: (rho * v + (1.0 - rho) * abs_sq(g)).astype(v.dtype), updates, state.nu
        )
        updates = jax.tree.map(
            lambda g, v: (g / _denominator(v * c, e, eps_in_sqrt)).astype(g.dtype), updates, nu
        )
        return updates, ScaleByRmsState(count, nu)

    return GradientTransformation(init_fn, update_fn)


def scale_by_stddev(
    decay: float | jax.Array = 0.9,
    eps: float | jax.Array = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    r"""Centered RMSprop: divides by the root of a running *variance* estimate.

    .. math::
        m_t = \rho m_{t-1} + (1-\rho) g_t, \quad v_t = \rho v_{t-1} + (1-\rho) g_t^2, \quad
        u_t = g_t / \big(\sqrt{v_t - m_t^2} + \epsilon\big)

    (``eps`` inside the root when ``eps_in_sqrt``; moments bias-corrected when
    ``bias_correction``). The variance :math:`v_t - m_t^2` is clamped at 0, so that rounding
    never makes its root NaN (Optax does not clamp). Graves, "Generating Sequences With
    Recurrent Neural Networks" (2013).

    Args:
        decay: the decay of the gradient averages (default 0.9).
        eps: :math:`\epsilon` (default ``1e-8``).
        initial_scale: the starting value of the squared-gradient average (default 0).
        eps_in_sqrt: add ``eps`` inside the root (default) rather than outside.
        bias_correction: correct the averages for their zero start (default ``False``).

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`ScaleByRStdDevState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_stddev()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)
    """
    _check_rms("optgrad.scale_by_stddev", decay, eps, initial_scale)
    correct = bias_correction

    def init_fn(params):
        return ScaleByRStdDevState(
            zero_count(), zeros_like(params), full_like(params, initial_scale)
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors("optgrad.scale_by_stddev", updates, state.mu, "mu")
        rho, e = as_scalar(decay), as_scalar(eps)
        count = safe_increment(state.count)
        c = 1.0 / _bias_correction(rho, count) if correct else 1.0
        mu = jax.tree.map(
            lambda g, m: (rho * m + (1.0 - rho) * g).astype(m.dtype), updates, state.mu
        )
        nu = jax.tree.map(
            lambda g, v: (rho * v + (1.0 - rho) * abs_sq(g)).astype(v.dtype), updates, state.nu
        )

        def scaled(g, m, v):
            return (g / _denominator(_variance(m, v, c), e, eps_in_sqrt)).astype(g.dtype)

        updates = jax.tree.map(scaled, updates, mu, nu)
        return updates, ScaleByRStdDevState(count, mu, nu)

    return GradientTransformation(init_fn, update_fn)


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: ScalarOrSchedule = 0.9,
    eps: ScalarOrSchedule = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: ScalarOrSchedule | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> GradientTransformation:
    r"""RMSprop with Optax's defaults: :math:`\theta_t = \theta_{t-1} + b_t` where
    :math:`b_t = \mu b_{t-1} - \eta_t u_t` (or :math:`-\eta_t u_t` without momentum) and
    :math:`u_t` from :func:`scale_by_rms` (:func:`scale_by_stddev` if ``centered``).

    Differences from ``torch.optim.RMSprop``: Optax's ``decay=0.9`` (torch ``alpha=0.99``),
    ``eps`` inside the root by default (torch outside: ``eps_in_sqrt=False``), and momentum
    applied *after* the learning rate (torch accumulates before it; the two agree only for a
    constant learning rate). ``optgrad.torch.RMSprop`` reproduces torch exactly.

    PyTorch equivalent: ``torch.optim.RMSprop(lr, alpha, eps, momentum, centered)`` with its
    defaults is ``optgrad.rmsprop(lr, decay=0.99, eps=1e-8, eps_in_sqrt=False)``; add
    ``momentum=...`` (and ``centered=True``) for torch's, equal for a constant learning rate
    (measured: within 4e-7 of ``max|theta|`` of torch over 120 steps, with and without
    momentum). torch's ``weight_decay`` (L2) and ``maximize`` are in ``optgrad.torch.RMSprop``.

    Args:
        learning_rate: the step size :math:`\eta`, a number or a schedule of the step count.
        decay: the decay of the squared-gradient average (default 0.9).
        eps: :math:`\epsilon` (default ``1e-8``).
        initial_scale: the starting value of that average (default 0).
        eps_in_sqrt: add ``eps`` inside the root (default) rather than outside.
        centered: divide by the standard deviation instead of the RMS (default ``False``).
        momentum: the momentum decay; ``None`` (default) for none.
        nesterov: use Nesterov momentum (default ``False``).
        bias_correction: correct the averages for their zero start (default ``False``).

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the averages (and the momentum
            buffer).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.rmsprop(1e-3)
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)
    """
    call = "optgrad.rmsprop"
    if nesterov and momentum is None:
        raise ValueError(f"{call}(nesterov=True) needs momentum, e.g. momentum=0.9")
    check_hyperparams(call, learning_rate=("lr", learning_rate))
    _check_rms(call, decay, eps, initial_scale)
    hyperparams = {"learning_rate": learning_rate, "decay": decay, "eps": eps}
    if momentum is not None:
        check_hyperparams(call, momentum=("nonneg", momentum))
        hyperparams["momentum"] = momentum
    scaler = scale_by_stddev if centered else scale_by_rms

    def build(learning_rate, decay, eps, momentum=None):
        parts = [
            scaler(decay, eps, initial_scale, eps_in_sqrt, bias_correction),
            scale_by_learning_rate(learning_rate),
        ]
        if momentum is not None:
            parts.append(trace(momentum, nesterov))
        return chain(*parts)

    return with_hyperparams(build, **hyperparams)
