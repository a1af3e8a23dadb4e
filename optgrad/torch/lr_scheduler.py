"""PyTorch's ``torch.optim.lr_scheduler`` as pure schedules.

Each class here is named, and takes the arguments (names and defaults), of the PyTorch
scheduler it reproduces, except that it takes the base learning rate ``lr`` instead of an
optimizer, and has no ``last_epoch``: it is a frozen, stateless schedule, a callable
``count -> float32 learning rate`` where ``count`` is the number of optimizer updates already
applied (the step count that optgrad optimizers pass to their schedules). Resuming is free:
evaluate at the restored count.

PyTorch's epoch-based schedulers are stepped by the training loop, usually once per epoch::

    for epoch in range(epochs):
        for batch in loader:      # steps_per_epoch optimizer steps
            ...; optimizer.step()
        scheduler.step()

The keyword-only ``steps_per_epoch`` (default 1: the scheduler is stepped after every
update) maps the update count to PyTorch's epoch counter, ``epoch = count //
steps_per_epoch``, so the learning rate used for update ``count`` is exactly the one the
PyTorch loop above uses for it.

Values are computed from float64 constants with an exact float32 split of the exponent
(``base ** n`` to ~1.5 float32 ulp), so they match PyTorch's float64 chained
multiplications to float32 rounding even after tens of thousands of decays.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from optgrad import _check
from optgrad.schedules import _util

_MODULE = "optgrad.torch.lr_scheduler"


@dataclasses.dataclass(frozen=True, repr=False)
class _Schedule:
    """Base of the torch-named schedules: a frozen set of arguments, checked when built.

    Subclasses declare their arguments as dataclass fields (in PyTorch's order), check them
    in ``_check_arguments`` and implement ``__call__``. ``repr`` lists every argument in the
    constructor's order (keyword-only ones last), e.g. ``StepLR(lr=0.1, step_size=30,
    gamma=0.1, steps_per_epoch=1)``. Schedulers that also drive momentum (``OneCycleLR``,
    ``CyclicLR``) can expose it as another schedule attribute.
    """

    _call: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._call = f"{_MODULE}.{cls.__name__}"

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
    in PyTorch).
    """

    steps_per_epoch: int = dataclasses.field(default=1, kw_only=True)

    def _check_arguments(self) -> None:
        _util.positive_int(self._call, "steps_per_epoch", self.steps_per_epoch)

    def __call__(self, count: Any) -> jax.Array:
        epoch = jnp.maximum(jnp.asarray(count), 0) // self.steps_per_epoch
        return _util.f32(self._at_epoch(epoch))

    def _at_epoch(self, epoch: jax.Array) -> jax.Array:
        raise NotImplementedError


def _check_lr(call: str, lr: Any) -> None:
    # PyTorch's optimizers refuse a negative learning rate; traced values are not checked.
    _util.check_value(call, "lr", lr)
    _check.non_negative(call, "lr", lr)


def _log2_gamma(call: str, gamma: Any) -> float:
    value = _util.concrete_number(call, "gamma", gamma)
    _check.positive(call, "gamma", value)
    return math.log2(value)


@dataclasses.dataclass(frozen=True, repr=False)
class StepLR(_EpochSchedule):
    r"""``torch.optim.lr_scheduler.StepLR``: the rate times ``gamma`` every ``step_size`` epochs.

    .. math::
        \mathrm{lr}(c) = \mathrm{lr} \cdot \gamma^{\lfloor e / s \rfloor}, \qquad
        e = \lfloor c / k \rfloor

    with :math:`s` = ``step_size``, :math:`k` = ``steps_per_epoch`` and :math:`c` the update
    count. (``optgrad.schedules.exponential_decay(lr, s * k, gamma, staircase=True)`` is the
    same schedule.)

    Args:
      lr: base learning rate (PyTorch takes it from the optimizer), non-negative.
      step_size: positive integer, epochs between decays.
      gamma: positive decay factor (PyTorch also accepts 0 and negative values).
      steps_per_epoch: keyword-only positive integer, updates per ``scheduler.step()``.

    Example:
      >>> from optgrad.torch import lr_scheduler
      >>> schedule = lr_scheduler.StepLR(lr=1.0, step_size=2, gamma=0.5, steps_per_epoch=10)
      >>> [float(schedule(c)) for c in (0, 19, 20, 39, 40)]
      [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    lr: Any
    step_size: int
    gamma: float = 0.1

    def _check_arguments(self) -> None:
        super()._check_arguments()
        _check_lr(self._call, self.lr)
        _util.positive_int(self._call, "step_size", self.step_size)
        _log2_gamma(self._call, self.gamma)

    def _at_epoch(self, epoch: jax.Array) -> jax.Array:
        decays = epoch // self.step_size
        return _util.f32(self.lr) * _util.power(decays, _log2_gamma(self._call, self.gamma))


@dataclasses.dataclass(frozen=True, repr=False)
class ExponentialLR(_EpochSchedule):
    r"""``torch.optim.lr_scheduler.ExponentialLR``: the rate times ``gamma`` every epoch.

    .. math::
        \mathrm{lr}(c) = \mathrm{lr} \cdot \gamma^{e}, \qquad e = \lfloor c / k \rfloor

    with :math:`k` = ``steps_per_epoch`` and :math:`c` the update count.

    Args:
      lr: base learning rate (PyTorch takes it from the optimizer), non-negative.
      gamma: positive decay factor (``> 1`` grows; PyTorch also accepts 0 and negative values).
      steps_per_epoch: keyword-only positive integer, updates per ``scheduler.step()``.

    Example:
      >>> from optgrad.torch import lr_scheduler
      >>> schedule = lr_scheduler.ExponentialLR(lr=1.0, gamma=0.5)
      >>> [float(schedule(c)) for c in (0, 1, 2, 10)]
      [1.0, 0.5, 0.25, 0.0009765625]
    """

    lr: Any
    gamma: float

    def _check_arguments(self) -> None:
        super()._check_arguments()
        _check_lr(self._call, self.lr)
        _log2_gamma(self._call, self.gamma)

    def _at_epoch(self, epoch: jax.Array) -> jax.Array:
        return _util.f32(self.lr) * _util.power(epoch, _log2_gamma(self._call, self.gamma))
