"""``torch.optim.Adadelta``: eps inside both roots, a running average of squared steps."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import abs_sq, as_scalar, zeros_like
from .._optimizers._common import check_hyperparams
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from .._weight_decay import add_decayed_weights
from ._optim import maximize_first


class AdadeltaState(NamedTuple):
    """torch's ``square_avg`` :math:`v` and ``acc_delta`` :math:`u`, mirroring the params."""

    square_avg: Any
    acc_delta: Any


def _scale_by_adadelta(rho: Any, eps: Any) -> GradientTransformation:
    """Adadelta's step :math:`\\sqrt{u + \\epsilon} / \\sqrt{v + \\epsilon}\\, g` (unscaled)."""
    call = "optgrad.torch.Adadelta"

    def init_fn(params):
        return AdadeltaState(zeros_like(params), zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.square_avg, "square_avg")
        r, e = as_scalar(rho), as_scalar(eps)
        square_avg = jax.tree.map(
            lambda g, v: r * v + (1.0 - r) * abs_sq(g), updates, state.square_avg
        )
        steps = jax.tree.map(
            lambda g, v, u: jnp.sqrt(u + e) / jnp.sqrt(v + e) * g,
            updates,
            square_avg,
            state.acc_delta,
        )
        acc_delta = jax.tree.map(lambda d, u: r * u + (1.0 - r) * abs_sq(d), steps, state.acc_delta)
        cast = lambda new, like: jax.tree.map(lambda n, l: n.astype(l.dtype), new, like)  # noqa: E731
        return cast(steps, updates), AdadeltaState(
            cast(square_avg, state.square_avg), cast(acc_delta, state.acc_delta)
        )

    return GradientTransformation(init_fn, update_fn)


def Adadelta(
    lr: ScalarOrSchedule = 1.0,
    rho: ScalarOrSchedule = 0.9,
    eps: ScalarOrSchedule = 1e-6,
    weight_decay: ScalarOrSchedule = 0,
    foreach: Any = None,
    *,
    capturable: bool = False,
    maximize: bool = False,
    differentiable: bool = False,
) -> GradientTransformation:
    r"""``torch.optim.Adadelta``, step for step.

    .. math::
        g_t &\leftarrow \pm g_t + \lambda\,\theta_{t-1} \quad (- \text{ if } \texttt{maximize}) \\
        v_t &= \rho\, v_{t-1} + (1-\rho)\, g_t^2 \\
        \Delta_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t, \qquad
        u_t = \rho\, u_{t-1} + (1-\rho)\, \Delta_t^2 \\
        \theta_t &= \theta_{t-1} - \gamma_t\, \Delta_t

    with :math:`\gamma` = ``lr`` (1 in the paper), :math:`\rho` = ``rho``, :math:`\lambda` =
    ``weight_decay`` (L2, folded into the gradient); :math:`v_0 = u_0 = 0` and
    :math:`\epsilon` sits inside both roots. Zeiler, "ADADELTA: An Adaptive Learning Rate
    Method" (2012), Algorithm 1.

    ``lr``, ``rho``, ``eps`` and ``weight_decay`` are held in the state under these names and
    may be schedules of the update count; the buffers are ``square_avg`` and ``acc_delta``
    (``optgrad.tree.get(state, "acc_delta")``). ``foreach``, ``capturable`` and
    ``differentiable`` are accepted and have no effect: XLA fuses the step under ``jit``.
    Real parameters only (torch treats a complex one as pairs of reals).

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        rho: the decay :math:`\rho` of the running averages.
        eps: the :math:`\epsilon` that keeps the denominator away from zero.
        weight_decay: the decay rate :math:`\lambda` (0 for none).
        foreach: accepted for torch compatibility; no effect.
        capturable: accepted for torch compatibility; no effect.
        maximize: ascend the objective instead of descending it (default ``False``).
        differentiable: accepted for torch compatibility; no effect.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the hyperparameters (by torch's
            names) and
            the optimizer's buffers.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.torch.Adadelta(lr=1.0, rho=0.0, eps=1.0)
        >>> params = {"w": jnp.zeros(2)}
        >>> updates, state = tx.update({"w": jnp.full(2, 3.0)}, tx.init(params), params)
        >>> [round(x, 6) for x in updates["w"].tolist()]  # -sqrt(0 + 1) / sqrt(9 + 1) * 3
        [-0.948683, -0.948683]
    """
    del foreach, capturable, differentiable
    call = "optgrad.torch.Adadelta"
    check_hyperparams(
        call,
        lr=("lr", lr),
        rho=("closed_unit", rho),
        eps=("nonneg", eps),
        weight_decay=("nonneg", weight_decay),
    )

    def build(lr, rho, eps, weight_decay):
        return chain(
            *maximize_first(maximize),
            add_decayed_weights(weight_decay),
            _scale_by_adadelta(rho, eps),
            scale_by_learning_rate(lr),
        )

    return with_hyperparams(build, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
