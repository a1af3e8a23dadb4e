"""Probes XLA:CPU for a one-pass Nesterov SGD step: is there a configuration that beats 28 B/param?

A Nesterov SGD step must write two arrays (params and momentum). XLA:CPU emits one loop per
output array, and each loop re-reads the gradient, so the plain step moves 28 bytes per
parameter against torch's fused kernel's 20. This script times, on one 16M-parameter leaf,
one process per configuration:

- ``plain``: the two-loop step (what every optimizer does);
- ``chunked``: one ``fori_loop`` over 256K-element chunks that writes both arrays in place
  (``dynamic_update_slice``), 20 bytes per parameter but emitted single-threaded;
- ``split2`` / ``split4``: the same on 2 or 4 leaves, to see whether XLA runs independent loops
  on the two cores at once;
- ``torch_fused``: ``torch.optim.SGD(nesterov=True, fused=True)``.

An XLA debug option can be given as JSON; it is passed per computation through
``jax.jit(..., compiler_options=...)``::

    .venv/bin/python benchmarks/xla_cpu_probe.py plain
    .venv/bin/python benchmarks/xla_cpu_probe.py split2 \\
        '{"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_CONCURRENCY_OPTIMIZED"}'

Findings are in ``benchmarks/README.md`` ("Where the time goes").
"""

from __future__ import annotations

import json
import sys
import time

import jax
from jax import lax

N = 1 << 24
CHUNK = 1 << 18
LR, MOMENTUM = 0.01, 0.9
REPEATS = 30


def plain(p, g, m):
    m = MOMENTUM * m + g
    return p - LR * (g + MOMENTUM * m), m


def chunked(p, g, m):
    def body(i, carry):
        p, m = carry
        start = i * CHUNK
        p_c, g_c, m_c = (lax.dynamic_slice(x, (start,), (CHUNK,)) for x in (p, g, m))
        m = lax.dynamic_update_slice(m, MOMENTUM * m_c + g_c, (start,))
        # Read the written chunk back, so XLA does not recompute it in a second loop.
        m_c = lax.dynamic_slice(m, (start,), (CHUNK,))
        p = lax.dynamic_update_slice(p, p_c - LR * (g_c + MOMENTUM * m_c), (start,))
        return p, m

    return lax.fori_loop(0, p.shape[0] // CHUNK, body, (p, m))


def split(ps, gs, ms):
    out = [chunked(p, g, m) for p, g, m in zip(ps, gs, ms)]
    return [p for p, _ in out], [m for _, m in out]


def arrays(parts: int):
    key = jax.random.PRNGKey(0)
    made = [
        [
            jax.random.normal(jax.random.fold_in(key, 10 * i + j), (N // parts,))
            for j in range(parts)
        ]
        for i in range(3)
    ]
    return tuple(x[0] for x in made) if parts == 1 else tuple(made)


def time_jax(fn, parts: int, options: dict) -> float:
    step = jax.jit(fn, donate_argnums=(0, 2), compiler_options=options)
    p, g, m = arrays(parts)
    p, m = step(p, g, m)
    jax.block_until_ready((p, m))
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        p, m = step(p, g, m)
        jax.block_until_ready((p, m))
        times.append(time.perf_counter() - start)
    return sorted(times)[REPEATS // 2]


def time_torch() -> float:
    import torch

    p = torch.randn(N)
    p.grad = torch.randn(N)
    opt = torch.optim.SGD([p], lr=LR, momentum=MOMENTUM, nesterov=True, fused=True)
    opt.step()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - start)
    return sorted(times)[REPEATS // 2]


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "plain"
    options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    configs = {
        "plain": (plain, 1),
        "chunked": (chunked, 1),
        "split2": (split, 2),
        "split4": (split, 4),
    }
    if which == "torch_fused":
        seconds = time_torch()
    elif which in configs:
        seconds = time_jax(*configs[which], options)
    else:
        raise SystemExit(
            f"xla_cpu_probe.py: unknown configuration {which!r}; one of "
            f"{[*sorted(configs), 'torch_fused']}"
        )
    print(f"{which:12s} {1e3 * seconds:7.2f} ms  {options or ''}", flush=True)


if __name__ == "__main__":
    main()
