"""Argument checks that run when an optimizer or schedule is built, outside ``jit``.

Every message names the call, the argument, the rule and the value, for example::

    optgrad.adam(b1=...) must be in [0, 1), got b1=1.5

Values that are schedules (callables) or traced arrays are not checked here: a schedule is
checked by the schedule factory that built it, and a traced value (``jax.vmap`` over learning
rates, a hyperparameter read back from the state) has no concrete value to check.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np


def concrete_float(value: Any) -> float | None:
    """``value`` as a Python float if it is a concrete real scalar, else ``None``."""
    if callable(value) or value is None or isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, bool):
        return float(value)
    try:
        array = np.asarray(value)
    except Exception:
        return None
    if array.shape != () or not np.issubdtype(array.dtype, np.number):
        return None
    return float(array)


def _describe(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"must be in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        if low == 0:
            return "must be positive" if low_open else "must be non-negative"
        return f"must be {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"must be {'<' if high_open else '<='} {high:g}"
    return "must be a finite number"


def number(
    call: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> None:
    """Raises ``ValueError`` unless ``value`` lies in the stated interval (NaN never does).

    ``call`` is the public name of the factory, e.g. ``"optgrad.adam"``.
    """
    if not callable(value) and not isinstance(value, jax.core.Tracer) and np.ndim(value) != 0:
        raise ValueError(
            f"{call}({name}=...) must be a scalar, got an array of shape {np.shape(value)}"
        )
    x = concrete_float(value)
    if x is None:
        return
    ok = not math.isnan(x) and (allow_inf or not math.isinf(x))
    if ok and low is not None:
        ok = x > low if low_open else x >= low
    if ok and high is not None:
        ok = x < high if high_open else x <= high
    if not ok:
        rule = _describe(low, high, low_open, high_open)
        raise ValueError(f"{call}({name}=...) {rule}, got {name}={value!r}")


def non_negative(call: str, name: str, value: Any) -> None:
    number(call, name, value, low=0.0)


def positive(call: str, name: str, value: Any) -> None:
    number(call, name, value, low=0.0, low_open=True)


def unit_interval(call: str, name: str, value: Any) -> None:
    """``value`` in ``[0, 1)``: the rule for decay rates such as Adam's betas."""
    number(call, name, value, low=0.0, high=1.0, high_open=True)


def positive_int(call: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{call}({name}=...) must be a positive integer, got {name}={value!r}")


def one_of(call: str, name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{call}({name}=...) must be one of {options}, got {name}={value!r}")


def scalar_or_schedule(call: str, name: str, value: Any) -> None:
    """A hyperparameter must be a number, a scalar array or a schedule (a callable)."""
    if callable(value):
        return
    if isinstance(value, (jax.Array, np.ndarray, np.generic)) and np.ndim(value) != 0:
        raise ValueError(
            f"{call}({name}=...) must be a scalar or a schedule, got an array of shape "
            f"{np.shape(value)}"
        )
    if not isinstance(value, (int, float, jax.Array, np.ndarray, np.generic)):
        raise TypeError(
            f"{call}({name}=...) must be a number or a schedule (a function of the step "
            f"count), got {type(value).__name__}: {value!r}"
        )
