"""``torch.optim.ASGD``: averaged SGD, with the running average of the iterates in the state."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import as_scalar, safe_increment, zero_count, zeros_like
from .._optimizers._common import check_hyperparams
from .._update import check_state_mirrors
from .._weight_decay import add_decayed_weights
from ._optim import maximize_first


class ASGDState(NamedTuple):
    """``count`` (int32); torch's step size ``eta`` and averaging weight ``mu`` (float32
    scalars, for the *next* step); ``ax``, the averaged parameters, mirroring the params."""

    count: jax.Array
    eta: jax.Array
    mu: jax.Array
    ax: Any


def _asgd_step(lr: Any, lambd: Any, alpha: Any, t0: Any) -> GradientTransformation:
    """The whole ASGD step, sign included, and the average of the resulting parameters.

    Must be the last transformation of a chain: ``ax`` averages ``params + updates``.
    """
    call = "optgrad.torch.ASGD"

    def init_fn(params):
        one = jnp.ones([], jnp.float32)
        return ASGDState(zero_count(), as_scalar(lr), one, zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(
                f"{call}.update needs the params: call `tx.update(grads, state, params)`"
            )
        check_state_mirrors(call, updates, state.ax, "ax")
        gamma, lam, a, start = map(as_scalar, (lr, lambd, alpha, t0))
        # torch creates eta from the lr of the first step; later ones come from the last step.
        eta = jnp.where(state.count == 0, gamma, state.eta)
        steps = jax.tree.map(lambda g, p: -(lam * eta) * p - eta * g, updates, params)

        def average(p, u, ax):
            new = p + u
            return jnp.where(state.mu == 1.0, new, ax + state.mu * (new - ax)).astype(ax.dtype)

        ax = jax.tree.map(average, params, steps, state.ax)
        count = safe_increment(state.count)
        t = count.astype(jnp.float32)
        next_eta = gamma / (1.0 + lam * gamma * t) ** a
        next_mu = 1.0 / jnp.maximum(1.0, t - start)
        out = jax.tree.map(lambda g, u: u.astype(g.dtype), updates, steps)
        return out, ASGDState(count, next_eta, next_mu, ax)

    return GradientTransformation(init_fn, update_fn)


def ASGD(
    lr: ScalarOrSchedule = 1e-2,
    lambd: ScalarOrSchedule = 1e-4,
    alpha: ScalarOrSchedule = 0.75,
    t0: ScalarOrSchedule = 1e6,
    weight_decay: ScalarOrSchedule = 0,
    foreach: Any = None,
    maximize: bool = False,
    differentiable: bool = False,
    capturable: bool = False,
) -> GradientTransformation:
    r"""``torch.optim.ASGD``: averaged stochastic gradient descent, step for step.

    .. math::
        g_t &\leftarrow \pm g_t + \lambda_2\,\theta_{t-1} \quad (- \text{ if } \texttt{maximize}) \\
        \theta_t &= (1 - \lambda\,\eta_{t})\,\theta_{t-1} - \eta_{t}\, g_t \\
        \bar\theta_t &= \bar\theta_{t-1} + \mu_{t}\,(\theta_t - \bar\theta_{t-1})
            \quad (\bar\theta_t = \theta_t \text{ while } \mu_t = 1) \\
        \eta_{t+1} &= \frac{\gamma}{(1 + \lambda\gamma t)^{\alpha}}, \qquad
        \mu_{t+1} = \frac{1}{\max(1,\ t - t_0)}

    with :math:`\eta_1 = \gamma` = ``lr``, :math:`\mu_1 = 1`, :math:`\lambda` = ``lambd``,
    :math:`\alpha` = ``alpha``, :math:`t_0` = ``t0`` (the step after which averaging starts)
    and :math:`\lambda_2` = ``weight_decay`` (L2). As in torch, :math:`\eta` and :math:`\mu`
    are computed at the end of a step for the next one, from the ``lr`` of that step, and kept
    in the state as float32 scalars ``eta`` and ``mu``. Polyak & Juditsky, "Acceleration of
    Stochastic Approximation by Averaging" (1992); Bottou, "Stochastic Gradient Descent Tricks"
    (2012), Section 5.3 (the schedule).

    The averaged parameters :math:`\bar\theta_t` are torch's ``state["ax"]``:
    ``optgrad.tree.get(state, "ax")``, a tree mirroring the params (evaluate or save it; like
    torch, the optimizer never swaps it in). They average ``params + updates``, so apply the
    updates unchanged (no transformation after this one). ``lr``, ``lambd``, ``alpha``, ``t0``
    and ``weight_decay`` are held in the state under these names; ``foreach``,
    ``differentiable`` and ``capturable`` are accepted and have no effect. Real parameters only.
    Stricter than torch: ``lambd``, ``alpha`` and ``t0`` must be non-negative.

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        lambd: the decay term :math:`\lambda` of the step size.
        alpha: the exponent (ASGD) or smoothing constant (RMSprop) :math:`\alpha`.
        t0: the step at which averaging starts.
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
        >>> tx = og.torch.ASGD(lr=0.5, lambd=0.0, t0=1.0)  # mu_4 = 1 / (3 - 1)
        >>> params = {"w": jnp.zeros(1)}
        >>> state = tx.init(params)
        >>> for g in (1.0, 1.0, 1.0, 1.0):
        ...     updates, state = tx.update({"w": jnp.full(1, g)}, state, params)
        ...     params = og.apply_updates(params, updates)
        >>> params["w"].tolist(), og.tree.get(state, "ax")["w"].tolist()  # (theta_3 + theta_4) / 2
        ([-2.0], [-1.75])
    """
    del foreach, differentiable, capturable
    call = "optgrad.torch.ASGD"
    check_hyperparams(
        call,
        lr=("lr", lr),
        lambd=("nonneg", lambd),
        alpha=("nonneg", alpha),
        t0=("nonneg", t0),
        weight_decay=("nonneg", weight_decay),
    )

    def build(lr, lambd, alpha, t0, weight_decay):
        return chain(
            *maximize_first(maximize),
            add_decayed_weights(weight_decay),
            _asgd_step(lr, lambd, alpha, t0),
        )

    return with_hyperparams(
        build, lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay
    )
