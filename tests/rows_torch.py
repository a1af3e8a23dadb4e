"""Conformance rows: optgrad.torch optimizers beyond SGD/Adam/AdamW/RMSprop/Adagrad.

``optgrad.torch.Muon`` has no row: it optimizes 2-D parameters only and refuses others, while
the suite's problems have a vector leaf (the quadratic's ``"b"``, shape ``(5,)``) and
Rosenbrock is a vector ``(2,)``. Its conformance properties (no recompilation after setting a
hyperparameter, low-precision dtypes, zero-gradient float16 steps, the errors) are tested in
``tests/torch/test_muon.py`` on matrices.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import optgrad as og
from tests._row import Row

_t = og.torch

ROWS: list[Row] = [
    # Adadelta's step sqrt(u + eps) / sqrt(v + eps) stalls in Rosenbrock's curved valley:
    # torch.optim.Adadelta(lr=0.5) itself ends 0.50 from (1, 1) after 6000 steps from
    # (-1.2, 1) (distance 2.2), and no lr we tried does better; the row checks that progress.
    Row(
        "torch.Adadelta",
        lambda lr: _t.Adadelta(lr, weight_decay=1e-6),
        3.0,
        rosenbrock_lr=0.5,
        rosenbrock_steps=6000,
        rosenbrock_tol=0.75,
    ),
    Row("torch.Adamax", lambda lr: _t.Adamax(lr, weight_decay=1e-6), 0.05, rosenbrock_steps=6000),
    Row(
        "torch.NAdam",
        lambda lr: _t.NAdam(lr, weight_decay=1e-5, decoupled_weight_decay=True),
        0.05,
        rosenbrock_lr=0.02,
    ),
    # RAdam's first five steps are plain momentum (rho_t <= 5 with beta2 = 0.999): at
    # Rosenbrock's start (|g| ~ 230) an lr above ~5e-3 jumps out of the valley.
    Row(
        "torch.RAdam",
        lambda lr: _t.RAdam(lr, weight_decay=1e-6),
        0.05,
        rosenbrock_lr=5e-3,
        rosenbrock_steps=15000,
    ),
    Row(
        "torch.ASGD",
        lambda lr: _t.ASGD(lr, t0=100, weight_decay=1e-6),
        0.1,
        rosenbrock_lr=2e-3,
        rosenbrock_steps=6000,
    ),
    Row("torch.Rprop", lambda lr: _t.Rprop(lr), 0.01),
    Row("torch.SparseAdam", lambda lr: _t.SparseAdam(lr), 0.05),
    Row(
        "torch.Adafactor",
        lambda lr: _t.Adafactor(lr, weight_decay=1e-6),
        0.05,
        rosenbrock_lr=5e-3,
        rosenbrock_steps=10000,
        factored_state=True,
    ),
]

# Muon updates only 2-D weights; as torch's documentation recommends, the other parameters
# (biases, norms, and Rosenbrock's single vector) go to AdamW. One learning rate drives both.


def _muon_with_adamw(lr):
    def labels(params):
        return jax.tree.map(lambda x: "muon" if jnp.ndim(x) == 2 else "adamw", params)

    def build(learning_rate):
        return og.partition(
            {"muon": _t.Muon(learning_rate), "adamw": _t.AdamW(learning_rate, weight_decay=1e-5)},
            labels,
        )

    return og.with_hyperparams(build, learning_rate=lr)


ROWS.append(Row("torch.Muon_with_AdamW", _muon_with_adamw, 0.02, rosenbrock_lr=0.02))
