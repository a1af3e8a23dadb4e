"""Optimistic gradient methods for min-max games: OGD and optimistic Adam."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import as_scalar, zeros_like
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from ._adam import scale_by_adam
from ._common import check_hyperparams


class ScaleByOptimisticGradientState(NamedTuple):
    """``is_initial_step`` (a boolean scalar) and the ``previous_gradient``."""

    is_initial_step: jax.Array
    previous_gradient: Any


def scale_by_optimistic_gradient(
    alpha: float | jax.Array = 1.0, beta: float | jax.Array = 1.0
) -> GradientTransformation:
    r"""The generalised optimistic direction :math:`u_t = (\alpha+\beta) g_t - \beta g_{t-1}`.

    At the first step there is no :math:`g_0` and :math:`g_1` stands in for it, so
    :math:`u_1 = \alpha g_1` (as in Optax since its issue #1082). :math:`\alpha = \beta = 1` is
    optimistic gradient descent, :math:`2 g_t - g_{t-1}`; :math:`\beta = 0` is plain gradient
    descent.

    Args:
        alpha: :math:`\alpha \ge 0`.
        beta: :math:`\beta \ge 0`, the weight of the negative momentum.

    Returns:
        A :class:`GradientTransformation` whose state is a
        :class:`ScaleByOptimisticGradientState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_optimistic_gradient()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)

    References:
        Mokhtari, Ozdaglar & Pattathil, "A Unified Analysis of Extra-gradient and Optimistic
        Gradient Methods for Saddle Point Problems: Proximal Point Approach" (AISTATS 2020),
        eq. (6).
    """
    call = "optgrad.scale_by_optimistic_gradient"
    check_hyperparams(call, alpha=("nonneg", alpha), beta=("nonneg", beta))

    def init_fn(params):
        return ScaleByOptimisticGradientState(jnp.asarray(True), zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.previous_gradient, "previous_gradient")
        a, b = as_scalar(alpha), as_scalar(beta)

        def direction(g, prev):
            prev = jnp.where(state.is_initial_step, g, prev)
            return ((a + b) * g - b * prev).astype(g.dtype)

        out = jax.tree.map(direction, updates, state.previous_gradient)
        previous = jax.tree.map(lambda g, p: g.astype(p.dtype), updates, state.previous_gradient)
        return out, ScaleByOptimisticGradientState(jnp.asarray(False), previous)

    return GradientTransformation(init_fn, update_fn)


def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule,
    alpha: ScalarOrSchedule = 1.0,
    beta: ScalarOrSchedule = 1.0,
) -> GradientTransformation:
    r"""Optimistic gradient descent (OGD):

    .. math::
        \theta_{t} = \theta_{t-1} - \eta_t \big((\alpha + \beta) g_t - \beta g_{t-1}\big)

    (:func:`scale_by_optimistic_gradient` then the learning rate). Converges in the last
    iterate on bilinear min-max games, where simultaneous gradient descent-ascent cycles or
    diverges. PyTorch has no OGD.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule.
        alpha, beta: :math:`\alpha, \beta \ge 0` (numbers or schedules).

    Returns:
        A :class:`GradientTransformation`.

    References:
        Mokhtari, Ozdaglar & Pattathil (AISTATS 2020); Daskalakis, Ilyas, Syrgkanis & Zeng,
        "Training GANs with Optimism" (ICLR 2018).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.optimistic_gradient_descent(0.1)
        >>> state = tx.init({"w": jnp.zeros(1)})
        >>> _, state = tx.update({"w": jnp.ones(1)}, state)
        >>> [round(x, 6) for x in tx.update({"w": jnp.full(1, 2.0)}, state)[0]["w"].tolist()]
        [-0.3]
    """
    call = "optgrad.optimistic_gradient_descent"
    check_hyperparams(
        call, learning_rate=("lr", learning_rate), alpha=("nonneg", alpha), beta=("nonneg", beta)
    )

    def build(learning_rate, alpha, beta):
        return chain(
            scale_by_optimistic_gradient(alpha, beta), scale_by_learning_rate(learning_rate)
        )

    return with_hyperparams(build, learning_rate=learning_rate, alpha=alpha, beta=beta)


def optimistic_adam_v2(
    learning_rate: ScalarOrSchedule,
    *,
    alpha: ScalarOrSchedule = 1.0,
    beta: ScalarOrSchedule = 1.0,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = True,
) -> GradientTransformation:
    r"""Optimistic Adam: the optimistic step applied to Adam's direction.

    .. math::
        r_t = \text{Adam direction (} :func:`scale_by_adam` \text{, Nesterov by default)}, \quad
        \theta_t = \theta_{t-1} - \eta_t \big((\alpha+\beta) r_t - \beta r_{t-1}\big)

    (:func:`scale_by_adam`, :func:`scale_by_optimistic_gradient`, the learning rate), with
    Optax's arguments and defaults (all keyword-only). PyTorch has no optimistic Adam.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule.
        alpha, beta: the optimism coefficients, as in :func:`scale_by_optimistic_gradient`.
        b1, b2, eps, eps_root, mu_dtype, nesterov: as in :func:`scale_by_adam`.

    Returns:
        A :class:`GradientTransformation`.

    References:
        Daskalakis, Ilyas, Syrgkanis & Zeng, "Training GANs with Optimism" (ICLR 2018).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.optimistic_adam_v2(0.1, nesterov=False)
        >>> updates, _ = tx.update({"w": jnp.ones(1)}, tx.init({"w": jnp.zeros(1)}))
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.1]
    """
    call = "optgrad.optimistic_adam_v2"
    check_hyperparams(
        call,
        learning_rate=("lr", learning_rate),
        alpha=("nonneg", alpha),
        beta=("nonneg", beta),
        b1=("unit", b1),
        b2=("unit", b2),
        eps=("nonneg", eps),
        eps_root=("nonneg", eps_root),
    )

    def build(learning_rate, alpha, beta, b1, b2, eps, eps_root):
        return chain(
            scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
            scale_by_optimistic_gradient(alpha, beta),
            scale_by_learning_rate(learning_rate),
        )

    return with_hyperparams(
        build,
        learning_rate=learning_rate,
        alpha=alpha,
        beta=beta,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
    )
