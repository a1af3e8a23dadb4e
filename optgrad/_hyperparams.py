"""Hyperparameters held in the optimizer state.

Every alias (``adam``, ``og.torch.SGD``, ...) is built by :func:`with_hyperparams`: its numeric
hyperparameters live in the state as named float32 scalars, whether given as constants or as
schedules of the step count. This is what lets a user read the learning rate the last update
used, change a weight decay between steps without recompiling, or ``jax.vmap`` one training step
over a batch of learning rates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from ._base import GradientTransformation
from ._numerics import as_scalar, safe_increment, zero_count


class HyperparamsState(NamedTuple):
    """``count`` updates so far; ``hyperparams`` by name; the state of the optimizer built."""

    count: jax.Array
    hyperparams: dict[str, Any]
    inner_state: Any


def _is_schedule(x: Any) -> bool:
    return callable(x)


def _evaluate(spec: Any, count: jax.Array, current: Any) -> Any:
    """Schedules evaluated at ``count``; constants read from the state (they may have been set)."""
    return jax.tree.map(
        lambda s, c: as_scalar(s(count)) if _is_schedule(s) else c,
        spec,
        current,
        is_leaf=_is_schedule,
    )


def with_hyperparams(
    build: Callable[..., GradientTransformation], /, **hyperparams: Any
) -> GradientTransformation:
    """The transformation ``build(**values)``, with ``values`` held in the state by name.

    Each keyword is a number, a schedule ``count -> number``, or a tuple of them (torch's
    ``betas``). At every update the schedules are evaluated at the step count, constants are
    read from the state, and ``build`` is called with those float32 scalars to make the
    transformation that runs; the values used are then stored, so
    ``optgrad.tree.get(state, name)`` reports them. ``build`` must give a state of the same
    structure whatever the values (make structural choices from static arguments, not from the
    hyperparameters).

    Args:
        build: a factory of a transformation, such as :func:`optgrad.adam`.
        **hyperparams: its arguments, numbers or schedules, stored in the state.

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`HyperparamsState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.with_hyperparams(lambda step_size: og.scale(-step_size), step_size=0.5)
        >>> state = tx.init({"w": jnp.zeros(2)})
        >>> tx.update({"w": jnp.ones(2)}, og.tree.set(state, step_size=2.0))[0]["w"].tolist()
        [-2.0, -2.0]
    """

    def initial_values():
        count = zero_count()
        return jax.tree.map(
            lambda s: as_scalar(s(count) if _is_schedule(s) else s),
            hyperparams,
            is_leaf=_is_schedule,
        )

    def init_fn(params):
        values = initial_values()
        return HyperparamsState(zero_count(), values, build(**values).init(params))

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, HyperparamsState):
            raise ValueError(
                "optgrad: expected the state of an optimizer with hyperparameters "
                f"(HyperparamsState), got {type(state).__name__}. Was `init` called with a "
                "different optimizer?"
            )
        values = _evaluate(hyperparams, state.count, state.hyperparams)
        updates, inner_state = build(**values).update(
            updates, state.inner_state, params, **extra_args
        )
        return updates, HyperparamsState(safe_increment(state.count), values, inner_state)

    return GradientTransformation(init_fn, update_fn)
