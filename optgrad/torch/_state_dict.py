"""Continuing a ``torch.optim`` run in optgrad: a torch optimizer's ``state_dict()`` as state."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from .._base import GradientTransformation
from .._hyperparams import HyperparamsState

_CALL = "optgrad.torch.load_state_dict"

# torch's per-parameter buffer -> the field of the optgrad.torch state that holds it.
_BUFFERS = {
    "momentum_buffer": "trace",  # SGD, RMSprop(momentum)
    "exp_avg": "mu",  # Adam, AdamW
    "exp_avg_sq": "nu",
    "max_exp_avg_sq": "nu_max",  # amsgrad
    "square_avg": "nu",  # RMSprop
    "grad_avg": "mu",  # RMSprop(centered)
    "sum": "sum_of_squares",  # Adagrad
}

# (torch optimizer, the param_groups keys that identify it).
_KINDS = (
    ("Adam/AdamW", {"betas", "amsgrad"}),
    ("RMSprop", {"alpha", "centered"}),
    ("Adagrad", {"lr_decay", "initial_accumulator_value"}),
    ("SGD", {"momentum", "dampening", "nesterov"}),
)
_SUPPORTED = "optgrad.torch.SGD, Adam, AdamW, RMSprop or Adagrad"


def _torch_kind(group: Mapping[str, Any]) -> str:
    for name, keys in _KINDS:
        if keys <= set(group):
            return name
    raise ValueError(
        f"{_CALL}: cannot tell which torch optimizer wrote this state_dict (param_groups keys "
        f"{sorted(k for k in group if k != 'params')}). Supported: torch.optim.SGD, Adam, AdamW, "
        "RMSprop and Adagrad."
    )


def _optgrad_kind(names: set[str], states: set[str]) -> str | None:
    """Which supported optgrad.torch optimizer has these hyperparameters and state types."""
    if names == {"lr", "betas", "eps", "weight_decay"} and states & {
        "ScaleByAdamState",
        "ScaleByAmsgradState",
    }:
        return "Adam/AdamW"
    if "alpha" in names and states & {"ScaleByRmsState", "ScaleByRStdDevState"}:
        return "RMSprop"
    if "lr_decay" in names and "ScaleByRssState" in states:
        return "Adagrad"
    if {"lr", "weight_decay"} <= names <= {"lr", "weight_decay", "momentum", "dampening"}:
        return "SGD"
    return None


def _state_types(state: Any) -> set[str]:
    """The names of the NamedTuple types anywhere in ``state``."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            found.add(type(node).__name__)
        if isinstance(node, (tuple, list)):
            for child in node:
                visit(child)
        elif isinstance(node, dict):
            for child in node.values():
                visit(child)

    visit(state)
    return found


def _to_numpy(value: Any, what: str) -> np.ndarray:
    """A torch tensor (or anything with ``.numpy()`` / ``__array__``) as a NumPy array."""
    for method in ("detach", "cpu"):
        if hasattr(value, method):
            value = getattr(value, method)()
    try:
        return np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    except Exception as error:  # pragma: no cover - exotic tensor types
        raise TypeError(
            f"{_CALL}: cannot convert {what} ({type(value).__name__}) to a NumPy array"
        ) from error


def _hyperparams_path(state: Any) -> tuple[Any, ...]:
    """The key path of the one ``HyperparamsState`` in ``state``."""
    found = []

    def visit(node, path):
        if isinstance(node, HyperparamsState):
            found.append(path)
            return
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            for field, child in zip(node._fields, node):
                visit(child, (*path, jax.tree_util.GetAttrKey(field)))
        elif isinstance(node, (tuple, list)):
            for i, child in enumerate(node):
                visit(child, (*path, jax.tree_util.SequenceKey(i)))
        elif isinstance(node, dict):
            for key, child in node.items():
                visit(child, (*path, jax.tree_util.DictKey(key)))

    visit(state, ())
    if len(found) != 1:
        raise ValueError(
            f"{_CALL}(state=...) must be the state of one optgrad.torch optimizer (e.g. "
            f"`og.torch.Adam(...).init(params)`), possibly inside a chain; found {len(found)} "
            "optimizers with hyperparameters in it"
        )
    return found[0]


