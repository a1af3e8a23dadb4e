"""Sign-based descent: signSGD and Signum (the sign of a moving average)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .._accumulation import ema
from .._base import GradientTransformation, ScalarOrSchedule, init_empty_state
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._scale import scale_by_learning_rate
from ._common import check_hyperparams


def scale_by_sign() -> GradientTransformation:
    r"""Replaces each update by its sign, :math:`u = \operatorname{sign}(g)` (0 where
    :math:`g = 0`; for complex :math:`g`, the unit-modulus :math:`g/|g|`).

    Returns:
        A :class:`optgrad.GradientTransformation` without state.

    References:
        Bernstein, Wang, Azizzadenesheli & Anandkumar, "signSGD: Compressed Optimisation for
        Non-Convex Problems" (ICML 2018).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.scale_by_sign().update(jnp.array([-3.0, 0.0, 0.5]), og.EmptyState())[0].tolist()
        [-1.0, 0.0, 1.0]
    """

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(lambda g: jnp.sign(g).astype(g.dtype), updates), state

    return GradientTransformation(init_empty_state, update_fn)


def sign_sgd(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    r"""signSGD: :math:`\theta_t = \theta_{t-1} - \eta_t \operatorname{sign}(g_t)`.

    A chain of :func:`scale_by_sign` and the learning rate. With a constant :math:`\eta` the
    iterates end up oscillating at distance about :math:`\eta` from a minimum; decay the
    learning rate to converge. PyTorch has no signSGD.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule.

    Returns:
        A :class:`GradientTransformation`.

    References:
        Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex Problems" (ICML
        2018); Balles, Pedregosa & Le Roux, "The Geometry of Sign Gradient Descent" (2020).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.sign_sgd(0.5)
        >>> tx.update({"w": jnp.array([-3.0, 2.0])}, tx.init({"w": jnp.zeros(2)}))[0]["w"].tolist()
        [0.5, -0.5]
    """
    check_hyperparams("optgrad.sign_sgd", learning_rate=("lr", learning_rate))

    def build(learning_rate):
        return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))

    return with_hyperparams(build, learning_rate=learning_rate)


def signum(
    learning_rate: ScalarOrSchedule, beta: ScalarOrSchedule = 0.9, accumulator_dtype: Any = None
) -> GradientTransformation:
    r"""Signum: the sign of a moving average of the gradients.

    .. math::
        m_t = \beta m_{t-1} + (1-\beta) g_t, \quad m_0 = 0, \qquad
        \theta_t = \theta_{t-1} - \eta_t \operatorname{sign}(m_t)

    A chain of :func:`ema` (not debiased: the sign does not change), :func:`scale_by_sign` and
    the learning rate. PyTorch has no Signum.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule.
        beta: :math:`\beta` in ``[0, 1]``.
        accumulator_dtype: dtype of :math:`m` (default: the params').

    Returns:
        A :class:`GradientTransformation`.

    References:
        Bernstein et al., "signSGD: Compressed Optimisation for Non-Convex Problems" (ICML
        2018), Algorithm 3; Zhao et al., "Deconstructing What Makes a Good Optimizer for
        Language Models" (2024).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.signum(0.5)
        >>> tx.update({"w": jnp.array([-3.0, 2.0])}, tx.init({"w": jnp.zeros(2)}))[0]["w"].tolist()
        [0.5, -0.5]
    """
    check_hyperparams(
        "optgrad.signum", learning_rate=("lr", learning_rate), beta=("closed_unit", beta)
    )

    def build(learning_rate, beta):
        return chain(
            ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
            scale_by_sign(),
            scale_by_learning_rate(learning_rate),
        )

    return with_hyperparams(build, learning_rate=learning_rate, beta=beta)
