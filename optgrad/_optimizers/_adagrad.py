"""Adagrad: scaling by the root of the sum of all past squared gradients."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import abs_sq, as_scalar, full_like
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from ._common import check_hyperparams


class ScaleByRssState(NamedTuple):
    """``sum_of_squares``: the sum of all past squared updates, mirroring the params."""

    sum_of_squares: Any


def scale_by_rss(
    initial_accumulator_value: float = 0.1,
    eps: float | jax.Array = 1e-7,
    *,
    eps_in_sqrt: bool = True,
) -> GradientTransformation:
    r"""Divides updates by the root of the sum of squares of all updates so far (Adagrad).

    .. math::
        s_t = s_{t-1} + g_t^2, \qquad
        u_t = \frac{g_t}{\sqrt{s_t + \epsilon}} \;\text{(Optax; 0 where } s_t = 0\text{)}
        \quad\text{or}\quad \frac{g_t}{\sqrt{s_t} + \epsilon} \;\text{(eps_in_sqrt=False, torch)}

    with :math:`s_0` = ``initial_accumulator_value``. Duchi, Hazan & Singer, "Adaptive
    Subgradient Methods for Online Learning and Stochastic Optimization" (JMLR 2011).

    Args:
        initial_accumulator_value: the starting value of the sum of squares (default 0.1).
        eps: :math:`\epsilon` (default ``1e-7``).
        eps_in_sqrt: add ``eps`` inside the root (default) rather than outside.

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`ScaleByRssState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_rss()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)
    """
    call = "optgrad.scale_by_rss"
    check_hyperparams(call, initial_accumulator_value=("nonneg", initial_accumulator_value))
    check_hyperparams(call, eps=("nonneg", eps))

    def init_fn(params):
        return ScaleByRssState(full_like(params, initial_accumulator_value))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors("optgrad.scale_by_rss", updates, state.sum_of_squares, "sum_of_squares")
        e = as_scalar(eps)
        sums = jax.tree.map(
            lambda g, s: (s + abs_sq(g)).astype(s.dtype), updates, state.sum_of_squares
        )

        def scaled(g, s):
            if eps_in_sqrt:
                return jnp.where(s > 0, g * jax.lax.rsqrt(s + e), 0.0).astype(g.dtype)
            return (g / (jnp.sqrt(s) + e)).astype(g.dtype)

        return jax.tree.map(scaled, updates, sums), ScaleByRssState(sums)

    return GradientTransformation(init_fn, update_fn)


def adagrad(
    learning_rate: ScalarOrSchedule,
    initial_accumulator_value: float = 0.1,
    eps: ScalarOrSchedule = 1e-7,
) -> GradientTransformation:
    r"""Adagrad with Optax's defaults: :math:`\theta_t = \theta_{t-1} - \eta_t u_t` with
    :math:`u_t` from :func:`scale_by_rss`.

    Differences from ``torch.optim.Adagrad``: Optax's accumulator starts at 0.1 (torch 0) and
    ``eps=1e-7`` sits inside the root (torch ``1e-10`` outside); torch also has ``lr_decay``.
    ``optgrad.torch.Adagrad`` reproduces torch exactly.

    PyTorch equivalent: ``torch.optim.Adagrad(lr)`` (accumulator from 0, ``eps=1e-10`` added
    to the root) is ``optgrad.chain(optgrad.scale_by_rss(0.0, 1e-10, eps_in_sqrt=False),
    optgrad.scale_by_learning_rate(lr))`` exactly, and ``optgrad.adagrad(lr,
    initial_accumulator_value=0.0, eps=0.0)`` up to that ``1e-10`` (a relative ``1e-10 /
    sqrt(s)``); Optax's default ``initial_accumulator_value=0.1`` makes the first steps
    smaller than torch's. ``lr_decay`` and ``weight_decay`` are in ``optgrad.torch.Adagrad``.

    Args:
        learning_rate: the step size :math:`\eta`, a number or a schedule of the step count.
        initial_accumulator_value: the starting value of the sum of squares (default 0.1).
        eps: :math:`\epsilon`, added inside the root (default ``1e-7``).

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the sum of squared gradients.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.adagrad(1.0)
        >>> updates, _ = tx.update({"w": jnp.zeros(2)}, tx.init({"w": jnp.zeros(2)}))
        >>> updates["w"].shape
        (2,)
    """
    check_hyperparams("optgrad.adagrad", learning_rate=("lr", learning_rate), eps=("nonneg", eps))
    check_hyperparams(
        "optgrad.adagrad", initial_accumulator_value=("nonneg", initial_accumulator_value)
    )

    def build(learning_rate, eps):
        return chain(
            scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate)
        )

    return with_hyperparams(build, learning_rate=learning_rate, eps=eps)
