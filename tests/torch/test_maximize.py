"""``maximize=True`` on every ``optgrad.torch`` optimizer that torch gives it, against torch.

torch negates the gradient before anything else, weight decay included; each configuration
below has weight decay where the optimizer has it, so the order shows. All run on a concave
problem (ascent on it contracts like descent on a convex one), in one jitted scan.
"""

from __future__ import annotations

import inspect

import pytest
import torch

import optgrad as og
from tests._oracle import assert_distinguishable, assert_trajectories_close, run_many
from tests.torch import _compare

CONFIGS = {
    "SGD": {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1},
    "Adam": {"lr": 0.05, "weight_decay": 0.1},
    "AdamW": {"lr": 0.05, "weight_decay": 0.1},
    "RMSprop": {"lr": 0.01, "momentum": 0.5, "weight_decay": 0.1},
    "Adagrad": {"lr": 0.1, "weight_decay": 0.1},
    "Adadelta": {"lr": 0.5, "eps": 1e-3, "weight_decay": 0.1},
    "Adamax": {"lr": 0.05, "weight_decay": 0.1},
    "NAdam": {"lr": 0.05, "weight_decay": 0.1},
    "RAdam": {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True},
    "ASGD": {"lr": 0.05, "lambd": 0.01, "t0": 20, "weight_decay": 0.1},
    "Rprop": {"lr": 0.02},
    "SparseAdam": {"lr": 0.05},
    "Adafactor": {"lr": 0.1, "weight_decay": 0.1},
}


def test_every_torch_optimizer_with_maximize_is_covered():
    with_flag = {
        name
        for name in torch.optim.__all__
        if isinstance(getattr(torch.optim, name), type)
        and "maximize" in inspect.signature(getattr(torch.optim, name).__init__).parameters
    }
    assert with_flag == set(CONFIGS)
    for name in CONFIGS:
        assert "maximize" in inspect.signature(getattr(og.torch, name)).parameters, name


def test_maximize_matches_torch(torch_runner):
    prob = _compare.problems()[True]
    txs = {name: getattr(og.torch, name)(**k, maximize=True) for name, k in CONFIGS.items()}
    txs["descent"] = og.torch.Adam(**CONFIGS["Adam"])
    ours = run_many(txs, prob)
    failures = []
    for name, kwargs in CONFIGS.items():
        theirs = getattr(torch.optim, name)

        def make(p, theirs=theirs, kwargs=kwargs):
            return theirs(p, **kwargs, maximize=True)

        if name == "SparseAdam":  # torch's SparseAdam takes only sparse gradients

            def sparsify(opt, t):
                for p in opt.param_groups[0]["params"]:
                    p.grad = p.grad.to_sparse()

            expected = torch_runner(make, prob, before_step=sparsify)
        else:
            expected = torch_runner(make, prob)
        try:
            assert_trajectories_close(ours[name], expected)
        except AssertionError as error:
            failures.append(f"{name}: {error}")
    assert not failures, "\n".join(failures)
    # Descending on the concave problem runs away; ascending converges.
    assert_distinguishable(ours["Adam"], ours["descent"])


def test_muon_has_no_maximize_as_in_torch():
    assert "maximize" not in inspect.signature(torch.optim.Muon.__init__).parameters
    with pytest.raises(TypeError, match="maximize"):
        og.torch.Muon(maximize=True)
