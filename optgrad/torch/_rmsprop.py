"""``torch.optim.RMSprop``: eps outside the root, momentum accumulated before the learning rate."""

from __future__ import annotations

from typing import Any

import jax

from .._accumulation import trace
from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._optimizers._common import check_hyperparams
from .._optimizers._rmsprop import _denominator, _variance, scale_by_rms, scale_by_stddev
from .._scale import scale_by_learning_rate
from .._weight_decay import add_decayed_weights
from ._optim import addcdiv_step, keeps_buffer, maximize_first


def RMSprop(
    lr: ScalarOrSchedule = 1e-2,
    alpha: ScalarOrSchedule = 0.99,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0,
    momentum: ScalarOrSchedule = 0,
    centered: bool = False,
    capturable: bool = False,
    foreach: Any = None,
    maximize: bool = False,
    differentiable: bool = False,
) -> GradientTransformation:
    r"""``torch.optim.RMSprop``, step for step.

    .. math::
        g_t &\leftarrow \pm g_t + \lambda\,\theta_{t-1} \quad (- \text{ if } \texttt{maximize}) \\
        v_t &= \alpha v_{t-1} + (1-\alpha) g_t^2, \qquad
        \bar g_t = \alpha \bar g_{t-1} + (1-\alpha) g_t \;\text{(centered)} \\
        d_t &= \sqrt{v_t} + \epsilon \quad\text{or}\quad \sqrt{v_t - \bar g_t^2} + \epsilon
            \;\text{(centered)} \\
        b_t &= \mu b_{t-1} + g_t / d_t \;(b_0 = 0), \qquad
        \theta_t = \theta_{t-1} - \gamma_t\, b_t \quad(\theta_{t-1} - \gamma_t g_t/d_t
        \text{ if } \mu = 0)

    with :math:`\alpha` = ``alpha``, :math:`\mu` = ``momentum``, :math:`\lambda` =
    ``weight_decay``; all accumulators start at 0 and nothing is bias-corrected. The momentum
    buffer holds *unscaled* steps, multiplied by the learning rate afterwards, so a changing
    ``lr`` does not rescale past momentum the way it does in :func:`optgrad.rmsprop`. Tieleman &
    Hinton (2012); Graves (2013) for the centered form.

    ``lr``, ``alpha``, ``eps``, ``weight_decay`` and (when a buffer is kept, i.e. ``momentum``
    is not 0 or is a schedule) ``momentum`` are held in the state under these names and may be
    schedules of the update count. ``capturable``, ``foreach`` and ``differentiable`` are
    accepted and have no effect: XLA fuses the step under ``jit``. Stricter than torch:
    ``alpha`` must lie in ``[0, 1]``.

    Differences from :func:`optgrad.rmsprop`: torch's ``alpha=0.99`` (Optax ``decay=0.9``),
    ``eps`` outside the root (Optax inside), momentum before the learning rate (Optax after),
    ``weight_decay`` and ``maximize``.

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        alpha: the exponent (ASGD) or smoothing constant (RMSprop) :math:`\alpha`.
        eps: the :math:`\epsilon` that keeps the denominator away from zero.
        weight_decay: the decay rate :math:`\lambda` (0 for none).
        momentum: the momentum factor :math:`\mu` (0 for none).
        centered: divide by the estimated standard deviation instead of the RMS.
        capturable: accepted for torch compatibility; no effect.
        foreach: accepted for torch compatibility; no effect.
        maximize: ascend the objective instead of descending it (default ``False``).
        differentiable: accepted for torch compatibility; no effect.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the hyperparameters (by torch's
            names) and
            the optimizer's buffers.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.torch.RMSprop(lr=0.01, alpha=0.75, eps=0.0)
        >>> params = {"w": jnp.ones(2)}
        >>> updates, state = tx.update({"w": jnp.ones(2)}, tx.init(params), params)
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.02, -0.02]
    """
    call = "optgrad.torch.RMSprop"
    del capturable, foreach, differentiable
    check_hyperparams(
        call,
        lr=("lr", lr),
        alpha=("closed_unit", alpha),
        eps=("nonneg", eps),
        weight_decay=("nonneg", weight_decay),
        momentum=("nonneg", momentum),
    )
    hyperparams: dict[str, Any] = {"lr": lr, "alpha": alpha, "eps": eps}
    hyperparams["weight_decay"] = weight_decay
    if keeps_buffer(momentum):
        hyperparams["momentum"] = momentum
    scaler = scale_by_stddev if centered else scale_by_rms

    def build(lr, alpha, eps, weight_decay, momentum=None):
        prefix = [*maximize_first(maximize), add_decayed_weights(weight_decay)]
        accumulator = scaler(alpha, eps, 0.0, eps_in_sqrt=False)
        if momentum is not None:
            # buf = momentum * buf + g / avg, then param -= lr * buf: the chain as it reads.
            return chain(*prefix, accumulator, trace(momentum), scale_by_learning_rate(lr))

        def denominator(state):
            if centered:
                return jax.tree.map(
                    lambda m, v: _denominator(_variance(m, v), eps, eps_in_sqrt=False),
                    state.mu,
                    state.nu,
                )
            return jax.tree.map(lambda v: _denominator(v, eps, eps_in_sqrt=False), state.nu)

        return addcdiv_step(call, prefix, accumulator, scale_by_learning_rate(lr), denominator)

    return with_hyperparams(build, **hyperparams)
