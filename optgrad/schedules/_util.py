"""Private helpers shared by the schedule factories and ``optgrad.torch.lr_scheduler``.

Two kinds of helpers live here:

* build-time argument checks that complete :mod:`optgrad._check` for the shapes of arguments
  schedules take (step counts, concrete rates);
* jit-safe numerics used inside the returned schedules (float32 conversion, "which stage is
  this count in", and an accurate ``base ** n`` for integer ``n``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optgrad import _check

Schedule = Callable[[Any], jax.Array]
"""A function of the step count (an int or an integer array) returning float32 values."""

# :func:`power` keeps 12 significant bits of ``log2(base)`` in its high part and splits the
# exponent ``n`` into two 12-bit halves, so that both partial products are exact in float32.
_HI_BITS = 12
_SPLIT = 2**12


def f32(value: Any) -> jax.Array:
    """``value`` as a float32 array (tracers stay tracers)."""
    return jnp.asarray(value, dtype=jnp.float32)


def check_value(call: str, name: str, value: Any) -> None:
    """A schedule value such as ``init_value``: a finite real number or a numeric array.

    Arrays (including traced ones, e.g. when a schedule is built inside ``jax.vmap`` over
    learning rates) are accepted; concrete scalars must be finite.
    """
    numeric = (int, float, np.ndarray, np.generic, jax.Array)
    if isinstance(value, bool) or not isinstance(value, numeric):
        raise TypeError(
            f"{call}({name}=...) must be a number, got {type(value).__name__}: {value!r}"
        )
    _check.number(call, name, value)


def concrete_number(call: str, name: str, value: Any) -> float:
    """A build-time constant that shapes the schedule (a decay rate, a scale): returns it as float.

    These are needed as Python floats to precompute float64 constants, so traced or
    non-scalar values are refused.
    """
    x = _check.concrete_float(value)
    if x is None or isinstance(value, bool):
        raise TypeError(
            f"{call}({name}=...) must be a concrete real number (not a traced or non-scalar "
            f"array), got {name}={value!r}"
        )
    _check.number(call, name, value)
    return x


def positive_int(call: str, name: str, value: Any) -> int:
    """A step count that must be at least 1 (an ``int`` or NumPy integer), returned as int."""
    _check.positive_int(call, name, value)
    return int(value)


def non_negative_int(call: str, name: str, value: Any) -> int:
    """A step count that may be 0 (an ``int`` or NumPy integer), returned as int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{call}({name}=...) must be a non-negative integer, got {name}={value!r}")
    return int(value)


