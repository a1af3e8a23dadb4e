"""``torch.optim.Adagrad``: eps outside the root, built-in inverse-time ``lr_decay``."""

from __future__ import annotations

from typing import Any

import jax

from .._base import GradientTransformation, ScalarOrSchedule
from .._hyperparams import with_hyperparams
from .._optimizers._adagrad import scale_by_rss
from .._optimizers._common import check_hyperparams
from .._optimizers._rmsprop import _denominator
from .._scale import scale_by_learning_rate
from .._weight_decay import add_decayed_weights
from ..schedules import inverse_time_decay
from ._optim import addcdiv_step, maximize_first


def Adagrad(
    lr: ScalarOrSchedule = 1e-2,
    lr_decay: ScalarOrSchedule = 0,
    weight_decay: ScalarOrSchedule = 0,
    initial_accumulator_value: float = 0,
    eps: ScalarOrSchedule = 1e-10,
    foreach: Any = None,
    *,
    maximize: bool = False,
    differentiable: bool = False,
    fused: Any = None,
) -> GradientTransformation:
    r"""``torch.optim.Adagrad``, step for step.

    .. math::
        g_t &\leftarrow \pm g_t + \lambda\,\theta_{t-1} \quad (- \text{ if } \texttt{maximize}) \\
        s_t &= s_{t-1} + g_t^2, \qquad s_0 = \texttt{initial\_accumulator\_value} \\
        \theta_t &= \theta_{t-1} - \frac{\gamma_t}{1 + (t-1)\,\delta}\cdot
            \frac{g_t}{\sqrt{s_t} + \epsilon}

    with :math:`\gamma` = ``lr``, :math:`\delta` = ``lr_decay`` (inverse-time decay counted in
    updates, :math:`t = 1` on the first), :math:`\lambda` = ``weight_decay``. Duchi, Hazan &
    Singer (2011).

    ``lr``, ``lr_decay``, ``weight_decay`` and ``eps`` are held in the state under these names
    and may be schedules of the update count; ``optgrad.tree.get(state, "lr")`` is
    :math:`\gamma_t`, before the ``lr_decay`` factor (like torch's ``param_groups[0]["lr"]``).
    ``initial_accumulator_value`` only sets the initial state. ``foreach``, ``differentiable``
    and ``fused`` are accepted and have no effect: XLA fuses the step under ``jit``. Sparse
    gradients do not exist in JAX; every entry is updated.

    Differences from :func:`optgrad.adagrad`: torch's accumulator starts at 0 (Optax 0.1),
    ``eps=1e-10`` outside the root (Optax ``1e-7`` inside), ``lr_decay``, ``weight_decay`` and
    ``maximize``.

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        lr_decay: the decay of the learning rate with the step count.
        weight_decay: the decay rate :math:`\lambda` (0 for none).
        initial_accumulator_value: the starting value of the sum of squares.
        eps: the :math:`\epsilon` that keeps the denominator away from zero.
        foreach: accepted for torch compatibility; no effect.
        maximize: ascend the objective instead of descending it (default ``False``).
        differentiable: accepted for torch compatibility; no effect.
        fused: accepted for torch compatibility; no effect.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the hyperparameters (by torch's
            names) and
            the optimizer's buffers.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.torch.Adagrad(lr=0.1, lr_decay=1.0)
        >>> params = {"w": jnp.ones(2)}
        >>> state = tx.init(params)
        >>> for _ in range(2):
        ...     updates, state = tx.update({"w": jnp.ones(2)}, state, params)
        >>> [round(x, 6) for x in updates["w"].tolist()]  # 0.1 / 2 / sqrt(2)
        [-0.035355, -0.035355]
    """
    call = "optgrad.torch.Adagrad"
    del foreach, differentiable, fused
    if callable(initial_accumulator_value):
        raise TypeError(
            f"{call}(initial_accumulator_value=...) must be a number (it only sets the initial "
            f"state), got a schedule: {initial_accumulator_value!r}"
        )
    check_hyperparams(
        call,
        lr=("lr", lr),
        lr_decay=("nonneg", lr_decay),
        weight_decay=("nonneg", weight_decay),
        initial_accumulator_value=("nonneg", initial_accumulator_value),
        eps=("nonneg", eps),
    )

    def build(lr, lr_decay, weight_decay, eps):
        return addcdiv_step(
            call,
            [*maximize_first(maximize), add_decayed_weights(weight_decay)],
            scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt=False),
            # Evaluated at count = t - 1 updates so far: torch's lr / (1 + (t - 1) lr_decay).
            scale_by_learning_rate(inverse_time_decay(lr, lr_decay)),
            lambda state: jax.tree.map(
                lambda s: _denominator(s, eps, eps_in_sqrt=False), state.sum_of_squares
            ),
        )

    return with_hyperparams(build, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps)
