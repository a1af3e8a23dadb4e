"""The cost of ``optgrad.monitor``'s default metrics on a training step.

Times one jitted, donated optimizer step (update + apply_updates) with and without the monitor
on a tree from ``benchmarks/trees.py`` (default: the GPT-like tree). A sample is the time of
``--block`` consecutive steps (default: the monitor's ``every_k``, so that each sample holds
exactly one measuring step and the overhead is the amortised one), the variants alternate
sample by sample so that drift in the machine's load hits all alike, and the report is the
median time per step of each and the overheads ``median(a) / median(b) - 1``. The metrics stay
on the device (they are part of the returned state), as in a training loop that logs every N
steps. With ``--measuring``, ``monitor(..., every_k=1)`` gives the cost of a measuring step.

    python -m benchmarks.monitor_overhead                 # GPT-like tree, 5 samples
    python -m benchmarks.monitor_overhead --tree many --repeats 20
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
    clip = og.clip_by_global_norm(max_norm)
    return {
        "adamw": og.adamw(lr),
        "monitor(adamw)": og.monitor(og.adamw(lr)),
        "chain(clip, adamw)": og.chain(clip, og.adamw(lr)),
        "monitor(adamw, clip)": og.monitor(og.adamw(lr), clip),
    }


def _measuring_variants(lr: float = 1e-3, max_norm: float = 1.0):
    clip = og.clip_by_global_norm(max_norm)
    return {
        "monitor(adamw, every_k=1)": og.monitor(og.adamw(lr), every_k=1),
        "monitor(adamw, clip, every_k=1)": og.monitor(og.adamw(lr), clip, every_k=1),
    }


_COMPARE = (
    ("monitor(adamw)", "adamw"),
    ("monitor(adamw, clip)", "chain(clip, adamw)"),
    ("chain(clip, adamw)", "adamw"),
    ("monitor(adamw, every_k=1)", "adamw"),
    ("monitor(adamw, clip, every_k=1)", "chain(clip, adamw)"),
)


def measure(
    tree: str = "gpt",
    repeats: int = 5,
    block: int = 100,
    quick: bool = False,
    measuring: bool = False,
):
    spec = trees.build_tree(tree, quick=quick)
    grads = _tree(spec, trees.grad_values())
    txs = {**_variants(), **(_measuring_variants() if measuring else {})}
    steps = {name: _step_fn(tx) for name, tx in txs.items()}
    carry = {}
    for name, tx in txs.items():
        params = _tree(spec, trees.param_values())
        carry[name] = (params, tx.init(params))
        carry[name] = steps[name](*carry[name], grads)  # compile
        jax.block_until_ready(carry[name])
    times = {name: [] for name in txs}
    for _ in range(repeats):
        for name in txs:  # interleaved
            start = time.perf_counter()
            for _ in range(block):
                carry[name] = steps[name](*carry[name], grads)
            jax.block_until_ready(carry[name])
            times[name].append((time.perf_counter() - start) / block)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"tree: {spec.description} ({spec.n_params / 1e6:.1f}M params, {spec.n_leaves} leaves)")
    print(
        f"device: {jax.devices()[0].device_kind}, {repeats} interleaved samples of {block} "
        "steps, median time per step (min)"
    )
    for name, m in medians.items():
        print(f"  {name:34s} {m * 1e3:9.3f} ms  ({min(times[name]) * 1e3:.3f})")
    for a, b in _COMPARE:
        if a not in medians:
            continue
        print(f"  overhead {a} vs {b}: {(medians[a] / medians[b] - 1) * 100:+.1f}%")
    metrics = og.metrics(carry["monitor(adamw, clip)"][1])
    print("  metrics:", {k: round(float(v), 6) for k, v in metrics.items()})
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default="gpt", choices=sorted(trees.TREES))
    parser.add_argument("--repeats", type=int, default=5, help="samples per variant")
    parser.add_argument("--block", type=int, default=100, help="steps per sample")
    parser.add_argument("--quick", action="store_true", help="the tiny version of the tree")
    parser.add_argument(
        "--measuring", action="store_true", help="also every_k=1: the cost of a measuring step"
    )
    args = parser.parse_args()
    measure(args.tree, args.repeats, args.block, quick=args.quick, measuring=args.measuring)


if __name__ == "__main__":
    main()
