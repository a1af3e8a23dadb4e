"""SM3: Adagrad-like scaling with one accumulator per slice of each axis (sublinear memory)."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import abs_sq, as_scalar, zeros_like
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from ._common import check_hyperparams


class ScaleBySM3State(NamedTuple):
    """``mu``: per leaf, a list with one accumulator vector per axis (a leaf with fewer than
    two axes keeps one full accumulator); ``nu``: the momentum, mirroring the params."""

    mu: Any
    nu: Any


def _axis_zeros(x: Any, axis: int) -> Any:
    """Zeros of shape ``(x.shape[axis],)``, real, with the placement a reduction gets."""
    others = tuple(i for i in range(len(x.shape)) if i != axis)
    return zeros_like(jax.eval_shape(lambda y: jnp.max(abs_sq(y), axis=others), x))


def _accumulators(x: Any) -> list[Any]:
    if len(x.shape) < 2:
        return [zeros_like(jax.eval_shape(abs_sq, x))]
    return [_axis_zeros(x, i) for i in range(len(x.shape))]


def scale_by_sm3(
    b1: float | jax.Array = 0.9, b2: float | jax.Array = 1.0, eps: float | jax.Array = 1e-8
) -> GradientTransformation:
    r"""SM3-II's scaling with momentum: one accumulator per index of every axis.

    For a leaf with axes :math:`1..k`, accumulator :math:`\mu^{(r)}` has one entry per index
    of axis :math:`r`; the second moment of entry :math:`i` is the smallest of the accumulators
    that cover it:

    .. math::
        \nu_t(i) = c\, |g_t(i)|^2 + \beta_2 \min_r \mu^{(r)}_{t-1}(i_r), \qquad
        \mu^{(r)}_t(j) = \max_{i:\, i_r = j} \nu_t(i),

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1)\, \frac{g_t}{\sqrt{\nu_t + \epsilon}}
        \;(0 \text{ where } \nu_t = 0), \qquad u_t = m_t

    with :math:`c = 1` if :math:`\beta_2 = 1` (the paper's sum, like Adagrad) else
    :math:`1-\beta_2`. Leaves with fewer than two axes keep the full :math:`\nu` (exact
    Adagrad). The statistics are computed in float32 or wider and stored in the params' real
    dtype; complex gradients use :math:`|g|^2` (Optax rejects complex params).

    Args:
        b1: momentum :math:`\beta_1` in ``[0, 1]``.
        b2: decay :math:`\beta_2` of the accumulators in ``[0, 1]`` (1: sum).
        eps: :math:`\epsilon \ge 0`, inside the root.

    Returns:
        A :class:`GradientTransformation` whose state is a :class:`ScaleBySM3State`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_sm3()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)

    References:
        Anil, Gupta, Koren & Singer, "Memory-Efficient Adaptive Optimization" (NeurIPS 2019),
        arXiv:1901.11150, Algorithm SM3-II.
    """
    call = "optgrad.scale_by_sm3"
    check_hyperparams(call, b1=("closed_unit", b1), b2=("closed_unit", b2), eps=("nonneg", eps))

    def init_fn(params):
        return ScaleBySM3State(jax.tree.map(_accumulators, params), zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.nu, "nu")
        beta1, beta2, e = as_scalar(b1), as_scalar(b2), as_scalar(eps)
        c = jnp.where(beta2 == 1.0, 1.0, 1.0 - beta2)

        def one(g, mus):
            ndim = g.ndim
            if ndim < 2:
                nu = c * abs_sq(g) + beta2 * mus[0]
                return nu, [nu.astype(mus[0].dtype)]
            covers = [
                jnp.reshape(m, [1] * r + [g.shape[r]] + [1] * (ndim - r - 1))
                for r, m in enumerate(mus)
            ]
            nu = c * abs_sq(g) + beta2 * functools.reduce(jnp.minimum, covers)
            new_mus = [
                jnp.max(nu, axis=tuple(i for i in range(ndim) if i != r)).astype(m.dtype)
                for r, m in enumerate(mus)
            ]
            return nu, new_mus

        leaves, treedef = jax.tree.flatten(updates)
        mus = treedef.flatten_up_to(state.mu)
        out = [one(g, m) for g, m in zip(leaves, mus)]
        nu_sq = treedef.unflatten([o[0] for o in out])
        new_mu = treedef.unflatten([o[1] for o in out])

        def momentum(g, v, m):
            positive = v > 0
            inv = jnp.where(positive, jax.lax.rsqrt(jnp.where(positive, v, 1.0) + e), 0.0)
            return beta1 * m + (1.0 - beta1) * (g * inv)

        new_nu = jax.tree.map(momentum, updates, nu_sq, state.nu)
        out_updates = jax.tree.map(lambda g, m: m.astype(g.dtype), updates, new_nu)
        stored = jax.tree.map(lambda m, old: m.astype(old.dtype), new_nu, state.nu)
        return out_updates, ScaleBySM3State(new_mu, stored)

    return GradientTransformation(init_fn, update_fn)


def sm3(
    learning_rate: ScalarOrSchedule, momentum: ScalarOrSchedule = 0.9
) -> GradientTransformation:
    r"""SM3: :math:`\theta_t = \theta_{t-1} - \eta_t u_t` with :math:`u_t` from
    :func:`scale_by_sm3` (``b1`` = ``momentum``, :math:`\beta_2 = 1`: the paper's SM3-II with
    Optax's momentum). Unlike Optax's, ``learning_rate`` may be a schedule. PyTorch has no SM3.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule.
        momentum: :math:`\beta_1` in ``[0, 1]``.

    Returns:
        A :class:`GradientTransformation`.

    References:
        Anil, Gupta, Koren & Singer, "Memory-Efficient Adaptive Optimization" (NeurIPS 2019).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.sm3(0.1, momentum=0.0)
        >>> updates, _ = tx.update({"w": jnp.full((2, 2), 2.0)}, tx.init({"w": jnp.zeros((2, 2))}))
        >>> [round(x, 6) for x in updates["w"][0].tolist()]
        [-0.1, -0.1]
    """
    call = "optgrad.sm3"
    check_hyperparams(call, learning_rate=("lr", learning_rate), momentum=("closed_unit", momentum))

    def build(learning_rate, momentum):
        return chain(scale_by_sm3(momentum), scale_by_learning_rate(learning_rate))

    return with_hyperparams(build, learning_rate=learning_rate, momentum=momentum)
