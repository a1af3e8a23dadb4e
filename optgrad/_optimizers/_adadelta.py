"""Adadelta: step sizes from running averages of squared gradients and squared updates."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import abs_sq, as_scalar, zeros_like
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from .._weight_decay import add_decayed_weights
from ._common import check_hyperparams


class ScaleByAdaDeltaState(NamedTuple):
    """Running averages ``e_g`` of squared gradients and ``e_x`` of squared updates."""

    e_g: Any
    e_x: Any


def scale_by_adadelta(
    rho: float | jax.Array = 0.9, eps: float | jax.Array = 1e-6
) -> GradientTransformation:
    r"""Adadelta's direction: the gradient rescaled by RMS[update] / RMS[gradient].

    .. math::
        E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho) g_t^2, \quad
        u_t = \frac{\sqrt{E[u^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t, \quad
        E[u^2]_t = \rho E[u^2]_{t-1} + (1-\rho) u_t^2

    with :math:`\rho` = ``rho`` and both averages starting at 0; :math:`\epsilon` sits inside
    both roots, so a zero gradient gives a zero update, in float16 too (the sums are taken in
    float32). Complex gradients use :math:`|g|^2`. Zeiler, "ADADELTA: An Adaptive Learning Rate
    Method" (2012), Algorithm 1.

    Args:
        rho: the decay :math:`\rho` in ``[0, 1]``.
        eps: :math:`\epsilon \ge 0`.

    Returns:
        A :class:`GradientTransformation` whose state is a :class:`ScaleByAdaDeltaState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_adadelta()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)
    """
    call = "optgrad.scale_by_adadelta"
    check_hyperparams(call, rho=("closed_unit", rho), eps=("nonneg", eps))

    def init_fn(params):
        return ScaleByAdaDeltaState(zeros_like(params), zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.e_g, "e_g")
        r, e = as_scalar(rho), as_scalar(eps)
        e_g = jax.tree.map(lambda g, v: r * v + (1.0 - r) * abs_sq(g), updates, state.e_g)
        direction = jax.tree.map(
            lambda g, v, x: g * (jnp.sqrt(x + e) / jnp.sqrt(v + e)), updates, e_g, state.e_x
        )
        e_x = jax.tree.map(lambda u, x: r * x + (1.0 - r) * abs_sq(u), direction, state.e_x)
        updates = jax.tree.map(lambda g, u: u.astype(g.dtype), updates, direction)
        e_g = jax.tree.map(lambda v, old: v.astype(old.dtype), e_g, state.e_g)
        e_x = jax.tree.map(lambda x, old: x.astype(old.dtype), e_x, state.e_x)
        return updates, ScaleByAdaDeltaState(e_g, e_x)

    return GradientTransformation(init_fn, update_fn)


def adadelta(
    learning_rate: ScalarOrSchedule | None = None,
    rho: ScalarOrSchedule = 0.9,
    eps: ScalarOrSchedule = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> GradientTransformation:
    r"""Adadelta: :math:`\theta_t = \theta_{t-1} - \eta_t\, u_t` with :math:`u_t` from
    :func:`scale_by_adadelta` applied to :math:`g_t + \lambda \theta_{t-1}`.

    :math:`\lambda` = ``weight_decay`` is L2 regularisation folded into the gradient before the
    rescaling (``mask`` selects the leaves to decay), as in Optax and ``torch.optim.Adadelta``.
    The paper has no learning rate (:math:`\eta = 1`).

    PyTorch equivalent: ``torch.optim.Adadelta(lr, rho, eps, weight_decay)`` is
    ``optgrad.adadelta(lr, rho, eps, weight_decay)`` exactly, defaults included
    (``learning_rate=None`` means 1.0, torch's default). Optax 0.2.8's ``adadelta()`` with its
    default ``learning_rate=None`` skips the learning-rate stage and with it the sign flip, so
    it *ascends*; optgrad descends. ``optgrad.torch.Adadelta`` takes torch's own argument
    names (and ``maximize``).

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule (``None``: 1.0).
        rho: decay of both running averages, in ``[0, 1]``.
        eps: :math:`\epsilon`, inside both roots.
        weight_decay: :math:`\lambda \ge 0`.
        mask: which leaves to decay (a tree of booleans or a function of the params).

    Returns:
        A :class:`GradientTransformation`; ``update`` needs the params.

    References:
        Zeiler, "ADADELTA: An Adaptive Learning Rate Method" (2012), arXiv:1212.5701.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.adadelta()
        >>> params = {"w": jnp.zeros(2)}
        >>> updates, _ = tx.update({"w": jnp.ones(2)}, tx.init(params), params)
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.003162, -0.003162]
    """
    call = "optgrad.adadelta"
    learning_rate = 1.0 if learning_rate is None else learning_rate
    check_hyperparams(
        call,
        learning_rate=("lr", learning_rate),
        rho=("closed_unit", rho),
        eps=("nonneg", eps),
        weight_decay=("nonneg", weight_decay),
    )

    def build(learning_rate, rho, eps, weight_decay):
        return chain(
            add_decayed_weights(weight_decay, mask),
            scale_by_adadelta(rho, eps),
            scale_by_learning_rate(learning_rate),
        )

    return with_hyperparams(
        build, learning_rate=learning_rate, rho=rho, eps=eps, weight_decay=weight_decay
    )
