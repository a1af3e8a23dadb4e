"""Choosing a learning rate: the LR range test, and training at many learning rates at once."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _check
from ._base import GradientTransformation
from ._optimizers._sgd import sgd
from ._update import apply_updates
from .schedules import exponential_decay

Optimizer = Callable[[Any], GradientTransformation]


def _num_batches(call: str, batches: Any) -> int:
    """The length of the leading axis shared by every leaf of ``batches`` (1 for ``None``)."""
    if batches is None:
        return 1
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in jax.tree.leaves(batches)}
    if not sizes or None in sizes or len(sizes) != 1 or 0 in sizes:
        shapes = jax.tree.map(np.shape, batches)
        raise ValueError(
            f"{call}(batches=...) must be None or a tree of arrays sharing a non-empty leading "
            f"axis (one batch per entry), got shapes {shapes}"
        )
    return sizes.pop()


def _loss_and_grad(loss_fn: Callable[..., Any], batches: Any, count: int):
    """``(params, step) -> (loss, grads)`` on batch ``step % count`` (no batch when ``None``)."""

    def evaluate(params: Any, step: jax.Array):
        if batches is None:
            return jax.value_and_grad(loss_fn)(params)
        # ``jnp.asarray``: a NumPy batch cannot be indexed by the traced step.
        batch = jax.tree.map(lambda leaf: jnp.asarray(leaf)[step % count], batches)
        return jax.value_and_grad(loss_fn)(params, batch)

    return evaluate


def _where(flag: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), on_true, on_false)


@dataclasses.dataclass(frozen=True)
class LRFinderResult:
    """What :func:`lr_finder` measured, up to the step where the loss diverged.

    Attributes:
      lrs: the learning rates tried, one per step (NumPy float32).
      losses: the smoothed losses (bias-corrected exponential moving average).
      raw_losses: the loss of each step's batch, before that step's update.
      suggestion: ``lr_at_min / 10`` (see :func:`lr_finder` for why).
      lr_at_min: the learning rate of the lowest smoothed loss.
      steepest_lr: the learning rate where the smoothed loss falls fastest against
        ``log(lr)`` (NaN when fewer than 3 steps ran before divergence): a more cautious
        choice.
      diverged: whether the run stopped early because the loss diverged.
    """

    lrs: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggestion: float
    lr_at_min: float
    steepest_lr: float
    diverged: bool

    def plot(self, ax: Any = None) -> Any:
        """Draws the smoothed loss against the learning rate (log scale) and marks the
        suggestion; returns the matplotlib ``Axes`` (needs ``pip install matplotlib``)."""
        if ax is None:
            try:
                import matplotlib.pyplot as plt
            except ImportError as error:
                raise ImportError(
                    "optgrad.LRFinderResult.plot needs matplotlib, an optional dependency: "
                    "`pip install matplotlib`"
                ) from error
            _, ax = plt.subplots()
        ax.plot(self.lrs, self.raw_losses, alpha=0.3, label="loss")
        ax.plot(self.lrs, self.losses, label="smoothed loss")
        if math.isfinite(self.suggestion):
            ax.axvline(self.suggestion, linestyle="--", color="k",
                       label=f"suggestion {self.suggestion:.3g}")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.legend()
        return ax


def _steepest(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The learning rate where ``losses`` decreases fastest against ``log(lr)``."""
    if len(lrs) < 3:
        return math.nan
    slope = np.gradient(losses.astype(np.float64), np.log(lrs.astype(np.float64)))
    return float(lrs[int(np.argmin(slope))])


