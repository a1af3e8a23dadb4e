"""``torch.optim.RAdam``: Adam with the variance rectification of Liu et al."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import (
    abs_sq,
    as_scalar,
    bias_correction,
    safe_increment,
    zero_count,
    zeros_like,
)
from .._optimizers._common import check_hyperparams
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from .._weight_decay import add_decayed_weights
from ._optim import check_betas, maximize_first
from ._rounding import lerp


class RAdamState(NamedTuple):
    """``count`` (int32), torch's ``exp_avg`` :math:`m` and ``exp_avg_sq`` :math:`v`."""

    count: jax.Array
    exp_avg: Any
    exp_avg_sq: Any


def _rectification(beta2: jax.Array, count: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(rho_t > 5, r_t)``: whether to rectify at step ``t``, and the factor :math:`r_t`."""
    t = count.astype(jnp.float32)
    bc2 = bias_correction(beta2, count)
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * t * (1.0 - bc2) / bc2
    rectify = rho_t > 5.0
    ratio = (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
    return rectify, jnp.sqrt(jnp.where(rectify, ratio, 1.0))


def _scale_by_radam(b1: Any, b2: Any, eps: Any) -> GradientTransformation:
    call = "optgrad.torch.RAdam"

    def init_fn(params):
        return RAdamState(zero_count(), zeros_like(params), zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.exp_avg, "exp_avg")
        beta1, beta2, e = map(as_scalar, (b1, b2, eps))
        count = safe_increment(state.count)
        c1 = 1.0 / bias_correction(beta1, count)
        root_bc2 = jnp.sqrt(bias_correction(beta2, count))
        rectify, r = _rectification(beta2, count)
        exp_avg = jax.tree.map(lambda g, m: lerp(m, g, 1.0 - beta1), updates, state.exp_avg)
        exp_avg_sq = jax.tree.map(
            lambda g, v: beta2 * v + (1.0 - beta2) * abs_sq(g), updates, state.exp_avg_sq
        )

        def direction(g, m, v):
            m_hat = m * c1
            adaptive = root_bc2 / (jnp.sqrt(v) + e)
            return jnp.where(rectify, m_hat * adaptive * r, m_hat).astype(g.dtype)

        out = jax.tree.map(direction, updates, exp_avg, exp_avg_sq)
        cast = lambda new, like: jax.tree.map(lambda n, l: n.astype(l.dtype), new, like)  # noqa: E731
        return out, RAdamState(
            count, cast(exp_avg, state.exp_avg), cast(exp_avg_sq, state.exp_avg_sq)
        )

    return GradientTransformation(init_fn, update_fn)


def RAdam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0,
    decoupled_weight_decay: bool = False,
    *,
    foreach: Any = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
) -> GradientTransformation:
    r"""``torch.optim.RAdam``, step for step.

    .. math::
        \hat m_t &= \frac{m_t}{1-\beta_1^t}, \qquad
        \rho_\infty = \frac{2}{1-\beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2t\,\beta_2^t}{1-\beta_2^t} \\
        r_t &= \sqrt{\frac{(\rho_t-4)(\rho_t-2)\,\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\,
            \rho_t}}, \qquad
        \theta_t = \theta_{t-1} - \gamma_t \begin{cases}
            \hat m_t\, r_t\, \dfrac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon}
                & \rho_t > 5 \\
            \hat m_t & \text{otherwise}\end{cases}

    with :math:`m, v` Adam's moments (zero-initialised), :math:`\gamma` = ``lr``. The gradient
    is negated first with ``maximize``; ``weight_decay`` :math:`\lambda` is L2 folded into it,
    or with ``decoupled_weight_decay=True`` adds :math:`\gamma_t\lambda\theta_{t-1}` to the step
    (RAdamW). As in torch, :math:`\epsilon` is added to the *uncorrected* :math:`\sqrt{v_t}`
    and the threshold is strict (:math:`\rho_t > 5`; Optax's ``radam`` rectifies at
    :math:`\rho_t \ge 5` with :math:`\epsilon` after the correction). Liu et al., "On the
    Variance of the Adaptive Learning Rate and Beyond" (ICLR 2020), Algorithm 2.

    ``lr``, ``betas`` (a pair), ``eps`` and ``weight_decay`` are held in the state under these
    names and may be schedules of the update count; the buffers are ``exp_avg`` and
    ``exp_avg_sq``. ``foreach``, ``capturable`` and ``differentiable`` are accepted and have no
    effect: XLA fuses the step under ``jit``. Real parameters only.

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        betas: the pair :math:`(\beta_1, \beta_2)` of moment decays.
        eps: the :math:`\epsilon` that keeps the denominator away from zero.
        weight_decay: the decay rate :math:`\lambda` (0 for none).
        decoupled_weight_decay: decay the weights directly (AdamW-style) instead of through the
            gradient.
        foreach: accepted for torch compatibility; no effect.
        maximize: ascend the objective instead of descending it (default ``False``).
        capturable: accepted for torch compatibility; no effect.
        differentiable: accepted for torch compatibility; no effect.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the hyperparameters (by torch's
            names) and
            the optimizer's buffers.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.torch.RAdam(lr=0.1)
        >>> params = {"w": jnp.zeros(2)}
        >>> updates, state = tx.update({"w": jnp.full(2, 0.5)}, tx.init(params), params)
        >>> [round(x, 6) for x in updates["w"].tolist()]  # rho_1 = 1: plain momentum, -0.1 * 0.5
        [-0.05, -0.05]
    """
    del foreach, capturable, differentiable
    call = "optgrad.torch.RAdam"
    check_hyperparams(call, lr=("lr", lr))
    betas = check_betas(call, betas)
    check_hyperparams(call, eps=("nonneg", eps), weight_decay=("nonneg", weight_decay))

    def build(lr, betas, eps, weight_decay):
        scaler = _scale_by_radam(*betas, eps)
        decay = add_decayed_weights(weight_decay)
        middle = [scaler, decay] if decoupled_weight_decay else [decay, scaler]
        return chain(*maximize_first(maximize), *middle, scale_by_learning_rate(lr))

    return with_hyperparams(build, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
