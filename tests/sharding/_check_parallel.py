"""ZeRO-1, cross-device reductions, data parallelism and resharded checkpoints on 8 devices.

Run as ``python -m tests.sharding._check_parallel <part>`` with 8 simulated CPU devices (see
``_devices.py``); prints one JSON object of measurements that the ``test_*.py`` files beside it
assert on. ``part`` is ``zero``, ``reductions``, ``digits`` or ``orbax``.
"""

from __future__ import annotations

import functools
import itertools
import json
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import optgrad as og


def _mesh(axis: str, mode=AxisType.Auto):
    return jax.make_mesh((8,), (axis,), axis_types=(mode,))


def _mlp_params(key, sizes):
    params = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        key, sub = jax.random.split(key)
        params[f"w{i}"] = jax.random.normal(sub, (n_in, n_out)) / np.sqrt(n_in)
        params[f"b{i}"] = jnp.zeros((n_out,))
    return params


def _mlp(params, x):
    n = len(params) // 2
    for i in range(n):
        x = x @ params[f"w{i}"] + params[f"b{i}"]
        if i < n - 1:
            x = jnp.tanh(x)
    return x


def _device0_bytes(tree) -> int:
    dev = jax.devices()[0]
    return sum(
        s.data.nbytes
        for x in jax.tree.leaves(tree)
        for s in x.addressable_shards
        if s.device == dev
    )


def zero() -> dict:
    """ZeRO-1 state memory on device 0 and training equal to plain data parallelism."""
    return {mode.name: _zero(mode) for mode in (AxisType.Auto, AxisType.Explicit)}


def _zero(mode) -> dict:
    mesh = _mesh("data", mode)
    rep, batch_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    with jax.set_mesh(mesh):
        params = jax.device_put(_mlp_params(jax.random.PRNGKey(0), [64, 128, 32, 16]), rep)
        tx = og.adamw(og.warmup_cosine_decay_schedule(0.0, 3e-3, 5, 40), weight_decay=1e-2)
        plain = og.state_shardings(tx, params)
        zero1 = og.state_shardings(tx, params, zero_axis="data")
        state = tx.init(params)
        state_zero = jax.device_put(state, zero1)
        arrays = [x for x in jax.tree.leaves(state) if x.ndim]
        arrays_zero = [x for x in jax.tree.leaves(state_zero) if x.ndim]
        res = {
            "bytes_plain": _device0_bytes(state),
            "bytes_zero": _device0_bytes(state_zero),
            "array_bytes_plain": _device0_bytes(arrays),
            "array_bytes_zero": _device0_bytes(arrays_zero),
            "zero_specs": sorted(
                {str(s.spec) for s in jax.tree.leaves(zero1) if isinstance(s, NamedSharding)}
            ),
        }
        xs = np.random.default_rng(1).normal(size=(25, 64, 64)).astype(np.float32)
        ys = np.sin(xs[..., :16] * 2.0)

        def loss(p, x, y):
            return jnp.mean((_mlp(p, x) - y) ** 2)

        def step(p, s, x, y):
            value, g = jax.value_and_grad(loss)(p, x, y)
            u, s = tx.update(g, s, p)
            return og.apply_updates(p, u), s, value

        def train(shardings, s):
            jitted = jax.jit(
                step,
                in_shardings=(rep, shardings, batch_sharding, batch_sharding),
                out_shardings=(rep, shardings, rep),
            )
            p, losses = params, []
            for x, y in zip(xs, ys):
                x, y = jax.device_put((x, y), batch_sharding)
                p, s, value = jitted(p, s, x, y)
                losses.append(float(value))
            return p, s, losses, jitted._cache_size()

        p_plain, _, l_plain, c_plain = train(plain, state)
        p_zero, s_zero, l_zero, c_zero = train(zero1, state_zero)
        diff = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), p_plain, p_zero)
        res.update(
            steps=len(xs),
            losses_plain=l_plain,
            losses_zero=l_zero,
            max_param_diff=max(jax.tree.leaves(diff)),
            max_param=float(max(jnp.max(jnp.abs(x)) for x in jax.tree.leaves(p_plain))),
            state_zero_bytes_after=_device0_bytes(s_zero),
            compiles=[c_plain, c_zero],
            params_replicated=all(x.sharding.is_fully_replicated for x in jax.tree.leaves(p_zero)),
        )
    return res


