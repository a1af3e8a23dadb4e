"""Scaling primitives: by a constant, by the learning rate, by a schedule of the step count."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _check
from ._base import GradientTransformation, ScalarOrSchedule, init_empty_state
from ._numerics import as_scalar, safe_increment, zero_count


def scale_tree(updates: Any, factor: Any) -> Any:
    """``factor * updates``, each leaf keeping its dtype; ``factor`` is a scalar."""
    factor = jnp.asarray(factor)
    return jax.tree.map(lambda u: (u * factor).astype(u.dtype), updates)


def scale(step_size: float | jax.Array) -> GradientTransformation:
    """Multiplies updates by ``step_size``.

    Args:
        step_size: the factor applied to every update.

    Returns:
        A :class:`optgrad.GradientTransformation` without state.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.scale(-0.5).update(jnp.ones(2), og.EmptyState())[0].tolist()
        [-0.5, -0.5]
    """
    _check.number("optgrad.scale", "step_size", step_size)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return scale_tree(updates, as_scalar(step_size)), state

    return GradientTransformation(init_empty_state, update_fn)


class ScaleByScheduleState(NamedTuple):
    """``count`` updates so far (int32)."""

    count: jax.Array


def scale_by_schedule(step_size_fn: Any) -> GradientTransformation:
    """Multiplies updates by ``step_size_fn(count)``, with ``count`` 0 on the first update.

    Args:
        step_size_fn: a function of the step count giving the factor.

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`ScaleByScheduleState` (the step
            count).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_schedule(lambda count: 0.5)
        >>> tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.zeros(2)}))[0]["w"].tolist()
        [0.5, 0.5]
    """
    if not callable(step_size_fn):
        raise TypeError(
            "optgrad.scale_by_schedule(step_size_fn=...) must be a function of the step count, "
            f"got {step_size_fn!r}; use optgrad.scale for a constant"
        )

    def init_fn(params):
        del params
        return ScaleByScheduleState(zero_count())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        updates = scale_tree(updates, as_scalar(step_size_fn(state.count)))
        return updates, ScaleByScheduleState(safe_increment(state.count))

    return GradientTransformation(init_fn, update_fn)


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule, *, flip_sign: bool = True
) -> GradientTransformation:
    r"""Multiplies updates by ``-learning_rate`` (by ``+learning_rate`` if ``flip_sign=False``).

    This is where every optimizer turns a direction of ascent into a step of descent: the
    updates it returns are *added* to the parameters by :func:`optgrad.apply_updates`.

    Args:
        learning_rate: the step size :math:`\eta`, a number or a schedule of the step count.
        flip_sign: multiply by :math:`-\eta` (default) so the updates descend; ``False`` multiplies
            by :math:`\eta`.

    Returns:
        A :class:`optgrad.GradientTransformation`; with a schedule its state holds the step count.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_learning_rate(0.5)
        >>> tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.zeros(2)}))[0]["w"].tolist()
        [-0.5, -0.5]
    """
    _check.scalar_or_schedule("optgrad.scale_by_learning_rate", "learning_rate", learning_rate)
    _check.non_negative("optgrad.scale_by_learning_rate", "learning_rate", learning_rate)
    sign = -1.0 if flip_sign else 1.0
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)