def _leaf_name(key: Any) -> str | None:
    return key.name if isinstance(key, jax.tree_util.GetAttrKey) else None


def load_state_dict(
    tx: GradientTransformation,
    state: Any,
    torch_state_dict: Mapping[str, Any],
    params: Any,
    *,
    to_params: Callable[[list[np.ndarray]], Any] | None = None,
    step: int | None = None,
) -> Any:
    """The state of ``tx`` that continues a ``torch.optim`` run from its ``state_dict()``.

    Port a PyTorch training run mid-way: the torch optimizer's buffers (``momentum_buffer``,
    ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``, ``square_avg``, ``grad_avg``, ``sum``),
    its step count and its ``param_groups`` hyperparameters (``lr``, ``betas``, ``eps``,
    ``weight_decay``, ``momentum``, ``dampening``, ``alpha``, ``lr_decay``) are written into
    the state of the matching :mod:`optgrad.torch` optimizer, so that ``M`` optgrad updates
    after ``N`` torch steps give the parameters ``N + M`` torch steps give, to float32
    rounding. Supported: ``SGD``, ``Adam``, ``AdamW``, ``RMSprop`` and ``Adagrad`` with one
    parameter group. ``torch`` is not imported: any value with ``.numpy()`` or
    ``__array__`` is accepted.

    Build ``tx`` with the same arguments as the torch optimizer. What the state reveals is
    checked (the optimizer kind, ``amsgrad``, ``centered``, whether momentum is kept, the
    number and shapes of the parameters); switches that leave no trace in the state
    (``nesterov``, ``maximize``, Adam's ``decoupled_weight_decay``) are the caller's to match.
    Constant hyperparameters take torch's values; a hyperparameter given to ``tx`` as a
    schedule is recomputed from the step count at the next update (so the torch scheduler's
    epoch must correspond to the step count, as in :mod:`optgrad.torch.lr_scheduler`).

    Args:
      tx: the :mod:`optgrad.torch` optimizer (alone or inside ``optgrad.chain``).
      state: a state of ``tx`` for ``params`` (for example ``tx.init(params)``), or ``None``
        to start from ``tx.init(params)``. Only its structure and dtypes are used.
      torch_state_dict: ``optimizer.state_dict()`` of the torch optimizer.
      params: the optgrad parameters (their tree fixes the state's layout).
      to_params: a function from the list of per-parameter tensors (NumPy arrays, in the
        order of the torch optimizer's parameters) to a tree shaped like ``params``: the
        function that ports the model's weights (reordering, transposing). By default torch's
        ``i``-th parameter is the ``i``-th leaf of ``jax.tree.leaves(params)``.
      step: the number of torch steps taken. Needed only for ``SGD``, whose state_dict
        holds no step count, when ``tx`` uses a schedule; otherwise read from the
        state_dict (SGD: 1 when it holds momentum buffers, else 0).

    Returns:
      The new state (a state of ``tx``, same structure and dtypes as ``state``).

    Raises:
      ValueError: the state_dict does not match ``tx`` or ``params`` (kind of optimizer,
        number of parameters, shapes, flags), or holds several parameter groups or unequal
        per-parameter step counts; the message says which.

    Example:
      >>> import numpy as np, jax.numpy as jnp, optgrad as og
      >>> params = {"w": jnp.zeros(2)}
      >>> tx = og.torch.SGD(lr=0.1, momentum=0.9)
      >>> torch_sd = {"state": {0: {"momentum_buffer": np.array([1.0, 2.0])}},
      ...             "param_groups": [{"lr": 0.05, "momentum": 0.9, "dampening": 0,
      ...                               "weight_decay": 0, "nesterov": False, "params": [0]}]}
      >>> state = og.torch.load_state_dict(tx, None, torch_sd, params)
      >>> og.tree.get(state, "trace")["w"].tolist(), float(og.tree.get(state, "lr"))
      ([1.0, 2.0], 0.05000000074505806)
    """
    if not (
        isinstance(torch_state_dict, Mapping) and {"state", "param_groups"} <= set(torch_state_dict)
    ):
        got = (
            f"a mapping with keys {sorted(map(str, torch_state_dict))[:6]}"
            if isinstance(torch_state_dict, Mapping)
            else type(torch_state_dict).__name__
        )
        raise TypeError(
            f"{_CALL}(torch_state_dict=...) must be a torch optimizer's `optimizer.state_dict()`"
            f" (a dict with 'state' and 'param_groups'), got {got}. (A model's "
            "`model.state_dict()` holds the weights, not the optimizer's buffers.)"
        )
    groups = torch_state_dict["param_groups"]
    if len(groups) != 1:
        raise ValueError(
            f"{_CALL}: the torch optimizer has {len(groups)} parameter groups; only one is "
            "supported. Build one optgrad.torch optimizer per group (combined with a "
            "partition of the parameters) and load each from a state_dict of that group alone."
        )
    group = groups[0]
    kind = _torch_kind(group)
    leaves, treedef = jax.tree.flatten(params)
    if state is None:
        state = tx.init(params)
    expected = jax.tree.structure(jax.eval_shape(tx.init, params))
    if jax.tree.structure(state) != expected:
        raise ValueError(
            f"{_CALL}(state=...) is not a state of `tx` for these params: expected the "
            f"structure {expected}, got {jax.tree.structure(state)}"
        )

    # The optimizer kind and the switches visible in the state.
    hyper_path = _hyperparams_path(state)
    hyper_state = state
    for key in hyper_path:
        hyper_state = (
            getattr(hyper_state, key.name)
            if isinstance(key, jax.tree_util.GetAttrKey)
            else hyper_state[key.key if isinstance(key, jax.tree_util.DictKey) else key.idx]
        )
    names = set(hyper_state.hyperparams)
    ours = _optgrad_kind(names, _state_types(state))
    if ours is None or ours != kind:
        described = f"optgrad.torch.{ours}" if ours else f"not {_SUPPORTED}"
        raise ValueError(
            f"{_CALL}: the state_dict comes from torch.optim.{kind}, but `tx` is {described} "
            f"(its hyperparameters: {', '.join(sorted(names))}). Build `tx` with "
            f"optgrad.torch.{kind.split('/')[0]}(...) and the torch optimizer's arguments."
        )
    state_paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(state)[0]]
    fields = {_leaf_name(k) for path in state_paths for k in path}
    momentum = float(_to_numpy(group.get("momentum", 0), "momentum"))
    flags = [
        ("amsgrad", bool(group.get("amsgrad", False)), "nu_max" in fields),
        (
            "centered",
            bool(group.get("centered", False)) and kind == "RMSprop",
            "mu" in fields and kind == "RMSprop",
        ),
        ("momentum != 0", momentum != 0.0 and kind in ("SGD", "RMSprop"), "trace" in fields),
    ]
    for flag, theirs, mine in flags:
        if theirs != mine:
            raise ValueError(
                f"{_CALL}: the torch optimizer has {flag} = {theirs} but `tx` was built with "
                f"{flag} = {mine}; build `tx` with the torch optimizer's arguments "
                f"(param_groups: { {k: v for k, v in group.items() if k != 'params'} })"
            )

    # Per-parameter buffers, in the torch optimizer's parameter order.
    ids = list(group["params"])
    if to_params is None and len(ids) != len(leaves):
        raise ValueError(
            f"{_CALL}: the torch optimizer holds {len(ids)} parameters but `params` has "
            f"{len(leaves)} leaves. Pass the params of the same model, or `to_params=` to map "
            "torch's parameter list onto your tree."
        )
    per_param = [torch_state_dict["state"].get(i, {}) for i in ids]
    keys = set().union(*per_param) if per_param else set()
    unknown = keys - set(_BUFFERS) - {"step"}
    if unknown:
        raise ValueError(
            f"{_CALL}: unknown per-parameter state {sorted(unknown)} for torch.optim.{kind}"
        )
    if keys and not all(set(s) == keys for s in per_param):
        raise ValueError(
            f"{_CALL}: some parameters have torch state and others have none or other entries "
            "(they never received a gradient?); optgrad keeps one step count for all "
            "parameters, so this run cannot be continued exactly."
        )
    steps = {float(_to_numpy(s["step"], "step")) for s in per_param if "step" in s}
    if len(steps) > 1:
        raise ValueError(
            f"{_CALL}: the parameters have different torch step counts {sorted(steps)}; "
            "optgrad keeps one count for all parameters."
        )
    if steps:
        found = int(steps.pop())
        if step is not None and step != found:
            raise ValueError(f"{_CALL}(step={step}) but the state_dict records step {found}")
        step = found
    elif step is None:
        step = 1 if keys else 0

    buffers: dict[str, Any] = {}
    param_paths = jax.tree_util.tree_flatten_with_path(params)[0]
    for key in sorted(keys - {"step"}):
        arrays = [_to_numpy(s[key], f"state[{i}][{key!r}]") for i, s in zip(ids, per_param)]
        tree = to_params(arrays) if to_params is not None else jax.tree.unflatten(treedef, arrays)
        if jax.tree.structure(tree) != treedef:
            raise ValueError(
                f"{_CALL}(to_params=...) must return a tree shaped like `params` ({treedef}), "
                f"got {jax.tree.structure(tree)}"
            )
        for n, ((path, leaf), array) in enumerate(zip(param_paths, jax.tree.leaves(tree))):
            if np.shape(array) != np.shape(leaf):
                where = "" if to_params else f" (torch parameter {ids[n]})"
                raise ValueError(
                    f"{_CALL}: torch's {key!r}{where} has shape {np.shape(array)} but the "
                    f"parameter params{jax.tree_util.keystr(path)} has shape {np.shape(leaf)}. "
                    "Are the parameters in the same order? Pass `to_params=` to reorder or "
                    "transpose them as you did when porting the weights."
                )
        field = _BUFFERS[key]
        mark = jax.tree_util.GetAttrKey(field)
        holders = {path[: path.index(mark) + 1] for path in state_paths if mark in path}
        if len(holders) != 1:
            raise ValueError(
                f"{_CALL}: torch's {key!r} goes into the state entry {field!r}, but the state "
                f"of `tx` has {len(holders)} such entries; is `tx` the matching optgrad.torch "
                f"optimizer (torch.optim.{kind})?"
            )
        buffers[field] = {
            jax.tree_util.keystr(p): a for (p, _), a in zip(param_paths, jax.tree.leaves(tree))
        }

    hyper_values = {name: group[name] for name in names if name in group}
    hyper_prefix = (*hyper_path, jax.tree_util.GetAttrKey("hyperparams"))

    def replace(path: Sequence[Any], old: Any) -> Any:
        names_on_path = [_leaf_name(k) for k in path]
        if names_on_path and names_on_path[-1] == "count" and np.ndim(old) == 0:
            return _like(np.asarray(step), old)
        depth = len(hyper_path) + 1
        if len(path) > depth and tuple(path[:depth]) == hyper_prefix:
            name = path[depth].key
            if name in hyper_values:
                value = hyper_values[name]
                for k in path[depth + 1 :]:
                    value = value[k.idx]
                return _like(_to_numpy(value, f"param_groups[0][{name!r}]"), old)
            return old
        for i, field in enumerate(names_on_path):
            if field in buffers:
                rest = jax.tree_util.keystr(tuple(path[i + 1 :]))
                return _like(buffers[field][rest], old)
        return old

    return jax.tree_util.tree_map_with_path(replace, state)


def _like(value: np.ndarray, old: Any) -> Any:
    """``value`` with the dtype (and placement) of the state entry it replaces."""
    out = np.asarray(value, dtype=old.dtype).reshape(np.shape(old))
    sharding = getattr(old, "sharding", None)
    return jax.device_put(out, sharding) if sharding is not None else jax.numpy.asarray(out)