def lr_finder(
    loss_fn: Callable[..., Any],
    params: Any,
    batches: Any = None,
    optimizer: Optimizer = sgd,
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    smooth: float = 0.98,
    diverge_factor: float = 4.0,
) -> LRFinderResult:
    r"""The learning-rate range test: train once while the learning rate grows exponentially.

    Step :math:`i` (of :math:`N` = ``num_steps``) uses the learning rate
    :math:`\eta_i = \eta_{min} (\eta_{max} / \eta_{min})^{i / (N - 1)}`, and records the loss of
    its batch before its update. The losses are smoothed by a bias-corrected exponential moving
    average, :math:`a_i = \beta a_{i-1} + (1 - \beta) \ell_i`, :math:`\bar\ell_i = a_i / (1 -
    \beta^{i+1})` (:math:`\beta` = ``smooth``); the test stops (the remaining steps leave the
    parameters alone) once the loss is not finite or :math:`\bar\ell_i` exceeds
    ``diverge_factor`` times its lowest value so far. Smith, "Cyclical Learning Rates for
    Training Neural Networks" (2017); the fast.ai ``lr_find``.

    The whole test is one ``jax.lax.scan``, compiled once. The optimizer is built as
    ``optimizer(schedule)``, with the exponential schedule above as its learning rate.

    **The suggestion** is fast.ai's rule: the learning rate of the lowest smoothed loss, divided
    by 10. The lowest smoothed loss sits just past the edge of stability (on a quadratic of
    largest curvature :math:`L` the loss starts growing at :math:`\eta = 2/L`; the smoothing
    lags by a few steps, each a factor :math:`(\eta_{max}/\eta_{min})^{1/(N-1)}`, about 1.2
    with the defaults), and a tenth of it leaves a safety margin: with the defaults it lands
    within a factor 2 of the best constant step :math:`1/L` on quadratics. The other rule,
    the steepest descent of the smoothed loss against :math:`\log \eta`
    (``result.steepest_lr``), is more cautious: where the loss falls fastest the learning rate
    is still growing, and the progress of all the smaller steps before it adds up, so it lands
    at about :math:`0.1/L` to :math:`0.5/L`. Both are heuristics to check with
    :meth:`LRFinderResult.plot`; both depend on ``smooth`` and ``num_steps``, and the minimum
    on ``max_lr`` when the loss has not diverged by then.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (``loss_fn(params)`` when ``batches`` is
        ``None``).
      params: the initial parameters (left unchanged).
      batches: ``None``, or a tree of arrays with one batch per entry of the leading axis;
        step :math:`i` uses batch ``i % len``.
      optimizer: a factory ``learning_rate -> GradientTransformation`` that accepts a
        schedule, e.g. ``optgrad.sgd`` (the default), ``optgrad.adam`` or
        ``lambda lr: optgrad.sgd(lr, momentum=0.9)``.
      min_lr: positive, the first learning rate.
      max_lr: the last learning rate, greater than ``min_lr``.
      num_steps: integer >= 2, the number of steps (and learning rates).
      smooth: the smoothing factor :math:`\beta`, in [0, 1).
      diverge_factor: stop when the smoothed loss exceeds this multiple of its minimum (> 1).

    Returns:
      An :class:`LRFinderResult` with ``lrs``, ``losses`` (smoothed), ``raw_losses``,
      ``suggestion``, ``lr_at_min``, ``steepest_lr``, ``diverged`` and a ``plot(ax=None)``
      method.

    Example:
      >>> import jax.numpy as jnp, optgrad as og
      >>> loss = lambda w: 0.5 * 4.0 * jnp.sum(w**2)  # curvature 4: best step 1/4
      >>> result = og.lr_finder(loss, jnp.ones(3), min_lr=1e-4, max_lr=10.0)
      >>> 0.125 <= result.suggestion <= 0.5, result.diverged
      (True, True)
    """
    call = "optgrad.lr_finder"
    if not callable(loss_fn):
        raise TypeError(f"{call}(loss_fn=...) must be callable, got {type(loss_fn).__name__}")
    if not callable(optimizer):
        raise TypeError(
            f"{call}(optimizer=...) must be a factory learning_rate -> GradientTransformation "
            f"(e.g. optgrad.adam), got {type(optimizer).__name__}: {optimizer!r}"
        )
    _check.number(call, "min_lr", min_lr, low=0.0, low_open=True)
    _check.number(call, "max_lr", max_lr, low=0.0, low_open=True)
    if not float(max_lr) > float(min_lr):
        raise ValueError(
            f"{call}(max_lr=...) must be greater than min_lr, got max_lr={max_lr!r}, "
            f"min_lr={min_lr!r}"
        )
    _check.positive_int(call, "num_steps", num_steps)
    if num_steps < 2:
        raise ValueError(f"{call}(num_steps=...) must be at least 2, got num_steps={num_steps!r}")
    _check.number(call, "smooth", smooth, low=0.0, high=1.0, high_open=True)
    _check.number(call, "diverge_factor", diverge_factor, low=1.0, low_open=True)
    count = _num_batches(call, batches)

    schedule = exponential_decay(
        float(min_lr), num_steps - 1, float(max_lr) / float(min_lr), end_value=float(max_lr)
    )
    tx = optimizer(schedule)
    loss_and_grad = _loss_and_grad(loss_fn, batches, count)
    beta = float(smooth)
    log_beta = math.log(beta) if beta > 0 else -math.inf

    def step(carry, i):
        params, state, average, best, stopped = carry
        loss, grads = loss_and_grad(params, i)
        loss = jnp.asarray(loss, jnp.float32)
        average = beta * average + (1.0 - beta) * loss
        # 1 - beta ** (i + 1), without cancellation for beta close to 1.
        smoothed = average / -jnp.expm1(jnp.float32(log_beta) * (i + 1).astype(jnp.float32))
        updates, new_state = tx.update(grads, state, params)
        new_params = apply_updates(params, updates)
        diverged = ~jnp.isfinite(loss) | (smoothed > diverge_factor * best)
        stop = stopped | diverged
        valid = ~stopped & jnp.isfinite(loss)
        carry = (
            _where(stop, params, new_params),
            _where(stop, state, new_state),
            average,
            jnp.where(stop, best, jnp.minimum(best, smoothed)),
            stop,
        )
        return carry, (loss, smoothed, schedule(i), valid, diverged & ~stopped)

    @jax.jit
    def run(params):
        start = (params, tx.init(params), jnp.float32(0.0), jnp.float32(jnp.inf), jnp.bool_(False))
        return jax.lax.scan(step, start, jnp.arange(num_steps, dtype=jnp.int32))[1]

    raw, smoothed, lrs, valid, diverged = jax.device_get(run(params))
    kept = int(np.sum(valid))
    lrs, raw, smoothed = lrs[:kept], raw[:kept], smoothed[:kept]
    lr_at_min = float(lrs[int(np.argmin(smoothed))]) if kept else math.nan
    return LRFinderResult(
        lrs=lrs,
        losses=smoothed,
        raw_losses=raw,
        suggestion=lr_at_min / 10,
        lr_at_min=lr_at_min,
        steepest_lr=_steepest(lrs, smoothed),
        diverged=bool(np.any(diverged)),
    )


