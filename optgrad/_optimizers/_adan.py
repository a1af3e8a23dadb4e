"""Adan: adaptive Nesterov momentum from moving averages of gradients and their differences."""

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
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from .._weight_decay import add_decayed_weights
from ._common import check_hyperparams
from ._moments import cast_like, ema, real_full_like


class ScaleByAdanState(NamedTuple):
    """``count`` (int32); moving averages of the gradients ``m``, of their differences ``v``
    and of the squared look-ahead gradients ``n`` (real); the previous gradient ``g``."""

    count: jax.Array
    m: Any
    v: Any
    n: Any
    g: Any


def _rules(b1, b2, b3, eps, eps_root):
    return {
        "b1": ("unit", b1),
        "b2": ("unit", b2),
        "b3": ("unit", b3),
        "eps": ("nonneg", eps),
        "eps_root": ("nonneg", eps_root),
    }


def scale_by_adan(
    b1: float | jax.Array = 0.98,
    b2: float | jax.Array = 0.92,
    b3: float | jax.Array = 0.99,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
) -> GradientTransformation:
    r"""Adan's direction.

    .. math::
        \Delta_t = g_t - g_{t-1}\ (\Delta_1 = 0), \quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) \Delta_t,

    .. math::
        n_t = \beta_3 n_{t-1} + (1-\beta_3) |g_t + \beta_2 \Delta_t|^2, \quad
        d_t = \frac{\hat m_t + \beta_2 \hat v_t}{\sqrt{\hat n_t + \epsilon_{root}} + \epsilon}

    where hats are bias corrections (:math:`\hat m_t = m_t/(1-\beta_1^t)`, likewise
    :math:`\hat v_t` with :math:`\beta_2` and :math:`\hat n_t` with :math:`\beta_3`). The
    :math:`\beta` here are Optax's, one minus the paper's (paper :math:`\beta_1 = 0.02` is
    ``b1=0.98``), so the paper's :math:`(1-\beta_2)` factor is ``b2``. The bias corrections and
    :math:`\Delta_1 = 0` follow the authors' implementation and Optax; the paper's
    Algorithm 1 has neither. Complex gradients are supported.

    Difference from Optax 0.2.8: Optax weights :math:`\Delta_t` and :math:`\hat v_t` by
    ``1 - b2`` (0.08 at the default) where the paper and the authors' code use ``b2`` (0.92);
    optgrad follows the paper (Optax PR #1715 fixes it). The two agree exactly at ``b2=0.5``.

    Args:
        b1: decay of the gradient average, in ``[0, 1)``.
        b2: decay of the gradient-difference average, in ``[0, 1)``.
        b3: decay of the squared look-ahead gradient average, in ``[0, 1)``.
        eps: :math:`\epsilon`, outside the root; ``eps_root``: :math:`\epsilon_{root}`, inside.

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`ScaleByAdanState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_adan()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)

    References:
        Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
        Models" (IEEE TPAMI 2024; arXiv:2208.06677), Algorithm 1.
    """
    call = "optgrad.scale_by_adan"
    check_hyperparams(call, **_rules(b1, b2, b3, eps, eps_root))

    def init_fn(params):
        # Distinct buffers (not one shared three times), so that the state can be donated.
        m, v, g = (zeros_like(params) for _ in range(3))
        return ScaleByAdanState(zero_count(), m, v, real_full_like(params), g)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.m, "m")
        beta1, beta2, beta3, e, e_root = map(as_scalar, (b1, b2, b3, eps, eps_root))
        first = state.count == 0
        count = safe_increment(state.count)
        c1 = 1.0 / bias_correction(beta1, count)
        c2 = 1.0 / bias_correction(beta2, count)
        c3 = 1.0 / bias_correction(beta3, count)
        grads = updates
        diff = jax.tree.map(lambda g, p: jnp.where(first, 0.0, g - p), grads, state.g)
        m = ema(grads, state.m, beta1)
        v = ema(diff, state.v, beta2)
        n = jax.tree.map(
            lambda g, d, x: beta3 * x + (1.0 - beta3) * abs_sq(g + beta2 * d), grads, diff, state.n
        )

        def direction(g, a, b, x):
            return ((a * c1 + beta2 * b * c2) / (jnp.sqrt(x * c3 + e_root) + e)).astype(g.dtype)

        updates = jax.tree.map(direction, grads, m, v, n)
        new_state = ScaleByAdanState(
            count,
            cast_like(m, state.m),
            cast_like(v, state.v),
            cast_like(n, state.n),
            cast_like(grads, state.g),
        )
        return updates, new_state

    return GradientTransformation(init_fn, update_fn)


def adan(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.98,
    b2: ScalarOrSchedule = 0.92,
    b3: ScalarOrSchedule = 0.99,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> GradientTransformation:
    r"""Adan with decoupled weight decay.

    .. math:: \theta_t = \theta_{t-1} - \eta_t \left(d_t + \lambda\, \theta_{t-1}\right)

    with :math:`d_t` from :func:`scale_by_adan` (see there for the maths and the difference
    from Optax 0.2.8) and :math:`\lambda` = ``weight_decay`` on the leaves selected by ``mask``.
    The paper (and the authors' default) applies the decay as a proximal step,
    :math:`\theta_t = (\theta_{t-1} - \eta_t d_t) / (1 + \eta_t\lambda)`; optgrad follows
    Optax's decoupled form, equal to first order in :math:`\eta_t\lambda`. ``torch.optim``
    has no Adan. Hyperparameters live in the state.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule of the step count.
        b1, b2, b3, eps, eps_root: as in :func:`scale_by_adan`.
        weight_decay: :math:`\lambda \ge 0`, a number or a schedule.
        mask: which leaves to decay (default: all).

    Returns:
        A :class:`optgrad.GradientTransformation`; ``update`` needs the params.

    References:
        Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
        Models" (IEEE TPAMI 2024; arXiv:2208.06677).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.adan(0.1)
        >>> params = {"w": jnp.zeros(2)}
        >>> updates, _ = tx.update({"w": jnp.array([1.0, -2.0])}, tx.init(params), params)
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.1, 0.1]
    """
    rules = _rules(b1, b2, b3, eps, eps_root)
    check_hyperparams(
        "optgrad.adan",
        learning_rate=("lr", learning_rate),
        weight_decay=("nonneg", weight_decay),
        **rules,
    )

    def build(learning_rate, b1, b2, b3, eps, eps_root, weight_decay):
        return chain(
            scale_by_adan(b1, b2, b3, eps, eps_root),
            add_decayed_weights(weight_decay, mask),
            scale_by_learning_rate(learning_rate),
        )

    return with_hyperparams(
        build,
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        b3=b3,
        eps=eps,
        eps_root=eps_root,
        weight_decay=weight_decay,
    )
