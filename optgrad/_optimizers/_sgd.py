"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Any

from .._accumulation import trace
from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._scale import scale_by_learning_rate
from .._weight_decay import add_decayed_weights
from ._common import check_hyperparams


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: ScalarOrSchedule | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
    *,
    weight_decay: ScalarOrSchedule | None = None,
    mask: Any = None,
) -> GradientTransformation:
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum and weight decay.

    .. math::
        g_t \leftarrow g_t + \lambda \theta_{t-1}, \quad
        b_t = \mu b_{t-1} + g_t, \quad
        \theta_t = \theta_{t-1} - \eta_t \cdot
        \begin{cases} g_t + \mu b_t & \text{nesterov} \\ b_t & \text{otherwise} \end{cases}

    with :math:`\mu` = ``momentum`` (no buffer when ``None``) and :math:`\lambda` =
    ``weight_decay``, folded into the gradient as L2 regularisation like
    ``torch.optim.SGD(weight_decay=...)`` (``mask`` selects the leaves to decay). With the
    default ``weight_decay=None`` there is no decay stage and ``update`` needs no params, as in
    Optax; pass a number (``0.0`` included) to hold it in the state and change it later. The
    learning rate multiplies the whole velocity, as in PyTorch and Optax. Robbins & Monro
    (1951); Polyak (1964); Sutskever et al., "On the importance of initialization and
    momentum in deep learning" (2013).

    PyTorch equivalent: ``torch.optim.SGD(lr, momentum, nesterov=..., weight_decay=wd)`` is
    ``sgd(lr, momentum, nesterov, weight_decay=wd)``: torch's ``weight_decay`` is this coupled
    L2 term (added to the gradient before the momentum, not decoupled). For ``dampening`` and
    torch's names use ``optgrad.torch.SGD``.

    Args:
        learning_rate: the step size :math:`\eta`, a number or a schedule of the step count.
        momentum: the momentum decay; ``None`` (default) for plain SGD.
        nesterov: use Nesterov momentum (default ``False``).
        accumulator_dtype: dtype of the momentum buffer (default: the params').
        weight_decay: an L2 decay rate added to the gradient; ``None`` (default) for none.
        mask: a tree of booleans (or a function of the params giving one) selecting the leaves to
            decay.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the momentum buffer, if any.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.sgd(0.1, momentum=0.9)
        >>> state = tx.init({"w": jnp.zeros(2)})
        >>> tx.update({"w": jnp.ones(2)}, state)[0]["w"].tolist()
        [-0.10000000149011612, -0.10000000149011612]
    """
    call = "optgrad.sgd"
    if nesterov and momentum is None:
        raise ValueError(
            f"{call}(nesterov=True) needs momentum: Nesterov's method is a form of momentum. "
            "Pass e.g. `optgrad.sgd(learning_rate, momentum=0.9, nesterov=True)`."
        )
    check_hyperparams(call, learning_rate=("lr", learning_rate))
    hyperparams = {"learning_rate": learning_rate}
    if momentum is not None:
        check_hyperparams(call, momentum=("nonneg", momentum))
        hyperparams["momentum"] = momentum
    if weight_decay is not None:
        check_hyperparams(call, weight_decay=("nonneg", weight_decay))
        hyperparams["weight_decay"] = weight_decay
    elif mask is not None:
        raise ValueError(f"{call}(mask=...) selects leaves for weight decay: pass weight_decay too")

    def build(learning_rate, momentum=None, weight_decay=None):
        parts = [] if weight_decay is None else [add_decayed_weights(weight_decay, mask)]
        if momentum is not None:
            parts.append(trace(momentum, nesterov, accumulator_dtype))
        parts.append(scale_by_learning_rate(learning_rate))
        return chain(*parts)

    return with_hyperparams(build, **hyperparams)
