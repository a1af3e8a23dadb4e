"""Polyak step sizes: the step that would reach a known lower bound of the loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import _check
from .._base import GradientTransformation, ScalarOrSchedule, init_empty_state
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import as_scalar
from .._scale import scale_by_learning_rate
from ..tree import sum_of_squares
from ._common import check_hyperparams

_VARIANTS = ("sps", "sps+")
# Below this squared norm the gradient counts as zero and the step is 0 (Optax's threshold: the
# float64 machine epsilon).
_TINY = float(jnp.finfo(jnp.float64).eps)


def scale_by_polyak(
    f_min: float | jax.Array = 0.0,
    max_learning_rate: float | jax.Array = 1.0,
    eps: float | jax.Array = 0.0,
    variant: str = "sps",
) -> GradientTransformation:
    r"""Multiplies the updates by the (stochastic) Polyak step size.

    .. math::
        \gamma_t = \min\left\{\frac{f(\theta_{t-1}) - f^\star}{\|g_t\|^2 + \epsilon},\;
        \gamma_{max}\right\}, \qquad u_t = \gamma_t\, g_t

    with :math:`f^\star` = ``f_min``, :math:`\gamma_{max}` = ``max_learning_rate``. The
    variant ``"sps+"`` uses :math:`\max(f - f^\star, 0)`. When :math:`\|g\|^2 + \epsilon` is
    below the float64 machine epsilon the step is 0 (no 0/0). ``update`` needs the loss:
    ``tx.update(grads, state, params, value=loss)``; the norm is taken over the whole tree in
    float32 or wider.

    Args:
        f_min: :math:`f^\star`, a lower bound of the loss.
        max_learning_rate: :math:`\gamma_{max} \ge 0`.
        eps: :math:`\epsilon \ge 0`, added to the squared norm.
        variant: ``"sps"`` or ``"sps+"``.

    Returns:
        A stateless :class:`GradientTransformation` that reads ``value=``.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx, params = og.scale_by_polyak(), {"w": jnp.array([1.0, -2.0])}
        >>> grads = {"w": jnp.array([2.0, 0.0])}
        >>> tx.update(grads, tx.init(params), params, value=jnp.array(2.0))[0]["w"].tolist()
        [1.0, 0.0]

    References:
        Polyak, "Introduction to Optimization" (1987), section 5.3; Loizou, Vaswani, Laradji &
        Lacoste-Julien, "Stochastic Polyak Step-size for SGD" (AISTATS 2021), eq. (4) (SPS_max);
        Garrigos, Gower & Schaipp, "Function Value Learning: Adaptive Learning Rates Based on
        the Polyak Stepsize and Function Splitting in ERM" (2023) (SPS+).
    """
    call = "optgrad.scale_by_polyak"
    _check.one_of(call, "variant", variant, _VARIANTS)
    _check.scalar_or_schedule(call, "f_min", f_min)
    _check.number(call, "f_min", f_min)
    check_hyperparams(call, max_learning_rate=("nonneg", max_learning_rate), eps=("nonneg", eps))

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        if value is None:
            raise ValueError(
                f"{call}.update needs the loss: call `tx.update(grads, state, params, "
                "value=loss)` with the loss at the params the gradients were taken at"
            )
        sq = sum_of_squares(updates) + as_scalar(eps)
        gap = jnp.asarray(value).astype(sq.dtype) - as_scalar(f_min)
        if variant == "sps+":
            gap = jnp.maximum(gap, 0.0)
        zero = sq <= _TINY
        step = jnp.where(
            zero, 0.0, jnp.minimum(gap / jnp.where(zero, 1.0, sq), as_scalar(max_learning_rate))
        )
        return jax.tree.map(lambda g: (g * step).astype(g.dtype), updates), state

    return GradientTransformation(init_empty_state, update_fn)


def polyak_sgd(
    max_learning_rate: ScalarOrSchedule = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: ScalarOrSchedule = 0.0,
    eps: ScalarOrSchedule = 0.0,
    variant: str = "sps",
) -> GradientTransformation:
    r"""SGD with the Polyak step size:
    :math:`\theta_t = \theta_{t-1} - s_t \gamma_t g_t` with :math:`\gamma_t` from
    :func:`scale_by_polyak` and :math:`s_t` = ``scaling`` (a number or a schedule).

    ``update`` needs the loss at the current params: ``tx.update(grads, state, params,
    value=loss)``.

    **Differs from Optax 0.2.8** when ``scaling`` is not 1: Optax scales the gradient *before*
    computing the Polyak step from its norm, so its step is
    :math:`\min\{(f-f^\star)/(s\|g\|^2), s\gamma_{max}\}\, g` (``scaling=2`` halves the
    step instead of doubling it), contrary to its own documented formula, which optgrad
    implements (:func:`scale_by_polyak` first, then the scaling).

    Set ``f_min`` to a lower bound of the loss (0 for models that interpolate the data); a
    wrong one can make it diverge. PyTorch has no Polyak SGD.

    Args:
        max_learning_rate: :math:`\gamma_{max}`.
        scaling: :math:`s_t`.
        f_min, eps, variant: see :func:`scale_by_polyak`.

    Returns:
        A :class:`GradientTransformation` that reads ``value=``.

    References:
        Loizou, Vaswani, Laradji & Lacoste-Julien, "Stochastic Polyak Step-size for SGD: An
        Adaptive Learning Rate for Fast Convergence" (AISTATS 2021).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.polyak_sgd()
        >>> params = {"w": jnp.array([2.0])}  # f(w) = w^2: value 4, gradient 4, step 1/4
        >>> tx.update({"w": jnp.array([4.0])}, tx.init(params), params, value=4.0)[0]["w"].tolist()
        [-1.0]
    """
    call = "optgrad.polyak_sgd"
    _check.one_of(call, "variant", variant, _VARIANTS)
    check_hyperparams(
        call,
        max_learning_rate=("nonneg", max_learning_rate),
        scaling=("lr", scaling),
        eps=("nonneg", eps),
    )
    _check.scalar_or_schedule(call, "f_min", f_min)
    _check.number(call, "f_min", f_min)

    def build(max_learning_rate, scaling, f_min, eps):
        return chain(
            scale_by_polyak(f_min, max_learning_rate, eps, variant),
            scale_by_learning_rate(scaling),
        )

    return with_hyperparams(
        build, max_learning_rate=max_learning_rate, scaling=scaling, f_min=f_min, eps=eps
    )
