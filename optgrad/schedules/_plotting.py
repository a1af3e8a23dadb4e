"""Looking at schedules: all their values at once, and a plot."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from optgrad import _check

from ._described import describe


def values(schedule: Callable[[Any], Any], steps: int) -> jax.Array:
    """The values of ``schedule`` at counts ``0, 1, ..., steps - 1``, as one array.

    Evaluated in one jitted call, ``jax.vmap`` over the int32 counts, so this costs one
    compilation however long the schedule (not a Python loop of ``steps`` calls). Works with any
    function of the step count, Optax schedules included.

    Args:
      schedule: a function of the step count.
      steps: positive integer, the number of counts.

    Returns:
      A float array of shape ``(steps,)`` (float32 for optgrad's schedules; integer results
      are converted to float32).

    Example:
      >>> from optgrad import schedules
      >>> schedules.values(schedules.linear_schedule(1.0, 0.0, transition_steps=4), 6).tolist()
      [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    call = "optgrad.schedules.values"
    if not callable(schedule):
        raise TypeError(
            f"{call}(schedule=...) must be a schedule (a function of the step count), got "
            f"{type(schedule).__name__}: {schedule!r}"
        )
    _check.positive_int(call, "steps", steps)

    def evaluate(counts: jax.Array) -> jax.Array:
        result = jnp.broadcast_to(jnp.asarray(schedule(counts)), counts.shape)
        if not jnp.issubdtype(result.dtype, jnp.inexact):
            result = result.astype(jnp.float32)
        return result

    # vmap evaluates a schedule that only accepts scalar counts, too.
    return jax.jit(jax.vmap(evaluate))(jnp.arange(steps, dtype=jnp.int32))


def _labelled(schedules: Any) -> list[tuple[str, Callable[[Any], Any]]]:
    if isinstance(schedules, Mapping):
        return [(str(name), schedule) for name, schedule in schedules.items()]
    if callable(schedules):
        return [(describe(schedules), schedules)]
    if isinstance(schedules, Sequence) and not isinstance(schedules, (str, bytes)):
        return [(describe(schedule), schedule) for schedule in schedules]
    raise TypeError(
        "optgrad.schedules.plot(schedules=...) must be a schedule, a list of schedules or a "
        f"dict {{label: schedule}}, got {type(schedules).__name__}: {schedules!r}"
    )


def plot(schedules: Any, steps: int, ax: Any = None) -> Any:
    """Draws one or several schedules over counts ``0 .. steps - 1`` with matplotlib.

    Args:
      schedules: a schedule, a list of schedules (each labelled by :func:`describe`), or a
        dict ``{label: schedule}``.
      steps: positive integer, the number of counts drawn.
      ax: the matplotlib ``Axes`` to draw on; a new figure if ``None``.

    Returns:
      The ``Axes``, with one line per schedule and a legend.

    Raises:
      ImportError: matplotlib is not installed (it is an optional dependency:
        ``pip install matplotlib``).

    Example:
      >>> import matplotlib
      >>> matplotlib.use("Agg")
      >>> from optgrad import schedules
      >>> ax = schedules.plot(schedules.linear_schedule(1.0, 0.0, 10), steps=10)
      >>> len(ax.get_lines())
      1
    """
    labelled = _labelled(schedules)
    for label, schedule in labelled:
        if not callable(schedule):
            raise TypeError(
                "optgrad.schedules.plot(schedules=...) must contain schedules (functions of "
                f"the step count), got {type(schedule).__name__} for {label!r}: {schedule!r}"
            )
    _check.positive_int("optgrad.schedules.plot", "steps", steps)
    if ax is None:
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:
            raise ImportError(
                "optgrad.schedules.plot needs matplotlib, an optional dependency: "
                "`pip install matplotlib`"
            ) from error
        _, ax = plt.subplots()
    counts = list(range(steps))
    for label, schedule in labelled:
        ax.plot(counts, jax.device_get(values(schedule, steps)), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("value")
    ax.legend()
    return ax
