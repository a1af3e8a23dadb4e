"""Running a transformation only at some steps: ``conditionally_transform``/``_mask``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._base import GradientTransformation
from ._combine import _as_transformation, _extra_args_filter
from ._numerics import safe_increment, zero_count


def zeros_like_output(update: Callable[..., tuple[Any, Any]], *args: Any, **kwargs: Any) -> Any:
    """Zeros shaped like the updates ``update(*args, **kwargs)`` would return (traced for
    shapes only, nothing runs), for the branch of a ``lax.cond`` that skips it."""
    shapes = jax.eval_shape(lambda: update(*args, **kwargs)[0])
    # ``lax.full_like`` keeps each output's sharding type (Explicit mesh axes) and, unlike
    # host zeros, embeds no constant in the traced program.
    return jax.tree.map(lambda s: jax.lax.full_like(s, 0, s.dtype), shapes)


def run_if(
    call: str,
    predicate: Any,
    inner: GradientTransformation,
    updates: Any,
    inner_state: Any,
    params: Any,
    extra: dict,
    *,
    otherwise: str,
) -> tuple[Any, Any]:
    """``inner.update`` where ``predicate`` holds; else ``otherwise`` ("zeros" or "pass") and
    the inner state unchanged. One ``lax.cond``: the skipped branch costs nothing."""

    def run(_):
        return inner.update(updates, inner_state, params, **extra)

    if otherwise == "zeros":
        skipped = zeros_like_output(inner.update, updates, inner_state, params, **extra)
    else:
        shapes = jax.eval_shape(lambda: run(None)[0])
        if jax.tree.structure(shapes) != jax.tree.structure(updates) or any(
            (jnp.shape(u), jnp.result_type(u)) != (s.shape, s.dtype)
            for u, s in zip(jax.tree.leaves(updates), jax.tree.leaves(shapes))
        ):
            raise ValueError(
                f"{call}: to pass the updates through unchanged at skipped steps, the inner "
                "transformation must return updates of the same structure, shapes and dtypes "
                f"as it receives.\n  received: {jax.eval_shape(lambda: updates)}"
                f"\n  returns:  {shapes}"
            )
        skipped = updates
    return jax.lax.cond(predicate, run, lambda _: (skipped, inner_state), None)


def _keywords_filter(fn: Callable[..., Any], positional: int) -> Callable[[dict], dict]:
    """The keyword arguments ``fn`` accepts after its first ``positional`` parameters."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return lambda extra: extra
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return lambda extra: extra
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = {p.name for p in parameters[positional:] if p.kind in kinds}
    return lambda extra: {k: v for k, v in extra.items() if k in names}


def _predicate(call: str, fn: Callable[..., Any], step: Any, kwargs: dict) -> jax.Array:
    out = jnp.asarray(fn(step, **kwargs))
    if out.shape != ():
        raise ValueError(
            f"{call}: should_transform_fn must return a scalar boolean, got an array of shape "
            f"{out.shape} and dtype {out.dtype}"
        )
    return out.astype(bool)


class ConditionallyTransformState(NamedTuple):
    """The inner state and ``step``, the number of updates so far (int32)."""

    inner_state: Any
    step: jax.Array


class ConditionallyMaskState(NamedTuple):
    """``step``, the number of updates so far (int32), and the inner state."""

    step: jax.Array
    inner_state: Any


