"""The cost of ``optgrad.monitor``'s default metrics on a training step.

Times one jitted, donated optimizer step (update + apply_updates) with and without the monitor
on a tree from ``benchmarks/trees.py`` (default: the GPT-like tree), alternating the variants
so that drift in the machine's load hits both alike, and prints the median of each and the
overhead ``median(monitored) / median(plain) - 1``. The metrics stay on the device (they are
part of the returned state), as they would in a training loop that logs every N steps.

    python -m benchmarks.monitor_overhead                 # GPT-like tree, 30 repeats
    python -m benchmarks.monitor_overhead --tree many --repeats 50
    python -m benchmarks.monitor_overhead --quick         # tiny tree, a smoke test
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

import optgrad as og
from benchmarks import trees


def _tree(spec: trees.TreeSpec, values: trees.LeafValues):
    return trees.map_leaves(lambda shape: jnp.asarray(values(shape)), spec.shapes)


def _step_fn(tx):
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return og.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def _variants(lr: float = 1e-3, max_norm: float = 1.0):
    return {
        "adamw": og.adamw(lr),
        "monitor(adamw)": og.monitor(og.adamw(lr)),
        "chain(clip, adamw)": og.chain(og.clip_by_global_norm(max_norm), og.adamw(lr)),
        "monitor(adamw, clip)": og.monitor(og.adamw(lr), og.clip_by_global_norm(max_norm)),
    }


def measure(tree: str = "gpt", repeats: int = 30, warmup: int = 3, quick: bool = False):
    spec = trees.build_tree(tree, quick=quick)
    grads = _tree(spec, trees.grad_values())
    txs = _variants()
    steps = {name: _step_fn(tx) for name, tx in txs.items()}
    carry = {}
    for name, tx in txs.items():
        params = _tree(spec, trees.param_values())
        carry[name] = (params, tx.init(params))
        for _ in range(warmup):  # compile, then settle
            carry[name] = steps[name](*carry[name], grads)
        jax.block_until_ready(carry[name])
    times = {name: [] for name in txs}
    for _ in range(repeats):
        for name in txs:  # interleaved
            start = time.perf_counter()
            carry[name] = steps[name](*carry[name], grads)
            jax.block_until_ready(carry[name])
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"tree: {spec.description} ({spec.n_params / 1e6:.1f}M params, {spec.n_leaves} leaves)")
    print(f"device: {jax.devices()[0].device_kind}, {repeats} interleaved repeats, median")
    for name, m in medians.items():
        print(f"  {name:24s} {m * 1e3:9.3f} ms")
    for plain, monitored in (("adamw", "monitor(adamw)"),
                             ("chain(clip, adamw)", "monitor(adamw, clip)")):  # fmt: skip
        overhead = medians[monitored] / medians[plain] - 1
        print(f"  overhead {monitored} vs {plain}: {overhead * 100:+.1f}%")
    metrics = og.metrics(carry["monitor(adamw, clip)"][1])
    print("  metrics:", {k: round(float(v), 6) for k, v in metrics.items()})
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default="gpt", choices=sorted(trees.TREES))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="the tiny version of the tree")
    args = parser.parse_args()
    measure(args.tree, args.repeats, quick=args.quick)


if __name__ == "__main__":
    main()