def _sharded_problem(mesh):
    k = jax.random.split(jax.random.PRNGKey(3), 6)
    params = {
        "w": jax.random.normal(k[0], (16, 8)),
        "v": jax.random.normal(k[1], (8, 24)),
        "b": jax.random.normal(k[2], (8,)),
    }
    grads = {
        "w": 3.0 * jax.random.normal(k[3], (16, 8)),
        "v": 3.0 * jax.random.normal(k[4], (8, 24)),
        "b": 3.0 * jax.random.normal(k[5], (8,)),
    }
    specs = {"w": P("model", None), "v": P(None, "model"), "b": P("model")}
    return params, grads, specs


REDUCING = {
    "clip_by_global_norm": lambda: og.clip_by_global_norm(1.0),
    "lamb": lambda: og.lamb(1e-2, weight_decay=1e-2),
    "lars": lambda: og.lars(1e-2),
    "fromage": lambda: og.fromage(1e-2),
    "novograd": lambda: og.novograd(1e-2),
    "normalize_by_update_norm": lambda: og.normalize_by_update_norm(0.5),
    "adaptive_grad_clip": lambda: og.adaptive_grad_clip(0.01),
    "monitor_clip_adamw": lambda: og.monitor(og.adamw(1e-2), og.clip_by_global_norm(1.0)),
    "clip_adafactor": lambda: og.chain(og.clip_by_global_norm(1.0), og.adafactor(1e-2)),
}


def reductions() -> dict:
    """Whole-tree reductions: sharded params under ``jit`` and ``shard_map`` vs one device."""
    out: dict = {}
    single = jax.devices()[0]

    def three_steps(tx, p, g):
        s = tx.init(p)
        for i in range(3):
            u, s = tx.update(jax.tree.map(lambda x, i=i: x * (1 + i), g), s, p)
            p = og.apply_updates(p, u)
        return p, s

    def as_np(tree):
        return [np.asarray(x, np.float32) for x in jax.tree.leaves(tree)]

    params, grads, specs = _sharded_problem(None)
    refs = {
        name: as_np(
            jax.jit(functools.partial(three_steps, make()))(
                *jax.device_put((params, grads), single)
            )
        )
        for name, make in REDUCING.items()
    }
    for mode in (AxisType.Auto, AxisType.Explicit):
        mesh = _mesh("model", mode)
        with jax.set_mesh(mesh):
            sharded = jax.tree.map(
                lambda x, s, mesh=mesh: jax.device_put(x, NamedSharding(mesh, s)),
                (params, grads),
                (specs, specs),
            )
            res = {}
            for name, make in REDUCING.items():
                got = as_np(jax.jit(functools.partial(three_steps, make()))(*sharded))
                ref = refs[name]
                res[name] = {
                    "max_diff": max(
                        float(np.max(np.abs(a - b), initial=0)) for a, b in zip(ref, got)
                    ),
                    "scale": max(float(np.max(np.abs(a), initial=0)) for a in ref),
                    "leaves": len(ref),
                }
            out[mode.name] = res

    # shard_map: every device holds a shard of every leaf; the norm is psum-ed over "model".
    mesh = _mesh("model", AxisType.Explicit)
    params, grads, specs = _sharded_problem(mesh)
    tx = og.clip_by_global_norm(1.0)
    ref_u, ref_s = jax.jit(tx.update)(grads, tx.init(grads))
    shard_specs = {"w": P("model"), "v": P(None, "model"), "b": P("model")}

    def local(g):
        u, s = og.clip_by_global_norm(1.0, axis_name="model").update(g, tx.init(g))
        return u, s.global_norm, og.tree.norm(g, axis_name="model"), og.tree.norm(g)[None]

    with jax.set_mesh(mesh):
        mapped = jax.jit(
            jax.shard_map(
                local, in_specs=(shard_specs,), out_specs=(shard_specs, P(), P(), P("model"))
            )
        )
        u, norm, tree_norm, local_norms = mapped(
            jax.tree.map(lambda x, s: jax.device_put(x, NamedSharding(mesh, s)), grads, shard_specs)
        )
    out["shard_map"] = {
        "max_update_diff": max(
            jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), ref_u, u))
        ),
        "norm": float(norm),
        "tree_norm": float(tree_norm),
        "ref_norm": float(ref_s.global_norm),
        "local_norms_differ": float(jnp.max(local_norms)) < float(ref_s.global_norm),
    }
    return out


