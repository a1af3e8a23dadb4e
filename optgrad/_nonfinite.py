"""Surviving NaN and Inf: ``apply_if_finite``, ``zero_nans`` and the skip tests of
:class:`optgrad.MultiSteps`."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _check
from ._base import GradientTransformation
from ._combine import _as_transformation, _extra_args_filter
from ._conditional import run_if
from ._numerics import abs_sq, safe_increment, zero_count


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


class ApplyIfFiniteState(NamedTuple):
    """Counters of :func:`apply_if_finite` and the inner state.

    ``notfinite_count``: consecutive non-finite updates so far (reset by a finite one);
    ``last_finite``: whether the latest update was finite; ``total_notfinite``: all
    non-finite updates since ``init``; ``inner_state``: the wrapped optimizer's state.
    """

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    inner_state: Any


def apply_if_finite(inner: Any, max_consecutive_errors: int) -> GradientTransformation:
    r"""Skips a step whose gradients hold a NaN or an Inf, up to ``max_consecutive_errors``
    in a row.

    At a skipped step the updates are zero and the inner state (moments, step count,
    schedules) stays as it was, so the run continues as if the step had not happened. After
    more than ``max_consecutive_errors`` consecutive non-finite steps the wrapper gives up and
    applies them (the run then diverges visibly rather than stalling silently), as
    ``optax.apply_if_finite`` does. With :math:`c` the consecutive count:

    .. math::
        c_t = \begin{cases} 0 & g_t \text{ finite} \\ c_{t-1} + 1 & \text{otherwise}
        \end{cases}, \qquad \text{apply} \iff g_t \text{ finite} \lor c_t > N

    The choice is a ``lax.cond``: it jits and a skipped step costs one finiteness check.

    Args:
        inner: the optimizer to protect.
        max_consecutive_errors: :math:`N \ge 0`, non-finite steps in a row to skip.

    Returns:
        A transformation whose state is an :class:`ApplyIfFiniteState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.apply_if_finite(og.sgd(1.0), max_consecutive_errors=2)
        >>> updates, state = tx.update(jnp.array([jnp.nan]), tx.init(jnp.zeros(1)))
        >>> updates.tolist(), int(state.total_notfinite)
        ([0.0], 1)
    """
    call = "optgrad.apply_if_finite"
    inner = _as_transformation(call, "inner", inner)
    if (
        isinstance(max_consecutive_errors, bool)
        or not isinstance(max_consecutive_errors, int)
        or max_consecutive_errors < 0
    ):
        raise ValueError(
            f"{call}(max_consecutive_errors=...) must be a non-negative integer, got "
            f"max_consecutive_errors={max_consecutive_errors!r}"
        )
    accepts = _extra_args_filter(inner.update)

    def init_fn(params):
        return ApplyIfFiniteState(zero_count(), jnp.array(True), zero_count(), inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, ApplyIfFiniteState):
            raise ValueError(
                f"{call}.update: expected an ApplyIfFiniteState (the state made by this "
                f"wrapper's `init`), got {type(state).__name__}. Was `init` called with "
                "another optimizer?"
            )
        finite = _all_finite(updates)
        count = jnp.where(finite, 0, safe_increment(state.notfinite_count))
        apply = finite | (count > max_consecutive_errors)
        updates, inner_state = run_if(
            call,
            apply,
            inner,
            updates,
            state.inner_state,
            params,
            accepts(extra_args),
            otherwise="zeros",
        )
        total = jnp.where(finite, state.total_notfinite, safe_increment(state.total_notfinite))
        return updates, ApplyIfFiniteState(count, finite, total, inner_state)

    return GradientTransformation(init_fn, update_fn)


def skip_not_finite(updates: Any, gradient_step: Any, params: Any) -> tuple[jax.Array, dict]:
    """A ``should_skip_update_fn`` for :class:`optgrad.MultiSteps`: skip a micro-step whose
    gradients hold a NaN or an Inf.

    Returns ``(should_skip, {"should_skip": ..., "num_not_finite": ...})`` as Optax's
    ``skip_not_finite``: the number of non-finite entries (int32) is kept in the state.

    Args:
        updates: the micro-step's gradients.
        gradient_step: the micro-step counter (unused).
        params: the parameters (unused).

    Returns:
        A pair ``(should_skip, info)``: a boolean scalar and a dict of what was measured.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> skip, info = og.skip_not_finite({"w": jnp.array([1.0, jnp.inf])}, 0, None)
        >>> bool(skip), int(info["num_not_finite"])
        (True, 1)
    """
    del gradient_step, params
    counts = [jnp.sum(~jnp.isfinite(x), dtype=jnp.int32) for x in jax.tree.leaves(updates)]
    num = jnp.sum(jnp.stack(counts)) if counts else jnp.zeros([], jnp.int32)
    should_skip = num > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num}


def skip_large_updates(
    updates: Any, gradient_step: Any, params: Any, max_squared_norm: Any
) -> tuple[jax.Array, dict]:
    r"""A ``should_skip_update_fn`` for :class:`optgrad.MultiSteps`: skip a micro-step whose
    gradients have :math:`\|g\|^2 \ge` ``max_squared_norm`` (or are not finite).

    Bind the threshold with ``functools.partial(og.skip_large_updates, max_squared_norm=...)``.
    Returns ``(should_skip, {"should_skip": ..., "norm_squared": ...})`` as Optax's
    ``skip_large_updates``; the squared norm is summed in float32 (``|g|^2`` for complex).

    Args:
        updates: the micro-step's gradients.
        gradient_step: the micro-step counter (unused).
        params: the parameters (unused).
        max_squared_norm: the squared-norm threshold.

    Returns:
        A pair ``(should_skip, info)``: a boolean scalar and a dict of what was measured.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> skip, info = og.skip_large_updates(jnp.array([3.0, 4.0]), 0, None, 20.0)
        >>> bool(skip), float(info["norm_squared"])
        (True, 25.0)
    """
    del gradient_step, params
    _check.non_negative("optgrad.skip_large_updates", "max_squared_norm", max_squared_norm)
    terms = [jnp.sum(abs_sq(x).astype(jnp.float32)) for x in jax.tree.leaves(updates)]
    norm_sq = jnp.sum(jnp.stack(terms)) if terms else jnp.zeros([], jnp.float32)
    should_skip = jnp.logical_not(norm_sq < max_squared_norm)
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


class ZeroNansState(NamedTuple):
    """``found_nan``: a boolean per leaf, true when the latest update had a NaN there."""

    found_nan: Any


def zero_nans() -> GradientTransformation:
    r"""Replaces NaN entries of the updates by zeros and records, per leaf, whether it did.

    .. math::
        u_i \leftarrow \begin{cases} 0 & u_i = \mathrm{NaN} \\ u_i & \text{otherwise}
        \end{cases}

    Infinities are kept (as ``optax.zero_nans``). ``state.found_nan`` mirrors the params.

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`ZeroNansState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.zero_nans()
        >>> updates, state = tx.update({"w": jnp.array([1.0, jnp.nan])}, tx.init({"w": 0.0}))
        >>> updates["w"].tolist(), bool(state.found_nan["w"])
        ([1.0, 0.0], True)
    """

    def init_fn(params):
        return ZeroNansState(jax.tree.map(lambda _: jnp.array(False), params))

    def update_fn(updates, state, params=None, **extra_args):
        del state, params, extra_args
        found = jax.tree.map(lambda u: jnp.any(jnp.isnan(u)), updates)
        updates = jax.tree.map(lambda u: jnp.where(jnp.isnan(u), jnp.zeros_like(u), u), updates)
        return updates, ZeroNansState(found)

    return GradientTransformation(init_fn, update_fn)
