"""Restoring a saved optimizer state into the state of the current params, entry by entry."""

from __future__ import annotations

import warnings
from typing import Any

import jax
import numpy as np

_CALL = "optgrad.restore_state"


def _key(entry: Any) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _by_path(tree: Any) -> dict[str, Any]:
    """Every leaf of ``tree`` keyed by its ``/``-separated path of dict keys, NamedTuple field
    names and sequence positions: the same strings for a state and for the nested dicts that
    ``flax.serialization.to_state_dict`` or an orbax restore without a target make of it."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(_key(k) for k in path): leaf for path, leaf in flat}


def _listing(paths: list[str], limit: int = 20) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f", ... ({len(paths) - limit} more)" if len(paths) > limit else "")


def _describe(x: Any) -> str:
    return f"{x.dtype}{list(np.shape(x))}"


def _place(value: Any, like: Any) -> Any:
    sharding = getattr(like, "sharding", None)
    if isinstance(value, jax.Array) and sharding is not None and value.sharding == sharding:
        return value
    if sharding is not None:
        return jax.device_put(value, sharding)
    return jax.numpy.asarray(value)


def restore_state(
    target: Any,
    restored: Any,
    *,
    missing: str = "init",
    unexpected: str = "error",
) -> Any:
    """``target`` with every entry replaced by the entry of ``restored`` at the same path.

    Use it to resume training when the params may have changed since the checkpoint: build
    ``target = tx.init(params)`` for the current params, load the saved state in any form
    (the state itself, the nested dicts of ``flax.serialization.msgpack_restore`` or
    ``to_state_dict``, an orbax restore without a target, or a flat ``{"a/b/c": array}``
    dict), and get a state of ``target``'s exact types (NamedTuples included) and placement
    (each entry is ``device_put`` onto the sharding of ``target``'s entry).

    Entries are matched by path (dict keys, NamedTuple field names, sequence positions), so
    dict entries may be reordered freely; in lists and tuples the position is the identity.
    Nothing is matched silently:

    - an entry of ``target`` with no counterpart in ``restored`` (e.g. the moments of a new
      parameter) keeps ``target``'s value, fresh from ``init``, with a ``UserWarning`` listing
      the paths (``missing="init"``), or raises (``missing="error"``);
    - an entry of ``restored`` with no counterpart in ``target`` (e.g. of a removed
      parameter) raises (``unexpected="error"``) or is dropped with a warning listing the
      paths (``unexpected="drop"``);
    - an entry of another shape or dtype always raises, naming the path.

    Typed PRNG keys (``jax.random.key``, in the state of :func:`optgrad.add_noise`) cannot be
    written by ``flax.serialization.msgpack_serialize``: save ``jax.random.key_data`` of them
    (``jax.tree.map`` over the state) and this function wraps the saved data back into keys of
    ``target``'s implementation. Orbax saves and restores them as they are.

    For an exact resume, the step count lives in the state (``count``, read by schedules), so
    restoring the state restores the schedule's position too.

    Args:
        target: the state of the current params, from ``tx.init(params)`` (arrays, or
            ``jax.ShapeDtypeStruct`` with ``missing="error"``).
        restored: the saved state, in any of the forms above.
        missing: ``"init"`` or ``"error"``.
        unexpected: ``"error"`` or ``"drop"``.

    Returns:
        A state with the structure and types of ``target`` and the values of ``restored``.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> from flax import serialization
        >>> tx = og.adam(1e-3)
        >>> state = tx.init({"w": jnp.ones(2)})
        >>> saved = serialization.msgpack_serialize(serialization.to_state_dict(state))
        >>> target = tx.init({"w": jnp.ones(2)})
        >>> back = og.restore_state(target, serialization.msgpack_restore(saved))
        >>> type(back) is type(state)
        True
    """
    if missing not in ("init", "error"):
        raise ValueError(f'{_CALL}(missing=...) must be "init" or "error", got {missing!r}')
    if unexpected not in ("error", "drop"):
        raise ValueError(f'{_CALL}(unexpected=...) must be "error" or "drop", got {unexpected!r}')
    leaves, treedef = jax.tree_util.tree_flatten_with_path(target)
    paths = ["/".join(_key(k) for k in path) for path, _ in leaves]
    saved = _by_path(restored)

    absent = [p for p in paths if p not in saved]
    extra = sorted(set(saved) - set(paths))
    if extra and unexpected == "error":
        raise ValueError(
            f"{_CALL}: {len(extra)} saved entries have no place in `target`: "
            f"{_listing(extra)}.\nWas a parameter removed or renamed since the checkpoint? "
            'Pass unexpected="drop" to discard them.'
        )
    if absent and missing == "error":
        raise ValueError(
            f"{_CALL}: {len(absent)} entries of `target` are not in the checkpoint: "
            f"{_listing(absent)}.\nWas a parameter added or renamed since the checkpoint? "
            'Pass missing="init" to start them from `target` (fresh from `init`).'
        )
    abstract = [p for p, (_, leaf) in zip(paths, leaves) if p in absent and not _is_array(leaf)]
    if abstract:
        raise ValueError(
            f"{_CALL}: entries {_listing(abstract)} are not in the checkpoint and `target` "
            "holds no values for them (shapes only): pass `target=tx.init(params)`."
        )

    out = []
    for path, (_, like) in zip(paths, leaves):
        if path not in saved:
            out.append(like)
            continue
        value = saved[path]
        if not hasattr(value, "dtype"):
            value = np.asarray(value)
        if _is_key(like) and not _is_key(value):  # saved as `jax.random.key_data`
            value = jax.random.wrap_key_data(
                jax.numpy.asarray(value), impl=jax.random.key_impl(like)
            )
        if np.shape(value) != np.shape(like) or value.dtype != like.dtype:
            raise ValueError(
                f"{_CALL}: the entry {path} is {_describe(value)} in the checkpoint but "
                f"{_describe(like)} in `target`. Did the parameter change shape or dtype?"
            )
        out.append(_place(value, like))
    if absent:
        warnings.warn(
            f"{_CALL}: {len(absent)} entries are not in the checkpoint and start from `target` "
            f"(fresh from `init`): {_listing(absent)}",
            stacklevel=2,
        )
    if extra:
        warnings.warn(
            f"{_CALL}: dropped {len(extra)} saved entries with no place in `target`: "
            f"{_listing(extra)}",
            stacklevel=2,
        )
    return jax.tree.unflatten(treedef, out)


def _is_key(x: Any) -> bool:
    return jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _is_array(x: Any) -> bool:
    return not isinstance(x, jax.ShapeDtypeStruct) and hasattr(x, "dtype")