def digits() -> dict:
    """A small MLP on load_digits, data-parallel over 8 devices vs one device, og.adamw."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    n = (len(x) // 64) * 64
    batches_x = x[:n].reshape(-1, 64, 64)[:20]
    batches_y = y[:n].reshape(-1, 64)[:20].astype(np.int32)
    params0 = _mlp_params(jax.random.PRNGKey(0), [64, 64, 10])
    tx = og.adamw(3e-3, weight_decay=1e-4)

    def loss(p, xb, yb):
        logits = _mlp(p, xb)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], axis=1))

    def step(p, s, xb, yb):
        value, g = jax.value_and_grad(loss)(p, xb, yb)
        u, s = tx.update(g, s, p)
        return og.apply_updates(p, u), s, value

    def run(put_params, put_batch):
        p = put_params(params0)
        s = tx.init(p)
        jitted = jax.jit(step)
        losses = []
        for xb, yb in zip(batches_x, batches_y):
            p, s, value = jitted(p, s, put_batch(xb), put_batch(yb))
            losses.append(float(value))
        return losses, p

    single = jax.devices()[0]
    one, p_one = run(lambda t: jax.device_put(t, single), lambda b: jax.device_put(b, single))
    mesh = _mesh("data")
    rep, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    dp, p_dp = run(lambda t: jax.device_put(t, rep), lambda b: jax.device_put(b, data))
    diff = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(jax.tree.leaves(p_one), jax.tree.leaves(p_dp))
    )
    return {
        "single": one,
        "data_parallel": dp,
        "max_param_diff": diff,
        "params_replicated": all(x.sharding.is_fully_replicated for x in jax.tree.leaves(p_dp)),
    }


def orbax() -> dict:
    """An optimizer state saved sharded over ``model`` restores replicated and ZeRO-sharded."""
    import orbax.checkpoint as ocp

    mesh = jax.make_mesh((2, 4), ("data", "model"))
    with jax.set_mesh(mesh):
        params = jax.device_put(
            _mlp_params(jax.random.PRNGKey(0), [16, 32, 8]),
            {
                "w0": NamedSharding(mesh, P(None, "model")),
                "b0": NamedSharding(mesh, P("model")),
                "w1": NamedSharding(mesh, P("model", None)),
                "b1": NamedSharding(mesh, P()),
            },
        )
        tx = og.adamw(og.linear_schedule(1e-2, 1e-3, 10))
        state = tx.init(params)
        g = jax.tree.map(lambda x: jnp.cos(x) + 0.1, params)
        for _ in range(3):
            _, state = jax.jit(tx.update)(g, state, params)
        out = {}
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = ocp.StandardCheckpointer()
            ckpt.save(f"{tmp}/state", state)
            ckpt.wait_until_finished()
            rep = NamedSharding(mesh, P())
            for name, shardings in {
                "same": og.state_shardings(tx, params),
                "replicated": jax.tree.map(lambda _: rep, state),
                "zero1": og.state_shardings(tx, params, zero_axis="data"),
            }.items():
                target = jax.tree.map(
                    lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                    jax.eval_shape(tx.init, params),
                    shardings,
                )
                restored = ckpt.restore(f"{tmp}/state", target)
                out[name] = {
                    "same_type": type(restored) is type(state)
                    and jax.tree.structure(restored) == jax.tree.structure(state),
                    "equal": all(
                        bool(jnp.array_equal(a, b))
                        for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored))
                    ),
                    "placed": all(
                        r.sharding.is_equivalent_to(s, r.ndim)
                        for r, s in zip(jax.tree.leaves(restored), jax.tree.leaves(shardings))
                    ),
                    "specs": sorted({str(r.sharding.spec) for r in jax.tree.leaves(restored)}),
                }
            ckpt.close()
    return out


if __name__ == "__main__":
    assert jax.device_count() == 8, jax.devices()
    print(
        json.dumps(
            {"zero": zero, "reductions": reductions, "digits": digits, "orbax": orbax}[
                sys.argv[1]
            ]()
        )
    )
