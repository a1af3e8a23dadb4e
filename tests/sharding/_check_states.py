"""Every registry optimizer on 8 simulated CPU devices: does the state follow the params?

Run as ``python -m tests.sharding._check_states`` with 8 host devices (see ``_devices.py``);
prints one JSON object: for each mesh axis type and registry row, the state leaves whose
sharding differs from what is expected, and the shardings of every non-scalar leaf of the rows
with factored state. ``tests/sharding/test_state_shardings.py`` asserts on it.
"""

from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import optgrad as og
from tests.registry import REGISTRY

ROWS = REGISTRY
if len(sys.argv) > 1:  # a comma-separated subset of the registry, by name
    ROWS = [r for r in REGISTRY if r.name in sys.argv[1].split(",")]

SPECS = {"a": P("model", None), "b": P(), "c": {"d": P(None, "model")}}
"""``a`` is split by rows, ``d`` by columns, ``b`` is replicated (the replicated case)."""


def _params(mesh):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    values = {
        "a": jax.random.normal(k1, (16, 8)),
        "b": jax.random.normal(k2, (8,)),
        "c": {"d": jax.random.normal(k3, (4, 8))},
    }
    return jax.tree.map(lambda x, s: jax.device_put(x, NamedSharding(mesh, s)), values, SPECS)


def _loss(p):
    a = jnp.sum((p["a"] - 0.5) ** 2 * jnp.linspace(0.5, 2.0, 8))
    return a + jnp.sum(jnp.cos(p["b"])) + jnp.sum(p["c"]["d"] ** 2)


class _Pair:
    """A state leaf with the parameter it mirrors (``None``: it mirrors none)."""

    def __init__(self, leaf, param):
        self.leaf, self.param = leaf, param


def _pairs(tx, state, params):
    """``state`` with each leaf paired with the parameter it mirrors, found by
    ``og.tree.map_params`` (whole mirroring subtrees, so factored leaves pair too)."""
    treedef = jax.tree.structure(params)

    def mirror(value, params):
        parts = treedef.flatten_up_to(value)
        done = [
            jax.tree.map(lambda leaf, p=p: _Pair(leaf, p), part)
            for part, p in zip(parts, jax.tree.leaves(params))
        ]
        return treedef.unflatten(done)

    return og.tree.map_params(
        tx,
        mirror,
        state,
        params,
        transform_non_params=lambda leaf: _Pair(leaf, None),
        is_leaf=lambda _: True,
    )


def _spec(sharding) -> str:
    return str(getattr(sharding, "spec", sharding))


def _problems(tx, state, params, expected) -> list[str]:
    """Leaves of ``state`` not placed as the contract says: a leaf mirroring a parameter (and
    of its shape) like that parameter, a scalar replicated, every leaf as ``state_shardings``
    says."""
    pairs = _pairs(tx, state, params)
    is_pair = lambda x: isinstance(x, _Pair)  # noqa: E731
    flat = jax.tree_util.tree_flatten_with_path(pairs, is_leaf=is_pair)[0]
    wants = jax.tree.leaves(expected)
    assert len(flat) == len(wants), (len(flat), len(wants))
    out = []
    for (path, pair), want in zip(flat, wants):
        where = jax.tree_util.keystr(path)
        leaf, param = pair.leaf, pair.param
        got = leaf.sharding
        if leaf.ndim == 0 and not got.is_fully_replicated:
            out.append(f"{where}: scalar not replicated ({_spec(got)})")
        if param is not None and leaf.shape == param.shape:
            if not got.is_equivalent_to(param.sharding, leaf.ndim):
                out.append(f"{where}: {_spec(got)} but its parameter is {_spec(param.sharding)}")
        factored = param is not None and leaf.shape != param.shape
        if not factored and not got.is_equivalent_to(want, leaf.ndim):
            out.append(f"{where}: {_spec(got)} but state_shardings says {_spec(want)}")
    return out


def _layout(state) -> dict[str, str]:
    flat = jax.tree_util.tree_flatten_with_path(state)[0]
    return {jax.tree_util.keystr(k): f"{v.shape} {_spec(v.sharding)}" for k, v in flat if v.ndim}


def _stepper(row, tx):
    def step(p, s):
        value, g = jax.value_and_grad(_loss)(p)
        extra = {"value": value, "grad": g, "value_fn": _loss} if row.needs_value else {}
        u, s = tx.update(g, s, p, **extra)
        return og.apply_updates(p, u), s

    return step


def _check_mode(mesh) -> dict:
    """All rows on one mesh. Each row is traced alone first (errors are reported per row); the
    rows that trace are then compiled together, one ``jit`` for every ``init`` and one for
    every update, since compiling 50 small programs one by one costs minutes here."""
    params = _params(mesh)
    results: dict = {}
    ok = []
    for row in ROWS:
        try:
            tx = row.make(row.lr)
            jax.eval_shape(tx.init, params)  # init works on shapes alone
            expected = og.state_shardings(tx, params)
            state = tx.init(params)
            jax.eval_shape(_stepper(row, tx), params, state)
            results[row.name] = {"init": _problems(tx, state, params, expected)}
            ok.append((row, tx, expected, state))
        except Exception as err:  # reported; the test names the row
            results[row.name] = {"error": f"{type(err).__name__}: {err}"[:2000]}

    inits = jax.jit(
        lambda p: [tx.init(p) for _, tx, _, _ in ok],
        out_shardings=[expected for _, _, expected, _ in ok],
    )(params)
    steps = jax.jit(
        lambda p, states: [_stepper(row, tx)(p, s) for (row, tx, _, _), s in zip(ok, states)]
    )(params, [state for *_, state in ok])
    for (row, tx, expected, _), jit_state, (new_params, new_state) in zip(ok, inits, steps):
        result = results[row.name]
        result["jit_init"] = _problems(tx, jit_state, params, expected)
        result["update"] = _problems(tx, new_state, params, expected)
        result["params"] = [
            jax.tree_util.keystr(k)
            for (k, p), q in zip(
                jax.tree_util.tree_flatten_with_path(new_params)[0], jax.tree.leaves(params)
            )
            if not p.sharding.is_equivalent_to(q.sharding, p.ndim)
        ]
        result["finite"] = bool(all(jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(new_params)))
        if row.factored_state:
            result["layout"] = _layout(new_state)
    return results


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    out: dict = {"rows": [r.name for r in ROWS], "modes": {}}
    start = time.perf_counter()
    for mode in (AxisType.Auto, AxisType.Explicit):
        mesh = jax.make_mesh((8,), ("model",), axis_types=(mode,))
        with jax.set_mesh(mesh):
            out["modes"][mode.name] = _check_mode(mesh)
    out["seconds"] = time.perf_counter() - start
    print(json.dumps(out))


if __name__ == "__main__":
    main()
