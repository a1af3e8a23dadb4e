"""Layer-wise trust ratios and the optimizers built on them: LAMB, LARS, Fromage."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .._accumulation import trace
from .._base import EmptyState, GradientTransformation, ScalarOrSchedule, init_empty_state
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._masking import resolve_mask, where_mask
from .._numerics import abs_sq, as_scalar
from .._scale import scale_by_learning_rate
from .._weight_decay import add_decayed_weights
from ._adam import scale_by_adam
from ._common import check_hyperparams


def _needs_params(call: str, params: Any) -> None:
    if params is None:
        raise ValueError(f"{call}.update needs the params: call `tx.update(grads, state, params)`")


def _sum_sq(x: jax.Array) -> jax.Array:
    """``sum |x|**2`` in at least float32 (a float16 leaf would overflow past 65504)."""
    return jnp.sum(abs_sq(x.astype(jnp.promote_types(x.dtype, jnp.float32))))


def _floored_root(sq: jax.Array, floor: jax.Array) -> jax.Array:
    """``max(sqrt(sq), floor)``, with a zero (not NaN) gradient where the floor binds."""
    above = sq > floor * floor
    return jnp.where(above, jnp.sqrt(jnp.where(above, sq, 1.0)), floor)


def scale_by_trust_ratio(
    min_norm: float | jax.Array = 0.0,
    trust_coefficient: float | jax.Array = 1.0,
    eps: float | jax.Array = 0.0,
    *,
    mask: Any = None,
) -> GradientTransformation:
    r"""Scales each leaf's update by its trust ratio.

    .. math::
        u^l \leftarrow \tau\, \frac{\max(\|\theta^l\|, n_{min})}{\max(\|u^l\|, n_{min}) +
        \epsilon}\; u^l

    with :math:`\tau` = ``trust_coefficient`` and norms over each leaf; where either norm is
    zero the ratio is 1 (as in Optax: fresh zero-initialised layers and zero updates pass
    through), computed without ``0/0`` so that float16 and ``jax.grad`` stay finite. Norms are
    taken in at least float32. ``mask`` (an optgrad addition) leaves the unselected leaves'
    updates unscaled. Complex values are supported.

    Args:
        min_norm: :math:`n_{min} \ge 0`, a floor for both norms.
        trust_coefficient: :math:`\tau \ge 0`.
        eps: :math:`\epsilon \ge 0`, added to the update's norm.
        mask: a tree of booleans (or a function of the params returning one) selecting the
            leaves to scale (default: all).

    Returns:
        A stateless :class:`optgrad.GradientTransformation`; ``update`` needs the params.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_trust_ratio()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)

    References:
        You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks"
        (arXiv:1708.03888, 2017); You et al., "Large Batch Optimization for Deep Learning:
        Training BERT in 76 minutes" (ICLR 2020).
    """
    call = "optgrad.scale_by_trust_ratio"
    check_hyperparams(
        call,
        min_norm=("nonneg", min_norm),
        trust_coefficient=("nonneg", trust_coefficient),
        eps=("nonneg", eps),
    )

    def init_fn(params):
        if mask is not None and not isinstance(mask, bool):
            resolve_mask(call, mask, params)
        return EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _needs_params(call, params)
        floor, coefficient, e = map(as_scalar, (min_norm, trust_coefficient, eps))
        masks = (
            resolve_mask(call, mask, params)
            if mask is not None
            else jax.tree.map(lambda _: True, params)
        )

        def scaled(u, p, keep):
            param_norm = _floored_root(_sum_sq(p), floor)
            update_norm = _floored_root(_sum_sq(u), floor)
            zero = (param_norm == 0) | (update_norm == 0)
            ratio = coefficient * param_norm / jnp.where(zero, 1.0, update_norm + e)
            return where_mask(keep, (u * jnp.where(zero, 1.0, ratio)).astype(u.dtype), u)

        return jax.tree.map(scaled, updates, params, masks), state

    return GradientTransformation(init_fn, update_fn)


def scale_by_param_block_norm(min_scale: float | jax.Array = 1e-3) -> GradientTransformation:
    r"""Multiplies each leaf's update by :math:`\max(\|\theta^l\|, s_{min})`, the norm of its
    parameter block (floored at ``min_scale``; computed in at least float32). Needs the params.

    Args:
        min_scale: the smallest parameter-block norm used as the scale (default ``1e-3``).

    Returns:
        A stateless :class:`optgrad.GradientTransformation`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_param_block_norm()
        >>> tx.update(jnp.ones(2), tx.init(None), jnp.array([3.0, 4.0]))[0].tolist()
        [5.0, 5.0]
    """
    call = "optgrad.scale_by_param_block_norm"
    check_hyperparams(call, min_scale=("nonneg", min_scale))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _needs_params(call, params)
        floor = as_scalar(min_scale)
        updates = jax.tree.map(
            lambda u, p: (u * _floored_root(_sum_sq(p), floor)).astype(u.dtype), updates, params
        )
        return updates, state

    return GradientTransformation(init_empty_state, update_fn)


def scale_by_param_block_rms(min_scale: float | jax.Array = 1e-3) -> GradientTransformation:
    r"""Multiplies each leaf's update by :math:`\max(\mathrm{rms}(\theta^l), s_{min})`, the
    root mean square of its parameter block (floored at ``min_scale``; at least float32).
    Needs the params.

    Args:
        min_scale: the smallest parameter-block RMS used as the scale (default ``1e-3``).

    Returns:
        A stateless :class:`optgrad.GradientTransformation`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_param_block_rms()
        >>> tx.update(jnp.ones(2), tx.init(None), jnp.array([1.0, -1.0]))[0].tolist()
        [1.0, 1.0]
    """
    call = "optgrad.scale_by_param_block_rms"
    check_hyperparams(call, min_scale=("nonneg", min_scale))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _needs_params(call, params)
        floor = as_scalar(min_scale)

        def scaled(u, p):
            mean_sq = _sum_sq(p) / max(p.size, 1)
            return (u * _floored_root(mean_sq, floor)).astype(u.dtype)

        return jax.tree.map(scaled, updates, params), state

    return GradientTransformation(init_empty_state, update_fn)


def lamb(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-6,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> GradientTransformation:
    r"""LAMB: Adam's direction plus decoupled decay, rescaled layer by layer.

    .. math::
        r_t = d_t + \lambda\,\theta_{t-1}, \quad
        \theta_t = \theta_{t-1} - \eta_t \frac{\|\theta_{t-1}\|}{\|r_t\|}\, r_t

    per leaf, with :math:`d_t` from :func:`scale_by_adam`, :math:`\lambda` = ``weight_decay``
    on the leaves selected by ``mask``, and the ratio of :func:`scale_by_trust_ratio` (1 where
    a norm is zero; the paper's scaling function :math:`\phi` is the identity).
    ``torch.optim`` has no LAMB. Hyperparameters live in the state.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule of the step count.
        b1, b2, eps, eps_root: as in :func:`scale_by_adam`.
        weight_decay: :math:`\lambda \ge 0`, a number or a schedule.
        mask: which leaves to decay (default: all).

    Returns:
        A :class:`optgrad.GradientTransformation`; ``update`` needs the params.

    References:
        You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes"
        (ICLR 2020), Algorithm 2.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.lamb(0.1)
        >>> params = {"w": jnp.array([3.0, 4.0])}
        >>> updates, _ = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)
        >>> [round(x, 4) for x in updates["w"].tolist()]
        [-0.3536, 0.3536]
    """
    check_hyperparams(
        "optgrad.lamb",
        learning_rate=("lr", learning_rate),
        b1=("unit", b1),
        b2=("unit", b2),
        eps=("nonneg", eps),
        eps_root=("nonneg", eps_root),
        weight_decay=("nonneg", weight_decay),
    )

    def build(learning_rate, b1, b2, eps, eps_root, weight_decay):
        return chain(
            scale_by_adam(b1, b2, eps, eps_root),
            add_decayed_weights(weight_decay, mask),
            scale_by_trust_ratio(),
            scale_by_learning_rate(learning_rate),
        )

    return with_hyperparams(
        build,
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        weight_decay=weight_decay,
    )


def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
    trust_coefficient: ScalarOrSchedule = 0.001,
    eps: ScalarOrSchedule = 0.0,
    trust_ratio_mask: Any = True,
    momentum: ScalarOrSchedule = 0.9,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""LARS: momentum SGD with a layer-wise trust ratio.

    .. math::
        u_t = g_t + \lambda\,\theta_{t-1}, \quad
        b_t = \mu\, b_{t-1} - \eta_t\, \frac{\tau \|\theta_{t-1}\|}{\|u_t\| + \epsilon}\, u_t,
        \quad \theta_t = \theta_{t-1} + b_t

    per leaf (:math:`\tau` = ``trust_coefficient``, :math:`\mu` = ``momentum``; the ratio is
    1 where a norm is zero; ``nesterov=True`` steps by :math:`-\eta_t\tau(\ldots)u_t + \mu b_t`
    instead). The learning rate is inside the momentum buffer, as in the paper and Optax.

    The weight-decay mask is spelled ``mask``, as everywhere in optgrad; Optax's
    ``weight_decay_mask`` is not accepted (pass it as ``mask``, same position).
    ``trust_ratio_mask`` selects the leaves that get the trust ratio (the others take plain
    momentum SGD steps; biases and norms are usually excluded).

    Difference from the paper: its local rate is :math:`\tau\|\theta\| / (\|g\| +
    \lambda\|\theta\|)`; Optax and optgrad use the norm of the decayed gradient,
    :math:`\|g + \lambda\theta\|` (the same without weight decay). ``torch.optim`` has no LARS.
    Hyperparameters live in the state.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule of the step count.
        weight_decay: :math:`\lambda \ge 0`, a number or a schedule.
        mask: which leaves to decay (default: all).
        trust_coefficient: :math:`\tau \ge 0`.
        eps: :math:`\epsilon \ge 0`, added to the update's norm.
        trust_ratio_mask: which leaves get the trust ratio (default: all).
        momentum: :math:`\mu \ge 0`.
        nesterov: Nesterov momentum.

    Returns:
        A :class:`optgrad.GradientTransformation`; ``update`` needs the params.

    References:
        You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks"
        (arXiv:1708.03888, 2017), Algorithm 1.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.lars(0.1, trust_coefficient=0.01)
        >>> params = {"w": jnp.array([3.0, 4.0])}
        >>> updates, _ = tx.update({"w": jnp.array([1.0, 2.0])}, tx.init(params), params)
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.002236, -0.004472]
    """
    check_hyperparams(
        "optgrad.lars",
        learning_rate=("lr", learning_rate),
        weight_decay=("nonneg", weight_decay),
        trust_coefficient=("nonneg", trust_coefficient),
        eps=("nonneg", eps),
        momentum=("nonneg", momentum),
    )

    def build(learning_rate, weight_decay, trust_coefficient, eps, momentum):
        return chain(
            add_decayed_weights(weight_decay, mask),
            scale_by_trust_ratio(
                trust_coefficient=trust_coefficient, eps=eps, mask=trust_ratio_mask
            ),
            scale_by_learning_rate(learning_rate),
            trace(momentum, nesterov),
        )

    return with_hyperparams(
        build,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        trust_coefficient=trust_coefficient,
        eps=eps,
        momentum=momentum,
    )


