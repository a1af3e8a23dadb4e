"""The optimizer contract: a gradient transformation is a pair of pure functions.

``init(params) -> state`` builds the state; ``update(updates, state, params=None, **extra_args)
-> (updates, state)`` transforms a tree of gradients into a tree of updates, which
:func:`optgrad.apply_updates` adds to the parameters. The pair is held in a NamedTuple, so it
unpacks like a tuple and is accepted unchanged wherever Optax transformations are (Flax's
``TrainState`` and ``nnx.Optimizer``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, TypeAlias

import jax
import jax.numpy as jnp

ArrayTree: TypeAlias = Any
"""A pytree of arrays (params, gradients, updates)."""
Params: TypeAlias = ArrayTree
Updates: TypeAlias = ArrayTree
OptState: TypeAlias = Any
"""A pytree of NamedTuples whose leaves are arrays."""

Schedule: TypeAlias = Callable[[jax.typing.ArrayLike], jax.typing.ArrayLike]
"""A function of the integer step count (0 on the first update) to a scalar."""
ScalarOrSchedule: TypeAlias = float | jax.typing.ArrayLike | Schedule
"""A hyperparameter: a number, a scalar array, or a schedule of the step count."""


class TransformInitFn(Protocol):
    def __call__(self, params: Params) -> OptState: ...


class TransformUpdateFn(Protocol):
    def __call__(
        self, updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, OptState]: ...


class GradientTransformation(NamedTuple):
    """An optimizer, or a piece of one: ``init`` and ``update``.

    ``update`` accepts keyword ``extra_args`` (for example ``value=loss`` for line searches and
    plateau schedules); a transformation that needs none ignores them.
    """

    init: TransformInitFn
    update: TransformUpdateFn


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none."""


def init_empty_state(params: Params) -> EmptyState:
    """The ``init`` of a stateless transformation: ignores ``params``, returns ``EmptyState()``.

    Args:
        params: the parameters (ignored).

    Returns:
        An :class:`optgrad.EmptyState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> og.init_empty_state({"w": jnp.zeros(2)})
        EmptyState()
    """
    del params
    return EmptyState()


def identity() -> GradientTransformation:
    """Passes updates through unchanged.

    Returns:
        A :class:`optgrad.GradientTransformation` without state.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.identity()
        >>> tx.update({"w": jnp.ones(2)}, tx.init(None))[0]["w"].tolist()
        [1.0, 1.0]
    """

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return updates, state

    return GradientTransformation(init_empty_state, update_fn)


def set_to_zero() -> GradientTransformation:
    """Replaces every update by zeros of the same shape and dtype (freezes parameters).

    Returns:
        A :class:`optgrad.GradientTransformation` without state.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.set_to_zero()
        >>> tx.update({"w": jnp.ones(2)}, tx.init(None))[0]["w"].tolist()
        [0.0, 0.0]
    """

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(jnp.zeros_like, updates), state

    return GradientTransformation(init_empty_state, update_fn)


def stateless(fn: Callable[[Updates, Params | None], Updates]) -> GradientTransformation:
    """A transformation from ``fn(updates, params) -> updates`` that keeps no state.

    Args:
        fn: a function ``(updates, params) -> updates``.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state is empty.

    Example:
        >>> import jax, optgrad as og
        >>> negate = og.stateless(lambda u, p: jax.tree.map(lambda x: -x, u))
        >>> negate.update({"w": 2.0}, negate.init({"w": 0.0}))[0]
        {'w': -2.0}
    """

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        return fn(updates, params), state

    return GradientTransformation(init_empty_state, update_fn)
