"""Which parameters to evaluate: ``eval_params(state, params)``, one protocol for every optimizer.

Some optimizers train one set of weights and want another evaluated: an exponential or
stochastic weight average, Lookahead's slow weights, the interpolated point of schedule-free
methods. :func:`eval_params` asks the optimizer state which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

_REGISTRY: dict[type, Callable[[Any, Any], Any]] = {}


def register_eval_params(state_type: type, fn: Callable[[Any, Any], Any]) -> None:
    """Makes ``fn(state, params) -> params`` the evaluation rule of states of ``state_type``.

    For state types you cannot give an ``eval_params`` method (another library's); a class you
    write should define the method instead (see :func:`eval_params`).

    Args:
        state_type: the state class the rule is for.
        fn: the rule, ``fn(state, params) -> params``.

    Returns:
        ``None``.

    Example:
        >>> from typing import NamedTuple
        >>> import optgrad as og
        >>> class Shifted(NamedTuple):
        ...     shift: float
        >>> og.register_eval_params(Shifted, lambda s, p: p + s.shift)
        >>> og.eval_params((og.EmptyState(), Shifted(1.0)), 2.0)
        3.0
    """
    if not isinstance(state_type, type):
        raise TypeError(
            f"optgrad.register_eval_params(state_type=...) must be a class, got {state_type!r}"
        )
    if not callable(fn):
        raise TypeError(f"optgrad.register_eval_params(fn=...) must be callable, got {fn!r}")
    _REGISTRY[state_type] = fn


def _rule(node: Any) -> Callable[[Any], Any] | None:
    for cls in type(node).__mro__:
        if cls in _REGISTRY:
            return lambda params: _REGISTRY[cls](node, params)
    method = getattr(type(node), "eval_params", None)
    if callable(method):
        return lambda params: method(node, params)
    return None


def _providers(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple, Callable]]:
    """The states with an evaluation rule, outermost first, not looking inside them."""
    rule = _rule(node)
    if rule is not None:
        yield path, rule
        return
    if isinstance(node, dict):
        children = node.items()
    elif isinstance(node, tuple) and hasattr(node, "_fields"):
        children = zip(node._fields, node)
    elif isinstance(node, (list, tuple)):
        children = enumerate(node)
    else:
        return
    for key, child in children:
        yield from _providers(child, (*path, key))


def eval_params(state: Any, params: Any) -> Any:
    """The parameters to evaluate (validate, test, export) for an optimizer in ``state``.

    ``params`` itself for an ordinary optimizer; the average for :func:`ema_params` and
    :func:`swa_params`; the slow weights for :func:`lookahead`. The state may be nested
    anywhere inside ``chain``, ``named_chain``, ``with_hyperparams`` or any tree of tuples,
    NamedTuples, lists and dicts. Pure and jittable.

    **The protocol.** The state tree is searched from the outside in for a node that has an
    evaluation rule: a method ``eval_params(self, params) -> params`` on its class (the way
    for optgrad's own states, e.g. ``class MyState(NamedTuple): ... def eval_params(self,
    params): ...``), or a function registered for its class with
    :func:`register_eval_params` (for other libraries' states). The search does not look
    inside a node that has a rule: the rule answers for everything it holds (the averaging
    states apply their inner optimizer's rule to the average). At most one node may have a
    rule; two siblings (``chain(ema_params(a), ema_params(b))``) raise a ``ValueError``.

    Args:
        state: an optimizer state (from ``init`` or ``update``).
        params: the parameters being trained, as passed to ``update``.

    Returns:
        A tree like ``params`` (for :func:`lookahead`, like ``params.slow``).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.chain(og.clip(1.0), og.ema_params(og.sgd(0.5), decay=0.5))
        >>> params = {"w": jnp.zeros(1)}
        >>> state = tx.init(params)
        >>> for _ in range(2):
        ...     updates, state = tx.update({"w": -jnp.ones(1)}, state, params)
        ...     params = og.apply_updates(params, updates)
        >>> params["w"].tolist(), og.eval_params(state, params)["w"].tolist()
        ([1.0], [0.75])
        >>> og.eval_params(og.adam(1e-3).init(params), params) is params
        True
    """
    found = list(_providers(state))
    if not found:
        return params
    if len(found) > 1:
        paths = ", ".join("/".join(map(str, p)) or "<root>" for p, _ in found)
        raise ValueError(
            "optgrad.eval_params: the state holds more than one transformation that chooses "
            f"the parameters to evaluate (at {paths}); nest them (one wrapping the other) "
            "instead of chaining them side by side."
        )
    return found[0][1](params)