@dataclasses.dataclass(frozen=True)
class LRSweepResult:
    """What :func:`lr_sweep` measured; row ``k`` of each array belongs to ``lrs[k]``.

    Attributes:
      lrs: the learning rates (NumPy float32, shape ``(K,)``).
      losses: the loss of each step's batch before that step's update, shape
        ``(K, num_steps)``.
      final_losses: the loss of the trained parameters on the batch that would come next
        (``loss_fn(params)`` when there are no batches), shape ``(K,)``.
      params: the trained parameters, each leaf with a leading axis of size ``K``.
    """

    lrs: np.ndarray
    losses: np.ndarray
    final_losses: np.ndarray
    params: Any


def lr_sweep(
    loss_fn: Callable[..., Any],
    params: Any,
    batches: Any,
    lrs: Any,
    optimizer: Optimizer = sgd,
    *,
    num_steps: int | None = None,
) -> LRSweepResult:
    """Trains one copy of ``params`` per learning rate, all at once, and reports their losses.

    The training loop (``jax.lax.scan`` over the steps) is ``jax.vmap``-ed over the learning
    rates and compiled once, whatever the number of learning rates: each copy builds its
    optimizer as ``optimizer(lr)`` with a traced ``lr`` and runs the same steps on the same
    batches. Row ``k`` equals a separate run with ``optimizer(lrs[k])`` to float32 rounding.
    Any factory that accepts an array learning rate works (optgrad's optimizers, Optax's,
    chains built around them).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (``loss_fn(params)`` when ``batches`` is
        ``None``).
      params: the initial parameters, shared by every copy (left unchanged).
      batches: ``None``, or a tree of arrays with one batch per entry of the leading axis;
        step ``i`` uses batch ``i % len``.
      lrs: a 1-D sequence of learning rates.
      optimizer: a factory ``learning_rate -> GradientTransformation`` (default
        ``optgrad.sgd``).
      num_steps: the number of steps; default one pass over ``batches`` (required when
        ``batches`` is ``None``).

    Returns:
      An :class:`LRSweepResult` with ``lrs``, ``losses``, ``final_losses`` and ``params``.

    Example:
      >>> import jax.numpy as jnp, optgrad as og
      >>> loss = lambda w: 0.5 * jnp.sum(w**2)
      >>> sweep = og.lr_sweep(loss, jnp.ones(2), None, [0.1, 1.0, 2.5], num_steps=10)
      >>> [round(float(x), 6) for x in sweep.final_losses]
      [0.121577, 0.0, 3325.256836]
    """
    call = "optgrad.lr_sweep"
    if not callable(loss_fn):
        raise TypeError(f"{call}(loss_fn=...) must be callable, got {type(loss_fn).__name__}")
    if not callable(optimizer):
        raise TypeError(
            f"{call}(optimizer=...) must be a factory learning_rate -> GradientTransformation "
            f"(e.g. optgrad.adam), got {type(optimizer).__name__}: {optimizer!r}"
        )
    rates = np.asarray(lrs, np.float32)
    if rates.ndim != 1 or rates.size == 0 or not np.all(np.isfinite(rates)):
        raise ValueError(
            f"{call}(lrs=...) must be a non-empty 1-D sequence of finite numbers, got lrs={lrs!r}"
        )
    count = _num_batches(call, batches)
    if num_steps is None:
        if batches is None:
            raise ValueError(f"{call}(num_steps=...) is required when batches is None")
        num_steps = count
    _check.positive_int(call, "num_steps", num_steps)
    loss_and_grad = _loss_and_grad(loss_fn, batches, count)

    def train(lr: jax.Array, params: Any):
        tx = optimizer(lr)

        def step(carry, i):
            params, state = carry
            loss, grads = loss_and_grad(params, i)
            updates, state = tx.update(grads, state, params)
            return (apply_updates(params, updates), state), jnp.asarray(loss, jnp.float32)

        steps = jnp.arange(num_steps, dtype=jnp.int32)
        (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), steps)
        final, _ = loss_and_grad(params, jnp.int32(num_steps))
        return losses, jnp.asarray(final, jnp.float32), params

    run = jax.jit(jax.vmap(train, in_axes=(0, None)))
    losses, final, trained = run(jnp.asarray(rates), params)
    return LRSweepResult(rates, np.asarray(losses), np.asarray(final), trained)
