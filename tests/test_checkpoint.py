"""Optimizer states survive checkpoints: orbax and flax.serialization round trips for every
optimizer, an exact resume in a fresh process, and ``og.restore_state`` for changed params.

Run as ``python -m tests.test_checkpoint <directory> <start> <stop> <format>``, this file is
also the training script of the resume test: it trains steps ``start..stop`` (restoring the
params and state saved at ``start`` when ``start > 0``), saves them, and writes the final
params and state to ``<directory>/final_<stop>.npz``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optgrad as og

serialization = pytest.importorskip("flax.serialization")
ocp = pytest.importorskip("orbax.checkpoint")


def _params():
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    return {
        "a": jax.random.normal(k1, (3, 4)),
        "b": jax.random.normal(k2, (5,)),
        "c": {"d": jax.random.normal(k3, (2, 2))},
    }


def _perturbed(state):
    """``state`` with every entry changed, so a restore that keeps ``target`` fails."""

    def bump(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.fold_in(x, 1)
        x = np.asarray(x)
        return (x == 0) if x.dtype == bool else (x + 1).astype(x.dtype)

    return jax.tree.map(bump, state)


def _key_data(tree):
    """Typed PRNG keys as their ``uint32`` data (what msgpack can write)."""
    is_key = lambda x: jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)  # noqa: E731
    return jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, tree)


def _assert_same(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    a, b = _key_data(a), _key_data(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _registry_states():
    from tests.registry import REGISTRY

    params = _params()
    return {row.name: row.make(row.lr) for row in REGISTRY}, params


def test_every_registry_state_round_trips_through_flax_msgpack():
    optimizers, params = _registry_states()
    for name, tx in optimizers.items():
        state = _perturbed(tx.init(params))
        blob = serialization.msgpack_serialize(serialization.to_state_dict(_key_data(state)))
        target = tx.init(params)
        back = serialization.from_state_dict(_key_data(target), serialization.msgpack_restore(blob))
        _assert_same(back, state)
        assert type(back) is type(state), name
        again = og.restore_state(tx.init(params), serialization.msgpack_restore(blob))
        _assert_same(again, state)


def test_every_registry_state_round_trips_through_orbax(tmp_path):
    optimizers, params = _registry_states()
    states = {name: _perturbed(tx.init(params)) for name, tx in optimizers.items()}
    states = jax.tree.map(jnp.asarray, states)
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(tmp_path / "states", states)
    ckpt.wait_until_finished()
    targets = {name: tx.init(params) for name, tx in optimizers.items()}
    back = ckpt.restore(tmp_path / "states", jax.eval_shape(lambda: targets))
    raw = ckpt.restore(tmp_path / "states")  # no target: nested dicts and lists
    ckpt.close()
    for name in optimizers:
        _assert_same(back[name], states[name])
        assert type(back[name]) is type(states[name]), name
        _assert_same(og.restore_state(targets[name], raw[name]), states[name])


# ---- exact resume in a fresh process -------------------------------------------------------

TOTAL = 30


def _tx():
    schedule = og.warmup_cosine_decay_schedule(0.0, 0.05, 5, TOTAL)
    return og.chain(og.clip_by_global_norm(1.0), og.adamw(schedule, weight_decay=1e-3))


def _loss(p, step):
    x = jnp.sin(jnp.arange(15.0) + step).reshape(5, 3)
    out = jnp.tanh(x @ p["a"] + p["c"]["d"][0, 0])
    b = jnp.sum(p["b"] ** 2 * jnp.cos(step))
    return jnp.sum((out - 0.3) ** 2) + jnp.sum(p["c"]["d"] ** 2) + b


def _train(directory: Path, start: int, stop: int, fmt: str) -> None:
    tx = _tx()
    params = _params()
    state = tx.init(params)
    if start:
        if fmt == "orbax":
            ckpt = ocp.StandardCheckpointer()
            saved = ckpt.restore(
                directory / f"ckpt_{start}", jax.eval_shape(lambda: (params, state))
            )
            ckpt.close()
            params, state = saved
        else:
            raw = serialization.msgpack_restore((directory / f"ckpt_{start}.msgpack").read_bytes())
            params = og.restore_state(params, raw["params"])
            state = og.restore_state(state, raw["state"])

    @jax.jit
    def step(p, s, i):
        g = jax.grad(_loss)(p, i.astype(jnp.float32))
        u, s = tx.update(g, s, p)
        return og.apply_updates(p, u), s

    for i in range(start, stop):
        params, state = step(params, state, jnp.int32(i))
    if fmt == "orbax":
        ckpt = ocp.StandardCheckpointer()
        ckpt.save(directory / f"ckpt_{stop}", (params, state))
        ckpt.wait_until_finished()
        ckpt.close()
    else:
        blob = {"params": params, "state": serialization.to_state_dict(state)}
        (directory / f"ckpt_{stop}.msgpack").write_bytes(serialization.msgpack_serialize(blob))
    leaves = jax.tree.leaves((params, state))
    np.savez(directory / f"final_{stop}.npz", *[np.asarray(x) for x in leaves])


def _fresh_process(directory: Path, start: int, stop: int, fmt: str) -> None:
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.test_checkpoint", str(directory), str(start), str(stop), fmt],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]


@pytest.mark.parametrize("fmt", ["orbax", "msgpack"])
def test_resume_in_a_fresh_process_is_bit_exact(tmp_path, fmt):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    straight.mkdir()
    resumed.mkdir()
    _fresh_process(straight, 0, TOTAL, fmt)  # N + M steps at once
    _fresh_process(resumed, 0, 12, fmt)  # N steps, saved
    _fresh_process(resumed, 12, TOTAL, fmt)  # restored in a new process, M more
    a, b = np.load(straight / f"final_{TOTAL}.npz"), np.load(resumed / f"final_{TOTAL}.npz")
    assert len(a.files) == len(b.files) > 10
    for key in a.files:
        assert a[key].dtype == b[key].dtype
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # The step count (which the schedule reads) was restored, not restarted.
    counts = [int(b[k]) for k in b.files if b[k].dtype == np.int32 and b[k].ndim == 0]
    assert counts and all(c == TOTAL for c in counts), counts


# ---- restore_state with changed params -----------------------------------------------------


def test_restore_state_initialises_an_added_parameter_with_a_warning():
    tx = og.adam(1e-2)
    old = _params()
    saved = _perturbed(tx.init(old))
    new = {**old, "e": jnp.ones((2, 3))}  # a parameter added since the checkpoint
    target = tx.init(new)
    with pytest.warns(UserWarning, match=r"2 entries are not in the checkpoint.*mu/e.*nu/e"):
        state = og.restore_state(target, serialization.to_state_dict(saved))
    np.testing.assert_array_equal(state.inner_state[0].mu["e"], np.zeros((2, 3)))
    np.testing.assert_array_equal(state.inner_state[0].mu["a"], saved.inner_state[0].mu["a"])
    assert int(state.count) == int(saved.count)
    with pytest.raises(ValueError, match=r"not in the checkpoint: .*mu/e"):
        og.restore_state(target, saved, missing="error")


def test_restore_state_refuses_a_removed_parameter_unless_told():
    tx = og.adam(1e-2)
    old = _params()
    saved = _perturbed(tx.init(old))
    new = {"a": old["a"], "c": old["c"]}  # "b" removed
    target = tx.init(new)
    with pytest.raises(ValueError, match=r"2 saved entries have no place.*mu/b.*nu/b"):
        og.restore_state(target, saved)
    with pytest.warns(UserWarning, match=r"dropped 2 saved entries.*mu/b"):
        state = og.restore_state(target, saved, unexpected="drop")
    np.testing.assert_array_equal(state.inner_state[0].nu["a"], saved.inner_state[0].nu["a"])


def test_restore_state_refuses_a_changed_shape_and_keeps_dict_order_irrelevant():
    tx = og.sgd(0.1, momentum=0.9)
    saved = _perturbed(tx.init({"x": jnp.zeros(3), "y": jnp.zeros(2)}))
    with pytest.raises(ValueError, match=r"x is float32\[3\] in the checkpoint but float32\[4\]"):
        og.restore_state(tx.init({"x": jnp.zeros(4), "y": jnp.zeros(2)}), saved)
    flat = {"/".join(k.split("/")): v for k, v in _flat(serialization.to_state_dict(saved))}
    reordered = dict(reversed(list(flat.items())))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = og.restore_state(tx.init({"y": jnp.zeros(2), "x": jnp.zeros(3)}), reordered)
    _assert_same(back, saved)


def _flat(tree, prefix=""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flat(value, path + "/")
        else:
            yield path, value


def test_restore_state_checks_its_arguments():
    tx = og.sgd(0.1)
    with pytest.raises(ValueError, match=r'missing=\.\.\.\) must be "init" or "error"'):
        og.restore_state(tx.init(_params()), {}, missing="zeros")


if __name__ == "__main__":
    _train(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
