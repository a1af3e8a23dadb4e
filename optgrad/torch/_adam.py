"""``torch.optim.Adam`` and ``torch.optim.AdamW`` (with ``amsgrad``, coupled or decoupled decay)."""

from __future__ import annotations

from typing import Any

from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._optimizers._adam import scale_by_adam, scale_by_amsgrad
from .._optimizers._common import check_hyperparams
from .._scale import scale_by_learning_rate
from .._weight_decay import add_decayed_weights
from ._optim import check_betas, maximize_first


def _adam(call, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled):
    check_hyperparams(call, lr=("lr", lr))
    betas = check_betas(call, betas)
    check_hyperparams(call, eps=("nonneg", eps), weight_decay=("nonneg", weight_decay))

    def build(lr, betas, eps, weight_decay):
        b1, b2 = betas
        if amsgrad:
            scaler = scale_by_amsgrad(b1, b2, eps, max_of_raw_nu=True)
        else:
            scaler = scale_by_adam(b1, b2, eps)
        decay = add_decayed_weights(weight_decay)
        middle = [scaler, decay] if decoupled else [decay, scaler]
        return chain(*maximize_first(maximize), *middle, scale_by_learning_rate(lr))

    return with_hyperparams(build, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def Adam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 0,
    amsgrad: bool = False,
    *,
    foreach: Any = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
    fused: Any = None,
    decoupled_weight_decay: bool = False,
) -> GradientTransformation:
    r"""``torch.optim.Adam``, step for step.

    .. math::
        g_t &\leftarrow \pm g_t + \lambda\,\theta_{t-1}
            \quad (- \text{ if } \texttt{maximize}; \text{ the } \lambda \text{ term only when
            coupled}) \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        \theta_t &= \theta_{t-1} - \gamma_t \left(\frac{m_t / (1-\beta_1^t)}
            {\sqrt{\hat v_t / (1-\beta_2^t)} + \epsilon}
            + \lambda\,\theta_{t-1} \,[\text{decoupled}]\right)

    with :math:`\hat v_t = v_t`, or with ``amsgrad=True`` :math:`\hat v_t = \max(\hat v_{t-1},
    v_t)`: torch's AMSGrad takes the maximum of the *raw* second moment and bias-corrects
    afterwards (Optax's :func:`optgrad.amsgrad` takes it of the corrected one, and the
    trajectories differ). :math:`\epsilon` is added outside the root, after the correction.
    ``weight_decay`` :math:`\lambda` is L2 folded into the gradient by default, or decoupled and
    multiplied by the learning rate with ``decoupled_weight_decay=True`` (= :func:`AdamW`).
    Kingma & Ba (2015); Reddi et al. (2018); Loshchilov & Hutter (2019).

    ``lr``, ``betas`` (a pair), ``eps`` and ``weight_decay`` are held in the state under these
    names and may be schedules of the update count: ``optgrad.tree.get(state, "betas")``.
    ``foreach``, ``capturable``, ``differentiable`` and ``fused`` are accepted and have no
    effect: XLA fuses the step under ``jit``.

    Differences from :func:`optgrad.adam`: torch's names (``lr``, ``betas``), ``weight_decay``,
    ``maximize``, and torch's AMSGrad. Without them the two agree to float32 rounding.

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        betas: the pair :math:`(\beta_1, \beta_2)` of moment decays.
        eps: the :math:`\epsilon` that keeps the denominator away from zero.
        weight_decay: the decay rate :math:`\lambda` (0 for none).
        amsgrad: keep the running maximum of the second moment (torch's AMSGrad).
        foreach: accepted for torch compatibility; no effect.
        maximize: ascend the objective instead of descending it (default ``False``).
        capturable: accepted for torch compatibility; no effect.
        differentiable: accepted for torch compatibility; no effect.
        fused: accepted for torch compatibility; no effect.
        decoupled_weight_decay: decay the weights directly (AdamW-style) instead of through the
            gradient.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the hyperparameters (by torch's
            names) and
            the optimizer's buffers.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.torch.Adam(lr=0.1, betas=(0.8, 0.95))
        >>> params = {"w": jnp.ones(2)}
        >>> updates, state = tx.update({"w": jnp.ones(2)}, tx.init(params), params)
        >>> [round(x, 6) for x in updates["w"].tolist()], og.tree.get(state, "betas")[0].item()
        ([-0.1, -0.1], 0.800000011920929)
    """
    del foreach, capturable, differentiable, fused
    call = "optgrad.torch.Adam"
    return _adam(call, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay)


def AdamW(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.9, 0.999),
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    foreach: Any = None,
    capturable: bool = False,
    differentiable: bool = False,
    fused: Any = None,
) -> GradientTransformation:
    r"""``torch.optim.AdamW``: :func:`Adam` with ``decoupled_weight_decay=True``.

    .. math::
        \theta_t = \theta_{t-1} - \gamma_t \left(u_t + \lambda\,\theta_{t-1}\right)
        \;=\; (1 - \gamma_t\lambda)\,\theta_{t-1} - \gamma_t u_t

    with :math:`u_t` Adam's (or torch's AMSGrad's) direction on the undecayed gradient; the
    decay is multiplied by the learning rate, as in torch. Default :math:`\lambda = 10^{-2}`
    (torch's); :func:`optgrad.adamw` defaults to Optax's ``1e-4``. Hyperparameters are held in
    the state as in :func:`Adam`. Loshchilov & Hutter, "Decoupled Weight Decay Regularization"
    (2019).

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        betas: the pair :math:`(\beta_1, \beta_2)` of moment decays.
        eps: the :math:`\epsilon` that keeps the denominator away from zero.
        weight_decay: the decay rate :math:`\lambda` (0 for none).
        amsgrad: keep the running maximum of the second moment (torch's AMSGrad).
        maximize: ascend the objective instead of descending it (default ``False``).
        foreach: accepted for torch compatibility; no effect.
        capturable: accepted for torch compatibility; no effect.
        differentiable: accepted for torch compatibility; no effect.
        fused: accepted for torch compatibility; no effect.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the hyperparameters (by torch's
            names) and
            the optimizer's buffers.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.torch.AdamW(lr=0.1, weight_decay=0.5)
        >>> params = {"w": jnp.ones(2)}
        >>> updates, state = tx.update({"w": jnp.ones(2)}, tx.init(params), params)
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.15, -0.15]
    """
    del foreach, capturable, differentiable, fused
    return _adam("optgrad.torch.AdamW", lr, betas, eps, weight_decay, amsgrad, maximize, True)
