"""Line searches: a step size along the update direction that the objective accepts.

This module holds the backtracking (Armijo) search, the helpers that every line search shares
and ``value_and_grad_from_state``; the zoom (strong Wolfe) search is in ``_zoom_linesearch``.

Both transformations read three extra keyword arguments in ``update``: ``value`` (the loss at
``params``), ``grad`` (its gradient there) and ``value_fn`` (the loss as a function of the
params). Further keyword arguments that ``value_fn`` names are passed on to it (a batch, say);
others are ignored. The search runs in a ``lax.while_loop``: it jits, and ``jax.grad`` cannot
differentiate through it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _check
from ._base import GradientTransformation
from ._numerics import zeros_like
from .tree import _arith as tree_ops
from .tree._access import get as _tree_get

# ---- shared helpers (also used by ``optgrad.torch.LBFGS``) -------------------------------------


def scalar_dtype(tree: Any) -> Any:
    """The dtype of a line search's scalars: the params' real dtype, at least float32."""
    leaves = jax.tree.leaves(tree)
    dtype = jnp.result_type(*leaves) if leaves else jnp.float32
    return jnp.promote_types(jnp.finfo(dtype).dtype, jnp.float32)


def real_dot(x: Any, y: Any, dtype: Any) -> jax.Array:
    """The real part of the inner product of two trees, as a scalar of ``dtype``."""
    return jnp.real(tree_ops.vdot(x, y)).astype(dtype)


def step_along(params: Any, step: jax.Array, direction: Any) -> Any:
    """``params + step * direction`` leaf by leaf, each leaf in its parameter's dtype."""
    return jax.tree.map(lambda p, u: (p + step * u).astype(p.dtype), params, direction)


def cast_like(tree: Any, like: Any) -> Any:
    return jax.tree.map(lambda x, l: jnp.asarray(x).astype(l.dtype), tree, like)


