"""The oracle for ``optgrad.torch``: the real ``torch.optim``, run on the problems of
``tests/_oracle.py`` in float32 (the gradient ``a * theta + noise_t`` computed in torch from
torch's own params, as optgrad's runner computes it in JAX from JAX's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import pytest
import torch

torch.set_default_dtype(torch.float32)


def _tensors(tree: Any) -> list[torch.Tensor]:
    return [torch.tensor(np.asarray(x, np.float32)) for x in jax.tree.leaves(tree)]


def _flat(params: list[torch.Tensor]) -> np.ndarray:
    return np.concatenate([p.detach().numpy().astype(np.float64).ravel() for p in params])


def run_torch(
    make: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
    prob: Any,
    *,
    before_step: Callable[[torch.optim.Optimizer, int], None] | None = None,
    after_step: Callable[[torch.optim.Optimizer, int], None] | None = None,
) -> np.ndarray:
    """The float32 trajectory ``theta_0, ..., theta_T`` of ``make(params)`` on ``prob``, as a
    ``(T + 1, n)`` float64 array laid out like ``tests._oracle.run``'s.

    ``before_step(opt, t)`` runs before the ``t``-th step (``t = 0, 1, ...``), once the
    gradients are set (clip them there); ``after_step(opt, t)`` after it (step a scheduler).
    """
    params = [torch.nn.Parameter(t) for t in _tensors(prob.theta0)]
    a, noise = _tensors(prob.a), _tensors(prob.noise)
    opt = make(params)
    traj = [_flat(params)]
    for t in range(prob.steps):
        with torch.no_grad():
            for p, a_, n in zip(params, a, noise, strict=True):
                p.grad = a_ * p + n[t]
        if before_step is not None:
            before_step(opt, t)
        opt.step()
        if after_step is not None:
            after_step(opt, t)
        traj.append(_flat(params))
    return np.stack(traj)


@pytest.fixture
def torch_runner() -> Callable[..., np.ndarray]:
    """:func:`run_torch`."""
    return run_torch
