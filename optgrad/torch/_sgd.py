"""``torch.optim.SGD``: stochastic gradient descent with momentum, dampening and Nesterov."""

from __future__ import annotations

from typing import Any

from .. import _check
from .._accumulation import scaled_trace
from .._base import GradientTransformation, ScalarOrSchedule, identity
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._optimizers._common import check_hyperparams
from .._scale import scale_by_learning_rate
from .._weight_decay import add_decayed_weights
from ._optim import keeps_buffer, maximize_first


def SGD(
    lr: ScalarOrSchedule = 1e-3,
    momentum: ScalarOrSchedule = 0,
    dampening: ScalarOrSchedule = 0,
    weight_decay: ScalarOrSchedule = 0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
    foreach: Any = None,
    differentiable: bool = False,
    fused: Any = None,
) -> GradientTransformation:
    r"""``torch.optim.SGD``, step for step.

    .. math::
        g_t &\leftarrow \pm g_t + \lambda\,\theta_{t-1}
            \quad (- \text{ if } \texttt{maximize}) \\
        b_1 &= g_1, \qquad b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t \\
        \theta_t &= \theta_{t-1} - \gamma_t
            \begin{cases} g_t + \mu\, b_t & \text{nesterov} \\ b_t & \text{otherwise}\end{cases}

    with :math:`\gamma` = ``lr``, :math:`\mu` = ``momentum``, :math:`\tau` = ``dampening``,
    :math:`\lambda` = ``weight_decay`` (L2, folded into the gradient). The first momentum buffer
    is the gradient itself, undamped, as in torch. The learning rate multiplies the whole
    velocity, so changing ``lr`` rescales past momentum too (torch's convention).

    A momentum buffer is kept only when ``momentum`` is not 0 (or is a schedule); without one,
    ``momentum`` and ``dampening`` are not held in the state, so they cannot be turned on later
    with ``optgrad.tree.set`` (build the optimizer with a non-zero momentum or a schedule
    instead). ``lr``, ``weight_decay`` and, with a buffer, ``momentum`` and ``dampening`` are
    held in the state by these names and may be schedules of the update count (for example
    ``optgrad.torch.lr_scheduler.StepLR``). ``foreach``, ``differentiable`` and ``fused`` are
    accepted and have no effect: XLA fuses the step under ``jit``. Stricter than torch:
    ``dampening`` must lie in ``[0, 1]``.

    Differences from :func:`optgrad.sgd`: torch's names and defaults (``lr=1e-3``), ``dampening``,
    ``maximize``, and ``weight_decay`` held in the state even when 0.

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        momentum: the momentum factor :math:`\mu` (0 for none).
        dampening: the dampening :math:`\tau` of the momentum, in ``[0, 1]``.
        weight_decay: the decay rate :math:`\lambda` (0 for none).
        nesterov: use Nesterov momentum.
        maximize: ascend the objective instead of descending it (default ``False``).
        foreach: accepted for torch compatibility; no effect.
        differentiable: accepted for torch compatibility; no effect.
        fused: accepted for torch compatibility; no effect.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the hyperparameters (by torch's
            names) and
            the optimizer's buffers.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.torch.SGD(lr=0.1, momentum=0.9)
        >>> params = {"w": jnp.ones(2)}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.ones(2)}, state, params)
        >>> updates, state = tx.update({"w": jnp.ones(2)}, state, params)
        >>> [round(x, 6) for x in updates["w"].tolist()], float(og.tree.get(state, "lr"))
        ([-0.19, -0.19], 0.10000000149011612)
    """
    call = "optgrad.torch.SGD"
    del foreach, differentiable, fused
    check_hyperparams(
        call,
        lr=("lr", lr),
        momentum=("nonneg", momentum),
        dampening=("closed_unit", dampening),
        weight_decay=("nonneg", weight_decay),
    )
    mu, tau = _check.concrete_float(momentum), _check.concrete_float(dampening)
    if nesterov and ((mu is not None and mu <= 0) or (tau is not None and tau != 0)):
        raise ValueError(
            f"{call}(nesterov=True) requires momentum > 0 and dampening=0, got "
            f"momentum={momentum!r}, dampening={dampening!r} (torch: 'Nesterov momentum "
            "requires a momentum and zero dampening'). Pass e.g. "
            f"`{call}(lr, momentum=0.9, nesterov=True)`."
        )
    hyperparams: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay}
    if keeps_buffer(momentum):
        hyperparams.update(momentum=momentum, dampening=dampening)

    def build(lr, weight_decay, momentum=None, dampening=None):
        parts = [*maximize_first(maximize), add_decayed_weights(weight_decay)]
        if momentum is None:
            return chain(*parts, scale_by_learning_rate(lr))
        if callable(lr):
            return chain(
                *parts,
                scaled_trace(momentum, nesterov, dampening=dampening),
                scale_by_learning_rate(lr),
            )
        # -lr folded into the momentum's output (no temporary for ``g + wd * p``, see
        # ``scaled_trace``); ``identity`` keeps the state tree of the unfused chain.
        buffer = scaled_trace(momentum, nesterov, dampening=dampening, out_scale=-lr)
        return chain(*parts, buffer, identity())

    return with_hyperparams(build, **hyperparams)