def _conditional(call, inner, should_transform_fn, forward_extra_args, otherwise, state_type):
    inner = _as_transformation(call, "inner", inner)
    if not callable(should_transform_fn):
        raise TypeError(
            f"{call}(should_transform_fn=...) must be a function of the step count, got "
            f"{type(should_transform_fn).__name__}: {should_transform_fn!r}"
        )
    accepts = _extra_args_filter(inner.update)
    # The condition gets the extra arguments its signature accepts (all of them for **kwargs).
    condition_accepts = _keywords_filter(should_transform_fn, positional=1)

    def init_fn(params):
        return state_type(inner_state=inner.init(params), step=zero_count())

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, state_type):
            raise ValueError(
                f"{call}.update: expected a {state_type.__name__} (the state made by this "
                f"wrapper's `init`), got {type(state).__name__}. Was `init` called with "
                "another optimizer?"
            )
        kwargs = condition_accepts(extra_args) if forward_extra_args else {}
        predicate = _predicate(call, should_transform_fn, state.step, kwargs)
        updates, inner_state = run_if(
            call,
            predicate,
            inner,
            updates,
            state.inner_state,
            params,
            accepts(extra_args),
            otherwise=otherwise,
        )
        return updates, state_type(inner_state=inner_state, step=safe_increment(state.step))

    return GradientTransformation(init_fn, update_fn)


def conditionally_transform(
    inner: Any, should_transform_fn: Callable[..., Any], forward_extra_args: bool = False
) -> GradientTransformation:
    r"""Runs ``inner`` at the steps where ``should_transform_fn(step)`` is true; at the other
    steps the updates pass through unchanged and the inner state stays as it was.

    .. math::
        (u, s) \leftarrow \begin{cases} \mathrm{inner}(u, s) & f(t) \\ (u, s) &
        \text{otherwise} \end{cases}

    with :math:`t` the number of earlier updates (0 at the first). The choice is a
    ``lax.cond``, so it jits and the skipped branch costs nothing. Same semantics as
    ``optax.conditionally_transform``; to zero the updates instead, use
    :func:`conditionally_mask`.

    Args:
        inner: the transformation to run conditionally.
        should_transform_fn: ``step -> bool`` (a scalar; ``step`` is an int32 array).
        forward_extra_args: also pass the extra arguments of ``update`` to
            ``should_transform_fn`` (those its signature accepts, all for ``**kwargs``).

    Returns:
        A transformation whose state is a :class:`ConditionallyTransformState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.conditionally_transform(og.scale(10.0), lambda step: step % 2 == 0)
        >>> state = tx.init(jnp.zeros(1))
        >>> u1, state = tx.update(jnp.ones(1), state)
        >>> u2, state = tx.update(jnp.ones(1), state)
        >>> u1.tolist(), u2.tolist()
        ([10.0], [1.0])
    """
    return _conditional(
        "optgrad.conditionally_transform",
        inner,
        should_transform_fn,
        forward_extra_args,
        "pass",
        ConditionallyTransformState,
    )


def conditionally_mask(
    inner: Any, should_transform_fn: Callable[..., Any], forward_extra_args: bool = False
) -> GradientTransformation:
    r"""Runs ``inner`` at the steps where ``should_transform_fn(step)`` is true; at the other
    steps the updates are zero and the inner state stays as it was.

    .. math::
        (u, s) \leftarrow \begin{cases} \mathrm{inner}(u, s) & f(t) \\ (0, s) &
        \text{otherwise} \end{cases}

    Same semantics as ``optax.conditionally_mask``; see :func:`conditionally_transform`.

    Args:
        inner: the transformation to run conditionally.
        should_transform_fn: ``step -> bool`` (a scalar; ``step`` is an int32 array).
        forward_extra_args: also pass the extra arguments of ``update`` to
            ``should_transform_fn``.

    Returns:
        A transformation whose state is a :class:`ConditionallyMaskState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.conditionally_mask(og.sgd(1.0), lambda step: step >= 1)
        >>> state = tx.init(jnp.zeros(1))
        >>> u1, state = tx.update(jnp.ones(1), state)
        >>> u2, state = tx.update(jnp.ones(1), state)
        >>> u1.tolist(), u2.tolist()
        ([0.0], [-1.0])
    """
    return _conditional(
        "optgrad.conditionally_mask",
        inner,
        should_transform_fn,
        forward_extra_args,
        "zeros",
        ConditionallyMaskState,
    )
