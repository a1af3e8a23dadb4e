"""Parameter trees to benchmark, described by their leaf shapes.

A tree is a nested dict whose leaves are shape tuples.  The same shapes, filled with the same
seeded random values, are turned into JAX arrays or torch tensors by the worker, so every
implementation steps through exactly the same numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

Shape = tuple[int, ...]
ShapeTree = dict[str, Any]

SEED = 0
PARAM_SCALE = 0.02


@dataclasses.dataclass(frozen=True)
class TreeSpec:
    name: str
    description: str
    shapes: ShapeTree

    @property
    def leaf_shapes(self) -> list[Shape]:
        return [shape for _, shape in iter_leaves(self.shapes)]

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_shapes)

    @property
    def n_params(self) -> int:
        return sum(math.prod(shape) for shape in self.leaf_shapes)


def iter_leaves(tree: ShapeTree, prefix: str = "") -> Iterator[tuple[str, Shape]]:
    """Yields ``(path, shape)`` in sorted-key order, the order ``jax.tree`` flattens dicts."""
    for key in sorted(tree):
        value = tree[key]
        path = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            yield from iter_leaves(value, path)
        else:
            yield path, value


def map_leaves(fn: Callable[[Shape], Any], tree: ShapeTree) -> dict[str, Any]:
    """Same nesting as ``tree``, each shape replaced by ``fn(shape)``; visits in sorted order."""
    return {
        key: map_leaves(fn, tree[key]) if isinstance(tree[key], dict) else fn(tree[key])
        for key in sorted(tree)
    }


# --- tree builders ---------------------------------------------------------------------------


def single_leaf_tree(side: int) -> ShapeTree:
    return {"w": (side, side)}


def _transformer_block(d_model: int, mlp_ratio: int) -> ShapeTree:
    hidden = mlp_ratio * d_model
    return {
        "ln1": {"scale": (d_model,), "bias": (d_model,)},
        "attn": {
            "q": {"kernel": (d_model, d_model), "bias": (d_model,)},
            "k": {"kernel": (d_model, d_model), "bias": (d_model,)},
            "v": {"kernel": (d_model, d_model), "bias": (d_model,)},
            "proj": {"kernel": (d_model, d_model), "bias": (d_model,)},
        },
        "ln2": {"scale": (d_model,), "bias": (d_model,)},
        "mlp": {
            "fc": {"kernel": (d_model, hidden), "bias": (hidden,)},
            "out": {"kernel": (hidden, d_model), "bias": (d_model,)},
        },
    }


def gpt_tree(
    d_model: int, n_layers: int, vocab: int, context: int, mlp_ratio: int = 4
) -> ShapeTree:
    """GPT-2-style decoder: 16 leaves per block plus token/position embeddings and a final LN."""
    blocks = {f"block_{i:02d}": _transformer_block(d_model, mlp_ratio) for i in range(n_layers)}
    return {
        "embed": {"tokens": (vocab, d_model), "positions": (context, d_model)},
        "blocks": blocks,
        "ln_f": {"scale": (d_model,), "bias": (d_model,)},
    }


def _many_leaf_shape(rng: np.random.Generator, min_size: int, max_size: int) -> Shape:
    rows = int(rng.choice([1, 4, 8, 16, 32]))
    low = max(1, math.ceil(min_size / rows))
    high = max(low, max_size // rows)
    cols = int(rng.integers(low, high + 1))
    return (cols,) if rows == 1 else (rows, cols)


def many_leaves_tree(n_leaves: int, min_size: int, max_size: int, seed: int = SEED) -> ShapeTree:
    """``n_leaves`` small leaves whose sizes lie in ``[min_size, max_size]``, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    return {f"p{i:04d}": _many_leaf_shape(rng, min_size, max_size) for i in range(n_leaves)}


# --- the registry ----------------------------------------------------------------------------

# name -> (full-size builder, tiny builder used by --quick)
TREES: dict[str, tuple[Callable[[], TreeSpec], Callable[[], TreeSpec]]] = {
    "single": (
        lambda: TreeSpec("single", "one 4096x4096 leaf", single_leaf_tree(4096)),
        lambda: TreeSpec("single", "one 64x64 leaf (quick)", single_leaf_tree(64)),
    ),
    "gpt": (
        lambda: TreeSpec(
            "gpt",
            "GPT-like: d_model 448, 12 layers, vocab 24576, context 1024",
            gpt_tree(d_model=448, n_layers=12, vocab=24576, context=1024),
        ),
        lambda: TreeSpec(
            "gpt", "GPT-like (quick): d_model 32, 2 layers", gpt_tree(32, 2, vocab=128, context=16)
        ),
    ),
    "many": (
        lambda: TreeSpec("many", "2000 leaves of 1k-5k params", many_leaves_tree(2000, 1000, 5000)),
        lambda: TreeSpec("many", "24 leaves of 10-50 params (quick)", many_leaves_tree(24, 10, 50)),
    ),
    "1b": (
        lambda: TreeSpec(
            "1b",
            "GPT-like 1B: d_model 2048, 19 layers, vocab 32768, context 2048",
            gpt_tree(d_model=2048, n_layers=19, vocab=32768, context=2048),
        ),
        lambda: TreeSpec("1b", "GPT-like (quick stand-in for 1b)", gpt_tree(64, 2, 256, 32)),
    ),
}

DEFAULT_TREES = ("single", "gpt", "many")
GPU_ONLY_TREES = ("1b",)


def build_tree(name: str, quick: bool = False) -> TreeSpec:
    full, tiny = TREES[name]
    return tiny() if quick else full()


# --- values ----------------------------------------------------------------------------------


class LeafValues:
    """Seeded float32 values drawn leaf by leaf, in flattening order.

    Drawing leaf by leaf keeps the host-side temporary to one leaf, so the process RSS after
    creating the tree is close to what the framework itself holds.
    """

    def __init__(self, seed: int, scale: float):
        self._rng = np.random.default_rng(seed)
        self._scale = np.float32(scale)

    def __call__(self, shape: Shape) -> np.ndarray:
        values = self._rng.standard_normal(shape, dtype=np.float32)
        values *= self._scale
        return values


def param_values() -> LeafValues:
    return LeafValues(SEED, PARAM_SCALE)


def grad_values() -> LeafValues:
    """Unit-normal gradients: their global norm is far above 1, so the clip is active."""
    return LeafValues(SEED + 1, 1.0)