def value_fn_kwargs(value_fn: Callable[..., Any], extra_args: dict[str, Any]) -> dict[str, Any]:
    """The extra arguments of ``update`` that ``value_fn`` takes by name (all of them if it takes
    ``**kwargs``); its first argument is the params."""
    try:
        parameters = list(inspect.signature(value_fn).parameters.values())
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return dict(extra_args)
    named = {
        p.name
        for p in parameters[1:]
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return {k: v for k, v in extra_args.items() if k in named}


_SEARCH = "a line search evaluates the loss along the update direction"


def require_objective(call: str, params: Any, reason: str = _SEARCH, **given: Any) -> None:
    """Raises a ``TypeError`` that shows the calling convention when an argument is missing."""
    missing = [name for name, v in (("params", params), *given.items()) if v is None]
    if missing:
        raise TypeError(
            f"{call}.update needs {', '.join(missing)}: {reason}. Call it as\n"
            "    value, grad = jax.value_and_grad(loss)(params)\n"
            "    updates, state = tx.update(grad, state, params, value=value, grad=grad, "
            "value_fn=loss)"
        )


def check_nonneg_int(call: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{call}({name}=...) must be a non-negative integer, got {name}={value!r}")


def bind_objective(call, params, value, grad, value_fn, extra_args):
    """``value_fn`` with its extra arguments bound, the scalar dtype, ``value`` and ``grad``."""
    require_objective(call, params, value=value, grad=grad, value_fn=value_fn)
    fn = functools.partial(value_fn, **value_fn_kwargs(value_fn, extra_args))
    dtype = scalar_dtype(params)
    return fn, dtype, jnp.asarray(value).astype(dtype), cast_like(grad, params)


def violation(error: jax.Array) -> jax.Array:
    """A criterion's violation: ``max(error, 0)``, with NaN (a step outside the domain) as inf."""
    return jnp.maximum(jnp.where(jnp.isnan(error), jnp.inf, error), 0.0)


# ---- backtracking (Armijo) ---------------------------------------------------------------------


class BacktrackingLinesearchInfo(NamedTuple):
    """``num_linesearch_steps`` (int32, evaluations of ``value_fn``) and ``decrease_error``
    (how much the accepted step misses the sufficient decrease: 0 on success)."""

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """The accepted ``stepsize`` (Optax calls it ``learning_rate``), the loss ``value`` there,
    its ``grad`` (``None`` unless ``store_grad``) and ``info``."""

    stepsize: jax.Array
    value: jax.Array
    grad: Any
    info: BacktrackingLinesearchInfo


class _Backtrack(NamedTuple):
    stepsize: jax.Array
    value: jax.Array
    grad: Any
    decrease_error: jax.Array
    count: jax.Array


def scale_by_backtracking_linesearch(
    max_backtracking_steps: int,
    slope_rtol: float = 1e-4,
    decrease_factor: float = 0.8,
    increase_factor: float = 1.5,
    max_learning_rate: float = 1.0,
    atol: float = 0.0,
    rtol: float = 0.0,
    store_grad: bool = False,
    verbose: bool = False,
) -> GradientTransformation:
    r"""Scales the updates :math:`u` by a step :math:`\eta` with sufficient decrease (Armijo).

    .. math::
        f(w + \eta u) \le (1 + \delta) f(w) + c\, \eta \langle u, \nabla f(w)\rangle + \epsilon

    with :math:`c` = ``slope_rtol``, :math:`\delta` = ``rtol``, :math:`\epsilon` = ``atol``.
    The first trial is :math:`\eta_0 = \min(\gamma_{inc}\, \eta_{prev}, \eta_{max})` (the
    previous accepted step times ``increase_factor``, capped by ``max_learning_rate``; 1 on the
    first update); each rejection multiplies :math:`\eta` by ``decrease_factor``, for at most
    ``max_backtracking_steps`` reductions. If no trial satisfies the condition the last one is
    used, and a step whose loss is NaN or inf is replaced by 0. ``u`` must be a descent
    direction (:math:`\langle u, \nabla f\rangle < 0`): chain the search *after* the sign flip,
    e.g. ``chain(sgd(1.0), scale_by_backtracking_linesearch(15))``. With ``store_grad=True``
    the gradient at the accepted point is kept in the state, for
    :func:`optgrad.value_and_grad_from_state`. ``verbose`` is accepted and ignored.

    ``update(updates, state, params, *, value, grad, value_fn, **extra_args)`` reads the loss
    and gradient at ``params`` and the loss function; ``extra_args`` that ``value_fn`` names
    are passed to it. Same arguments and numbers as Optax 0.2.8's function of that name.

    Args:
        max_backtracking_steps: the most step reductions tried per update.
        slope_rtol: the sufficient-decrease (Armijo) constant.
        decrease_factor: the factor the step shrinks by at each try.
        increase_factor: the factor the step grows by before a new search.
        max_learning_rate: the largest step allowed (``None``: unbounded).
        atol: an absolute slack added to the decrease condition.
        rtol: a relative slack added to the decrease condition.
        store_grad: keep the gradient at the accepted point in the state.
        verbose: print what the search does (default ``False``).

    Returns:
        A :class:`optgrad.GradientTransformation` that reads ``value=``, ``grad=`` and ``value_fn=``
            in ``update``; its state holds the
            accepted step and what the search measured.

    References:
        Armijo, "Minimization of functions having Lipschitz continuous first partial
        derivatives" (1966); Nocedal & Wright, *Numerical Optimization* (2006), Algorithm 3.1;
        Vaswani et al., "Painless Stochastic Gradient" (2019).

    Example:
        >>> import jax, jax.numpy as jnp, optgrad as og
        >>> loss = lambda w: jnp.sum(w**2)
        >>> tx = og.chain(og.sgd(1.0), og.scale_by_backtracking_linesearch(15))
        >>> w = jnp.array([1.0, 2.0])
        >>> value, grad = jax.value_and_grad(loss)(w)
        >>> updates, state = tx.update(grad, tx.init(w), w, value=value, grad=grad, value_fn=loss)
        >>> float(og.tree.get(state, "stepsize")), round(float(loss(w + updates)), 4)
        (0.800000011920929, 1.8)
    """
    del verbose
    call = "optgrad.scale_by_backtracking_linesearch"
    check_nonneg_int(call, "max_backtracking_steps", max_backtracking_steps)
    _check.non_negative(call, "slope_rtol", slope_rtol)
    _check.number(call, "decrease_factor", decrease_factor, low=0.0, high=1.0, low_open=True)
    _check.number(call, "increase_factor", increase_factor, low=1.0, allow_inf=True)
    _check.positive(call, "max_learning_rate", max_learning_rate)
    _check.non_negative(call, "atol", atol)
    _check.non_negative(call, "rtol", rtol)

    def init_fn(params):
        dtype = scalar_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            stepsize=jnp.ones([], dtype),
            value=jnp.full([], jnp.inf, dtype),
            grad=zeros_like(params) if store_grad else None,
            info=BacktrackingLinesearchInfo(jnp.zeros([], jnp.int32), jnp.full([], jnp.inf, dtype)),
        )

    def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra):
        fn, dtype, value, grad = bind_objective(call, params, value, grad, value_fn, extra)
        c, down, rel, tol = (
            jnp.asarray(x, dtype) for x in (slope_rtol, decrease_factor, rtol, atol)
        )
        slope = real_dot(updates, grad, dtype)

        def body(s: _Backtrack) -> _Backtrack:
            stepsize = jnp.where(s.count > 0, down * s.stepsize, s.stepsize)
            trial = step_along(params, stepsize, updates)
            if store_grad:
                out, pullback = jax.vjp(fn, trial)
            else:
                out = fn(trial)
            new_value = jnp.asarray(out).astype(dtype)
            error = violation(new_value - (1.0 + rel) * value - stepsize * c * slope)
            new_grad = s.grad
            if store_grad:
                last = (error <= tol) | (s.count == max_backtracking_steps)
                new_grad = jax.lax.cond(
                    last,
                    lambda: cast_like(pullback(jnp.ones_like(out))[0], params),
                    lambda: s.grad,
                )
            return _Backtrack(stepsize, new_value, new_grad, error, s.count + 1)

        if increase_factor == float("inf"):  # documented as: always start at the maximum
            first = jnp.asarray(max_learning_rate, dtype)
        else:
            first = jnp.minimum(increase_factor * state.stepsize, max_learning_rate).astype(dtype)
        start = _Backtrack(
            first,
            value,
            zeros_like(params) if store_grad else None,
            jnp.full([], jnp.inf, dtype),
            jnp.zeros([], jnp.int32),
        )
        end = jax.lax.while_loop(
            lambda s: ~(s.decrease_error <= tol) & (s.count <= max_backtracking_steps), body, start
        )
        stepsize = jnp.where(jnp.isinf(end.decrease_error), 0.0, end.stepsize).astype(dtype)
        new_updates = jax.tree.map(lambda u: (stepsize * u).astype(u.dtype), updates)
        info = BacktrackingLinesearchInfo(end.count, end.decrease_error)
        return new_updates, ScaleByBacktrackingLinesearchState(stepsize, end.value, end.grad, info)

    return GradientTransformation(init_fn, update_fn)


