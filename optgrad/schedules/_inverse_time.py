"""Inverse-time ("time-based") decay: ``init_value / (1 + decay_rate * t)``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optgrad import _check

from ._described import described
from ._util import Schedule, check_value, f32, flag, positive_int


def inverse_time_decay(
    init_value: Any, decay_rate: Any, decay_steps: int = 1, staircase: bool = False
) -> Schedule:
    r"""Decays ``init_value`` like ``1 / t``: the "time-based decay" of Keras and many tutorials.

    With :math:`I` = ``init_value``, :math:`r` = ``decay_rate``, :math:`D` = ``decay_steps``
    and :math:`c` = ``count``:

    .. math::
        f(c) = \frac{I}{1 + r \, t}, \qquad t = \frac{c}{D}
        \quad (\text{floored when } \texttt{staircase})

    This is ``keras.optimizers.schedules.InverseTimeDecay``; with ``decay_steps=1`` it is the
    classic ``lr / (1 + decay * iteration)`` of Keras' old ``decay`` argument. Optax has no
    equivalent; in PyTorch it is ``LambdaLR(opt, lambda t: 1 / (1 + decay_rate * t))``.

    Args:
      init_value: the value at step 0.
      decay_rate: non-negative real; 0 gives a constant schedule.
      decay_steps: positive integer, the number of steps per unit of ``t``.
      staircase: if True, ``t`` is an integer (the value changes every ``decay_steps`` steps).

    Returns:
      A function of the step count returning float32 values.

    Example:
      >>> from optgrad import schedules
      >>> schedule = schedules.inverse_time_decay(1.0, decay_rate=0.5, decay_steps=10)
      >>> [float(schedule(c)) for c in (0, 10, 20, 60)]
      [1.0, 0.6666666865348816, 0.5, 0.25]
    """
    call = "optgrad.schedules.inverse_time_decay"
    check_value(call, "init_value", init_value)
    check_value(call, "decay_rate", decay_rate)
    _check.non_negative(call, "decay_rate", decay_rate)
    steps = positive_int(call, "decay_steps", decay_steps)
    stairs = flag(call, "staircase", staircase)

    def schedule(count: Any) -> jax.Array:
        elapsed = jnp.maximum(jnp.asarray(count), 0)
        t = f32(elapsed // steps) if stairs else f32(elapsed) / steps
        return f32(init_value) / (1.0 + f32(decay_rate) * t)

    return described(
        "inverse_time_decay",
        schedule,
        init_value=init_value,
        decay_rate=decay_rate,
        decay_steps=decay_steps,
        staircase=staircase,
    )
