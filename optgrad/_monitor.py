"""Training telemetry kept in the optimizer state: norms, ratios, non-finite counts, step sizes."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._base import GradientTransformation
from ._combine import _as_transformation, _extra_args_filter
from ._numerics import abs_sq
from .tree._access import _format, _walk
from .tree._arith import AxisName, _acc_dtype, _leaves
from .tree._arith import sum_of_squares as tree_sum_of_squares
from .tree._state import get_all_with_path, leaf_paths

_CALL = "optgrad.monitor"
_LR_NAMES = ("learning_rate", "lr")


class MonitorState(NamedTuple):
    """What :func:`monitor` measured at the last update (before any: zeros), and the states of
    the transformations it wraps. Scalars are float32 (``nonfinite_count`` int32).

    ``grad_norm``: global L2 norm of the incoming gradients; ``grad_norm_clipped``: of the
    gradients after ``clipping``; ``update_norm``: of the updates returned; ``param_norm``: of
    the params passed to ``update`` (NaN without them); ``update_param_ratio``:
    ``update_norm / param_norm``; ``nonfinite_count``: NaN and infinite entries in the incoming
    gradients; ``effective_lr``: the learning rate the update used (see :func:`monitor`);
    ``leaf_grad_norms`` / ``leaf_update_norms``: per-leaf norms keyed by the leaf's path (empty
    unless ``per_leaf=True``).
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
    clipping_state: Any
    inner_state: Any


def _norms(tree: Any, axis_name: AxisName, per_leaf: bool) -> tuple[jax.Array, jax.Array | None]:
    """The global norm and (with ``per_leaf``) the vector of per-leaf norms, float32.

    The global sum of squares is computed exactly as :func:`optgrad.tree.sum_of_squares` (and
    so :func:`optgrad.clip_by_global_norm`) computes it, so that XLA merges the two when both
    run on the same gradients instead of reading them twice.
    """
    total = tree_sum_of_squares(tree, axis_name=axis_name).astype(jnp.float32)
    if not per_leaf:
        return jnp.sqrt(total), None
    parts = [jnp.sum(abs_sq(x), dtype=_acc_dtype(x.real.dtype)) for x in _leaves(tree)]
    if not parts:
        return jnp.sqrt(total), jnp.zeros([0], jnp.float32)
    stacked = jnp.stack([p.astype(jnp.float32) for p in parts])
    if axis_name is not None:
        stacked = jax.lax.psum(stacked, axis_name)
    return jnp.sqrt(total), jnp.sqrt(stacked)


