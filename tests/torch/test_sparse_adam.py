"""``optgrad.torch.SparseAdam`` against ``torch.optim.SparseAdam`` given sparse gradients.

The gradients have absent rows: at every step a random mask zeroes some rows of the 2-D and
3-D leaves, entries of the 1-D leaf, and now and then a whole leaf. torch receives
``p.grad = masked.to_sparse()`` (which stores only the non-zero entries); optgrad receives
the masked dense gradient.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch

import optgrad as og
from tests._oracle import assert_distinguishable, assert_trajectories_close, run_many
from tests.torch import _compare

CONFIGS = [
    {"lr": 0.05},
    {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-3},
    {"lr": 0.05, "betas": (0.8, 0.95), "maximize": True},
]


def _masks(prob, seed=3):
    """One float 0/1 mask per leaf and step: rows of matrices, entries of vectors."""
    rng = np.random.default_rng(seed)
    masks = []
    for leaf in jax.tree.leaves(prob.theta0):
        shape = np.shape(leaf)
        if len(shape) >= 2:
            rows = rng.uniform(size=(prob.steps, *shape[:-1], 1)) > 0.4
            mask = np.broadcast_to(rows, (prob.steps, *shape))
        else:
            mask = rng.uniform(size=(prob.steps, *shape)) > 0.3
        mask = mask.astype(np.float32).copy()
        mask[::17] = 0.0  # the whole leaf absent now and then
        masks.append(mask)
    return masks


def _with_masks(tx, masks):
    """``tx`` fed the gradient times the mask of the current step."""
    masks = [jnp.asarray(m) for m in masks]

    def init(params):
        return jnp.zeros([], jnp.int32), tx.init(params)

    def update(grads, state, params=None, **extra):
        count, inner = state
        leaves, treedef = jax.tree.flatten(grads)
        grads = treedef.unflatten([g * m[count] for g, m in zip(leaves, masks)])
        updates, inner = tx.update(grads, inner, params)
        return updates, (count + 1, inner)

    return og.GradientTransformation(init, update)


def test_trajectories_match_torch_given_sparse_gradients(torch_runner):
    probs = _compare.problems()
    masks = _masks(probs[False])  # the problems differ only in their curvature's sign
    ours = {}
    for maximize in (False, True):
        txs = {
            _compare.label(k): _with_masks(og.torch.SparseAdam(**k), masks)
            for k in CONFIGS
            if bool(k.get("maximize")) == maximize
        }
        if not maximize:
            # Dense Adam decays the moments of absent rows and moves them.
            txs["dense"] = _with_masks(og.torch.Adam(**CONFIGS[1]), masks)
        ours.update(run_many(txs, probs[maximize]))

    def sparsify(opt, t):
        for p, m in zip(opt.param_groups[0]["params"], masks):
            p.grad = (p.grad * torch.from_numpy(m[t])).to_sparse()

    failures = []
    for kwargs in CONFIGS:
        expected = torch_runner(
            lambda p, k=kwargs: torch.optim.SparseAdam(p, **k),
            probs[bool(kwargs.get("maximize"))],
            before_step=sparsify,
        )
        try:
            assert_trajectories_close(ours[_compare.label(kwargs)], expected)
        except AssertionError as error:
            failures.append(f"{_compare.label(kwargs)}: {error}")
    assert not failures, "\n".join(failures)
    assert_distinguishable(ours[_compare.label(CONFIGS[1])], ours["dense"])


def test_absent_entries_keep_their_parameters_and_moments():
    tx = og.torch.SparseAdam(lr=0.1)
    params = {"emb": jnp.arange(6.0).reshape(3, 2)}
    state = tx.init(params)
    grads = {"emb": jnp.array([[1.0, -1.0], [2.0, 0.5], [0.5, 0.5]])}
    _, state = tx.update(grads, state, params)
    before = og.tree.get(state, "exp_avg")["emb"]
    grads = {"emb": jnp.array([[1.0, -1.0], [0.0, 0.0], [0.0, 3.0]])}
    updates, state = tx.update(grads, state, params)
    after = og.tree.get(state, "exp_avg")["emb"]
    assert updates["emb"][1].tolist() == [0.0, 0.0] and float(updates["emb"][2, 0]) == 0.0
    np.testing.assert_array_equal(after[1], before[1])
    assert float(after[2, 0]) == float(before[2, 0])
    assert float(after[0, 0]) != float(before[0, 0])


def test_float16_zero_gradients_stay_finite():
    params = {"w": jnp.ones((2, 3), jnp.float16)}
    tx = og.torch.SparseAdam(lr=0.1)
    updates, _ = tx.update({"w": jnp.zeros((2, 3), jnp.float16)}, tx.init(params), params)
    assert updates["w"].dtype == jnp.float16 and bool(jnp.all(updates["w"] == 0))


def test_signature_matches_torch():
    _compare.check_signature(og.torch.SparseAdam, torch.optim.SparseAdam)


def test_hyperparameters_are_held_under_torch_names():
    _compare.check_hyperparams(
        og.torch.SparseAdam(), {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}
    )


def test_bad_arguments_are_refused_when_built():
    _compare.check_errors(
        [
            (
                lambda: og.torch.SparseAdam(lr=0.0),
                ValueError,
                r"optgrad\.torch\.SparseAdam\(lr=\.\.\.\) must be positive, got lr=0\.0",
            ),
            (
                lambda: og.torch.SparseAdam(eps=0.0),
                ValueError,
                r"SparseAdam\(eps=\.\.\.\) must be positive",
            ),
            (
                lambda: og.torch.SparseAdam(betas=(0.9, 1.0)),
                ValueError,
                r"SparseAdam\(betas=\.\.\.\) must be in \[0, 1\), got betas\[1\]=1\.0",
            ),
        ]
    )
