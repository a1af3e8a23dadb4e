"""Fused steps: ``update`` and ``apply_updates`` evaluated one cache-sized chunk at a time.

An optimizer step is memory-bound. XLA on CPU writes one output per fused loop, so a step that
updates ``params``, ``mu`` and ``nu`` runs three loops over the parameters, and each loop reads
the gradient (and the new moments) again from main memory. :func:`fused_step` traces the step
once, keeps the few global reductions it needs (a global norm, a step count) in front, and runs
everything elementwise that follows in a ``fori_loop`` over chunks of each parameter. Inside a
chunk the loops are the same, but the arrays they share are still in cache: every
parameter-sized array is read from main memory once and written once, which is the memory
bound of the optimizer. The chunks are written in place into the donated params and state.

The program is an ordinary jitted JAX function: no custom kernels and no callbacks. Whatever
cannot be chunked (matrix products, random numbers, reductions over a parameter) is evaluated
as it would be without this function, so any transformation gives the same numbers either way.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as jcore

from ._base import GradientTransformation, OptState, Params, Updates
from ._update import apply_updates, check_same_structure

DEFAULT_CHUNK_SIZE = 1 << 18

# Primitives that map same-shaped operands (or scalars) to a result of the same shape, element
# by element: evaluated on a chunk they give that chunk of the result.
_ELEMENTWISE = frozenset(
    """
    abs acos acosh add and asin asinh atan atan2 atanh cbrt ceil clamp convert_element_type copy
    copy_p cos cosh div eq erf erf_inv erfc exp exp2 expm1 floor ge gt imag integer_pow is_finite
    le lgamma digamma log log1p logistic lt max min mul ne neg nextafter not or pow real
    reduce_precision rem round rsqrt select_n sign sin sinh sqrt square sub tan tanh xor
    """.split()
)
# Shape changes that keep the row-major order of the elements: the identity on a flat chunk.
_FLAT_VIEWS = frozenset({"reshape", "squeeze", "expand_dims"})
# Call primitives whose body is inlined, so the elementwise work inside them can be chunked.
_CALLS = {
    "jit": "jaxpr",
    "pjit": "jaxpr",
    "closed_call": "call_jaxpr",
    "core_call": "call_jaxpr",
    "custom_jvp_call": "call_jaxpr",
    "custom_vjp_call": "call_jaxpr",
    "remat": "jaxpr",
    "checkpoint": "jaxpr",
}


def _check_chunk_size(call: str, chunk_size: Any) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"{call}(chunk_size=...) must be a positive int, got {chunk_size!r}")
    return chunk_size


def _sub_jaxpr(eqn) -> tuple[Any, list] | None:
    """The (jaxpr, consts) a call equation runs, or ``None`` for other equations."""
    key = _CALLS.get(eqn.primitive.name)
    if key is None or key not in eqn.params:
        return None
    sub = eqn.params[key]
    if isinstance(sub, jcore.ClosedJaxpr):
        return sub.jaxpr, list(sub.consts)
    if isinstance(sub, jcore.Jaxpr):
        return sub, []
    return None


def _bind(eqn, invals):
    out = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
    return out if eqn.primitive.multiple_results else [out]


def _eval_inlined(jaxpr, consts, args):
    """Evaluates ``jaxpr`` with its call primitives inlined (used under ``make_jaxpr``)."""
    env: dict = {}

    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    env.update(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        sub = _sub_jaxpr(eqn)
        if sub is not None and len(sub[0].invars) == len(invals):
            outvals = _eval_inlined(sub[0], sub[1], invals)
        else:
            outvals = _bind(eqn, invals)
        for v, x in zip(eqn.outvars, outvals):
            if not isinstance(v, jcore.DropVar):
                env[v] = x
    return [read(v) for v in jaxpr.outvars]


def _size(aval) -> int:
    return math.prod(getattr(aval, "shape", ()) or ())


def _is_sharded(aval) -> bool:
    """True for an aval with an explicit sharding over mesh axes (not chunked: a dynamic slice
    of a sharded dimension would gather it)."""
    spec = getattr(getattr(aval, "sharding", None), "spec", None)
    return spec is not None and any(s is not None for s in spec)


class _Program:
    """The flat jaxpr of a step, split into a prelude and chunked components."""

    def __init__(self, closed, pairs: dict[int, int], chunk_size: int):
        self.closed = closed
        self.chunk = chunk_size
        jaxpr = closed.jaxpr
        eqns = jaxpr.eqns

        def big(v) -> bool:
            return (
                isinstance(v, jcore.Var)
                and getattr(v.aval, "ndim", 0) >= 1
                and _size(v.aval) >= 2 * chunk_size
                and not _is_sharded(v.aval)
            )

        def chunkable(eqn) -> bool:
            outs = eqn.outvars
            if not outs or not all(big(v) for v in outs):
                return False
            n = _size(outs[0].aval)
            ins = [v for v in eqn.invars if isinstance(v, jcore.Var)]
            name = eqn.primitive.name
            if name == "broadcast_in_dim":
                return len(ins) == 1 and ins[0].aval.shape == ()
            if name in _FLAT_VIEWS:
                return len(ins) == 1 and big(ins[0]) and _size(ins[0].aval) == n
            if name not in _ELEMENTWISE:
                return False
            return all(
                (big(v) and _size(v.aval) == n) or getattr(v.aval, "shape", None) == () for v in ins
            )

        # Walking backwards, an equation is in the prelude when it cannot be chunked or when
        # an array it makes is needed whole by the prelude.
        needed_whole: set = set()
        in_prelude = [False] * len(eqns)
        for i in reversed(range(len(eqns))):
            eqn = eqns[i]
            if not chunkable(eqn) or any(v in needed_whole for v in eqn.outvars):
                in_prelude[i] = True
                needed_whole.update(v for v in eqn.invars if big(v))

        # Chunked equations that share a parameter-sized array run in one loop (union-find).
        parent = list(range(len(eqns)))

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        owner: dict = {}  # big var -> an equation that makes or reads it in a loop
        for i, eqn in enumerate(eqns):
            if in_prelude[i]:
                continue
            for v in list(eqn.invars) + list(eqn.outvars):
                if big(v):
                    if v in owner:
                        parent[find(i)] = find(owner[v])
                    else:
                        owner[v] = i
        groups: dict[int, list[int]] = {}
        for i in range(len(eqns)):
            if not in_prelude[i]:
                groups.setdefault(find(i), []).append(i)

        outvar_index: dict = {}
        for k, v in enumerate(jaxpr.outvars):
            if isinstance(v, jcore.Var):
                outvar_index.setdefault(v, k)
        invar_uses: dict = {}  # var -> the loops, prelude equations and outputs that read it
        for i, eqn in enumerate(eqns):
            users = {v for v in eqn.invars if isinstance(v, jcore.Var)}
            for v in users:
                invar_uses.setdefault(v, set()).add(("prelude", i) if in_prelude[i] else find(i))
        for v in jaxpr.outvars:
            if isinstance(v, jcore.Var):
                invar_uses.setdefault(v, set()).add(("output",))

        self.prelude = [eqns[i] for i in range(len(eqns)) if in_prelude[i]]
        self.loops = []
        invars = list(jaxpr.invars)
        for root, members in groups.items():
            loop_eqns = [eqns[i] for i in members]
            made = [v for e in loop_eqns for v in e.outvars]
            read = list(
                dict.fromkeys(v for e in loop_eqns for v in e.invars if big(v) and v not in made)
            )
            sizes = {_size(v.aval) for v in made + read}
            outputs = [v for v in made if v in outvar_index]
            if len(sizes) != 1 or not outputs:
                self.loops.append((None, loop_eqns, [], {}, []))
                continue
            # Each output is written into the buffer of the input it replaces (the donated
            # params or state leaf), when that input is read by this loop alone.
            carried: dict = {}
            for y in outputs:
                j = pairs.get(outvar_index[y])
                if j is None:
                    continue
                x = invars[j]
                if (
                    x in read
                    and x not in carried.values()
                    and invar_uses.get(x) == {root}
                    and x.aval.dtype == y.aval.dtype
                ):
                    carried[y] = x
            self.loops.append((sizes.pop(), loop_eqns, outputs, carried, read))

    def __call__(self, *args):
        jaxpr = self.closed.jaxpr
        env: dict = {}

        def read(v):
            return v.val if isinstance(v, jcore.Literal) else env[v]

        env.update(zip(jaxpr.constvars, self.closed.consts))
        env.update(zip(jaxpr.invars, args))
        for eqn in self.prelude:
            for v, x in zip(eqn.outvars, _bind(eqn, [read(v) for v in eqn.invars])):
                if not isinstance(v, jcore.DropVar):
                    env[v] = x
        for n, loop_eqns, outputs, carried, reads in self.loops:
            if n is None:  # not chunked: evaluated whole, as written
                for eqn in loop_eqns:
                    for v, x in zip(eqn.outvars, _bind(eqn, [read(v) for v in eqn.invars])):
                        env[v] = x
                continue
            self._run_loop(env, read, n, loop_eqns, outputs, carried, reads)
        return [read(v) for v in jaxpr.outvars]

    def _run_loop(self, env, read, n, loop_eqns, outputs, carried, reads):
        chunk = self.chunk
        assert n >= chunk
        source = {x: k for k, (y, x) in enumerate(carried.items())}
        out_slot = {y: k for k, y in enumerate(outputs)}
        flat_reads = {v: jnp.reshape(read(v), (-1,)) for v in reads if v not in source}
        init = []
        for y in outputs:
            x = carried.get(y)
            if x is not None:
                init.append(jnp.reshape(read(x), (-1,)))
            else:
                init.append(jnp.zeros((n,), y.aval.dtype))
        slot_of_source = {x: out_slot[y] for y, x in carried.items()}

        count = -(-n // chunk)
        ragged = n % chunk != 0

        def run_chunk(i, buffers):
            # The last chunk ends at n and overlaps the one before it; on a ragged size the
            # elements already written are masked out of every write.
            start = i * chunk
            offset = jnp.minimum(start, n - chunk) if ragged else start
            fresh = offset + lax.iota(jnp.int32, chunk) >= start if ragged else None
            incoming = tuple(buffers)
            buffers = list(buffers)
            local: dict = {}
            for v in reads:  # read at the top, from the buffers as they came into this chunk
                whole = incoming[slot_of_source[v]] if v in source else flat_reads[v]
                local[v] = lax.dynamic_slice(whole, (offset,), (chunk,))

            def get(v):
                if isinstance(v, jcore.Literal):
                    return v.val
                return local[v] if v in local else env[v]

            for eqn in loop_eqns:
                invals = [get(v) for v in eqn.invars]
                name = eqn.primitive.name
                if name == "broadcast_in_dim":
                    outvals = [lax.broadcast(invals[0], (chunk,))]
                elif name in _FLAT_VIEWS:
                    outvals = [invals[0]]
                else:
                    params = dict(eqn.params)
                    if "sharding" in params:
                        params["sharding"] = None
                    outvals = _bind(eqn.replace(params=params), invals)
                for v, x in zip(eqn.outvars, outvals):
                    if v in out_slot:
                        k = out_slot[v]
                        if ragged:
                            old = lax.dynamic_slice(incoming[k], (offset,), (chunk,))
                            x = jnp.where(fresh, x, old)
                        buffers[k] = lax.dynamic_update_slice(buffers[k], x, (offset,))
                        # Later equations read the chunk back from the written buffer, so XLA
                        # does not recompute it from the old state in a second loop.
                        x = lax.dynamic_slice(buffers[k], (offset,), (chunk,))
                    local[v] = x
            return tuple(buffers)

        buffers = lax.fori_loop(0, count, run_chunk, tuple(init))
        for y, b in zip(outputs, buffers):
            env[y] = jnp.reshape(b, y.aval.shape)


def chunked_call(fn, args: tuple, pairs, chunk_size: int):
    """``fn(*args)`` with its elementwise work over large arrays run chunk by chunk.

    ``pairs(out_tree)`` maps a flat output index to the flat input index whose buffer that
    output may take over.
    """
    leaves, in_tree = jax.tree.flatten(args)
    # Arrays and numbers are traced; anything else (a loss function passed to a line search)
    # is held fixed in the closure.
    traced_at = [i for i, x in enumerate(leaves) if _is_array_like(x)]
    flat_args = [leaves[i] for i in traced_at]
    out_tree_box = []

    def flat_fn(*traced):
        full = list(leaves)
        for i, x in zip(traced_at, traced):
            full[i] = x
        out_leaves, out_tree = jax.tree.flatten(fn(*jax.tree.unflatten(in_tree, full)))
        out_tree_box.append(out_tree)
        return out_leaves

    traced = jax.make_jaxpr(flat_fn)(*flat_args)
    inlined = jax.make_jaxpr(lambda *a: _eval_inlined(traced.jaxpr, traced.consts, a))(*flat_args)
    position = {i: k for k, i in enumerate(traced_at)}
    found = pairs(out_tree_box[0])
    program = _Program(
        inlined, {o: position[i] for o, i in found.items() if i in position}, chunk_size
    )
    return jax.tree.unflatten(out_tree_box[0], program(*flat_args))


def _is_array_like(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic, int, float, complex)) or (
        hasattr(x, "shape") and hasattr(x, "dtype")
    )


def fused_step(
    tx: GradientTransformation,
    grads: Updates,
    state: OptState,
    params: Params,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    **extra_args: Any,
) -> tuple[Params, OptState]:
    r"""One optimizer step, ``tx.update`` then :func:`optgrad.apply_updates`, fused chunk by chunk.

    Returns exactly what

    .. code-block:: python

        updates, state = tx.update(grads, state, params, **extra_args)
        params = og.apply_updates(params, updates)

    returns, computed so that each parameter-sized array crosses main memory once: global
    reductions (a clipping norm, a trust ratio) are taken first, then the elementwise rest of
    the step runs in a ``fori_loop`` over chunks of ``chunk_size`` elements, writing each chunk
    of the new params and state into the old ones' buffers. Call it inside ``jax.jit`` with
    params and state donated (``donate_argnums``), or the buffers are copied first.

    Any transformation works; work that is not elementwise (matrix products, random numbers,
    per-row statistics) is evaluated whole, as without this function. Arrays smaller than two
    chunks are not chunked. Arrays with an explicit sharding over mesh axes are not chunked
    either; under automatic (GSPMD) sharding prefer the plain two-call step, since a dynamic
    slice of a sharded dimension gathers it.

    Measured on a 2-core CPU (``benchmarks/README.md``): clip+AdamW on a 16M-parameter leaf
    moves 32 bytes per parameter instead of 44, Nesterov SGD 20 instead of 28.

    Args:
        tx: the optimizer.
        grads: the gradients, mirroring ``params``.
        state: ``tx``'s state.
        params: the current parameters.
        chunk_size: elements per chunk; the default (256K, 1 MiB of float32) keeps a chunk of
            every array the step touches in the L2/L3 cache.
        **extra_args: passed to ``tx.update``.

    Returns:
        ``(new_params, new_state)``.

    Example:
        >>> import jax, jax.numpy as jnp, optgrad as og
        >>> tx = og.chain(og.clip_by_global_norm(1.0), og.adamw(1e-3))
        >>> params = {"w": jnp.ones((1024, 1024))}
        >>> state = tx.init(params)
        >>> step = jax.jit(lambda g, s, p: og.fused_step(tx, g, s, p), donate_argnums=(1, 2))
        >>> params, state = step({"w": jnp.ones((1024, 1024))}, state, params)
        >>> float(params["w"][0, 0])
        0.999
    """
    chunk_size = _check_chunk_size("optgrad.fused_step", chunk_size)
    check_same_structure("optgrad.fused_step", params, grads, "grads")

    def step(grads, state, params, extra_args):
        updates, new_state = tx.update(grads, state, params, **extra_args)
        return apply_updates(params, updates), new_state

    # Flat inputs are (grads, state, params, extra); outputs (params, state). An output may be
    # written into the buffer of the input it replaces.
    n_grads = len(jax.tree.leaves(grads))
    state_tree = jax.tree.structure(state)
    n_state, n_params = state_tree.num_leaves, len(jax.tree.leaves(params))

    def pairs(out_tree):
        found = {i: n_grads + n_state + i for i in range(n_params)}
        if out_tree.children()[1] == state_tree:
            found.update({n_params + j: n_grads + j for j in range(n_state)})
        return found

    return chunked_call(step, (grads, state, params, extra_args), pairs, chunk_size)