def flag(call: str, name: str, value: Any) -> bool:
    """A boolean option such as ``staircase`` (``bool`` or ``np.bool_``)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{call}({name}=...) must be True or False, got {name}={value!r}")
    return bool(value)


def fraction(part: jax.Array, whole: int) -> jax.Array:
    """``part / whole`` in float32 for ``0 <= part <= whole``, exactly 0 and 1 at the ends.

    Under ``jit`` XLA turns a division by a constant into a multiplication by its rounded
    reciprocal (and may fuse it into an FMA), so ``whole / whole`` can come out as
    ``1 +- 6e-8``; pinning the ends keeps schedules exact at their endpoints and fractions
    inside [0, 1] (Optax's ``polynomial_schedule`` returns NaN under ``jit`` for
    non-integer powers because ``1 - t/T`` goes slightly negative).
    """
    return jnp.where(part == whole, 1.0, f32(part) / whole)


def stages_passed(count: jax.Array, boundaries: tuple[int, ...]) -> jax.Array:
    """How many of the sorted ``boundaries`` are ``<= count``, elementwise, as int32."""
    if not boundaries:
        return jnp.zeros(jnp.shape(count), jnp.int32)
    edges = jnp.asarray(boundaries, dtype=jnp.int32)
    return jnp.sum(count[..., None] >= edges, axis=-1, dtype=jnp.int32)


def power(n: jax.Array, log2_base: float) -> jax.Array:
    """``base ** n`` in float32 for integer-valued ``n >= 0``, given ``log2(base)`` in float64.

    Accurate to about 1.5 float32 ulp for ``n < 2**24`` (exact when ``base`` is a power of
    two), also far into the decay where the naive ``exp(float32(n) * float32(log(base)))``
    loses digits: its relative error grows like ``|n * log(base)| * 6e-8`` because the rounding
    of ``log(base)`` is multiplied by ``n`` (~1e-6 once the result drops below ~1e-7).

    Method: ``log2_base = hi + lo`` with ``hi`` holding 12 significant bits and
    ``n = 4096 * n1 + n0`` with ``n1, n0 < 4096``, so that ``y1 = n1 * (4096 * hi)`` and
    ``y0 = n0 * hi`` are exact in float32. Each is split into an integer and a fraction
    (exactly), and ``base ** n = 2**k * 2**f`` with ``k`` the sum of the integer parts, built
    exactly from its bits, and ``f`` the sum of the fractions and ``n * lo``, about in
    ``[-1, 1]``, so ``exp2`` keeps its ~1 ulp accuracy. (Multiplying two ``exp`` results would
    not do: XLA rewrites ``exp(a) * exp(b)`` into ``exp(a + b)``.) Results beyond float32's
    range flush to 0 (denormals included) or overflow to ``inf``.
    """
    nf = f32(n)
    if log2_base == 0.0:
        return jnp.ones_like(nf)
    mantissa, exponent = math.frexp(log2_base)
    hi = math.ldexp(round(mantissa * 2**_HI_BITS), exponent - _HI_BITS)
    lo = log2_base - hi  # exact in float64, |lo| <= |hi| * 2**-12
    n1 = jnp.floor(nf * np.float32(1 / _SPLIT))
    n0 = nf - n1 * _SPLIT
    y1 = n1 * np.float32(hi * _SPLIT)
    y0 = n0 * np.float32(hi)
    k1 = jnp.round(y1)
    k0 = jnp.round(y0)
    remainder = ((y1 - k1) + (y0 - k0)) + nf * np.float32(lo)
    # |n * lo| <= 2**-13 |n * hi|, so the remainder is only large (and then k is far out of
    # range, with the same sign) for huge n: clipping it keeps 2**k * 2**f at 0 or inf there
    # instead of inf * 0 = NaN or a wrong sign of the overflow.
    remainder = jnp.clip(remainder, -64.0, 64.0)
    k = jnp.clip(k1 + k0, -250, 250).astype(jnp.int32)
    half = k // 2
    return jnp.exp2(remainder) * _power_of_two(half) * _power_of_two(k - half)


def _power_of_two(k: jax.Array) -> jax.Array:
    """``2.0 ** k`` for int32 ``k`` in ``[-126, 127]``, exactly, from its float32 bits."""
    return jax.lax.bitcast_convert_type((k + 127) << 23, jnp.float32)


def power_and_complement(
    base: jax.Array, complement: jax.Array, exponent: Any
) -> tuple[jax.Array, jax.Array]:
    """``(base ** exponent, 1 - base ** exponent)`` for ``base`` in [0, 1], both accurate.

    ``complement`` must be ``1 - base``, computed accurately by the caller. Where the power is
    close to 1, ``1 - power`` would cancel; there the complement is
    ``-expm1(exponent * log1p(-complement))`` instead.
    """
    if _check.concrete_float(exponent) == 1.0:
        return base, complement
    weight = base**exponent
    near_one = -jnp.expm1(exponent * jnp.log1p(-complement))
    return weight, jnp.where(weight > 0.5, near_one, 1.0 - weight)


def blend(first: Any, last: Any, weight: jax.Array, complement: jax.Array) -> jax.Array:
    """``first * weight + last * complement`` in float32 (``complement`` is ``1 - weight``).

    Written as two products so that ``weight == 1`` gives ``first`` and ``weight == 0`` gives
    ``last`` exactly.
    """
    return f32(first) * weight + f32(last) * complement
