"""Gradient accumulation: ``MultiSteps`` and ``apply_every``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._base import GradientTransformation
from ._combine import _as_transformation, _extra_args_filter
from ._conditional import zeros_like_output
from ._numerics import canonical_dtype, safe_increment, zero_count, zeros_like
from ._update import check_state_mirrors


class MultiStepsState(NamedTuple):
    """The state of :class:`MultiSteps` (Optax's fields).

    ``mini_step``: micro-steps accumulated since the last optimizer step; ``gradient_step``:
    optimizer steps taken; ``inner_opt_state``: the wrapped optimizer's state, which changes
    only at optimizer steps; ``acc_grads``: the running mean (or sum) of the micro-batch
    gradients, the one gradient-sized buffer; ``skip_state``: what ``should_skip_update_fn``
    reported at the latest micro-step.
    """

    mini_step: jax.Array
    gradient_step: jax.Array
    inner_opt_state: Any
    acc_grads: Any
    skip_state: Any = ()


def _no_skip(updates, gradient_step, params):
    del updates, gradient_step, params
    return jnp.array(False), ()


def _accumulator_dtype(x: Any, dtype: Any) -> Any:
    """At least float32: half-precision gradients accumulate in float32, others as they are."""
    if dtype is not None:
        return dtype
    x_dtype = jnp.dtype(x.dtype) if hasattr(x, "dtype") else jnp.result_type(x)
    if jnp.issubdtype(x_dtype, jnp.floating) and jnp.finfo(x_dtype).bits < 32:
        return jnp.float32
    return x_dtype


class MultiSteps:
    r"""Gradient accumulation: one optimizer step per ``k`` micro-batches.

    Every call to ``update`` adds the micro-batch gradient to a running mean
    :math:`\bar g_n = \bar g_{n-1} + (g_n - \bar g_{n-1}) / n` (or a sum with
    ``use_grad_mean=False``) and returns zero updates, except at the ``k``-th call, which gives
    :math:`\bar g_k` to ``opt`` and returns its update. The mean of ``k`` micro-batch
    gradients of a mean loss is the gradient of the ``k``-times larger batch, so the run
    equals training on that batch, to float32 rounding. ``k = every_k_schedule(s)`` may change
    with the optimizer step :math:`s` (growing the batch over training).

    Two differences from ``optax.MultiSteps`` (same interface, fields and results):

    - ``opt`` runs only at optimizer steps (a ``lax.cond``), so its step count, schedules
      and hyperparameters advance once per optimizer step, and micro-steps cost no optimizer
      arithmetic;
    - the memory is the optimizer's state plus one gradient-sized buffer ``acc_grads``;
      half-precision gradients accumulate in float32, float32/float64/complex ones in their
      own dtype (Optax always uses float32, which drops the imaginary part of complex ones).

    Args:
        opt: the optimizer to wrap.
        every_k_schedule: micro-steps per optimizer step: a positive int, or a function of
            the optimizer step count (int32) returning one.
        use_grad_mean: average the micro-batch gradients (else sum them).
        should_skip_update_fn: ``(updates, gradient_step, params) -> (bool, info)``; a
            micro-step it rejects leaves the state as it was (``info`` is stored in
            ``skip_state``): :func:`skip_not_finite`, :func:`skip_large_updates`.
        accumulator_dtype: dtype of ``acc_grads`` (default: see above).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.MultiSteps(og.sgd(1.0), every_k_schedule=2)
        >>> state = tx.init(jnp.zeros(1))
        >>> u1, state = tx.update(jnp.array([1.0]), state)
        >>> u2, state = tx.update(jnp.array([3.0]), state)
        >>> u1.tolist(), u2.tolist(), bool(tx.has_updated(state))
        ([0.0], [-2.0], True)
    """

    def __init__(
        self,
        opt: Any,
        every_k_schedule: int | Callable[[jax.Array], Any],
        use_grad_mean: bool = True,
        should_skip_update_fn: Callable[..., tuple[Any, Any]] | None = None,
        accumulator_dtype: Any = None,
    ):
        call = "optgrad.MultiSteps"
        self._opt = _as_transformation(call, "opt", opt)
        self._accepts = _extra_args_filter(self._opt.update)
        if callable(every_k_schedule):
            self._every_k = every_k_schedule
        elif isinstance(every_k_schedule, int) and not isinstance(every_k_schedule, bool):
            if every_k_schedule < 1:
                raise ValueError(
                    f"{call}(every_k_schedule=...) must be a positive integer or a schedule, "
                    f"got every_k_schedule={every_k_schedule!r}"
                )
            self._every_k = lambda step: every_k_schedule
        else:
            raise TypeError(
                f"{call}(every_k_schedule=...) must be a positive integer or a function of the "
                f"optimizer step, got {type(every_k_schedule).__name__}: {every_k_schedule!r}"
            )
        self._use_grad_mean = use_grad_mean
        self._skip = _no_skip if should_skip_update_fn is None else should_skip_update_fn
        self._dtype = canonical_dtype(accumulator_dtype)

    @property
    def inner_opt(self) -> GradientTransformation:
        """The wrapped optimizer."""
        return self._opt

    def init(self, params: Any) -> MultiStepsState:
        """The state: the optimizer's, one zero accumulator, and the counters."""
        acc = jax.tree.map(lambda p: zeros_like(p, _accumulator_dtype(p, self._dtype)), params)
        _, skip_state = self._skip(zeros_like(params), zero_count(), params)
        return MultiStepsState(zero_count(), zero_count(), self._opt.init(params), acc, skip_state)

    def update(
        self, updates: Any, state: MultiStepsState, params: Any = None, **extra_args: Any
    ) -> tuple[Any, MultiStepsState]:
        """Accumulates ``updates``; at every ``k``-th call, steps the optimizer."""
        call = "optgrad.MultiSteps"
        if not isinstance(state, MultiStepsState):
            raise ValueError(
                f"{call}.update: expected a MultiStepsState (the state made by this wrapper's "
                f"`init`), got {type(state).__name__}. Was `init` called with another optimizer?"
            )
        check_state_mirrors(call, updates, state.acc_grads, "acc_grads")
        skip, skip_state = self._skip(updates, state.gradient_step, params)
        skip = jnp.asarray(skip)
        if skip.shape != () or skip.dtype != jnp.bool_:
            raise ValueError(
                f"{call}: should_skip_update_fn must return a boolean scalar first, got an "
                f"array of dtype {skip.dtype} and shape {skip.shape}"
            )
        k = jnp.asarray(self._every_k(state.gradient_step)).astype(jnp.int32)
        n = state.mini_step

        def accumulate(g, a):
            g = g.astype(a.dtype)
            new = a + (g - a) / (n + 1).astype(a.dtype) if self._use_grad_mean else a + g
            return jnp.where(skip, a, new)

        acc = jax.tree.map(accumulate, updates, state.acc_grads)
        emit = jnp.logical_and(~skip, n + 1 >= k)
        extra = self._accepts(extra_args)

        def inner_update(acc):
            grads = jax.tree.map(lambda a, g: a.astype(jnp.result_type(g)), acc, updates)
            return self._opt.update(grads, state.inner_opt_state, params, **extra)

        def step(_):
            out, inner = inner_update(acc)
            return out, inner, jax.tree.map(jnp.zeros_like, acc)

        zeros = zeros_like_output(inner_update, acc)
        out, inner, acc = jax.lax.cond(
            emit, step, lambda _: (zeros, state.inner_opt_state, acc), None
        )
        mini_step = jnp.where(skip, n, jnp.where(emit, 0, safe_increment(n)))
        gradient_step = jnp.where(emit, safe_increment(state.gradient_step), state.gradient_step)
        return out, MultiStepsState(mini_step, gradient_step, inner, acc, skip_state)

    def has_updated(self, state: MultiStepsState) -> jax.Array:
        """Whether the latest ``update`` stepped the optimizer (returned non-zero updates)."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> GradientTransformation:
        """This wrapper as a :class:`optgrad.GradientTransformation` (for ``chain``, Flax)."""
        return GradientTransformation(self.init, self.update)


class ApplyEvery(NamedTuple):
    """``count`` micro-steps modulo ``k`` and the sum ``grad_acc`` of the gradients so far."""

    count: jax.Array
    grad_acc: Any


def apply_every(k: int = 1) -> GradientTransformation:
    r"""Sums the updates of ``k`` consecutive steps and emits the sum every ``k``-th step
    (zeros at the others), as ``optax.apply_every``.

    .. math::
        u_t = \begin{cases} \sum_{j=t-k+1}^{t} g_j & t \equiv 0 \pmod k \\ 0 &
        \text{otherwise} \end{cases}

    Only this stage accumulates: the transformations before it in a chain still step every
    micro-step. To train with a larger effective batch, wrap the whole optimizer in
    :class:`MultiSteps` instead.

    Args:
        k: the number of steps summed before the sum is emitted (default 1).

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the step count and the running
            sum.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.apply_every(2)
        >>> u1, state = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))
        >>> u2, state = tx.update(jnp.ones(1), state)
        >>> u1.tolist(), u2.tolist()
        ([0.0], [2.0])
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"optgrad.apply_every(k=...) must be a positive integer, got k={k!r}")

    def init_fn(params):
        return ApplyEvery(zero_count(), zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors("optgrad.apply_every", updates, state.grad_acc, "grad_acc")
        phase = state.count % k
        acc = jax.tree.map(
            lambda g, a: jnp.where(phase == 0, g, a + g).astype(a.dtype), updates, state.grad_acc
        )
        emit = phase == k - 1
        out = jax.tree.map(lambda a, g: jnp.where(emit, a, 0).astype(g.dtype), acc, updates)
        return out, ApplyEvery(safe_increment(state.count) % k, acc)

    return GradientTransformation(init_fn, update_fn)
