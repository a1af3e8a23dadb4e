"""``optgrad.torch.Adafactor`` against ``torch.optim.Adafactor`` (torch's variant).

The problem has a matrix, a vector, a 3-D array (factored over its last two dimensions, as in
torch) and a scalar.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import torch

import optgrad as og
from tests._oracle import assert_distinguishable, run_many
from tests.torch import _compare

SHAPES = {"a": (4, 5), "b": (7,), "c": {"d": (2, 3, 5)}, "s": ()}
CONFIGS = [
    {"lr": 0.05},
    {"lr": 0.5, "beta2_decay": -0.5, "eps": (1e-3, 1e-2), "d": 1.5},
    {"lr": 0.2, "weight_decay": 0.1},
    {"lr": 0.1, "eps": (None, 0.1), "maximize": True},
]


def test_trajectories_match_torch(torch_runner):
    ours = _compare.check_against_torch(
        og.torch.Adafactor, torch.optim.Adafactor, CONFIGS, torch_runner, shapes=SHAPES
    )
    # Optax's Adafactor (the T5 variant) is a different algorithm under the same name.
    prob = _compare.problems(shapes=SHAPES)[False]
    optax_like = run_many({"optax": optax.adafactor(0.05)}, prob)["optax"]
    assert_distinguishable(ours[_compare.label(CONFIGS[0])], optax_like)


def test_state_is_factored_for_arrays_of_two_or_more_dimensions():
    params = {"m": jnp.zeros((4, 5)), "t": jnp.zeros((2, 3, 5)), "v": jnp.zeros(7)}
    state = og.torch.Adafactor().init(params)
    shapes = jax.tree.map(
        jnp.shape, {k: og.tree.get(state, k) for k in ("row_var", "col_var", "variance")}
    )
    assert shapes["row_var"] == {"m": (4, 1), "t": (2, 3, 1), "v": ()}
    assert shapes["col_var"] == {"m": (1, 5), "t": (2, 1, 5), "v": ()}
    assert shapes["variance"] == {"m": (), "t": (), "v": (7,)}


def test_signature_matches_torch():
    _compare.check_signature(og.torch.Adafactor, torch.optim.Adafactor)


def test_hyperparameters_are_held_under_torch_names():
    expected = {"lr": 1e-2, "beta2_decay": -0.8, "eps": None, "d": 1.0, "weight_decay": 0.0}
    tx = og.torch.Adafactor()
    state = tx.init({"w": jnp.zeros((2, 3))})
    eps = og.tree.get(state, "eps")
    assert eps[0] is None and float(eps[1]) == jnp.float32(1e-3)
    expected.pop("eps")
    assert set(og.tree.get(state, "hyperparams")) == {*expected, "eps"}
    state = og.tree.set(state, eps=(None, 0.01))  # eps1 stays "the dtype's epsilon"
    assert float(og.tree.get(state, "eps")[1]) == jnp.float32(0.01)
    _compare.check_flags_accepted(og.torch.Adafactor, {"foreach"})


def test_bad_arguments_are_refused_when_built():
    _compare.check_errors(
        [
            (
                lambda: og.torch.Adafactor(lr=-1.0),
                ValueError,
                r"Adafactor\(lr=\.\.\.\) must be non-neg",
            ),
            (
                lambda: og.torch.Adafactor(beta2_decay=0.5),
                ValueError,
                r"torch\.Adafactor\(beta2_decay=\.\.\.\) must be <= 0, got beta2_decay=0\.5",
            ),
            (
                lambda: og.torch.Adafactor(eps=1e-3),
                ValueError,
                r"Adafactor\(eps=\.\.\.\) must be a pair",
            ),
            (
                lambda: og.torch.Adafactor(eps=(-1.0, 1e-3)),
                ValueError,
                r"Adafactor\(eps\[0\]=\.\.\.\) must be non-negative",
            ),
            (
                lambda: og.torch.Adafactor(d=0.5),
                ValueError,
                r"Adafactor\(d=\.\.\.\) must be >= 1, got d=0\.5",
            ),
            (
                lambda: og.torch.Adafactor(weight_decay=-1.0),
                ValueError,
                r"Adafactor\(weight_decay=\.\.\.\) must be non-negative",
            ),
        ]
    )
