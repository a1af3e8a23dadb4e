"""``torch.optim.Adamax``: Adam with an exponentially weighted infinity norm."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import as_scalar, bias_correction, safe_increment, zero_count, zeros_like
from .._optimizers._common import check_hyperparams
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from .._weight_decay import add_decayed_weights
from ._optim import check_betas, maximize_first
from ._rounding import lerp


class AdamaxState(NamedTuple):
    """``count`` (int32), torch's ``exp_avg`` :math:`m` and ``exp_inf`` :math:`u`."""

    count: jax.Array
    exp_avg: Any
    exp_inf: Any


def _scale_by_adamax(b1: Any, b2: Any, eps: Any) -> GradientTransformation:
    """Adamax's direction :math:`m_t / ((1-\\beta_1^t)\\, u_t)`."""
    call = "optgrad.torch.Adamax"

    def init_fn(params):
        return AdamaxState(zero_count(), zeros_like(params), zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.exp_avg, "exp_avg")
        beta1, beta2, e = map(as_scalar, (b1, b2, eps))
        count = safe_increment(state.count)
        c1 = 1.0 / bias_correction(beta1, count)
        exp_avg = jax.tree.map(lambda g, m: lerp(m, g, 1.0 - beta1), updates, state.exp_avg)
        exp_inf = jax.tree.map(
            lambda g, u: jnp.maximum(beta2 * u, jnp.abs(g) + e), updates, state.exp_inf
        )
        out = jax.tree.map(lambda g, m, u: (c1 * m / u).astype(g.dtype), updates, exp_avg, exp_inf)
        cast = lambda new, like: jax.tree.map(lambda n, l: n.astype(l.dtype), new, like)  # noqa: E731
        return out, AdamaxState(count, cast(exp_avg, state.exp_avg), cast(exp_inf, state.exp_inf))

    return GradientTransformation(init_fn, update_fn)


def Adamax(
    lr: ScalarOrSchedule = 2e-3,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0,
    foreach: Any = None,
    *,
    maximize: bool = False,
    differentiable: bool = False,
    capturable: bool = False,
) -> GradientTransformation:
    r"""``torch.optim.Adamax``, step for step.

    .. math::
        g_t &\leftarrow \pm g_t + \lambda\,\theta_{t-1} \quad (- \text{ if } \texttt{maximize}) \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        u_t = \max(\beta_2 u_{t-1},\ |g_t| + \epsilon) \\
        \theta_t &= \theta_{t-1} - \frac{\gamma_t}{1-\beta_1^t}\, \frac{m_t}{u_t}

    with :math:`\gamma` = ``lr``, :math:`\lambda` = ``weight_decay`` (L2); :math:`m_0 = u_0 =
    0`, and :math:`\epsilon` sits inside the maximum (so :math:`u_t \ge \epsilon`). Kingma & Ba,
    "Adam: A Method for Stochastic Optimization" (2015), Section 7.1 (AdaMax).

    ``lr``, ``betas`` (a pair), ``eps`` and ``weight_decay`` are held in the state under these
    names and may be schedules of the update count; the buffers are ``exp_avg`` and
    ``exp_inf``. ``foreach``, ``differentiable`` and ``capturable`` are accepted and have no
    effect: XLA fuses the step under ``jit``. Real parameters only.

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        betas: the pair :math:`(\beta_1, \beta_2)` of moment decays.
        eps: the :math:`\epsilon` that keeps the denominator away from zero.
        weight_decay: the decay rate :math:`\lambda` (0 for none).
        foreach: accepted for torch compatibility; no effect.
        maximize: ascend the objective instead of descending it (default ``False``).
        differentiable: accepted for torch compatibility; no effect.
        capturable: accepted for torch compatibility; no effect.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the hyperparameters (by torch's
            names) and
            the optimizer's buffers.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.torch.Adamax(lr=0.1, eps=0.0)
        >>> params = {"w": jnp.zeros(2)}
        >>> updates, state = tx.update({"w": jnp.array([2.0, -4.0])}, tx.init(params), params)
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.1, 0.1]
    """
    del foreach, differentiable, capturable
    call = "optgrad.torch.Adamax"
    check_hyperparams(call, lr=("lr", lr))
    betas = check_betas(call, betas)
    check_hyperparams(call, eps=("nonneg", eps), weight_decay=("nonneg", weight_decay))

    def build(lr, betas, eps, weight_decay):
        return chain(
            *maximize_first(maximize),
            add_decayed_weights(weight_decay),
            _scale_by_adamax(*betas, eps),
            scale_by_learning_rate(lr),
        )

    return with_hyperparams(build, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
