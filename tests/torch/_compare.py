"""Shared checks for the ``optgrad.torch`` optimizers against the real ``torch.optim``.

Every configuration runs the problem of ``tests/_oracle.py`` (120 steps, three leaves of
different shapes) in optgrad (all configurations of a module in one jitted scan) and in torch,
and the two trajectories must agree to ``assert_trajectories_close``'s default tolerance.
``maximize`` configurations run on the concave mirror of the problem (ascent on it contracts
like descent on the convex one).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest

import optgrad as og
from tests._oracle import assert_trajectories_close, problem, run_many

CONVEX = (0.2, 2.0)
CONCAVE = (-2.0, -0.2)


def problems(seed: int = 1, shapes: Any = None) -> dict[bool, Any]:
    """``{maximize: problem}``: the convex problem and its concave mirror."""
    return {
        False: problem(seed=seed, shapes=shapes, curvature=CONVEX),
        True: problem(seed=seed, shapes=shapes, curvature=CONCAVE),
    }


def label(kwargs: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults"


def check_against_torch(
    ours: Callable[..., og.GradientTransformation],
    theirs: Callable[..., Any],
    configs: list[dict[str, Any]],
    torch_runner: Callable[..., np.ndarray],
    *,
    shapes: Any = None,
    runner: Callable[..., dict[str, np.ndarray]] = run_many,
    **torch_runner_kwargs: Any,
) -> dict[str, np.ndarray]:
    """Runs every configuration in optgrad and in torch; fails listing all that differ.

    Returns optgrad's trajectories by :func:`label`.
    """
    probs = problems(shapes=shapes)
    trajectories: dict[str, np.ndarray] = {}
    for maximize in (False, True):
        group = [k for k in configs if bool(k.get("maximize")) == maximize]
        if group:
            trajectories.update(runner({label(k): ours(**k) for k in group}, probs[maximize]))
    failures = []
    for kwargs in configs:
        prob = probs[bool(kwargs.get("maximize"))]
        expected = torch_runner(lambda p, k=kwargs: theirs(p, **k), prob, **torch_runner_kwargs)
        try:
            assert_trajectories_close(trajectories[label(kwargs)], expected)
        except AssertionError as error:
            failures.append(f"{label(kwargs)}: {error}")
    assert not failures, "\n".join(failures)
    return trajectories


def check_signature(ours: Callable[..., Any], theirs: type) -> None:
    """Same argument names, order, kinds and defaults as torch (less ``params``)."""
    mine = list(inspect.signature(ours).parameters.values())
    torch_params = list(inspect.signature(theirs.__init__).parameters.values())[2:]
    assert [(p.name, p.kind, p.default) for p in mine] == [
        (p.name, p.kind, p.default) for p in torch_params
    ]


def check_hyperparams(tx: og.GradientTransformation, expected: dict[str, Any], params=None):
    """The state holds exactly ``expected`` hyperparameters, by torch's names and values, and
    ``optgrad.tree.set`` changes one without changing the structure of the state."""
    params = {"w": jnp.zeros((2, 3))} if params is None else params
    state = tx.init(params)
    assert set(og.tree.get(state, "hyperparams")) == set(expected)
    for name, value in expected.items():
        got = og.tree.get(state, name)
        if value is None:
            assert got is None, name
            continue
        np.testing.assert_allclose(np.asarray(got, np.float64), value, rtol=1e-7, err_msg=name)
    name = next(iter(expected))
    changed = og.tree.set(state, **{name: 0.5})
    assert float(og.tree.get(changed, name)) == 0.5


def check_flags_accepted(make: Callable[..., og.GradientTransformation], flags: set[str]) -> None:
    """torch's ``foreach``/``fused``/``capturable``/``differentiable`` change nothing."""
    params, grads = {"w": jnp.arange(6.0).reshape(2, 3)}, {"w": jnp.linspace(-1.0, 2.0, 6)}
    grads = {"w": grads["w"].reshape(2, 3)}
    plain, flagged = make(), make(**{k: True for k in flags})
    np.testing.assert_array_equal(
        plain.update(grads, plain.init(params), params)[0]["w"],
        flagged.update(grads, flagged.init(params), params)[0]["w"],
    )


def check_errors(cases: list[tuple[Callable[[], Any], type, str]]) -> None:
    for build, kind, message in cases:
        with pytest.raises(kind, match=message):
            build()