# ---- reusing the line search's evaluation ------------------------------------------------------


def value_and_grad_from_state(
    value_fn: Callable[..., Any],
) -> Callable[..., tuple[jax.Array, Any]]:
    """Like ``jax.value_and_grad(value_fn)``, but reads the value and gradient that a line search
    left in ``state`` when they are there.

    A line search evaluates the loss and its gradient at the point it accepts, which is the
    next iterate: for a deterministic objective they need not be computed again. The returned
    function ``f(params, *args, state, **kwargs)`` finds the entries ``value`` and ``grad`` in
    ``state`` (:func:`optgrad.tree.get`); if ``value`` is finite it returns them, else (before
    the first update, or after a step outside the domain) it computes
    ``jax.value_and_grad(value_fn)(params, *args, **kwargs)``. Do not use it when the loss
    changes between steps (a new batch): the stored value belongs to the old one.

    Args:
        value_fn: the loss function, ``value_fn(params, *args, **kwargs)``.

    Returns:
        A function ``(params, *args, state=..., **kwargs) -> (value, grad)``.

    Raises:
        KeyError: the state has no (or more than one) ``value``/``grad`` entry.
        ValueError: the stored ``grad`` is ``None`` (a backtracking search built without
            ``store_grad=True``).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> loss = lambda w: jnp.sum(w**2)
        >>> tx, w = og.lbfgs(), jnp.array([1.0, 2.0])
        >>> state, value_and_grad = tx.init(w), og.value_and_grad_from_state(loss)
        >>> for _ in range(2):
        ...     value, grad = value_and_grad(w, state=state)
        ...     updates, state = tx.update(grad, state, w, value=value, grad=grad, value_fn=loss)
        ...     w = og.apply_updates(w, updates)
        >>> float(loss(w)) < 1e-10
        True
    """

    def value_and_grad(params: Any, *args: Any, state: Any, **kwargs: Any):
        value = _tree_get(state, "value")
        grad = _tree_get(state, "grad")
        if grad is None:
            raise ValueError(
                "optgrad.value_and_grad_from_state: the state stores no gradient (`grad` is "
                "None). Build the backtracking line search with store_grad=True."
            )

        def compute():
            new_value, new_grad = jax.value_and_grad(value_fn)(params, *args, **kwargs)
            return jnp.asarray(new_value).astype(value.dtype), cast_like(new_grad, grad)

        return jax.lax.cond(jnp.isfinite(value), lambda: (value, grad), compute)

    return value_and_grad
