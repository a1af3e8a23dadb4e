"""``torch.optim.LBFGS``'s strong-Wolfe line search, decision for decision, in ``lax.while_loop``s.

torch's search (ported there from Torch7's ``lswolfe.lua``, after minFunc) is Nocedal & Wright's
Algorithms 3.5/3.6 with its own rules: trials beyond the bracket are extrapolated by a clamped
cubic, the zoom moves a trial that lands near an end of the bracket to a tenth of its width
inside, and the search returns the lowest end of the bracket when it runs out of evaluations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._linesearch import real_dot, step_along
from ..tree import _arith as tree_ops


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    r"""The minimiser of the cubic through :math:`(x_1, f_1)` and :math:`(x_2, f_2)` with slopes
    :math:`g_1, g_2`, clamped to ``bounds`` (default: between the two points); the middle of the
    bounds when the cubic has no minimiser.

    .. math::
        d_1 = g_1 + g_2 - 3\frac{f_1 - f_2}{x_1 - x_2}, \quad d_2 = \sqrt{d_1^2 - g_1 g_2},
        \quad x^* = x_2 - (x_2 - x_1)\frac{g_2 + d_2 - d_1}{g_2 - g_1 + 2 d_2}

    for :math:`x_1 \le x_2` (and the mirror image otherwise); Nocedal & Wright eq. (3.59).
    """
    if bounds is None:
        lo, hi = jnp.minimum(x1, x2), jnp.maximum(x1, x2)
    else:
        lo, hi = bounds
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    d2 = jnp.sqrt(jnp.maximum(d2_square, 0.0))
    ordered = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    reverse = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    x = jnp.minimum(jnp.maximum(jnp.where(x1 <= x2, ordered, reverse), lo), hi)
    return jnp.where(d2_square >= 0, x, (lo + hi) / 2.0)


class _Bracketing(NamedTuple):
    t_prev: jax.Array
    f_prev: jax.Array
    g_prev: Any
    gtd_prev: jax.Array
    t: jax.Array
    f_new: jax.Array
    g_new: Any
    gtd_new: jax.Array
    ls_iter: jax.Array


class _Zooming(NamedTuple):
    """The bracket's two ends (``ts``, ``fs``, ``gtds`` as pairs, the gradients ``g0``/``g1``),
    which end is ``low`` (the lower loss), and torch's ``insuf_progress`` flag."""

    ts: jax.Array
    fs: jax.Array
    gtds: jax.Array
    g0: Any
    g1: Any
    low: jax.Array
    insuf_progress: jax.Array
    done: jax.Array
    ls_iter: jax.Array


