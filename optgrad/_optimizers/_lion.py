"""Lion: the sign of an interpolation between the momentum and the gradient."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from .. import _check
from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import as_scalar, canonical_dtype, safe_increment, zero_count, zeros_like
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from .._weight_decay import add_decayed_weights
from ._common import check_hyperparams
from ._moments import cast_like, ema

_MODES = ("hard", "smooth", "refined")


class ScaleByLionState(NamedTuple):
    """``count`` (int32) and the momentum ``mu``, mirroring the params."""

    count: jax.Array
    mu: Any


def _squash(mode: str, smooth_beta: float):
    if mode == "hard":
        return jnp.sign
    if mode == "smooth":
        return lambda c: jnp.tanh(smooth_beta * c)
    return lambda c: jnp.where(jnp.abs(c) < 1.0, c, jnp.sign(c))  # "refined"


def scale_by_lion(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.99,
    mu_dtype: Any = None,
    *,
    mode: Literal["hard", "smooth", "refined"] = "hard",
    smooth_beta: float = 1.0,
) -> GradientTransformation:
    r"""Lion's direction.

    .. math::
        c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        d_t = \mathrm{sign}(c_t), \quad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t

    Both :math:`c_t` and :math:`m_t` come from the old momentum. ``mode="smooth"`` replaces the
    sign by :math:`\tanh(\beta_s c_t)` (:math:`\beta_s` = ``smooth_beta``) and
    ``mode="refined"`` by :math:`c_t` clipped to :math:`[-1, 1]` (Optax's variants). For
    complex gradients ``sign`` is the unit phase :math:`c/|c|` (``"hard"`` and ``"refined"``).

    Args:
        b1: the interpolation :math:`\beta_1` in ``[0, 1)``.
        b2: the momentum decay :math:`\beta_2` in ``[0, 1)``.
        mu_dtype: dtype of the momentum (default: the params').
        mode: ``"hard"`` (the paper's sign), ``"smooth"`` or ``"refined"``.
        smooth_beta: :math:`\beta_s > 0` for ``mode="smooth"``.

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`ScaleByLionState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_lion()
        >>> params = {"w": jnp.zeros(2)}
        >>> tx.update({"w": jnp.array([0.5, -2.0])}, tx.init(params))[0]["w"].tolist()
        [1.0, -1.0]

    References:
        Chen et al., "Symbolic Discovery of Optimization Algorithms" (NeurIPS 2023),
        Algorithm 2.
    """
    call = "optgrad.scale_by_lion"
    check_hyperparams(call, b1=("unit", b1), b2=("unit", b2))
    _check.one_of(call, "mode", mode, _MODES)
    _check.positive(call, "smooth_beta", smooth_beta)
    mu_dtype = canonical_dtype(mu_dtype)
    squash = _squash(mode, smooth_beta)

    def init_fn(params):
        return ScaleByLionState(zero_count(), zeros_like(params, mu_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.mu, "mu")
        beta1, beta2 = as_scalar(b1), as_scalar(b2)
        mu = ema(updates, state.mu, beta2)
        updates = jax.tree.map(
            lambda g, m: squash(beta1 * m + (1.0 - beta1) * g).astype(g.dtype), updates, state.mu
        )
        return updates, ScaleByLionState(safe_increment(state.count), cast_like(mu, state.mu))

    return GradientTransformation(init_fn, update_fn)


def lion(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.99,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: Any = None,
) -> GradientTransformation:
    r"""Lion with decoupled weight decay.

    .. math:: \theta_t = \theta_{t-1} - \eta_t \left(\mathrm{sign}(c_t) + \lambda\,
        \theta_{t-1}\right)

    with :math:`c_t` from :func:`scale_by_lion` and :math:`\lambda` = ``weight_decay`` on the
    leaves selected by ``mask``, as in the paper's Algorithm 2. Every coordinate moves by
    :math:`\eta_t` per step, so Lion wants a learning rate 3-10 times smaller than AdamW's and
    a weight decay as many times larger (the paper's advice). ``torch.optim`` has no Lion.
    Hyperparameters live in the state.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule of the step count.
        b1, b2, mu_dtype: as in :func:`scale_by_lion`.
        weight_decay: :math:`\lambda \ge 0`, a number or a schedule.
        mask: which leaves to decay (default: all).

    Returns:
        A :class:`optgrad.GradientTransformation`; ``update`` needs the params.

    References:
        Chen et al., "Symbolic Discovery of Optimization Algorithms" (NeurIPS 2023).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.lion(0.1, weight_decay=0.0)
        >>> params = {"w": jnp.zeros(3)}
        >>> updates, _ = tx.update({"w": jnp.array([3.0, -0.5, 0.0])}, tx.init(params), params)
        >>> updates["w"].tolist()
        [-0.10000000149011612, 0.10000000149011612, -0.0]
    """
    check_hyperparams(
        "optgrad.lion",
        learning_rate=("lr", learning_rate),
        b1=("unit", b1),
        b2=("unit", b2),
        weight_decay=("nonneg", weight_decay),
    )

    def build(learning_rate, b1, b2, weight_decay):
        return chain(
            scale_by_lion(b1, b2, mu_dtype),
            add_decayed_weights(weight_decay, mask),
            scale_by_learning_rate(learning_rate),
        )

    return with_hyperparams(
        build, learning_rate=learning_rate, b1=b1, b2=b2, weight_decay=weight_decay
    )
