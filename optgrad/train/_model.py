"""The model: a Flax ``nnx`` MLP (Linear -> LayerNorm -> GELU per hidden layer)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import jax


def make_mlp(num_inputs: int, hidden: Sequence[int], num_outputs: int, seed: int) -> Any:
    """An ``nnx.Module`` MLP with the hidden widths ``hidden``, initialised from ``seed``."""
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            widths = [num_inputs, *hidden]
            self.hidden = nnx.List(
                [nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(widths)]
            )
            self.norms = nnx.List([nnx.LayerNorm(b, rngs=rngs) for b in hidden])
            self.out = nnx.Linear(widths[-1], num_outputs, rngs=rngs)

        def __call__(self, x: jax.Array) -> jax.Array:
            for linear, norm in zip(self.hidden, self.norms):
                x = jax.nn.gelu(norm(linear(x)))
            return self.out(x)

    return MLP(nnx.Rngs(seed))


def decay_mask(params: Any) -> Any:
    """Parameter groups: weight decay on matrices, none on biases and LayerNorm scales."""
    return jax.tree.map(lambda p: p.ndim > 1, params)
