"""Rprop: per-coordinate step sizes adapted from the signs of successive gradients."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _check
from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import as_scalar, full_like, zeros_like
from .._scale import scale
from .._update import check_state_mirrors
from ._common import check_hyperparams


class ScaleByRpropState(NamedTuple):
    """``step_sizes`` :math:`\\Delta` per coordinate, and ``prev_updates``: the previous step's
    direction :math:`\\Delta \\operatorname{sign}(g')` (0 where the sign flipped)."""

    step_sizes: Any
    prev_updates: Any


def _check_rprop(call, learning_rate, eta_minus, eta_plus, min_step_size, max_step_size):
    check_hyperparams(call, learning_rate=("lr", learning_rate))
    for name, value in (("eta_minus", eta_minus), ("eta_plus", eta_plus)):
        _check.scalar_or_schedule(call, name, value)
    _check.number(call, "eta_minus", eta_minus, low=0.0, high=1.0, low_open=True)
    _check.number(call, "eta_plus", eta_plus, low=1.0)
    check_hyperparams(
        call, min_step_size=("nonneg", min_step_size), max_step_size=("nonneg", max_step_size)
    )
    low, high = _check.concrete_float(min_step_size), _check.concrete_float(max_step_size)
    if low is not None and high is not None and low > high:
        raise ValueError(
            f"{call}(min_step_size=..., max_step_size=...) must satisfy min_step_size <= "
            f"max_step_size, got min_step_size={min_step_size!r}, max_step_size={max_step_size!r}"
        )


def scale_by_rprop(
    learning_rate: float | jax.Array,
    eta_minus: float | jax.Array = 0.5,
    eta_plus: float | jax.Array = 1.2,
    min_step_size: float | jax.Array = 1e-6,
    max_step_size: float | jax.Array = 50.0,
) -> GradientTransformation:
    r"""Rprop's step: the sign of the gradient times a per-coordinate step size.

    With :math:`s = \operatorname{sign}(g_t)\operatorname{sign}(g'_{t-1})`:

    .. math::
        \Delta_t = \operatorname{clip}\big(\Delta_{t-1} \cdot
        \{\eta^+ \text{ if } s>0;\ \eta^- \text{ if } s<0;\ 1 \text{ if } s=0\},
        \Delta_{min}, \Delta_{max}\big), \quad
        g'_t = \begin{cases}0 & s<0\\ g_t & \text{else}\end{cases}, \quad
        u_t = \Delta_t \operatorname{sign}(g'_t)

    with :math:`\Delta_0` = ``learning_rate`` and :math:`g'_0 = 0`. After a sign change the
    coordinate does not move and its next step counts as a fresh start (Rprop without
    weight-backtracking, "Rprop-" in Igel & Huesken's terms), exactly ``torch.optim.Rprop``.
    The returned direction is an ascent direction (the alias flips it).

    **Differs from Optax 0.2.8**, whose ``scale_by_rprop`` returns the *previous* step's
    direction (its first update is zero and every later one lags a step behind the gradient
    it was computed from): a defect, not a variant. optgrad returns the current step, as the
    paper and PyTorch do. The sign test multiplies signs, not gradients, so products of tiny
    gradients cannot underflow to "no sign". ``learning_rate`` sets the initial step sizes
    only (as in torch); it is read when the state is initialised.

    Args:
        learning_rate: :math:`\Delta_0 \ge 0`.
        eta_minus: :math:`\eta^-` in ``(0, 1]``, the factor after a sign change.
        eta_plus: :math:`\eta^+ \ge 1`, the factor when the sign is kept.
        min_step_size, max_step_size: :math:`\Delta_{min} \le \Delta_{max}`.

    Returns:
        A :class:`GradientTransformation` whose state is a :class:`ScaleByRpropState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_rprop(0.1)
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)

    References:
        Riedmiller & Braun, "A Direct Adaptive Method for Faster Backpropagation Learning: The
        RPROP Algorithm" (IEEE ICNN 1993); Igel & Huesken, "Empirical evaluation of the
        improved Rprop learning algorithms" (Neurocomputing 2003).
    """
    call = "optgrad.scale_by_rprop"
    _check_rprop(call, learning_rate, eta_minus, eta_plus, min_step_size, max_step_size)

    def init_fn(params):
        return ScaleByRpropState(full_like(params, as_scalar(learning_rate)), zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.step_sizes, "step_sizes")
        down, up = as_scalar(eta_minus), as_scalar(eta_plus)
        low, high = as_scalar(min_step_size), as_scalar(max_step_size)

        def one(g, step, prev):
            s = jnp.sign(g) * jnp.sign(prev)
            factor = jnp.where(s > 0, up, jnp.where(s < 0, down, 1.0))
            new_step = jnp.clip(step * factor, low, high)
            direction = jnp.where(s < 0, 0.0, new_step * jnp.sign(g))
            return direction.astype(g.dtype), new_step.astype(step.dtype), direction

        leaves, treedef = jax.tree.flatten(updates)
        steps = treedef.flatten_up_to(state.step_sizes)
        prevs = treedef.flatten_up_to(state.prev_updates)
        out = [one(g, st, pv) for g, st, pv in zip(leaves, steps, prevs)]
        directions = treedef.unflatten([o[0] for o in out])
        new_steps = treedef.unflatten([o[1] for o in out])
        prev = treedef.unflatten([o[2].astype(p.dtype) for o, p in zip(out, prevs)])
        return directions, ScaleByRpropState(new_steps, prev)

    return GradientTransformation(init_fn, update_fn)


def rprop(
    learning_rate: ScalarOrSchedule,
    eta_minus: ScalarOrSchedule = 0.5,
    eta_plus: ScalarOrSchedule = 1.2,
    min_step_size: ScalarOrSchedule = 1e-6,
    max_step_size: ScalarOrSchedule = 50.0,
) -> GradientTransformation:
    r"""Rprop: :math:`\theta_t = \theta_{t-1} - u_t` with :math:`u_t` from
    :func:`scale_by_rprop` (see there for the maths).

    ``learning_rate`` is the initial step size :math:`\Delta_0` (a schedule is read at step 0);
    like torch's ``lr`` it is read only when the state is initialised, so changing it in the
    state later has no effect. The other hyperparameters are read at every step.

    PyTorch equivalent: ``torch.optim.Rprop(lr, etas=(eta_minus, eta_plus), step_sizes=(
    min_step_size, max_step_size))`` is ``optgrad.rprop(lr, eta_minus, eta_plus,
    min_step_size, max_step_size)`` step for step (torch's default ``lr`` is ``1e-2``).
    Optax 0.2.8's ``rprop`` applies each step one iteration late (see
    :func:`scale_by_rprop`); optgrad does not reproduce that. ``optgrad.torch.Rprop`` takes
    torch's own argument names (``etas``, ``step_sizes``, ``maximize``).

    Args:
        learning_rate: :math:`\Delta_0`.
        eta_minus, eta_plus, min_step_size, max_step_size: see :func:`scale_by_rprop`.

    Returns:
        A :class:`GradientTransformation`.

    References:
        Riedmiller & Braun, "A Direct Adaptive Method for Faster Backpropagation Learning: The
        RPROP Algorithm" (IEEE ICNN 1993).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.rprop(0.1)
        >>> updates, _ = tx.update({"w": jnp.array([2.0, -3.0])}, tx.init({"w": jnp.zeros(2)}))
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.1, 0.1]
    """
    call = "optgrad.rprop"
    _check_rprop(call, learning_rate, eta_minus, eta_plus, min_step_size, max_step_size)

    def build(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size):
        return chain(
            scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size),
            scale(-1.0),
        )

    return with_hyperparams(
        build,
        learning_rate=learning_rate,
        eta_minus=eta_minus,
        eta_plus=eta_plus,
        min_step_size=min_step_size,
        max_step_size=max_step_size,
    )
