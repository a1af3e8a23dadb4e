"""The zoom line search: a step satisfying the strong Wolfe conditions (Nocedal & Wright,
Algorithms 3.5 and 3.6). Its calling convention is the one of :mod:`optgrad._linesearch`."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _check
from ._base import GradientTransformation
from ._linesearch import (
    bind_objective,
    cast_like,
    check_nonneg_int,
    real_dot,
    scalar_dtype,
    step_along,
    violation,
)
from ._numerics import zeros_like
from .tree import _arith as tree_ops


class ZoomLinesearchInfo(NamedTuple):
    """``num_linesearch_steps`` (int32, evaluations of ``value_fn``) and how much the accepted
    step misses each criterion (0 when it is met): ``decrease_error`` (sufficient decrease;
    positive is a failure) and ``curvature_error`` (the curvature condition; positive only
    means the step is not a strong-Wolfe step, e.g. capped by ``max_learning_rate``)."""

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array


class ScaleByZoomLinesearchState(NamedTuple):
    """The accepted ``stepsize`` (Optax calls it ``learning_rate``), the loss ``value`` and its
    ``grad`` there (reusable with :func:`optgrad.value_and_grad_from_state`), and ``info``."""

    stepsize: jax.Array
    value: jax.Array
    grad: Any
    info: ZoomLinesearchInfo


class _Zoom(NamedTuple):
    """The search in progress. ``low``/``high`` bound an interval that contains an acceptable
    step, with ``value_low <= value_high`` (``low`` need not be the smaller one); ``ref`` is the
    third point of the cubic model; ``safe_*`` the best step with sufficient decrease so far."""

    count: jax.Array
    stepsize: jax.Array
    value: jax.Array
    grad: Any
    slope: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array
    bracketed: jax.Array
    done: jax.Array
    failed: jax.Array
    low: jax.Array
    value_low: jax.Array
    slope_low: jax.Array
    high: jax.Array
    value_high: jax.Array
    slope_high: jax.Array
    ref: jax.Array
    value_ref: jax.Array
    safe_stepsize: jax.Array
    safe_value: jax.Array
    safe_grad: Any


def _cubic_minimizer(a, fa, dfa, b, fb, c, fc):
    r"""The local minimiser of the cubic :math:`p` with :math:`p(a) = f_a`, :math:`p'(a) =
    f'_a`, :math:`p(b) = f_b`, :math:`p(c) = f_c` (NaN when it has none). Writing
    :math:`p(a + z) = A z^3 + B z^2 + f'_a z + f_a`, the two conditions at ``b`` and ``c`` are a
    2x2 linear system for :math:`A, B`; :math:`p'' > 0` picks the root
    :math:`z = (-B + \sqrt{B^2 - 3 A f'_a}) / (3A)`."""
    db, dc = b - a, c - a
    rb, rc = fb - fa - dfa * db, fc - fa - dfa * dc
    det = (db * dc) ** 2 * (db - dc)
    cubic = (dc**2 * rb - db**2 * rc) / det
    square = (db**3 * rc - dc**3 * rb) / det
    return a + (-square + jnp.sqrt(square**2 - 3.0 * cubic * dfa)) / (3.0 * cubic)


def _quadratic_minimizer(a, fa, dfa, b, fb):
    """The critical point of the parabola through ``(a, fa)`` with slope ``dfa`` and ``(b, fb)``."""
    db = b - a
    curvature = (fb - fa - dfa * db) / db**2
    return a - dfa / (2.0 * curvature)


def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: float | None = None,
    tol: float = 0.0,
    increase_factor: float = 2.0,
    slope_rtol: float = 1e-4,
    curv_rtol: float = 0.9,
    approx_dec_rtol: float | None = 1e-6,
    stepsize_precision: float = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> GradientTransformation:
    r"""Scales the updates :math:`u` by a step :math:`\eta` satisfying the strong Wolfe
    conditions, found by bracketing then zooming (Nocedal & Wright, Algorithms 3.5 and 3.6).

    .. math::
        f(w + \eta u) &\le f(w) + c_1 \eta\, \langle u, \nabla f(w)\rangle + \epsilon
            \qquad \text{(sufficient decrease)} \\
        |\langle u, \nabla f(w + \eta u)\rangle| &\le c_2\, |\langle u, \nabla f(w)\rangle|
            + \epsilon \qquad \text{(curvature)}

    with :math:`c_1` = ``slope_rtol``, :math:`c_2` = ``curv_rtol``, :math:`\epsilon` = ``tol``.
    Near a minimum, where :math:`f` differences drown in rounding, sufficient decrease may be
    met instead by Hager & Zhang's approximate condition :math:`\langle u, \nabla f(w+\eta
    u)\rangle \le (2c_1 - 1)\langle u, \nabla f(w)\rangle` when :math:`f(w + \eta u) \le f(w) +
    c_3 |f(w)|`, :math:`c_3` = ``approx_dec_rtol`` (``None`` turns this off).

    *Bracketing* tries :math:`\eta_0` (1 with ``initial_guess_strategy="one"``, the previous
    accepted step with ``"keep"``), then multiplies by ``increase_factor`` (capped at
    ``max_learning_rate``) until a trial either meets both conditions, violates sufficient
    decrease, does not decrease the loss, or has a non-negative slope; the last two trials then
    bracket an acceptable step. *Zooming* picks a trial inside the bracket -- the minimiser of a
    cubic through the bracket ends and the previous end if it lies well inside, else of a
    quadratic, else the midpoint -- and shrinks the bracket around it. The search stops after
    ``max_linesearch_steps`` evaluations, or when the bracket is shorter than
    ``stepsize_precision`` and some trial met sufficient decrease; it then takes the best trial
    with sufficient decrease (the last trial if there is none). The gradient at the accepted
    point is kept in the state: :func:`optgrad.value_and_grad_from_state` reuses it.

    ``update(updates, state, params, *, value, grad, value_fn, **extra_args)`` as in
    :func:`scale_by_backtracking_linesearch`. Same arguments and, in float64, the same steps as
    Optax 0.2.8's function of that name (tested); ``verbose`` is accepted and ignored.

    Args:
        max_linesearch_steps: the most iterations of the search per update.
        max_learning_rate: the largest step allowed (``None``: unbounded).
        tol: the tolerance of the decrease condition.
        increase_factor: the factor the step grows by before a new search.
        slope_rtol: the sufficient-decrease (Armijo) constant.
        curv_rtol: the curvature (Wolfe) constant.
        approx_dec_rtol: the tolerance of the approximate Wolfe decrease (``None`` to disable).
        stepsize_precision: the smallest bracket width before the search gives up.
        initial_guess_strategy: ``"keep"`` the last step or ``"one"`` to restart from 1.
        verbose: print what the search does (default ``False``).

    Returns:
        A :class:`optgrad.GradientTransformation` that reads ``value=``, ``grad=`` and ``value_fn=``
            in ``update``; its state holds the
            accepted step and what the search measured.

    References:
        Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006), Algorithms 3.5 and 3.6 and
        section 3.5 (interpolation); Hager & Zhang, "A new conjugate gradient method with
        guaranteed descent and an efficient line search", SIAM J. Optim. 16 (2005), eq. (4.1).

    Example:
        >>> import jax, jax.numpy as jnp, optgrad as og
        >>> loss = lambda w: jnp.sum((w - 1.0) ** 4)
        >>> tx = og.chain(og.sgd(1.0), og.scale_by_zoom_linesearch(15))
        >>> w = jnp.array([0.0, 3.0])
        >>> value, grad = jax.value_and_grad(loss)(w)
        >>> updates, state = tx.update(grad, tx.init(w), w, value=value, grad=grad, value_fn=loss)
        >>> bool(loss(w + updates) < value), int(og.tree.get(state, "num_linesearch_steps")) > 1
        (True, True)
    """
    del verbose
    call = "optgrad.scale_by_zoom_linesearch"
    check_nonneg_int(call, "max_linesearch_steps", max_linesearch_steps)
    if max_learning_rate is not None:
        _check.positive(call, "max_learning_rate", max_learning_rate)
    _check.non_negative(call, "tol", tol)
    _check.number(call, "increase_factor", increase_factor, low=1.0, low_open=True)
    _check.non_negative(call, "slope_rtol", slope_rtol)
    _check.number(call, "curv_rtol", curv_rtol, low=0.0, allow_inf=True)
    if approx_dec_rtol is not None:
        _check.non_negative(call, "approx_dec_rtol", approx_dec_rtol)
    _check.non_negative(call, "stepsize_precision", stepsize_precision)
    _check.one_of(call, "initial_guess_strategy", initial_guess_strategy, ("one", "keep"))

    def init_fn(params):
        dtype = scalar_dtype(params)
        inf = jnp.full([], jnp.inf, dtype)
        return ScaleByZoomLinesearchState(
            stepsize=jnp.ones([], dtype),
            value=inf,
            grad=zeros_like(params),
            info=ZoomLinesearchInfo(jnp.zeros([], jnp.int32), inf, inf),
        )

    def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra):
        fn, dtype, value, grad = bind_objective(call, params, value, grad, value_fn, extra)
        value_and_grad = jax.value_and_grad(fn)
        c1, c2, eps, factor, precision = (
            jnp.asarray(x, dtype)
            for x in (slope_rtol, curv_rtol, tol, increase_factor, stepsize_precision)
        )
        slope0 = real_dot(updates, grad, dtype)

        def errors(stepsize, new_value, new_slope):
            decrease = new_value - value - c1 * stepsize * slope0
            if approx_dec_rtol is not None:
                approximate = jnp.maximum(
                    new_slope - (2.0 * c1 - 1.0) * slope0,
                    new_value - value - approx_dec_rtol * jnp.abs(value),
                )
                decrease = jnp.minimum(approximate, decrease)
            curvature = jnp.abs(new_slope) - c2 * jnp.abs(slope0)
            return violation(decrease), violation(curvature)

        def trial_step(s: _Zoom):
            """The next trial and whether it hit ``max_learning_rate``; and whether the bracket
            is already below ``stepsize_precision``."""
            grown = jnp.where(s.count == 0, guess, factor * s.stepsize)
            capped = jnp.asarray(False)
            if max_learning_rate is not None:
                capped = grown >= max_learning_rate
                grown = jnp.minimum(grown, max_learning_rate)
            width = jnp.abs(s.high - s.low)
            left, right = jnp.minimum(s.low, s.high), jnp.maximum(s.low, s.high)
            cubic = _cubic_minimizer(
                s.low, s.value_low, s.slope_low, s.high, s.value_high, s.ref, s.value_ref
            )
            quad = _quadratic_minimizer(s.low, s.value_low, s.slope_low, s.high, s.value_high)
            cubic_ok = (cubic > left + 0.2 * width) & (cubic < right - 0.2 * width)
            quad_ok = (quad > left + 0.1 * width) & (quad < right - 0.1 * width)
            inside = jnp.where(cubic_ok, cubic, jnp.where(quad_ok, quad, 0.5 * (s.low + s.high)))
            trial = jnp.where(s.bracketed, inside, grown).astype(dtype)
            return trial, capped & ~s.bracketed, width <= precision

        def step(s: _Zoom) -> _Zoom:
            trial, capped, too_narrow = trial_step(s)
            new_value, new_grad = value_and_grad(step_along(params, trial, updates))
            new_value = jnp.asarray(new_value).astype(dtype)
            new_grad = cast_like(new_grad, params)
            new_slope = real_dot(new_grad, updates, dtype)
            decrease, curvature = errors(trial, new_value, new_slope)
            ok = jnp.maximum(decrease, curvature) <= eps
            sufficient = decrease <= eps
            last = s.count + 1 >= max_linesearch_steps
            new = (trial, new_value, new_slope)

            # Algorithm 3.5 (bracketing): [previous, new] or [new, previous] brackets a step.
            rises = (decrease > 0) | ((new_value >= s.value) & (s.count > 0))
            turns = (new_slope >= 0) & ~rises
            prev = (s.stepsize, s.value, s.slope)
            b_low, b_high = (
                tuple(jnp.where(turns, n, p) for n, p in zip(new, prev)),
                tuple(jnp.where(turns, p, n) for n, p in zip(new, prev)),
            )
            b_bracketed = rises | turns | ok
            b_done = ok | (capped & ~b_bracketed)
            b_safe = sufficient

            # Algorithm 3.6 (zoom): shrink [low, high] around the trial.
            new_is_high = (decrease > 0) | (new_value >= s.value_low)
            low_is_high = (new_slope * (s.high - s.low) >= 0) & ~new_is_high
            low = (s.low, s.value_low, s.slope_low)
            high = (s.high, s.value_high, s.slope_high)
            z_high = tuple(
                jnp.where(new_is_high, n, jnp.where(low_is_high, lo, hi))
                for n, lo, hi in zip(new, low, high)
            )
            z_low = tuple(jnp.where(new_is_high, lo, n) for n, lo in zip(new, low))
            moved_high = new_is_high | low_is_high
            z_ref = tuple(jnp.where(moved_high, hi, lo) for hi, lo in zip(high[:2], low[:2]))
            z_safe = sufficient & (new_value < s.safe_value)

            zoom = s.bracketed
            pick = lambda z, b: tuple(jnp.where(zoom, zi, bi) for zi, bi in zip(z, b))  # noqa: E731
            new_low, new_high = pick(z_low, b_low), pick(z_high, b_high)
            new_ref = pick(z_ref, b_low[:2])
            update_safe = jnp.where(zoom, z_safe, b_safe)
            safe_stepsize = jnp.where(update_safe, trial, s.safe_stepsize)
            safe_value = jnp.where(update_safe, new_value, s.safe_value)
            safe_grad = tree_ops.where(update_safe, new_grad, s.safe_grad)
            done = jnp.where(zoom, ok, b_done)
            give_up = jnp.where(zoom, last | (too_narrow & (safe_stepsize > 0)), last)
            return _Zoom(
                count=s.count + 1,
                stepsize=trial,
                value=new_value,
                grad=new_grad,
                slope=new_slope,
                decrease_error=decrease,
                curvature_error=curvature,
                bracketed=zoom | b_bracketed,
                done=done,
                failed=give_up & ~done,
                low=new_low[0],
                value_low=new_low[1],
                slope_low=new_low[2],
                high=new_high[0],
                value_high=new_high[1],
                slope_high=new_high[2],
                ref=new_ref[0],
                value_ref=new_ref[1],
                safe_stepsize=safe_stepsize,
                safe_value=safe_value,
                safe_grad=safe_grad,
            )

        guess = jnp.ones([], dtype) if initial_guess_strategy == "one" else state.stepsize
        zero, inf = jnp.zeros([], dtype), jnp.full([], jnp.inf, dtype)
        false = jnp.asarray(False)
        start = _Zoom(
            jnp.zeros([], jnp.int32), zero, value, grad, slope0, inf, inf, false, false, false,
            zero, value, slope0, zero, value, slope0, zero, value, zero, value, grad,
        )  # fmt: skip
        end = jax.lax.while_loop(lambda s: ~(s.done | s.failed), step, start)
        # On failure, fall back to the best step with sufficient decrease, if any (and always
        # when the last trial's loss is not finite).
        fallback = end.failed & ((end.safe_stepsize > 0) | jnp.isinf(end.decrease_error))
        stepsize = jnp.where(fallback, end.safe_stepsize, end.stepsize)
        new_value = jnp.where(fallback, end.safe_value, end.value)
        new_grad = tree_ops.where(fallback, end.safe_grad, end.grad)
        new_updates = jax.tree.map(lambda u: (stepsize * u).astype(u.dtype), updates)
        info = ZoomLinesearchInfo(end.count, end.decrease_error, end.curvature_error)
        return new_updates, ScaleByZoomLinesearchState(stepsize, new_value, new_grad, info)

    return GradientTransformation(init_fn, update_fn)
