"""``torch.optim.LBFGS``: one ``update`` is one ``opt.step(closure)``, inner iterations and all.

torch's closure re-evaluates the loss and its gradient at the current parameters. Here the
first evaluation is what the caller passes -- the gradient as ``updates`` and the loss as
``value`` -- and every later one is ``jax.value_and_grad(value_fn)(x)`` at the trial point
``x``. The inner loop is a ``lax.while_loop``, so an update jits; ``jax.grad`` cannot go
through it.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _check
from .._base import GradientTransformation, ScalarOrSchedule
from .._hyperparams import with_hyperparams
from .._linesearch import (
    cast_like,
    real_dot,
    require_objective,
    scalar_dtype,
    step_along,
    value_fn_kwargs,
)
from .._numerics import safe_increment, zero_count, zeros_like
from .._optimizers._common import check_hyperparams
from .._optimizers._lbfgs import _memory_like
from .._update import check_state_mirrors
from ..tree import _arith as tree_ops
from ._strong_wolfe import strong_wolfe

_CLOSURE = (
    "torch's closure is `value` (the loss at `params`, with the gradient as `updates`) and "
    "`value_fn(x)`, evaluated again at every inner iteration"
)


class LBFGSState(NamedTuple):
    """torch's LBFGS state, under torch's names.

    ``func_evals`` and ``n_iter`` (int32): closure evaluations and inner iterations so far;
    ``d`` and ``t``: the last direction and step length; ``old_dirs`` (the gradient
    differences :math:`y`) and ``old_stps`` (the steps :math:`s`): ring buffers that mirror the
    params with a leading axis of length ``history_size``, ``ro`` the matching
    :math:`1/\\langle y, s\\rangle` (shape ``(history_size,)``), ``num_old`` how many are filled
    and ``head`` the slot the next pair goes to; ``H_diag`` the initial inverse-Hessian scale;
    ``prev_flat_grad`` and ``prev_loss`` the gradient and loss at the last direction's origin.
    """

    func_evals: jax.Array
    n_iter: jax.Array
    d: Any
    t: jax.Array
    old_dirs: Any
    old_stps: Any
    ro: jax.Array
    num_old: jax.Array
    head: jax.Array
    H_diag: jax.Array
    prev_flat_grad: Any
    prev_loss: jax.Array


class _Inner(NamedTuple):
    """One ``opt.step``'s loop: the iterate ``x`` with its loss and gradient ``g``, the
    iteration and evaluation counts of this step, whether to stop, and the state being built."""

    x: Any
    loss: jax.Array
    g: Any
    n_iter: jax.Array
    current_evals: jax.Array
    stop: jax.Array
    state: LBFGSState


def _abs_max(tree: Any, dtype: Any) -> jax.Array:
    return tree_ops.norm(tree, "inf").astype(dtype)


def _direction(g, state: LBFGSState, history_size: int, dtype) -> tuple[Any, LBFGSState]:
    """torch's direction: store the newest pair if its curvature is positive, then the two-loop
    recursion on :math:`-g` (newest pair first, then oldest first) scaled by ``H_diag``."""
    y = jax.tree.map(lambda a, b: a - b, g, state.prev_flat_grad)
    s = jax.tree.map(lambda d: (d * state.t).astype(d.dtype), state.d)
    ys = real_dot(y, s, dtype)
    keep = (state.n_iter > 1) & (ys > 1e-10)
    head = state.head

    def put(memory, new):
        return jax.tree.map(
            lambda m, x: m.at[head].set(jnp.where(keep, x.astype(m.dtype), m[head])), memory, new
        )

    state = state._replace(
        old_dirs=put(state.old_dirs, y),
        old_stps=put(state.old_stps, s),
        ro=state.ro.at[head].set(jnp.where(keep, 1.0 / ys, state.ro[head])),
        num_old=jnp.where(keep, jnp.minimum(state.num_old + 1, history_size), state.num_old),
        head=jnp.where(keep, (head + 1) % history_size, head),
        H_diag=jnp.where(keep, ys / real_dot(y, y, dtype), state.H_diag),
    )
    newest = state.head - 1

    def slot(memory, k):
        index = (newest - k) % history_size
        return jax.tree.map(lambda m: m[index], memory), state.ro[index]

    def axpy(x, a, y):
        return jax.tree.map(lambda xi, yi: (xi + a * yi).astype(xi.dtype), x, y)

    def backward(k, carry):
        q, al = carry
        s_k, ro_k = slot(state.old_stps, k)
        al_k = real_dot(s_k, q, dtype) * ro_k
        y_k, _ = slot(state.old_dirs, k)
        return axpy(q, -al_k, y_k), al.at[k].set(al_k)

    def forward(j, r_al):
        r, al = r_al
        k = state.num_old - 1 - j
        y_k, ro_k = slot(state.old_dirs, k)
        be = real_dot(y_k, r, dtype) * ro_k
        s_k, _ = slot(state.old_stps, k)
        return axpy(r, al[k] - be, s_k), al

    q = jax.tree.map(jnp.negative, g)
    al = jnp.zeros([history_size], dtype)
    q, al = jax.lax.fori_loop(0, state.num_old, backward, (q, al))
    r = jax.tree.map(lambda x: (x * state.H_diag).astype(x.dtype), q)
    r, _ = jax.lax.fori_loop(0, state.num_old, forward, (r, al))
    first = state.n_iter == 1
    d = jax.tree.map(lambda n, x: jnp.where(first, -n, x), g, r)
    return d, state._replace(H_diag=jnp.where(first, jnp.ones([], dtype), state.H_diag))


def _lbfgs_step(lr, tolerance_grad, tolerance_change, max_iter, max_eval, history_size, wolfe):
    call = "optgrad.torch.LBFGS"
    needs_closure = wolfe or max_iter > 1

    def init_fn(params):
        dtype = scalar_dtype(params)
        memory = jax.tree.map(lambda x: _memory_like(x, history_size), params)
        return LBFGSState(
            func_evals=zero_count(),
            n_iter=zero_count(),
            d=zeros_like(params),
            t=jnp.zeros([], dtype),
            old_dirs=memory,
            old_stps=jax.tree.map(lambda m: m, memory),
            ro=jnp.zeros([history_size], dtype),
            num_old=zero_count(),
            head=zero_count(),
            H_diag=jnp.ones([], dtype),
            prev_flat_grad=zeros_like(params),
            prev_loss=jnp.zeros([], dtype),
        )

    def update_fn(updates, state, params=None, *, value=None, value_fn=None, **extra_args):
        extra_args.pop("grad", None)
        if needs_closure:
            require_objective(call, params, _CLOSURE, value=value, value_fn=value_fn)
        elif params is None:
            require_objective(call, params, _CLOSURE)
        check_state_mirrors(call, updates, state.d, "d")
        dtype = scalar_dtype(params)
        lr_, tol_grad, tol_change = (jnp.asarray(x, dtype) for x in (lr, tolerance_grad,
                                                                     tolerance_change))  # fmt: skip
        loss0 = jnp.full([], jnp.nan, dtype) if value is None else jnp.asarray(value, dtype)

        def evaluate(x):
            fn = functools.partial(value_fn, **value_fn_kwargs(value_fn, extra_args))
            loss, g = jax.value_and_grad(fn)(x)
            return jnp.asarray(loss).astype(dtype), cast_like(g, x)

        def iteration(c: _Inner) -> _Inner:
            n_iter = c.n_iter + 1
            st = c.state._replace(n_iter=safe_increment(c.state.n_iter))
            d, st = _direction(c.g, st, history_size, dtype)
            first = st.n_iter == 1
            t = jnp.where(first, jnp.minimum(1.0, 1.0 / tree_ops.norm(c.g, 1)) * lr_, lr_)
            t = t.astype(dtype)
            st = st._replace(d=d, t=t, prev_flat_grad=c.g, prev_loss=c.loss)
            gtd = real_dot(c.g, d, dtype)

            def move(_):
                if wolfe:
                    max_ls = max_eval - c.current_evals
                    loss, g, t_new, evals = strong_wolfe(
                        evaluate, c.x, t, d, c.loss, c.g, gtd, max_ls, dtype
                    )
                    x = step_along(c.x, t_new, d)
                else:
                    t_new = t
                    x = step_along(c.x, t, d)
                    loss, g = jax.lax.cond(
                        n_iter != max_iter, evaluate, lambda _: (c.loss, c.g), x
                    ) if needs_closure else (c.loss, c.g)  # fmt: skip
                    evals = jnp.where(n_iter != max_iter, 1, 0).astype(jnp.int32)
                opt_cond = _abs_max(g, dtype) <= tol_grad
                current_evals = c.current_evals + evals
                stop = (
                    (n_iter == max_iter)
                    | (current_evals >= max_eval)
                    | opt_cond
                    | (_abs_max(jax.tree.map(lambda v: v * t_new, d), dtype) <= tol_change)
                    | (jnp.abs(loss - c.loss) < tol_change)
                )
                new_state = st._replace(t=t_new, func_evals=st.func_evals + evals)
                return _Inner(x, loss, g, n_iter, current_evals, stop, new_state)

            def halt(_):
                return _Inner(c.x, c.loss, c.g, n_iter, c.current_evals, jnp.asarray(True), st)

            return jax.lax.cond(gtd > -tol_change, halt, move, None)

        g0 = cast_like(updates, params)
        state = state._replace(func_evals=state.func_evals + 1)
        start = _Inner(
            x=params,
            loss=loss0,
            g=g0,
            n_iter=zero_count(),
            current_evals=jnp.ones([], jnp.int32),
            stop=_abs_max(g0, dtype) <= tol_grad,
            state=state,
        )
        end = jax.lax.while_loop(lambda c: ~c.stop & (c.n_iter < max_iter), iteration, start)
        new_updates = jax.tree.map(lambda x, p, u: (x - p).astype(u.dtype), end.x, params, updates)
        return new_updates, end.state

    return GradientTransformation(init_fn, update_fn)


def LBFGS(
    lr: ScalarOrSchedule = 1,
    max_iter: int = 20,
    max_eval: int | None = None,
    tolerance_grad: float = 1e-7,
    tolerance_change: float = 1e-9,
    history_size: int = 100,
    line_search_fn: str | None = None,
) -> GradientTransformation:
    r"""``torch.optim.LBFGS``: one ``update`` runs one ``opt.step(closure)``.

    Each update runs up to ``max_iter`` L-BFGS iterations from the current params:

    1. stop at once if :math:`\max_i |g_i| \le` ``tolerance_grad``;
    2. direction: :math:`d = -g` on the very first iteration; later, with :math:`y = g -
       g_{prev}` and :math:`s = t\, d_{prev}`, store the pair if :math:`y^\top s > 10^{-10}`
       (dropping the oldest beyond ``history_size``) and set :math:`H_{diag} = y^\top s /
       y^\top y`, then :math:`d = -H g` by the two-loop recursion from :math:`H_{diag} I`;
    3. step :math:`t = \min(1, 1/\lVert g\rVert_1)\cdot` ``lr`` on the very first iteration,
       ``lr`` afterwards; stop if :math:`g^\top d > -` ``tolerance_change``;
    4. without a line search :math:`x \mathrel{+}= t d` and the loss and gradient are evaluated
       again (not after the last iteration); with ``line_search_fn="strong_wolfe"``, torch's
       strong-Wolfe search (:math:`c_1 = 10^{-4}`, :math:`c_2 = 0.9`, cubic interpolation, at
       most ``max_eval`` minus the evaluations so far) picks :math:`t` first;
    5. stop after ``max_iter`` iterations, ``max_eval`` evaluations (default
       ``max_iter * 5 // 4``), or when :math:`\max|g| \le` ``tolerance_grad``,
       :math:`\max|t d| \le` ``tolerance_change`` or :math:`|\Delta f| <` ``tolerance_change``.

    The history, ``d``, ``t`` and ``H_diag`` carry over to the next update (:class:`LBFGSState`,
    torch's names; ``old_dirs``/``old_stps`` mirror the params with a leading axis of length
    ``history_size``, so the state is about :math:`2\,` ``history_size`` times the params).

    **torch's closure.** ``opt.step(closure)`` becomes ``tx.update(grads, state, params,
    value=loss, value_fn=loss_fn)``: ``grads`` and ``value`` are the closure's first call (the
    gradient and loss at ``params``), and every later call of the closure is
    ``jax.value_and_grad(loss_fn)(x)`` at the trial point ``x``; extra keyword arguments that
    ``loss_fn`` names (a batch) are passed to it. The update is the new params minus
    ``params``. ``value_fn`` is not needed when ``max_iter=1`` without a line search (torch then
    never calls the closure again). ``lr``, ``tolerance_grad`` and ``tolerance_change`` are
    held in the state by name and may be set between updates.

    Matches real ``torch.optim.LBFGS`` step for step, with and without ``"strong_wolfe"``:
    params and torch's counters ``n_iter``/``func_evals`` agree to 1e-15 in float64 through
    convergence, and in float32 until the tolerance stops, which compare float32 losses with
    ``tolerance_change`` and so depend on the last bit of reductions that the two libraries
    order differently. As in torch, the line search's bracket tolerance is fixed at
    ``1e-9`` (torch does not pass ``tolerance_change`` to it). Real parameters only.

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        max_iter: the most inner iterations per step.
        max_eval: the most loss evaluations per step (``None``: ``1.25 * max_iter``).
        tolerance_grad: stop when the largest gradient entry falls below this.
        tolerance_change: stop when the loss or the step changes by less than this.
        history_size: the number of curvature pairs kept.
        line_search_fn: ``"strong_wolfe"`` for a line search, ``None`` for fixed steps.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the hyperparameters (by torch's
            names) and
            the optimizer's buffers.

    References:
        Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006), Algorithms 7.4, 7.5 and
        3.5/3.6; Liu & Nocedal (1989); Schmidt, minFunc (2005), which torch follows.

    Example:
        >>> import jax, jax.numpy as jnp, optgrad as og
        >>> loss = lambda w: jnp.sum((w - 2.0) ** 2) + jnp.sum(w**4)
        >>> tx, w = og.torch.LBFGS(line_search_fn="strong_wolfe"), jnp.zeros(3)
        >>> value, grad = jax.value_and_grad(loss)(w)
        >>> updates, state = tx.update(grad, tx.init(w), w, value=value, value_fn=loss)
        >>> w = og.apply_updates(w, updates)
        >>> float(jnp.max(jnp.abs(jax.grad(loss)(w)))) < 1e-4, int(state.inner_state.n_iter) > 1
        (True, True)
    """
    call = "optgrad.torch.LBFGS"
    check_hyperparams(
        call,
        lr=("lr", lr),
        tolerance_grad=("nonneg", tolerance_grad),
        tolerance_change=("nonneg", tolerance_change),
    )
    _check.positive_int(call, "max_iter", max_iter)
    if max_eval is None:
        max_eval = max_iter * 5 // 4
    _check.positive_int(call, "max_eval", max_eval)
    _check.positive_int(call, "history_size", history_size)
    _check.one_of(call, "line_search_fn", line_search_fn, (None, "strong_wolfe"))

    def build(lr, tolerance_grad, tolerance_change):
        return _lbfgs_step(
            lr,
            tolerance_grad,
            tolerance_change,
            max_iter,
            max_eval,
            history_size,
            line_search_fn == "strong_wolfe",
        )

    return with_hyperparams(
        build, lr=lr, tolerance_grad=tolerance_grad, tolerance_change=tolerance_change
    )
