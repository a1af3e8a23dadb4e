"""One of two processes training together on the CPU backend, then checkpointing.

``python -m tests.sharding._multiprocess <process_id> <port> <directory>``, started twice by
``test_multiprocess.py`` with 2 local CPU devices each. The processes join with
``jax.distributed.initialize`` on loopback, train a small MLP data-parallel over the 4 global
devices (each feeds its own half of every batch; params replicated; ``og.adamw`` with a
schedule), save the state with orbax (every process writes its part), restore it, and compare
with the same training done alone on one local device. Each step blocks on its result: many
queued collectives have crashed XLA:CPU on small machines. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import optgrad as og  # noqa: E402

STEPS, BATCH = 12, 32


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS, BATCH, 8)).astype(np.float32)
    return x, np.sin(x[..., :2]).astype(np.float32)


def _params():
    rng = np.random.default_rng(1)
    return {
        "w0": (rng.normal(size=(8, 16)) / 3).astype(np.float32),
        "b0": np.zeros(16, np.float32),
        "w1": (rng.normal(size=(16, 2)) / 4).astype(np.float32),
    }


def _loss(p, x, y):
    return jnp.mean((jnp.tanh(x @ p["w0"] + p["b0"]) @ p["w1"] - y) ** 2)


TX = og.adamw(og.warmup_cosine_decay_schedule(0.0, 1e-2, 3, STEPS), weight_decay=1e-3)


def _step(p, s, x, y):
    value, g = jax.value_and_grad(_loss)(p, x, y)
    u, s = TX.update(g, s, p)
    return og.apply_updates(p, u), s, value


def main() -> None:
    import orbax.checkpoint as ocp

    pid, port, directory = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid
    )
    assert jax.process_count() == 2 and jax.device_count() == 4, jax.devices()
    mesh = jax.make_mesh((4,), ("data",))
    rep, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    xs, ys = _data()
    half = slice(pid * BATCH // 2, (pid + 1) * BATCH // 2)

    def global_array(local, sharding):
        return jax.make_array_from_process_local_data(sharding, local)

    params = jax.tree.map(lambda x: global_array(x, rep), _params())
    state = jax.jit(TX.init, out_shardings=og.state_shardings(TX, params))(params)
    step = jax.jit(_step, out_shardings=(rep, og.state_shardings(TX, params), rep))
    losses = []
    for x, y in zip(xs, ys):
        params, state, value = step(
            params, state, global_array(x[half], data), global_array(y[half], data)
        )
        losses.append(float(jax.block_until_ready(value)))

    ckpt = ocp.StandardCheckpointer()
    ckpt.save(f"{directory}/state", state)
    ckpt.wait_until_finished()
    target = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state
    )
    restored = ckpt.restore(f"{directory}/state", target)
    ckpt.close()
    same = all(
        np.array_equal(np.asarray(a.addressable_data(0)), np.asarray(b.addressable_data(0)))
        for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored))
    )

    # The same training alone on one local device: the reference.
    local = jax.local_devices()[0]
    p1 = jax.device_put(_params(), local)
    s1 = TX.init(p1)
    ref = []
    for x, y in zip(xs, ys):
        p1, s1, value = jax.jit(_step)(p1, s1, jax.device_put(x, local), jax.device_put(y, local))
        ref.append(float(value))
    diff = max(
        float(np.max(np.abs(np.asarray(a.addressable_data(0)) - np.asarray(b))))
        for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(p1))
    )
    count = int(np.asarray(restored.count.addressable_data(0)))
    print(
        json.dumps(
            {
                "process": pid,
                "losses": losses,
                "reference": ref,
                "max_param_diff": diff,
                "restored_equal": same,
                "restored_type": type(restored).__name__,
                "restored_count": count,
            }
        )
    )
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