def strong_wolfe(
    evaluate: Callable[[Any], tuple[jax.Array, Any]],
    x: Any,
    t: jax.Array,
    d: Any,
    f: jax.Array,
    g: Any,
    gtd: jax.Array,
    max_ls: jax.Array,
    dtype: Any,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
) -> tuple[jax.Array, Any, jax.Array, jax.Array]:
    """torch's ``_strong_wolfe`` from ``x`` along ``d``: returns ``(f_new, g_new, t, evals)``.

    ``evaluate(point) -> (loss, grad)``; ``f``, ``g``, ``gtd`` are the loss, gradient and
    directional derivative at ``x``; at most ``max_ls`` evaluations after the first.
    """
    c1, c2 = jnp.asarray(c1, dtype), jnp.asarray(c2, dtype)
    d_norm = tree_ops.norm(d, "inf").astype(dtype)

    def trial(step):
        f_new, g_new = evaluate(step_along(x, step, d))
        return f_new, g_new, real_dot(g_new, d, dtype)

    def armijo_fails(step, f_new):
        return f_new > f + c1 * step * gtd

    def wolfe_holds(gtd_new):
        return jnp.abs(gtd_new) <= -c2 * gtd

    # Bracketing: extrapolate until the interval [t_prev, t] contains a strong-Wolfe step.
    def bracket_found(b: _Bracketing):
        rises = armijo_fails(b.t, b.f_new) | ((b.ls_iter > 1) & (b.f_new >= b.f_prev))
        return rises, wolfe_holds(b.gtd_new), b.gtd_new >= 0

    def searching(b: _Bracketing):
        rises, wolfe, ascends = bracket_found(b)
        return (b.ls_iter < max_ls) & ~(rises | wolfe | ascends)

    def extrapolate(b: _Bracketing) -> _Bracketing:
        bounds = (b.t + 0.01 * (b.t - b.t_prev), b.t * 10)
        t_next = cubic_interpolate(b.t_prev, b.f_prev, b.gtd_prev, b.t, b.f_new, b.gtd_new, bounds)
        t_next = t_next.astype(dtype)
        f_next, g_next, gtd_next = trial(t_next)
        return _Bracketing(b.t, b.f_new, b.g_new, b.gtd_new, t_next, f_next, g_next, gtd_next,
                           b.ls_iter + 1)  # fmt: skip

    f_new, g_new, gtd_new = trial(t)
    zero = jnp.zeros([], dtype)
    b = jax.lax.while_loop(
        searching,
        extrapolate,
        _Bracketing(zero, f, g, gtd, t, f_new, g_new, gtd_new, jnp.zeros([], jnp.int32)),
    )
    exhausted = b.ls_iter >= max_ls
    rises, wolfe, _ = bracket_found(b)
    done = ~exhausted & ~rises & wolfe
    # Out of evaluations: the bracket is [0, t]. Found the step: a one-point bracket [t, t].
    start_t = jnp.where(exhausted, zero, jnp.where(done, b.t, b.t_prev))
    start_f = jnp.where(exhausted, f, jnp.where(done, b.f_new, b.f_prev))
    start_g = tree_ops.where(exhausted, g, tree_ops.where(done, b.g_new, b.g_prev))
    start_gtd = jnp.where(exhausted, gtd, jnp.where(done, b.gtd_new, b.gtd_prev))

    # Zoom: shrink the bracket around a cubic-interpolated trial until the Wolfe conditions hold.
    def zooming(z: _Zooming):
        narrow = jnp.abs(z.ts[1] - z.ts[0]) * d_norm < tolerance_change
        return ~z.done & (z.ls_iter < max_ls) & ~narrow

    def zoom(z: _Zooming) -> _Zooming:
        t_new = cubic_interpolate(z.ts[0], z.fs[0], z.gtds[0], z.ts[1], z.fs[1], z.gtds[1])
        top, bottom = jnp.max(z.ts), jnp.min(z.ts)
        eps = 0.1 * (top - bottom)
        near_end = jnp.minimum(top - t_new, t_new - bottom) < eps
        at_end = z.insuf_progress | (t_new >= top) | (t_new <= bottom)
        moved = jnp.where(jnp.abs(t_new - top) < jnp.abs(t_new - bottom), top - eps, bottom + eps)
        t_new = jnp.where(near_end & at_end, moved, t_new).astype(dtype)
        insuf_progress = near_end & ~at_end

        f_new, g_new, gtd_new = trial(t_new)
        low, high = z.low, 1 - z.low
        bad = armijo_fails(t_new, f_new) | (f_new >= z.fs[low])
        wolfe = ~bad & wolfe_holds(gtd_new)
        collapse = ~bad & ~wolfe & (gtd_new * (z.ts[high] - z.ts[low]) >= 0)
        # bad: the trial replaces the high end. Otherwise it becomes the low end, and the old
        # low end replaces the high one if the slope says the minimum lies on its far side.
        replaced = jnp.where(bad, high, low)
        copied = collapse

        def ends(values, new):
            out = values.at[high].set(jnp.where(copied, values[low], values[high]))
            return out.at[replaced].set(new)

        ts, fs, gtds = ends(z.ts, t_new), ends(z.fs, f_new), ends(z.gtds, gtd_new)
        g_low = tree_ops.where(low == 0, z.g0, z.g1)
        g0 = tree_ops.where(replaced == 0, g_new, tree_ops.where(copied & (high == 0), g_low, z.g0))
        g1 = tree_ops.where(replaced == 1, g_new, tree_ops.where(copied & (high == 1), g_low, z.g1))
        new_low = jnp.where(bad, jnp.where(fs[0] <= fs[1], 0, 1), low).astype(jnp.int32)
        return _Zooming(ts, fs, gtds, g0, g1, new_low, insuf_progress, wolfe, z.ls_iter + 1)

    ts = jnp.stack([start_t, b.t])
    fs = jnp.stack([start_f, b.f_new])
    gtds = jnp.stack([start_gtd, b.gtd_new])
    low = jnp.where(fs[0] <= fs[1], 0, 1).astype(jnp.int32)
    z = jax.lax.while_loop(
        zooming,
        zoom,
        _Zooming(ts, fs, gtds, start_g, b.g_new, low, jnp.asarray(False), done, b.ls_iter),
    )
    g_out = tree_ops.where(z.low == 0, z.g0, z.g1)
    evals = (z.ls_iter + 1).astype(jnp.int32)
    return z.fs[z.low], g_out, z.ts[z.low], evals
