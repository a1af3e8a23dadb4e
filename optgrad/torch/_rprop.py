"""``torch.optim.Rprop``: resilient backpropagation, sign steps with adaptive sizes."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _check
from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import as_scalar, safe_increment, zero_count, zeros_like
from .._optimizers._common import check_hyperparams
from .._scale import scale
from .._update import check_state_mirrors
from ._optim import maximize_first


def check_pair(call: str, name: str, value: Any, example: str) -> tuple[Any, Any]:
    """``value`` as a tuple of two numbers (or schedules)."""
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise ValueError(
            f"{call}({name}=...) must be a pair, e.g. {name}={example}, got {name}={value!r}"
        )
    for item in value:
        _check.scalar_or_schedule(call, name, item)
    return tuple(value)


class RpropState(NamedTuple):
    """``count`` (int32), torch's ``prev`` (the last gradient, zeroed where its sign flipped)
    and ``step_size`` (per entry), mirroring the params."""

    count: jax.Array
    prev: Any
    step_size: Any


def _scale_by_rprop(lr: Any, etas: Any, step_sizes: Any) -> GradientTransformation:
    """Rprop's step :math:`\\mathrm{sign}(g'_t)\\, s_t` (an ascent direction)."""
    call = "optgrad.torch.Rprop"

    def init_fn(params):
        return RpropState(zero_count(), zeros_like(params), zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.prev, "prev")
        gamma = as_scalar(lr)
        minus, plus = map(as_scalar, etas)
        low, high = map(as_scalar, step_sizes)
        first = state.count == 0

        def one(g, prev, size):
            # torch creates step_size = lr when the state is created, at the first step.
            size = jnp.where(first, gamma.astype(size.dtype), size)
            s = jnp.sign(g * prev)
            factor = jnp.where(s > 0, plus, jnp.where(s < 0, minus, 1.0))
            size = jnp.clip(size * factor, low, high)
            g = jnp.where(s < 0, jnp.zeros_like(g), g)
            return jnp.sign(g) * size, g, size.astype(prev.dtype)

        triples = jax.tree.map(one, updates, state.prev, state.step_size)
        treedef = jax.tree.structure(updates)
        steps, prev, sizes = (
            treedef.unflatten(list(x)) for x in zip(*treedef.flatten_up_to(triples))
        )
        out = jax.tree.map(lambda g, u: u.astype(g.dtype), updates, steps)
        return out, RpropState(safe_increment(state.count), prev, sizes)

    return GradientTransformation(init_fn, update_fn)


def Rprop(
    lr: ScalarOrSchedule = 1e-2,
    etas: tuple[ScalarOrSchedule, ScalarOrSchedule] = (0.5, 1.2),
    step_sizes: tuple[ScalarOrSchedule, ScalarOrSchedule] = (1e-6, 50),
    *,
    capturable: bool = False,
    foreach: Any = None,
    maximize: bool = False,
    differentiable: bool = False,
) -> GradientTransformation:
    r"""``torch.optim.Rprop``, step for step (Rprop without weight backtracking).

    .. math::
        s_t &= \mathrm{clip}\left(s_{t-1} \cdot \begin{cases}
            \eta_+ & g_t\, g'_{t-1} > 0 \\ \eta_- & g_t\, g'_{t-1} < 0 \\ 1 & \text{otherwise}
            \end{cases},\ s_{\min},\ s_{\max}\right), \qquad s_0 = \gamma \\
        g'_t &= \begin{cases} 0 & g_t\, g'_{t-1} < 0 \\ g_t & \text{otherwise}\end{cases},
        \qquad \theta_t = \theta_{t-1} - \mathrm{sign}(g'_t)\, s_t

    elementwise, with :math:`(\eta_-, \eta_+)` = ``etas``, :math:`(s_{\min}, s_{\max})` =
    ``step_sizes``, :math:`g'_0 = 0`; the gradient is negated first with ``maximize``. Where
    the sign of the gradient flips, the step size shrinks and that entry does not move. The
    learning rate :math:`\gamma` = ``lr`` is only the initial step size, read at the first
    update (as torch reads it when it creates the state); setting it later has no effect.
    Riedmiller & Braun, "A Direct Adaptive Method for Faster Backpropagation Learning: The
    RPROP Algorithm" (1993).

    ``lr``, ``etas`` and ``step_sizes`` (pairs) are held in the state under these names; the
    buffers are ``prev`` and ``step_size``. ``capturable``, ``foreach`` and ``differentiable``
    are accepted and have no effect: XLA fuses the step under ``jit``. Real parameters only.
    Stricter than torch: the ``step_sizes`` must be non-negative.

    Differences from Optax 0.2.8's ``scale_by_rprop``: that one returns the *previous* step's
    update (its first update is 0); torch, and this, move at the first step.

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        etas: the pair (decrease factor, increase factor) of the step sizes.
        step_sizes: the pair (smallest, largest) allowed step size.
        capturable: accepted for torch compatibility; no effect.
        foreach: accepted for torch compatibility; no effect.
        maximize: ascend the objective instead of descending it (default ``False``).
        differentiable: accepted for torch compatibility; no effect.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the hyperparameters (by torch's
            names) and
            the optimizer's buffers.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.torch.Rprop(lr=0.1)
        >>> params, state = {"w": jnp.zeros(2)}, None
        >>> state = tx.init(params)
        >>> for g in ([1.0, 1.0], [2.0, -1.0]):
        ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
        >>> [round(x, 6) for x in updates["w"].tolist()]  # grew by 1.2; sign flipped: no step
        [-0.12, -0.0]
    """
    del capturable, foreach, differentiable
    call = "optgrad.torch.Rprop"
    check_hyperparams(call, lr=("lr", lr))
    etas = check_pair(call, "etas", etas, "(0.5, 1.2)")
    step_sizes = check_pair(call, "step_sizes", step_sizes, "(1e-6, 50)")
    minus, plus = map(_check.concrete_float, etas)
    if (minus is not None and not 0.0 < minus < 1.0) or (plus is not None and not plus > 1.0):
        raise ValueError(
            f"{call}(etas=...) must satisfy 0 < etaminus < 1 < etaplus, got etas={etas!r}"
        )
    for i, size in enumerate(step_sizes):
        _check.number(call, f"step_sizes[{i}]", size, low=0.0)

    def build(lr, etas, step_sizes):
        return chain(*maximize_first(maximize), _scale_by_rprop(lr, etas, step_sizes), scale(-1.0))

    return with_hyperparams(build, lr=lr, etas=etas, step_sizes=step_sizes)