def fromage(
    learning_rate: ScalarOrSchedule, min_norm: ScalarOrSchedule = 1e-6
) -> GradientTransformation:
    r"""Fromage: a trust-ratio step, then a shrink that keeps the parameters' norms bounded.

    .. math::
        \theta_t = \frac{1}{\sqrt{1+\eta_t^2}} \left(\theta_{t-1} - \eta_t
        \frac{\|\theta_{t-1}\|}{\|g_t\|}\, g_t\right)

    per leaf (norms floored at ``min_norm``; the ratio is 1 where a norm is zero). Built as
    :func:`scale_by_trust_ratio`, then a decay by :math:`\eta/(1+\sqrt{1+\eta^2})` and the
    learning rate :math:`\eta/\sqrt{1+\eta^2}`, which is the same map with a non-negative decay
    and no cancellation in :math:`1/\sqrt{1+\eta^2} - 1` (Optax adds that negative decay
    after the step). ``torch.optim`` has no Fromage. Hyperparameters live in the state.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule of the step count.
        min_norm: a floor for both norms.

    Returns:
        A :class:`optgrad.GradientTransformation`; ``update`` needs the params.

    References:
        Bernstein et al., "On the distance between two neural networks and the stability of
        learning" (NeurIPS 2020), Algorithm 1.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.fromage(0.75)
        >>> params = {"w": jnp.array([3.0, 4.0])}
        >>> updates, _ = tx.update({"w": jnp.array([0.0, 1.0])}, tx.init(params), params)
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.6, -3.8]
    """
    check_hyperparams(
        "optgrad.fromage", learning_rate=("lr", learning_rate), min_norm=("nonneg", min_norm)
    )

    def build(learning_rate, min_norm):
        root = jnp.sqrt(1.0 + learning_rate * learning_rate)
        return chain(
            scale_by_trust_ratio(min_norm),
            add_decayed_weights(learning_rate / (1.0 + root)),
            scale_by_learning_rate(learning_rate / root),
        )

    return with_hyperparams(build, learning_rate=learning_rate, min_norm=min_norm)