def _nonfinite(tree: Any, axis_name: AxisName, norm: jax.Array) -> jax.Array:
    """How many entries of ``tree`` are NaN or infinite.

    Counting reads every gradient again, which costs as much as the rest of the monitor; but a
    sum of squares is finite exactly when every entry is finite (or it overflowed, and then the
    count is 0), so the count runs only when ``norm`` (already computed) is not finite.
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


def monitor(
    inner: Any,
    clipping: Any = None,
    *,
    per_leaf: bool = False,
    axis_name: AxisName = None,
) -> GradientTransformation:
    r"""Wraps an optimizer to record training statistics in its state, inside ``jit``.

    ``monitor(inner, clipping)`` behaves exactly as ``chain(clipping, inner)`` (or ``inner``)
    and records, at every update, with :math:`g` the incoming gradients, :math:`\tilde g` the
    gradients after ``clipping``, :math:`u` the updates returned and :math:`\theta` the params:

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
    a time with ``optgrad.tree.get(state, "grad_norm")``. The cost is a few reductions per step,
    no extra host transfers: nothing leaves the device until the metrics are read.

    Args:
        inner: the optimizer (any gradient transformation, Optax's included).
        clipping: an optional transformation applied first (``clip_by_global_norm(1.0)``,
            :func:`adaptive_grad_clip`...): wrapping it here is what lets the monitor see the
            gradients both before and after clipping.
        per_leaf: also record the norm of the gradient and of the update of every leaf, keyed
            by the leaf's ``/``-separated path (``"blocks/0/attn/kernel"``).
        axis_name: inside ``shard_map``/``pmap``/a named ``vmap`` where each device holds a
            shard of every leaf, the mapped axis: norms and counts are those of the whole
            tree (``lax.psum`` over it), the same on every device. Pass the same name to a
            ``clip_by_global_norm`` inside.

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
         'update_param_ratio': 0.1, 'nonfinite_count': 0.0, 'learning_rate': 0.1}
    """
    inner_tx = _as_transformation(_CALL, "inner", inner)
    clip_tx = None if clipping is None else _as_transformation(_CALL, "clipping", clipping)
    if not isinstance(per_leaf, bool):
        raise TypeError(f"{_CALL}(per_leaf=...) must be a bool, got per_leaf={per_leaf!r}")
    inner_args = _extra_args_filter(inner_tx.update)
    clip_args = None if clip_tx is None else _extra_args_filter(clip_tx.update)

    def init_fn(params):
        zero = jnp.zeros([], jnp.float32)
        leaves = leaf_paths(params) if per_leaf else []
        return MonitorState(
            grad_norm=zero,
            grad_norm_clipped=zero,
            update_norm=zero,
            param_norm=zero,
            update_param_ratio=zero,
            nonfinite_count=jnp.zeros([], jnp.int32),
            effective_lr=zero,
            leaf_grad_norms={p: zero for p in leaves},
            leaf_update_norms={p: zero for p in leaves},
            clipping_state=None if clip_tx is None else clip_tx.init(params),
            inner_state=inner_tx.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        if not isinstance(state, MonitorState):
            raise ValueError(
                f"{_CALL}.update: expected a MonitorState (made by this monitor's `init`), got "
                f"{type(state).__name__}. Was `init` called with a different optimizer?"
            )
        grad_norm, leaf_grads = _norms(updates, axis_name, per_leaf)
        nonfinite = _nonfinite(updates, axis_name, grad_norm)
        clip_state = state.clipping_state
        if clip_tx is None:
            clipped_norm = grad_norm
        else:
            updates, clip_state = clip_tx.update(
                updates, clip_state, params, **clip_args(extra_args)
            )
            clipped_norm, _ = _norms(updates, axis_name, False)
        new_updates, inner_state = inner_tx.update(
            updates, state.inner_state, params, **inner_args(extra_args)
        )
        update_norm, leaf_updates = _norms(new_updates, axis_name, per_leaf)
        if params is None:
            param_norm = jnp.full([], jnp.nan, jnp.float32)
        else:
            param_norm, _ = _norms(params, axis_name, False)
        lr = _learning_rate(inner_state)
        paths = leaf_paths(updates) if per_leaf else []
        new_state = MonitorState(
            grad_norm=grad_norm,
            grad_norm_clipped=clipped_norm,
            update_norm=update_norm,
            param_norm=param_norm,
            update_param_ratio=_ratio(update_norm, param_norm),
            nonfinite_count=nonfinite,
            effective_lr=_ratio(update_norm, clipped_norm) if lr is None else lr,
            leaf_grad_norms={p: leaf_grads[i] for i, p in enumerate(paths)},
            leaf_update_norms={p: leaf_updates[i] for i, p in enumerate(paths)},
            clipping_state=clip_state,
            inner_state=inner_state,
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
}


def _flat(state: MonitorState) -> dict[str, jax.Array]:
    out = {name: jnp.asarray(getattr(state, field)) for name, field in _SCALARS.items()}
    out["nonfinite_count"] = out["nonfinite_count"].astype(jnp.float32)
    for path, value in state.leaf_grad_norms.items():
        out[f"grad_norm/{path}"] = value
    for path, value in state.leaf_update_norms.items():
        out[f"update_norm/{path}"] = value
    return out


def metrics(state: Any) -> dict[str, jax.Array]:
    """The statistics recorded by every :func:`monitor` in ``state``, as a flat ``dict``.

    Keys: ``grad_norm``, ``grad_norm_clipped``, ``update_norm``, ``param_norm``,
    ``update_param_ratio``, ``nonfinite_count``, ``learning_rate`` (see :func:`monitor`), and
    with ``per_leaf=True`` ``grad_norm/<leaf path>`` and ``update_norm/<leaf path>``. Values
    are float32 scalar arrays (``float(v)`` for a logger; they can also be returned from a
    jitted step). The monitor may sit anywhere in a nested state (inside a ``chain``, a
    ``named_chain``, ``with_hyperparams``...); if the state holds several, each key is
    prefixed with the ``/``-separated path of its monitor (``"0/grad_norm"``).

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
