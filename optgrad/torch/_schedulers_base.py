"""The base classes of ``optgrad.torch.lr_scheduler`` and the float32 numerics they share."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from optgrad import _check
from optgrad.schedules import _util

MODULE = "optgrad.torch.lr_scheduler"


@dataclasses.dataclass(frozen=True, repr=False)
class _Schedule:
    """Base of the torch-named schedules: a frozen set of arguments, checked when built.

    Subclasses declare their arguments as dataclass fields (in PyTorch's order), check them
    in ``_check_arguments`` and implement ``__call__``. ``repr`` lists every argument in the
    constructor's order (keyword-only ones last), e.g. ``StepLR(lr=0.1, step_size=30,
    gamma=0.1, steps_per_epoch=1)``. Schedulers that also drive momentum (``OneCycleLR``,
    ``CyclicLR``) expose it as another schedule attribute, ``momentum``.

    Class flags used by the composites (``SequentialLR``, ``ChainedScheduler``):

    * ``_sequential_child``: PyTorch's ``SequentialLR`` gives this scheduler its closed-form
      values on its local epoch (it may be a child);
    * ``_multiplicative``: PyTorch's ``step()`` multiplies the current rate by
      ``factor(e) / factor(e - 1)``, so chained schedulers multiply; such a class implements
      ``_factor_at_epoch`` (the rate divided by ``lr``).
    """

    _call: ClassVar[str]
    _module: ClassVar[str] = MODULE
    _sequential_child: ClassVar[bool] = False
    _multiplicative: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._call = f"{cls._module}.{cls.__name__}"

    def __post_init__(self) -> None:
        self._check_arguments()

    def _check_arguments(self) -> None:
        """Raises ``ValueError`` (naming ``self._call``) for invalid arguments."""

    def __call__(self, count: Any) -> jax.Array:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = [f for f in dataclasses.fields(self) if f.init]
        ordered = [f for f in fields if not f.kw_only] + [f for f in fields if f.kw_only]
        arguments = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in ordered)
        return f"{type(self).__name__}({arguments})"


@dataclasses.dataclass(frozen=True, repr=False)
class _EpochSchedule(_Schedule):
    """A scheduler that PyTorch steps once per epoch: ``lr(count) = g(count // steps_per_epoch)``.

    Subclasses implement ``_at_epoch(epoch)`` for the integer epoch counter (``last_epoch``
    in PyTorch), an int32 array.
    """

    steps_per_epoch: int = dataclasses.field(default=1, kw_only=True)

    def _check_arguments(self) -> None:
        _util.positive_int(self._call, "steps_per_epoch", self.steps_per_epoch)

    def __call__(self, count: Any) -> jax.Array:
        epoch = jnp.maximum(jnp.asarray(count), 0) // self.steps_per_epoch
        return _util.f32(self._at_epoch(epoch.astype(jnp.int32)))

    def _at_epoch(self, epoch: jax.Array) -> jax.Array:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True, repr=False)
class _FactorSchedule(_EpochSchedule):
    """A scheduler whose rate is ``lr * factor(epoch)`` and whose PyTorch ``step()`` multiplies."""

    _sequential_child: ClassVar[bool] = True
    _multiplicative: ClassVar[bool] = True

    def _at_epoch(self, epoch: jax.Array) -> jax.Array:
        return _util.f32(self.lr) * self._factor_at_epoch(epoch)  # type: ignore[attr-defined]

    def _factor_at_epoch(self, epoch: jax.Array) -> jax.Array:
        raise NotImplementedError


def check_lr(call: str, lr: Any, name: str = "lr") -> None:
    """A learning rate: a finite non-negative number (traced values are not checked)."""
    # PyTorch's optimizers refuse a negative learning rate.
    _util.check_value(call, name, lr)
    _check.non_negative(call, name, lr)


def log2_gamma(call: str, gamma: Any) -> float:
    value = _util.concrete_number(call, "gamma", gamma)
    _check.positive(call, "gamma", value)
    return math.log2(value)


def factor(call: str, name: str, value: Any, *, low_open: bool = False) -> float:
    """A multiplicative factor in ``[0, 1]`` (or ``(0, 1]``), as a float."""
    x = _util.concrete_number(call, name, value)
    _check.number(call, name, x, low=0.0, high=1.0, low_open=low_open)
    return x


def choice(call: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    _check.one_of(call, name, value, choices)


def int_list(call: str, name: str, values: Any) -> tuple[int, ...]:
    """A sequence of non-negative Python or NumPy integers, as a tuple."""
    ok = isinstance(values, Sequence) and not isinstance(values, str)
    if ok:
        ok = all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in values
        )
    if not ok:
        raise ValueError(
            f"{call}({name}=...) must be a list of non-negative integers (epoch indices), "
            f"got {name}={values!r}"
        )
    return tuple(int(v) for v in values)


def sin2_pair(part: jax.Array, whole: Any) -> tuple[jax.Array, jax.Array]:
    """``(cos(pi t / 2)**2, sin(pi t / 2)**2)`` for ``t = part / whole`` in ``[0, 1]``, accurately.

    ``part`` and ``whole`` are integer-valued; each weight is computed as the square of a sine
    of a small argument (``cos(pi t/2) = sin(pi (whole - part) / (2 whole))``), so both stay
    accurate to float32 rounding where they are tiny, e.g. next to a cosine's trough, where
    ``(1 + cos(pi t)) / 2`` computed directly loses most of its digits.
    """
    part = _util.f32(part)
    whole = _util.f32(whole)
    scale = np.float32(math.pi / 2) / whole
    near = jnp.sin((whole - part) * scale)
    far = jnp.sin(part * scale)
    return near * near, far * far
