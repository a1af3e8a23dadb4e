"""AdaMax: Adam with the infinity norm. ``scale_by_adamax``, ``adamax``, ``adamaxw``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import as_scalar, bias_correction, safe_increment, zero_count, zeros_like
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from .._weight_decay import add_decayed_weights
from ._common import check_hyperparams
from ._moments import cast_like, ema, real_full_like, safe_divide


class ScaleByAdamaxState(NamedTuple):
    """``count`` (int32), first moment ``mu`` and infinity norm ``nu`` (real), like the params."""

    count: jax.Array
    mu: Any
    nu: Any


def _rules(b1, b2, eps):
    return {"b1": ("unit", b1), "b2": ("unit", b2), "eps": ("nonneg", eps)}


def scale_by_adamax(
    b1: float | jax.Array = 0.9, b2: float | jax.Array = 0.999, eps: float | jax.Array = 1e-8
) -> GradientTransformation:
    r"""AdaMax's direction: the bias-corrected first moment over a decaying maximum of
    :math:`|g|`.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \quad
        d_t = \frac{m_t}{(1-\beta_1^t)\, u_t}

    The paper has no :math:`\epsilon`; Optax and ``torch.optim.Adamax`` add it to :math:`|g_t|`
    inside the maximum, and so does optgrad. Where :math:`u_t = 0` (only with ``eps=0`` and
    zero gradients) the direction is :math:`m_t` (zero), never ``0/0``. Complex gradients are
    supported (:math:`|g|` is the modulus; ``nu`` is real).

    Args:
        b1: decay of the first moment :math:`\beta_1` in ``[0, 1)``.
        b2: decay of the infinity norm :math:`\beta_2` in ``[0, 1)``.
        eps: :math:`\epsilon \ge 0`.

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`ScaleByAdamaxState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_adamax()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015), Algorithm 2.
    """
    call = "optgrad.scale_by_adamax"
    check_hyperparams(call, **_rules(b1, b2, eps))

    def init_fn(params):
        return ScaleByAdamaxState(zero_count(), zeros_like(params), real_full_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.mu, "mu")
        beta1, beta2, e = map(as_scalar, (b1, b2, eps))
        count = safe_increment(state.count)
        c1 = 1.0 / bias_correction(beta1, count)
        mu = ema(updates, state.mu, beta1)
        nu = jax.tree.map(lambda g, u: jnp.maximum(beta2 * u, jnp.abs(g) + e), updates, state.nu)
        updates = jax.tree.map(
            lambda g, m, u: safe_divide(m * c1, u).astype(g.dtype), updates, mu, nu
        )
        return updates, ScaleByAdamaxState(count, cast_like(mu, state.mu), cast_like(nu, state.nu))

    return GradientTransformation(init_fn, update_fn)


def adamax(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
) -> GradientTransformation:
    r"""AdaMax: :math:`\theta_t = \theta_{t-1} - \eta_t d_t` with :math:`d_t` from
    :func:`scale_by_adamax` (see there for the maths).

    PyTorch equivalent: ``torch.optim.Adamax`` without weight decay gives the same numbers
    (same :math:`\epsilon` placement); its ``weight_decay`` is an L2 term added to the gradient,
    see ``optgrad.torch.Adamax``. Hyperparameters live in the state
    (``optgrad.tree.get(state, "b2")``).

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule of the step count.
        b1, b2, eps: as in :func:`scale_by_adamax`.

    Returns:
        A :class:`optgrad.GradientTransformation`.

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015), Algorithm 2.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.adamax(0.1)
        >>> updates, _ = tx.update({"w": jnp.array([2.0, -4.0])}, tx.init({"w": jnp.zeros(2)}))
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.1, 0.1]
    """
    check_hyperparams("optgrad.adamax", learning_rate=("lr", learning_rate), **_rules(b1, b2, eps))

    def build(learning_rate, b1, b2, eps):
        return chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))

    return with_hyperparams(build, learning_rate=learning_rate, b1=b1, b2=b2, eps=eps)


def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
) -> GradientTransformation:
    r"""AdaMax with decoupled weight decay.

    .. math:: \theta_t = \theta_{t-1} - \eta_t \left(d_t + \lambda\, \theta_{t-1}\right)

    with :math:`d_t` from :func:`scale_by_adamax` and :math:`\lambda` = ``weight_decay``,
    multiplied by the learning rate as in :func:`adamw`. ``mask`` (a tree of booleans or a
    function of the params) selects the leaves to decay.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule of the step count.
        b1, b2, eps: as in :func:`scale_by_adamax`.
        weight_decay: :math:`\lambda \ge 0`, a number or a schedule.
        mask: which leaves to decay (default: all).

    Returns:
        A :class:`optgrad.GradientTransformation`; ``update`` needs the params.

    References:
        Kingma & Ba (2015), Algorithm 2; Loshchilov & Hutter, "Decoupled Weight Decay
        Regularization" (ICLR 2019).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.adamaxw(0.1, weight_decay=0.5)
        >>> params = {"w": jnp.ones(2)}
        >>> updates, _ = tx.update({"w": jnp.array([2.0, -4.0])}, tx.init(params), params)
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.15, 0.05]
    """
    rules = _rules(b1, b2, eps)
    check_hyperparams(
        "optgrad.adamaxw",
        learning_rate=("lr", learning_rate),
        weight_decay=("nonneg", weight_decay),
        **rules,
    )

    def build(learning_rate, b1, b2, eps, weight_decay):
        return chain(
            scale_by_adamax(b1, b2, eps),
            add_decayed_weights(weight_decay, mask),
            scale_by_learning_rate(learning_rate),
        )

    return with_hyperparams(
        build, learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay
    )
