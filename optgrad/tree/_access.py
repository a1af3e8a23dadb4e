"""Reading and writing named entries of an optimizer state: ``get`` and ``set``.

A state is a tree of NamedTuples, tuples and dicts. Every NamedTuple field and every dict key
names an entry; ``get(state, "learning_rate")`` finds the one entry with that name wherever it
sits. A name may also be a ``/``-separated path suffix (``"1/inner_state/0/count"``) to tell
apart entries that share a last name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp

Path = tuple[Any, ...]


def _children(node: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        yield from zip(node._fields, node)
    elif isinstance(node, dict):
        yield from node.items()
    elif isinstance(node, (list, tuple)):
        yield from enumerate(node)


def _walk(node: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    for key, child in _children(node):
        child_path = (*path, key)
        yield child_path, child
        yield from _walk(child, child_path)


def _format(path: Path) -> str:
    return "/".join(str(k) for k in path)


def _matches(path: Path, query: tuple[str, ...]) -> bool:
    return len(path) >= len(query) and tuple(str(k) for k in path[-len(query) :]) == query


def _find(state: Any, name: str, call: str) -> Path:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{call}: a name must be a non-empty string, got {name!r}")
    query = tuple(name.strip("/").split("/"))
    if name.startswith("/"):  # an absolute path: from the root of the state, exactly
        found = [path for path, _ in _walk(state) if tuple(map(str, path)) == query]
    else:
        found = [path for path, _ in _walk(state) if _matches(path, query)]
    if not found:
        names = sorted({str(path[-1]) for path, _ in _walk(state) if isinstance(path[-1], str)})
        listing = ", ".join(names) if names else "none (the state holds no named entries)"
        raise KeyError(
            f"{call}: the state has no entry named {name!r}. Named entries: {listing}. "
            "Is this the state of the optimizer you meant (was `init` called on it)?"
        )
    if len(found) > 1:
        paths = ", ".join(repr(_format(p)) for p in found)
        raise KeyError(
            f"{call}: the name {name!r} is ambiguous, it names {len(found)} entries: {paths}. "
            f"Pass a longer path suffix, e.g. {_unique_suffix(found[0], found)!r}, or an "
            "absolute path starting with '/'."
        )
    return found[0]


def _unique_suffix(path: Path, found: list[Path]) -> str:
    """The shortest suffix of ``path`` that names it alone among ``found``; the absolute path
    (``/``-prefixed) when every suffix also ends another path."""
    for k in range(1, len(path) + 1):
        if sum(_matches(p, tuple(map(str, path[-k:]))) for p in found) == 1:
            return _format(path[-k:])
    return "/" + _format(path)


def _at(node: Any, path: Path) -> Any:
    for key in path:
        node = (
            node[key]
            if isinstance(node, (dict, list)) or not hasattr(node, "_fields")
            else getattr(node, key)
        )
    return node


def _replace(node: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    key, rest = path[0], path[1:]
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        return node._replace(**{key: _replace(getattr(node, key), rest, value)})
    if isinstance(node, dict):
        new = dict(node) if type(node) is dict else type(node)(node)
        new[key] = _replace(node[key], rest, value)
        return new
    items = list(node)
    items[key] = _replace(node[key], rest, value)
    return type(node)(items) if isinstance(node, tuple) else items


def _coerce(old: Any, new: Any, name: str) -> Any:
    """``new`` in the shape and dtype of ``old``, so the jitted step does not recompile."""
    old_leaves, old_def = jax.tree.flatten(old)
    new_leaves, new_def = jax.tree.flatten(new)
    if len(old_leaves) == 1 and old_def == jax.tree.structure(0):
        new_leaves, new_def = [new], old_def
    if old_def != new_def:
        raise ValueError(
            f"optgrad.tree.set({name}=...): expected a value with the structure {old_def}, "
            f"got {new_def}"
        )
    out = []
    for o, n in zip(old_leaves, new_leaves):
        n = jnp.asarray(n, dtype=jnp.asarray(o).dtype)
        if n.shape != jnp.shape(o):
            if n.ndim:
                raise ValueError(
                    f"optgrad.tree.set({name}=...): expected shape {jnp.shape(o)}, got {n.shape}"
                )
            n = jnp.broadcast_to(n, jnp.shape(o))
        out.append(n)
    return jax.tree.unflatten(old_def, out)


def get(state: Any, name: str) -> Any:
    """The entry of ``state`` called ``name``: a hyperparameter, a statistic, a buffer.

    For a hyperparameter this is the value the most recent update used (before any update, the
    value the first update will use), whether it was given as a constant or a schedule.

    Args:
        state: an optimizer state (or any tree of named entries).
        name: the entry's name, a ``/``-separated suffix of its path, or its absolute path
            from the root of the state when it starts with ``/`` (``"/count"``).

    Returns:
        The entry: an array for a hyperparameter or statistic, a tree for a buffer.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.adam(og.linear_schedule(1.0, 0.0, 10))
        >>> state = tx.init({"w": jnp.zeros(3)})
        >>> float(og.tree.get(state, "learning_rate"))
        1.0

    Raises:
        KeyError: no entry has that name (the message lists the names there are), or several
            do (the message lists their paths; pass a longer ``/``-separated path suffix).
    """
    return _at(state, _find(state, name, f"optgrad.tree.get(state, {name!r})"))


def set(state: Any, **values: Any) -> Any:  # noqa: A001 - mirrors `get`
    """A copy of ``state`` with the named entries replaced; nothing else changes.

    Values are cast to the dtype and shape of the entry they replace, so a jitted step that
    takes the new state does not recompile. A constant hyperparameter keeps the new value for
    every later update. A *scheduled* hyperparameter is recomputed from the step count at each
    update, so setting it changes only what :func:`get` reports until the next update; to change
    a schedule, build the optimizer again with the new schedule (its state is compatible).

    Args:
        state: an optimizer state.
        **values: new values, keyed by entry name.

    Returns:
        A state of the same structure, shapes and dtypes as ``state``.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.adamw(1e-3, weight_decay=0.01)
        >>> state = og.tree.set(tx.init({"w": jnp.zeros(3)}), weight_decay=0.0)
        >>> float(og.tree.get(state, "weight_decay"))
        0.0
    """
    for name, value in values.items():
        path = _find(state, name, f"optgrad.tree.set(state, {name}=...)")
        state = _replace(state, path, _coerce(_at(state, path), value, name))
    return state
