"""Training telemetry kept in the optimizer state: norms, ratios, non-finite counts, step sizes."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _check
from ._base import GradientTransformation
from ._clipping import ClipByGlobalNormState, _global_norm_bound
from ._combine import _as_transformation, _extra_args_filter
from ._numerics import as_scalar, safe_increment, zero_count
from .tree._access import _format, _walk
from .tree._arith import AxisName, _leaves, _sum_of_squares_parts
from .tree._state import get_all_with_path, leaf_paths

_CALL = "optgrad.monitor"
_LR_NAMES = ("learning_rate", "lr")


class MonitorState(NamedTuple):
    """What :func:`monitor` measured (before any update: zeros), and the states of the
    transformations it wraps. Scalars are float32 (``nonfinite_count``, ``count`` and
    ``metrics_step`` int32).

    ``grad_norm``: global L2 norm of the incoming gradients; ``grad_norm_clipped``: of the
    gradients after ``clipping``; ``update_norm``: of the updates returned; ``param_norm``: of
    the params passed to ``update`` (NaN without them); ``update_param_ratio``:
    ``update_norm / param_norm``; ``nonfinite_count``: NaN and infinite entries in the incoming
    gradients; ``effective_lr``: the learning rate the update used (see :func:`monitor`);
    ``leaf_grad_norms`` / ``leaf_update_norms``: per-leaf norms keyed by the leaf's path (empty
    unless ``per_leaf=True``); ``count``: the updates done; ``metrics_step``: the update (1 for
    the first) whose values the metrics measured every ``every_k`` updates hold.
    """

    grad_norm: jax.Array
    grad_norm_clipped: jax.Array
    update_norm: jax.Array
    param_norm: jax.Array
    update_param_ratio: jax.Array
    nonfinite_count: jax.Array
    effective_lr: jax.Array
    leaf_grad_norms: dict[str, jax.Array]
    leaf_update_norms: dict[str, jax.Array]
    count: jax.Array
    metrics_step: jax.Array
    clipping_state: Any
    inner_state: Any


def _norms(tree: Any, axis_name: AxisName, per_leaf: bool) -> tuple[jax.Array, jax.Array | None]:
    """The global norm and (with ``per_leaf``) the vector of per-leaf norms, float32."""
    parts = [p.astype(jnp.float32) for p in _sum_of_squares_parts(tree)]
    stacked = jnp.stack(parts) if parts else jnp.zeros([0], jnp.float32)
    if axis_name is not None:
        stacked = jax.lax.psum(stacked, axis_name)
    return jnp.sqrt(jnp.sum(stacked)), (jnp.sqrt(stacked) if per_leaf else None)


def _nonfinite(tree: Any, axis_name: AxisName, norm: jax.Array) -> jax.Array:
    """How many entries of ``tree`` are NaN or infinite.

    Counting reads every gradient again; but a sum of squares is finite exactly when every
    entry is finite (or it overflowed, and then the count is 0), so the count runs only when
    ``norm`` (already computed) is not finite.
    """
    leaves = [x for x in _leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]

    def count():
        parts = [jnp.sum(~jnp.isfinite(x), dtype=jnp.int32) for x in leaves]
        total = jnp.sum(jnp.stack(parts)) if parts else jnp.zeros([], jnp.int32)
        return total if axis_name is None else jax.lax.psum(total, axis_name)

    # `norm` is the same on every device (it was psum-ed), so every device takes one branch.
    return jax.lax.cond(jnp.isfinite(norm), lambda: jnp.zeros([], jnp.int32), count)


def _learning_rate(inner_state: Any) -> jax.Array | None:
    """The one scalar ``learning_rate`` (or else ``lr``) entry of the state, if there is one."""
    for name in _LR_NAMES:
        found = [v for _, v in get_all_with_path(inner_state, name) if jnp.ndim(v) == 0]
        if len(found) == 1:
            return jnp.asarray(found[0], jnp.float32)
    return None


def _ratio(num: jax.Array, den: jax.Array) -> jax.Array:
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0).astype(jnp.float32)


def _after(token: jax.Array, tree: Any) -> Any:
    """``tree`` unchanged, but computed from ``token`` as far as XLA can tell.

    The measurement reads the old params and optimizer states, which a step with donated
    buffers then overwrites in place. XLA:CPU orders the two only through a data dependency
    (an ``optimization_barrier`` is not enough): without one it copies every donated buffer
    first, which costs more than the measurement. ``token`` (a ``metrics_step``, never
    negative) comes out of the measurement, and ``where(token < 0, 0, x)`` is ``x``; the select
    fuses into the consumers of ``x`` at no cost.
    """
    never = token < 0

    def leaf(x):
        x = jnp.asarray(x)
        if x.ndim == 0 or not jnp.issubdtype(x.dtype, jnp.inexact):
            return x
        return jnp.where(never, jnp.zeros([], x.dtype), x)

    return jax.tree.map(leaf, tree)


# The metrics that read whole trees: measured on the first update and every `every_k`-th.
_MEASURED = (
    "grad_norm",
    "grad_norm_clipped",
    "update_norm",
    "param_norm",
    "update_param_ratio",
    "nonfinite_count",
    "effective_lr",
    "leaf_grad_norms",
    "leaf_update_norms",
    "metrics_step",
)


def monitor(
    inner: Any,
    clipping: Any = None,
    *,
    per_leaf: bool = False,
    axis_name: AxisName = None,
    every_k: int = 100,
) -> GradientTransformation:
    r"""Wraps an optimizer to record training statistics in its state, inside ``jit``.

    ``monitor(inner, clipping)`` behaves exactly as ``chain(clipping, inner)`` (or ``inner``)
    and records, with :math:`g` the incoming gradients, :math:`\tilde g` the gradients after
    ``clipping``, :math:`u` the updates returned and :math:`\theta` the params:

    .. math::
        \texttt{grad\_norm} = \lVert g\rVert_2, \quad
        \texttt{grad\_norm\_clipped} = \lVert \tilde g\rVert_2, \quad
        \texttt{update\_norm} = \lVert u\rVert_2, \quad
        \texttt{update\_param\_ratio} = \lVert u\rVert_2 / \lVert\theta\rVert_2

    (norms of all leaves taken as one vector), ``nonfinite_count``, the number of NaN or
    infinite entries of :math:`g`, and ``learning_rate``, the effective learning rate:

    - the optimizer's own learning rate when its state holds exactly one scalar named
      ``learning_rate`` (every optgrad alias, schedules included), or else ``lr`` (the
      ``optgrad.torch`` optimizers): the value this update used;
    - otherwise the ratio :math:`\lVert u\rVert_2 / \lVert \tilde g\rVert_2` (0 for a zero
      gradient), the step actually taken per unit of gradient.

    Read them for a logger with :func:`optgrad.metrics` (a flat ``dict`` of scalars), or one at
    a time with ``optgrad.tree.get(state, "grad_norm")``. Nothing leaves the device until the
    metrics are read.

    **Cost model.** An optimizer step is memory-bound: AdamW reads and writes about ten
    tree-sized arrays, and every norm reads one more (about +10% each, measured on XLA:CPU).
    So the metrics are split by what they cost:

    - *free, every update*: ``learning_rate`` when read from the state; and when ``clipping``
      is a :func:`clip_by_global_norm` with bound :math:`c`, ``grad_norm`` (the clip's own
      norm), ``grad_norm_clipped`` :math:`= \min(\lVert g\rVert_2, c)` and
      ``nonfinite_count`` (0 when ``grad_norm`` is finite; counted only when it is not);
    - *measured on the first update and every* ``every_k``-*th* (updates 1, ``every_k``,
      ``2 * every_k``, ...), in a ``lax.cond``: everything else. Those values are held in
      between, and ``metrics_step`` says which update they describe. A measuring update
      re-runs ``clipping`` and ``inner`` on the same inputs (so gets the same updates: writing
      out the returned updates at every step to measure them would cost more) and reads the
      gradients, params and updates once each. On XLA:CPU it costs about three to four plain
      AdamW steps (the recomputation, and temporaries that XLA allocates afresh); the
      amortised overhead is that over ``every_k``. The default 100 keeps it near 3% of an
      AdamW step on a 40M-parameter GPT-like tree (``python -m benchmarks.monitor_overhead``)
      and far below in a training step, where the forward and backward passes dominate.
      ``every_k=1`` measures everything at every update.

    Log at updates where ``count % every_k == 0`` to read fresh values.

    Args:
        inner: the optimizer (any gradient transformation, Optax's included).
        clipping: an optional transformation applied first (``clip_by_global_norm(1.0)``,
            :func:`adaptive_grad_clip`...): wrapping it here is what lets the monitor see the
            gradients both before and after clipping.
        per_leaf: also record the norm of the gradient and of the update of every leaf, keyed
            by the leaf's ``/``-separated path (``"blocks/0/attn/kernel"``); measured every
            ``every_k`` updates.
        axis_name: inside ``shard_map``/``pmap``/a named ``vmap`` where each device holds a
            shard of every leaf, the mapped axis: norms and counts are those of the whole
            tree (``lax.psum`` over it), the same on every device. Pass the same name to a
            ``clip_by_global_norm`` inside.
        every_k: measure the tree-reading metrics on the first update and then every
            ``every_k`` updates (a positive integer).

    Returns:
        A gradient transformation whose state is a :class:`MonitorState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.monitor(og.sgd(0.1), og.clip_by_global_norm(1.0))
        >>> params = {"w": jnp.array([1.0, 0.0])}
        >>> updates, state = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init(params), params)
        >>> m = {k: round(float(v), 4) for k, v in og.metrics(state).items()}
        >>> m  # doctest: +NORMALIZE_WHITESPACE
        {'grad_norm': 5.0, 'grad_norm_clipped': 1.0, 'update_norm': 0.1, 'param_norm': 1.0,
         'update_param_ratio': 0.1, 'nonfinite_count': 0.0, 'learning_rate': 0.1,
         'metrics_step': 1.0}
    """
    inner_tx = _as_transformation(_CALL, "inner", inner)
    clip_tx = None if clipping is None else _as_transformation(_CALL, "clipping", clipping)
    if not isinstance(per_leaf, bool):
        raise TypeError(f"{_CALL}(per_leaf=...) must be a bool, got per_leaf={per_leaf!r}")
    _check.positive_int(_CALL, "every_k", every_k)
    inner_args = _extra_args_filter(inner_tx.update)
    clip_args = None if clip_tx is None else _extra_args_filter(clip_tx.update)
    bound = None if clip_tx is None else _global_norm_bound(clip_tx)

    def init_fn(params):
        def zero():  # a buffer of its own for each field, so that the state can be donated
            return jnp.zeros([], jnp.float32)

        leaves = leaf_paths(params) if per_leaf else []
        return MonitorState(
            grad_norm=zero(),
            grad_norm_clipped=zero(),
            update_norm=zero(),
            param_norm=zero(),
            update_param_ratio=zero(),
            nonfinite_count=zero_count(),
            effective_lr=zero(),
            leaf_grad_norms={p: zero() for p in leaves},
            leaf_update_norms={p: zero() for p in leaves},
            count=zero_count(),
            metrics_step=zero_count(),
            clipping_state=None if clip_tx is None else clip_tx.init(params),
            inner_state=inner_tx.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, MonitorState):
            raise ValueError(
                f"{_CALL}.update: expected a MonitorState (made by this monitor's `init`), got "
                f"{type(state).__name__}. Was `init` called with a different optimizer?"
            )
        count = safe_increment(state.count)

        def transform(grads, clip_state, inner_state, params):
            clipped = grads
            if clip_tx is not None:
                clipped, clip_state = clip_tx.update(
                    grads, clip_state, params, **clip_args(extra_args)
                )
            new_updates, inner_state = inner_tx.update(
                clipped, inner_state, params, **inner_args(extra_args)
            )
            return clipped, clip_state, new_updates, inner_state

        def measure(operands):
            grads, params = operands[0], operands[3]
            clipped, _, new_updates, inner_state = transform(*operands)
            grad_norm, leaf_grads = _norms(grads, axis_name, per_leaf)
            clipped_norm = grad_norm if clip_tx is None else _norms(clipped, axis_name, False)[0]
            update_norm, leaf_updates = _norms(new_updates, axis_name, per_leaf)
            if params is None:
                param_norm = jnp.full([], jnp.nan, jnp.float32)
            else:
                param_norm, _ = _norms(params, axis_name, False)
            lr = _learning_rate(inner_state)
            paths = leaf_paths(grads) if per_leaf else []
            return {
                "grad_norm": grad_norm,
                "grad_norm_clipped": clipped_norm,
                "update_norm": update_norm,
                "param_norm": param_norm,
                "update_param_ratio": _ratio(update_norm, param_norm),
                "nonfinite_count": _nonfinite(grads, axis_name, grad_norm),
                "effective_lr": _ratio(update_norm, clipped_norm) if lr is None else lr,
                "leaf_grad_norms": {p: leaf_grads[i] for i, p in enumerate(paths)},
                "leaf_update_norms": {p: leaf_updates[i] for i, p in enumerate(paths)},
                "metrics_step": count,
            }

        operands = (updates, state.clipping_state, state.inner_state, params)
        held = {name: getattr(state, name) for name in _MEASURED}
        # Always a `cond`, even for every_k=1 (`count > 0` is true, but XLA cannot know it):
        # inlined into the step, the measurement's temporaries would be laid out with it.
        now = (count > 0) if every_k == 1 else (count == 1) | (count % every_k == 0)
        measured = jax.lax.cond(now, measure, lambda _: held, operands)
        # The gradients are not overwritten by the step: no ordering needed.
        operands = (updates, *_after(measured["metrics_step"], operands[1:]))
        _, clip_state, new_updates, inner_state = transform(*operands)
        lr = _learning_rate(inner_state)
        if lr is not None:
            measured["effective_lr"] = lr
        if bound is not None and isinstance(clip_state, ClipByGlobalNormState):
            grad_norm = clip_state.global_norm
            measured["grad_norm"] = grad_norm
            measured["grad_norm_clipped"] = jnp.minimum(grad_norm, as_scalar(bound))
            measured["nonfinite_count"] = _nonfinite(operands[0], axis_name, grad_norm)
        new_state = MonitorState(
            **measured, count=count, clipping_state=clip_state, inner_state=inner_state
        )
        return new_updates, new_state

    return GradientTransformation(init_fn, update_fn)


_SCALARS = {
    "grad_norm": "grad_norm",
    "grad_norm_clipped": "grad_norm_clipped",
    "update_norm": "update_norm",
    "param_norm": "param_norm",
    "update_param_ratio": "update_param_ratio",
    "nonfinite_count": "nonfinite_count",
    "learning_rate": "effective_lr",
    "metrics_step": "metrics_step",
}


def _flat(state: MonitorState) -> dict[str, jax.Array]:
    out = {name: jnp.asarray(getattr(state, field)) for name, field in _SCALARS.items()}
    for name in ("nonfinite_count", "metrics_step"):
        out[name] = out[name].astype(jnp.float32)
    for path, value in state.leaf_grad_norms.items():
        out[f"grad_norm/{path}"] = value
    for path, value in state.leaf_update_norms.items():
        out[f"update_norm/{path}"] = value
    return out


def metrics(state: Any) -> dict[str, jax.Array]:
    """The statistics recorded by every :func:`monitor` in ``state``, as a flat ``dict``.

    Keys: ``grad_norm``, ``grad_norm_clipped``, ``update_norm``, ``param_norm``,
    ``update_param_ratio``, ``nonfinite_count``, ``learning_rate``, ``metrics_step`` (the
    update the metrics measured every ``every_k`` updates describe; see :func:`monitor`), and
    with ``per_leaf=True`` ``grad_norm/<leaf path>`` and ``update_norm/<leaf path>``. Values
    are float32 scalar arrays (``float(v)`` for a logger; they can also be returned from a
    jitted step). The monitor may sit anywhere in a nested state (inside a ``chain``, a
    ``named_chain``, ``with_hyperparams``...); if the state holds several, each key is
    prefixed with the ``/``-separated path of its monitor (``"0/grad_norm"``).

    Args:
        state: an optimizer state holding one or more :func:`monitor` states.

    Returns:
        A ``dict`` from metric name to a float32 scalar array.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.chain(og.monitor(og.adam(1e-3), per_leaf=True), og.scale(1.0))
        >>> grads = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}
        >>> _, state = tx.update(grads, tx.init(grads), grads)
        >>> m = og.metrics(state)
        >>> float(m["grad_norm"]), float(m["grad_norm/b"]), float(m["learning_rate"])
        (5.0, 4.0, 0.0010000000474974513)

    Raises:
        ValueError: the state holds no :class:`MonitorState`.
    """
    found = [((), state)] if isinstance(state, MonitorState) else []
    found += [(path, node) for path, node in _walk(state) if isinstance(node, MonitorState)]
    if not found:
        raise ValueError(
            "optgrad.metrics: the state holds no MonitorState. Wrap the optimizer to record "
            "metrics: `tx = og.monitor(og.adamw(1e-3), og.clip_by_global_norm(1.0))`."
        )
    if len(found) == 1:
        return _flat(found[0][1])
    return {
        f"{_format(path) or 'root'}/{name}": value
        for path, node in found
        for name, value in _flat(node).items()
    }
