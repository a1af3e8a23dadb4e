"""Composition: ``chain`` and ``named_chain`` run transformations one after another."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ._base import GradientTransformation


def _extra_args_filter(update: Callable[..., Any]) -> Callable[[dict], dict]:
    """Which extra keyword arguments ``update`` accepts: all (``**kwargs``), some, or none.

    Decided once, when the chain is built. Optax's plain ``GradientTransformation``s take none,
    so they are called with ``(updates, state, params)`` only.
    """
    try:
        parameters = list(inspect.signature(update).parameters.values())
    except (TypeError, ValueError):
        return lambda extra: {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return lambda extra: extra
    named = {
        p.name
        for p in parameters[3:]
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }
    return lambda extra: {k: v for k, v in extra.items() if k in named}


def _as_transformation(call: str, index: Any, tx: Any) -> GradientTransformation:
    init, update = getattr(tx, "init", None), getattr(tx, "update", None)
    if not (callable(init) and callable(update)):
        if isinstance(tx, tuple) and len(tx) == 2 and all(map(callable, tx)):
            init, update = tx
        else:
            raise TypeError(
                f"{call}: member {index} must be a gradient transformation (an object with "
                f"`init` and `update`), got {type(tx).__name__}: {tx!r}"
            )
    return GradientTransformation(init, update)


def _check_state(call: str, state: Any, expected: int, kind: type) -> None:
    if not isinstance(state, kind) or len(state) != expected:
        got = (
            f"{type(state).__name__} of {len(state)} entries"
            if hasattr(state, "__len__")
            else repr(type(state))
        )
        raise ValueError(
            f"{call}.update: expected the state made by this chain's `init` (a "
            f"{kind.__name__} of {expected} entries, one per transformation), got a {got}. "
            "Was `init` called with a different optimizer?"
        )


def chain(*transforms: Any) -> GradientTransformation:
    """Applies ``transforms`` in order; the state is a tuple of their states.

    Extra keyword arguments given to ``update`` (``value=loss``, ...) reach every member that
    accepts them and are left out for the rest, so Optax transformations work as members.

    Args:
        *transforms: the transformations, applied first to last.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state is the tuple of the members' states.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.chain(og.clip_by_global_norm(1.0), og.sgd(0.1))
        >>> updates, state = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init({"w": jnp.zeros(2)}))
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.06, -0.08]
    """
    members = [_as_transformation("optgrad.chain", i, tx) for i, tx in enumerate(transforms)]
    filters = [_extra_args_filter(tx.update) for tx in members]

    def init_fn(params):
        return tuple(tx.init(params) for tx in members)

    def update_fn(updates, state, params=None, **extra_args):
        _check_state("optgrad.chain", state, len(members), tuple)
        new_state = []
        for tx, accepts, s in zip(members, filters, state):
            updates, s = tx.update(updates, s, params, **accepts(extra_args))
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init_fn, update_fn)


def named_chain(*transforms: tuple[str, Any]) -> GradientTransformation:
    """Like :func:`chain`, with the state a dict keyed by the given names.

    Args:
        *transforms: ``(name, transformation)`` pairs, applied first to last.

    Returns:
        A :class:`optgrad.GradientTransformation` whose state is a dict from each name to that
            member's state.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.named_chain(("clip", og.clip(1.0)), ("opt", og.sgd(0.1)))
        >>> sorted(tx.init({"w": jnp.zeros(2)}))
        ['clip', 'opt']
    """
    names = []
    for i, item in enumerate(transforms):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(
                f"optgrad.named_chain: member {i} must be a (name, transformation) pair, "
                f"got {item!r}"
            )
        names.append(item[0])
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"optgrad.named_chain: names must be unique, repeated: {duplicates}")
    members = [_as_transformation("optgrad.named_chain", n, tx) for n, tx in transforms]
    filters = [_extra_args_filter(tx.update) for tx in members]

    def init_fn(params):
        return {name: tx.init(params) for name, tx in zip(names, members)}

    def update_fn(updates, state, params=None, **extra_args):
        _check_state("optgrad.named_chain", state, len(members), dict)
        new_state = {}
        for name, tx, accepts in zip(names, members, filters):
            if name not in state:
                raise ValueError(
                    f"optgrad.named_chain.update: the state has no entry {name!r}; it has "
                    f"{sorted(state)}. Was `init` called with a different optimizer?"
                )
            updates, new_state[name] = tx.update(
                updates, state[name], params, **accepts(extra_args)
            )
        return updates, new_state

    return GradientTransformation(init_fn, update_fn)
