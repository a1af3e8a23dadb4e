"""``torch.optim.NAdam``: Adam with Nesterov momentum and Dozat's momentum schedule."""

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


class NAdamState(NamedTuple):
    """``count`` (int32), ``mu_product`` :math:`\\Pi_t` (a float32 scalar, as in torch), and
    torch's ``exp_avg`` :math:`m` and ``exp_avg_sq`` :math:`v`."""

    count: jax.Array
    mu_product: jax.Array
    exp_avg: Any
    exp_avg_sq: Any


def _momentum(b1: jax.Array, t: jax.Array, psi: jax.Array) -> jax.Array:
    """:math:`\\mu_t = \\beta_1 (1 - \\tfrac12\\, 0.96^{t\\psi})`."""
    return b1 * (1.0 - 0.5 * jnp.exp(t * psi * jnp.log(jnp.float32(0.96))))


def _scale_by_nadam(b1: Any, b2: Any, eps: Any, momentum_decay: Any) -> GradientTransformation:
    call = "optgrad.torch.NAdam"

    def init_fn(params):
        return NAdamState(
            zero_count(), jnp.ones([], jnp.float32), zeros_like(params), zeros_like(params)
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.exp_avg, "exp_avg")
        beta1, beta2, e, psi = map(as_scalar, (b1, b2, eps, momentum_decay))
        count = safe_increment(state.count)
        t = count.astype(jnp.float32)
        mu, mu_next = _momentum(beta1, t, psi), _momentum(beta1, t + 1.0, psi)
        mu_product = state.mu_product * mu
        c_grad = (1.0 - mu) / (1.0 - mu_product)
        c_avg = mu_next / (1.0 - mu_product * mu_next)
        bc2 = bias_correction(beta2, count)
        exp_avg = jax.tree.map(lambda g, m: lerp(m, g, 1.0 - beta1), updates, state.exp_avg)
        exp_avg_sq = jax.tree.map(
            lambda g, v: beta2 * v + (1.0 - beta2) * abs_sq(g), updates, state.exp_avg_sq
        )

        def direction(g, m, v):
            denom = jnp.sqrt(v / bc2) + e
            return (c_grad * g / denom + c_avg * m / denom).astype(g.dtype)

        out = jax.tree.map(direction, updates, exp_avg, exp_avg_sq)
        cast = lambda new, like: jax.tree.map(lambda n, l: n.astype(l.dtype), new, like)  # noqa: E731
        return out, NAdamState(
            count,
            mu_product,
            cast(exp_avg, state.exp_avg),
            cast(exp_avg_sq, state.exp_avg_sq),
        )

    return GradientTransformation(init_fn, update_fn)


def NAdam(
    lr: ScalarOrSchedule = 2e-3,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0,
    momentum_decay: ScalarOrSchedule = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    foreach: Any = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
) -> GradientTransformation:
    r"""``torch.optim.NAdam``, step for step, with torch's momentum schedule.

    .. math::
        \mu_t &= \beta_1 \left(1 - \tfrac12\, 0.96^{t\psi}\right), \qquad
        \Pi_t = \prod_{s \le t} \mu_s \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \qquad
        d_t = \sqrt{v_t / (1-\beta_2^t)} + \epsilon \\
        \theta_t &= \theta_{t-1} - \gamma_t \left(\frac{1-\mu_t}{1-\Pi_t}\,\frac{g_t}{d_t}
            + \frac{\mu_{t+1}}{1-\Pi_t\,\mu_{t+1}}\,\frac{m_t}{d_t}
            + \lambda\,\theta_{t-1}\,[\text{decoupled}]\right)

    with :math:`\psi` = ``momentum_decay``, :math:`\gamma` = ``lr``; the gradient is negated
    first with ``maximize`` and ``weight_decay`` :math:`\lambda` is L2 folded into it, or with
    ``decoupled_weight_decay=True`` multiplied by the learning rate and applied to the
    parameters (NAdamW). :math:`\Pi_t` is kept in the state as a float32 scalar,
    ``mu_product``, as torch keeps it. Dozat, "Incorporating Nesterov Momentum into Adam"
    (ICLR 2016 workshop); the schedule is from Sutskever et al. (2013), as in torch.

    ``lr``, ``betas`` (a pair), ``eps``, ``weight_decay`` and ``momentum_decay`` are held in the
    state under these names and may be schedules of the update count. ``foreach``,
    ``capturable`` and ``differentiable`` are accepted and have no effect: XLA fuses the step
    under ``jit``. Real parameters only.

    Differences from :func:`optgrad.nadam`: that is Optax's NAdam, with a constant momentum
    :math:`\beta_1` and no :math:`\Pi_t`; the trajectories differ.

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        betas: the pair :math:`(\beta_1, \beta_2)` of moment decays.
        eps: the :math:`\epsilon` that keeps the denominator away from zero.
        weight_decay: the decay rate :math:`\lambda` (0 for none).
        momentum_decay: the momentum-decay constant :math:`\psi`.
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
        >>> tx = og.torch.NAdam(lr=0.1)
        >>> params = {"w": jnp.zeros(2)}
        >>> updates, state = tx.update({"w": jnp.ones(2)}, tx.init(params), params)
        >>> round(float(og.tree.get(state, "mu_product")), 6)  # 0.9 * (1 - 0.5 * 0.96**0.004)
        0.450073
    """
    del foreach, capturable, differentiable
    call = "optgrad.torch.NAdam"
    check_hyperparams(call, lr=("lr", lr))
    betas = check_betas(call, betas)
    check_hyperparams(
        call,
        eps=("nonneg", eps),
        weight_decay=("nonneg", weight_decay),
        momentum_decay=("nonneg", momentum_decay),
    )

    def build(lr, betas, eps, weight_decay, momentum_decay):
        scaler = _scale_by_nadam(*betas, eps, momentum_decay)
        decay = add_decayed_weights(weight_decay)
        middle = [scaler, decay] if decoupled_weight_decay else [decay, scaler]
        return chain(*maximize_first(maximize), *middle, scale_by_learning_rate(lr))

    return with_hyperparams(
        build,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        momentum_decay=momentum_decay,
    )
