"""``StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``ConstantLR``, ``LinearLR``, ``PolynomialLR``,
``LambdaLR`` and ``MultiplicativeLR``: the rate as ``lr`` times a factor of the epoch."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from optgrad import _check
from optgrad.schedules import _util

from ._schedulers_base import (
    _EpochSchedule,
    _FactorSchedule,
    check_lr,
    factor,
    int_list,
    log2_gamma,
)


@dataclasses.dataclass(frozen=True, repr=False)
class StepLR(_FactorSchedule):
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
        check_lr(self._call, self.lr)
        _util.positive_int(self._call, "step_size", self.step_size)
        log2_gamma(self._call, self.gamma)

    def _factor_at_epoch(self, epoch: jax.Array) -> jax.Array:
        return _util.power(epoch // self.step_size, log2_gamma(self._call, self.gamma))


@dataclasses.dataclass(frozen=True, repr=False)
class ExponentialLR(_FactorSchedule):
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
        check_lr(self._call, self.lr)
        log2_gamma(self._call, self.gamma)

    def _factor_at_epoch(self, epoch: jax.Array) -> jax.Array:
        return _util.power(epoch, log2_gamma(self._call, self.gamma))


@dataclasses.dataclass(frozen=True, repr=False)
class MultiStepLR(_FactorSchedule):
    r"""``torch.optim.lr_scheduler.MultiStepLR``: the rate times ``gamma`` at each milestone.

    .. math::
        \mathrm{lr}(c) = \mathrm{lr} \cdot \gamma^{\#\{i : m_i \le e\}}, \qquad
        e = \lfloor c / k \rfloor

    A milestone listed twice decays twice (PyTorch counts them with a ``Counter``); a
    milestone 0 decays the very first epoch. As in PyTorch the order of ``milestones`` does
    not matter (its docs ask for an increasing list, its code does not).

    Args:
      lr: base learning rate, non-negative.
      milestones: list of non-negative integer epochs.
      gamma: positive decay factor.
      steps_per_epoch: keyword-only positive integer, updates per ``scheduler.step()``.

    Example:
      >>> from optgrad.torch import lr_scheduler
      >>> schedule = lr_scheduler.MultiStepLR(1.0, milestones=[2, 4, 4], gamma=0.5)
      >>> [float(schedule(c)) for c in (0, 2, 3, 4)]
      [1.0, 0.5, 0.5, 0.125]
    """

    lr: Any
    milestones: Any
    gamma: float = 0.1

    def _check_arguments(self) -> None:
        super()._check_arguments()
        check_lr(self._call, self.lr)
        object.__setattr__(self, "milestones", int_list(self._call, "milestones", self.milestones))
        log2_gamma(self._call, self.gamma)

    def _factor_at_epoch(self, epoch: jax.Array) -> jax.Array:
        passed = _util.stages_passed(epoch, tuple(sorted(self.milestones)))
        return _util.power(passed, log2_gamma(self._call, self.gamma))


@dataclasses.dataclass(frozen=True, repr=False)
class ConstantLR(_FactorSchedule):
    r"""``torch.optim.lr_scheduler.ConstantLR``: ``lr * factor`` for ``total_iters`` epochs.

    Stricter than PyTorch: ``factor`` must be in ``(0, 1]`` (PyTorch accepts 0, then divides
    by it at epoch ``total_iters``) and ``total_iters`` positive (with 0 PyTorch keeps
    ``lr * factor`` forever while its closed form says ``lr``).

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        factor: the multiplicative factor applied to the learning rate.
        total_iters: the number of epochs over which the factor applies.
        steps_per_epoch: the number of optimizer updates per epoch (default 1).

    Example:
      >>> from optgrad.torch import lr_scheduler
      >>> schedule = lr_scheduler.ConstantLR(1.0, factor=0.5, total_iters=2)
      >>> [float(schedule(c)) for c in (0, 1, 2)]
      [0.5, 0.5, 1.0]
    """

    lr: Any
    factor: float = 1.0 / 3
    total_iters: int = 5

    def _check_arguments(self) -> None:
        super()._check_arguments()
        check_lr(self._call, self.lr)
        factor(self._call, "factor", self.factor, low_open=True)
        _util.positive_int(self._call, "total_iters", self.total_iters)

    def _factor_at_epoch(self, epoch: jax.Array) -> jax.Array:
        return jnp.where(epoch < self.total_iters, np.float32(self.factor), np.float32(1.0))


@dataclasses.dataclass(frozen=True, repr=False)
class LinearLR(_FactorSchedule):
    r"""``torch.optim.lr_scheduler.LinearLR``: the factor ramps linearly for ``total_iters`` epochs.

    .. math::
        \mathrm{lr}(c) = \mathrm{lr} \cdot \frac{s\,(T - \min(e, T)) + f\,\min(e, T)}{T}

    with :math:`s` = ``start_factor`` in ``(0, 1]``, :math:`f` = ``end_factor`` in ``[0, 1]``,
    :math:`T` = ``total_iters`` (positive; stricter than PyTorch, which divides by it).

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        start_factor: the factor applied at the first epoch.
        end_factor: the factor reached after ``total_iters`` epochs.
        total_iters: the number of epochs over which the factor applies.
        steps_per_epoch: the number of optimizer updates per epoch (default 1).

    Example:
      >>> from optgrad.torch import lr_scheduler
      >>> schedule = lr_scheduler.LinearLR(1.0, start_factor=0.25, total_iters=3)
      >>> [float(schedule(c)) for c in (0, 1, 3, 9)]
      [0.25, 0.5, 1.0, 1.0]
    """

    lr: Any
    start_factor: float = 1.0 / 3
    end_factor: float = 1.0
    total_iters: int = 5

    def _check_arguments(self) -> None:
        super()._check_arguments()
        check_lr(self._call, self.lr)
        factor(self._call, "start_factor", self.start_factor, low_open=True)
        factor(self._call, "end_factor", self.end_factor)
        _util.positive_int(self._call, "total_iters", self.total_iters)

    def _factor_at_epoch(self, epoch: jax.Array) -> jax.Array:
        # Two non-negative products: no cancellation when end_factor is 0.
        done = jnp.minimum(epoch, self.total_iters)
        left = _util.f32(self.total_iters - done)
        mixed = left * np.float32(self.start_factor) + _util.f32(done) * np.float32(self.end_factor)
        return mixed / np.float32(self.total_iters)


@dataclasses.dataclass(frozen=True, repr=False)
class PolynomialLR(_FactorSchedule):
    r"""``torch.optim.lr_scheduler.PolynomialLR``: ``lr * (1 - min(e, T) / T) ** power``.

    Reaches 0 at epoch ``total_iters`` and stays there. ``power`` must be non-negative
    (PyTorch divides by zero for a negative one at epoch ``total_iters``).

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        total_iters: the number of epochs over which the factor applies.
        power: the exponent of the polynomial decay.
        steps_per_epoch: the number of optimizer updates per epoch (default 1).

    Example:
      >>> from optgrad.torch import lr_scheduler
      >>> schedule = lr_scheduler.PolynomialLR(1.0, total_iters=4, power=2.0)
      >>> [float(schedule(c)) for c in (0, 2, 4, 5)]
      [1.0, 0.25, 0.0, 0.0]
    """

    lr: Any
    total_iters: int = 5
    power: float = 1.0

    def _check_arguments(self) -> None:
        super()._check_arguments()
        check_lr(self._call, self.lr)
        _util.positive_int(self._call, "total_iters", self.total_iters)
        value = _util.concrete_number(self._call, "power", self.power)
        _check.non_negative(self._call, "power", value)

    def _factor_at_epoch(self, epoch: jax.Array) -> jax.Array:
        left = _util.f32(self.total_iters - jnp.minimum(epoch, self.total_iters))
        base = left / np.float32(self.total_iters)
        return base if self.power == 1 else jnp.power(base, np.float32(self.power))


def _check_lambda(call: str, fn: Any) -> None:
    if not callable(fn):
        raise TypeError(
            f"{call}(lr_lambda=...) must be a function of the integer epoch, got "
            f"{type(fn).__name__}: {fn!r}"
        )


@dataclasses.dataclass(frozen=True, repr=False)
class LambdaLR(_EpochSchedule):
    r"""``torch.optim.lr_scheduler.LambdaLR``: ``lr * lr_lambda(epoch)``.

    ``lr_lambda`` is called with the epoch as an int32 array (traced under ``jit``), so it
    must be written with ``jax.numpy`` (``jnp.where`` rather than ``if``) and return a scalar
    per epoch; it is traced once when the schedule is built, to check that. It runs in
    float32 where PyTorch's runs in double precision: a factor such as ``0.95 ** epoch`` is
    then accurate to float32 rounding of ``epoch * log(0.95)`` (use
    :class:`ExponentialLR` or :class:`MultiplicativeLR` for exact long products).

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        lr_lambda: a function of the epoch returning the factor applied to ``lr``.
        steps_per_epoch: the number of optimizer updates per epoch (default 1).

    Example:
      >>> import jax.numpy as jnp
      >>> from optgrad.torch import lr_scheduler
      >>> schedule = lr_scheduler.LambdaLR(1.0, lambda e: jnp.minimum(1.0, (e + 1) / 4))
      >>> [float(schedule(c)) for c in (0, 1, 3, 10)]
      [0.25, 0.5, 1.0, 1.0]
    """

    _sequential_child: ClassVar[bool] = True

    lr: Any
    lr_lambda: Callable[[Any], Any]

    def _check_arguments(self) -> None:
        super()._check_arguments()
        check_lr(self._call, self.lr)
        _check_lambda(self._call, self.lr_lambda)
        try:
            out = jax.eval_shape(self.lr_lambda, jax.ShapeDtypeStruct((), jnp.int32))
        except Exception as error:
            raise ValueError(
                f"{self._call}(lr_lambda=...) must be traceable by JAX (called with the epoch "
                "as an int32 array under jit; use jnp.where instead of if/else), but calling "
                f"it failed with {type(error).__name__}: {error}"
            ) from error
        if jnp.shape(out) != ():
            raise ValueError(
                f"{self._call}(lr_lambda=...) must return a scalar for a scalar epoch, got "
                f"shape {jnp.shape(out)}"
            )

    def _at_epoch(self, epoch: jax.Array) -> jax.Array:
        return _util.f32(self.lr) * _util.f32(self.lr_lambda(epoch))


@dataclasses.dataclass(frozen=True, repr=False)
class MultiplicativeLR(_FactorSchedule):
    r"""``torch.optim.lr_scheduler.MultiplicativeLR``: the rate times ``lr_lambda(e)`` each epoch.

    .. math::
        \mathrm{lr}(c) = \mathrm{lr} \prod_{k=1}^{e} \lambda(k), \qquad e = \lfloor c / k \rfloor

    PyTorch multiplies in double precision, step after step. To match it exactly (a float32
    product of hundreds of factors would drift by ~1e-5), ``lr_lambda`` is called **when the
    schedule is built**, with the Python integers ``0, 1, ..., max_epochs`` (as PyTorch calls
    it), and the running products are tabulated in float64. ``lr_lambda`` may therefore be
    any Python function of an integer epoch returning a number; it need not be traceable.

    Args:
      lr: base learning rate, non-negative.
      lr_lambda: ``epoch -> factor``, called with Python ints at build time.
      max_epochs: keyword-only, the last epoch tabulated (default 10,000; the table costs 4
        bytes per epoch and one call of ``lr_lambda`` each). Past it the schedule returns NaN,
        so that running past the table is loud instead of silently wrong.
      steps_per_epoch: keyword-only positive integer, updates per ``scheduler.step()``.

    Example:
      >>> from optgrad.torch import lr_scheduler
      >>> schedule = lr_scheduler.MultiplicativeLR(1.0, lambda e: 0.5 if e % 2 else 1.0)
      >>> [float(schedule(c)) for c in (0, 1, 2, 3)]
      [1.0, 0.5, 0.5, 0.25]
    """

    lr: Any
    lr_lambda: Callable[[int], float]
    max_epochs: int = dataclasses.field(default=10_000, kw_only=True)

    def _check_arguments(self) -> None:
        super()._check_arguments()
        check_lr(self._call, self.lr)
        _check_lambda(self._call, self.lr_lambda)
        _util.positive_int(self._call, "max_epochs", self.max_epochs)
        factors = []
        for k in range(self.max_epochs + 1):
            try:
                factors.append(float(self.lr_lambda(k)))
            except Exception as error:
                raise ValueError(
                    f"{self._call}(lr_lambda=...) is called with the Python ints 0..max_epochs "
                    f"when the schedule is built; lr_lambda({k}) failed with "
                    f"{type(error).__name__}: {error}"
                ) from error
        products = np.cumprod(np.asarray([1.0, *factors[1:]], np.float64))
        object.__setattr__(self, "_first_factor", factors[0])
        object.__setattr__(self, "_products", products.astype(np.float32))

    def _factor_at_epoch(self, epoch: jax.Array) -> jax.Array:
        """``prod_{k=1..epoch} lr_lambda(k)``; NaN past ``max_epochs``."""
        table = jnp.asarray(self._products)  # type: ignore[attr-defined]
        value = table[jnp.clip(epoch, 0, self.max_epochs)]
        return jnp.where(epoch > self.max_epochs, np.float32(math.nan), value)

    def _continued_factor(self, local_epoch: jax.Array) -> jax.Array:
        """``prod_{k=0..local_epoch} lr_lambda(k)``: what PyTorch's ``SequentialLR`` multiplies
        the current rate by when it switches to this child at a milestone (it has no closed
        form, so ``step(0)`` multiplies by ``lr_lambda(0)`` instead of restarting)."""
        return np.float32(self._first_factor) * self._factor_at_epoch(local_epoch)  # type: ignore[attr-defined]
