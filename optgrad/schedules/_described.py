"""Schedules that know how they were built: a callable with a readable ``repr``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class DescribedSchedule:
    """A schedule returned by an optgrad factory: ``count -> value``, and the call that built it.

    ``name`` is the factory's name; ``arguments`` its arguments (defaults included) in signature
    order, as ``(name, value)`` pairs (an empty name for a positional argument); ``fn`` the jit-
    and vmap-safe function of the step count. Equality and hashing are by identity
    (``eq=False``), so ``jax.jit`` caches on the object as on a function, and arguments that are
    arrays or mappings need not be hashable.
    """

    name: str
    arguments: tuple[tuple[str, Any], ...]
    fn: Callable[[Any], jax.Array]

    def __call__(self, count: Any) -> jax.Array:
        return self.fn(count)

    @property
    def __name__(self) -> str:  # what code that expects a function reads
        return self.name

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{key}={_format(value)}" if key else _format(value) for key, value in self.arguments
        )
        return f"{self.name}({inner})"


def described(
    name: str, fn: Callable[[Any], jax.Array], *positional: Any, **arguments: Any
) -> DescribedSchedule:
    """Wraps the closure ``fn`` built by the factory ``name`` called with these arguments."""
    pairs = tuple(("", value) for value in positional) + tuple(arguments.items())
    return DescribedSchedule(name, pairs, fn)


def _format(value: Any) -> str:
    if isinstance(value, DescribedSchedule):
        return repr(value)
    if isinstance(value, jax.core.Tracer):
        return "<traced>"
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        if np.ndim(value) == 0:
            return repr(np.asarray(value).item())
        return f"<array of shape {np.shape(value)}>"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_format(k)}: {_format(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    if isinstance(value, tuple):
        items = ", ".join(_format(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if callable(value) and not isinstance(value, type):
        return describe(value)
    return repr(value)


def describe(schedule: Callable[[Any], Any]) -> str:
    """A readable description of ``schedule``: the factory call that built it.

    For a schedule returned by an optgrad factory this is its ``repr``, with every argument
    (defaults included), nested schedules described in turn. For any other callable (a lambda,
    an Optax schedule) it is the function's ``__name__`` (``'<lambda>'``, ``'schedule'``), or
    the ``repr`` of an object without one.

    Args:
      schedule: the schedule (any callable) to describe.

    Returns:
      The description, a ``str``.

    Example:
      >>> from optgrad import schedules
      >>> schedules.describe(schedules.cosine_decay_schedule(0.1, decay_steps=1000))
      'cosine_decay_schedule(init_value=0.1, decay_steps=1000, alpha=0.0, exponent=1.0)'
      >>> schedules.describe(lambda count: 0.1)
      '<lambda>'
    """
    if isinstance(schedule, DescribedSchedule):
        return repr(schedule)
    if not callable(schedule):
        raise TypeError(
            "optgrad.schedules.describe(schedule=...) must be a schedule (a function of the "
            f"step count), got {type(schedule).__name__}: {schedule!r}"
        )
    name = getattr(schedule, "__name__", None)
    return name if isinstance(name, str) else repr(schedule)
