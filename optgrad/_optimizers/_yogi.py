"""Yogi: Adam whose second moment moves additively, by the sign of its gap to ``g**2``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import _check
from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import (
    abs_sq,
    as_scalar,
    bias_correction,
    full_like,
    safe_increment,
    zero_count,
)
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from ._adam import ScaleByAdamState
from ._common import check_hyperparams
from ._moments import cast_like, ema, real_full_like


def _rules(b1, b2, eps):
    return {"b1": ("unit", b1), "b2": ("unit", b2), "eps": ("nonneg", eps)}


def scale_by_yogi(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-3,
    eps_root: float | jax.Array = 0.0,
    initial_accumulator_value: float = 1e-6,
) -> GradientTransformation:
    r"""Yogi's direction: Adam's, with an additive update of the second moment.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = v_{t-1} - (1-\beta_2)\, \mathrm{sign}(v_{t-1} - |g_t|^2)\, |g_t|^2, \quad
        d_t = \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t) + \epsilon_{root}} + \epsilon}

    with :math:`m_0 = v_0 =` ``initial_accumulator_value``. The paper (Algorithm 2) has no bias
    correction and starts :math:`m_0 = 0`; optgrad follows Optax (both moments start at
    ``initial_accumulator_value`` and both are bias-corrected), so ports give the same numbers.
    :math:`v_t` stays non-negative: a step can at most shrink it to :math:`\beta_2 v_{t-1}`.
    Complex gradients are supported (:math:`|g|^2` is the squared modulus; ``nu`` is real).

    Args:
        b1, b2: decay rates :math:`\beta_1, \beta_2` in ``[0, 1)``.
        eps: :math:`\epsilon`, outside the root.
        eps_root: :math:`\epsilon_{root}`, inside it.
        initial_accumulator_value: :math:`m_0 = v_0 \ge 0` (a number; used by ``init``).

    Returns:
        A :class:`optgrad.GradientTransformation` with state
        :class:`optgrad.ScaleByAdamState` (as in Optax).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_yogi()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)

    References:
        Zaheer et al., "Adaptive Methods for Nonconvex Optimization" (NeurIPS 2018),
        Algorithm 2.
    """
    call = "optgrad.scale_by_yogi"
    check_hyperparams(call, eps_root=("nonneg", eps_root), **_rules(b1, b2, eps))
    _check.non_negative(call, "initial_accumulator_value", initial_accumulator_value)

    def init_fn(params):
        return ScaleByAdamState(
            zero_count(),
            full_like(params, initial_accumulator_value),
            real_full_like(params, initial_accumulator_value),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.mu, "mu")
        beta1, beta2, e, e_root = map(as_scalar, (b1, b2, eps, eps_root))
        count = safe_increment(state.count)
        c1 = 1.0 / bias_correction(beta1, count)
        c2 = 1.0 / bias_correction(beta2, count)
        mu = ema(updates, state.mu, beta1)

        def second(g, v):
            g2 = abs_sq(g)
            return v - (1.0 - beta2) * jnp.sign(v - g2) * g2

        nu = jax.tree.map(second, updates, state.nu)
        updates = jax.tree.map(
            lambda g, m, v: (m * c1 / (jnp.sqrt(v * c2 + e_root) + e)).astype(g.dtype),
            updates,
            mu,
            nu,
        )
        return updates, ScaleByAdamState(count, cast_like(mu, state.mu), cast_like(nu, state.nu))

    return GradientTransformation(init_fn, update_fn)


def yogi(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-3,
) -> GradientTransformation:
    r"""Yogi: :math:`\theta_t = \theta_{t-1} - \eta_t d_t` with :math:`d_t` from
    :func:`scale_by_yogi` (see there for the maths and the differences from the paper).

    ``torch.optim`` has no Yogi. Hyperparameters live in the state.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule of the step count.
        b1, b2, eps: as in :func:`scale_by_yogi`.

    Returns:
        A :class:`optgrad.GradientTransformation`.

    References:
        Zaheer et al., "Adaptive Methods for Nonconvex Optimization" (NeurIPS 2018).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.yogi(0.1)
        >>> updates, _ = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init({"w": jnp.zeros(2)}))
        >>> [round(x, 3) for x in updates["w"].tolist()]
        [-0.1, 0.1]
    """
    check_hyperparams("optgrad.yogi", learning_rate=("lr", learning_rate), **_rules(b1, b2, eps))

    def build(learning_rate, b1, b2, eps):
        return chain(scale_by_yogi(b1, b2, eps), scale_by_learning_rate(learning_rate))

    return with_hyperparams(build, learning_rate=learning_rate, b1=b1, b2=b2, eps=eps)
