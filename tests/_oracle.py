"""Oracles for numerical tests: a random problem, trajectory runners, and the comparison.

A *problem* is a separable quadratic with noise: the gradient at step ``t`` is
``g_t = A * theta_{t-1} + n_t`` for a fixed positive ``A`` and precomputed noise ``n_t``, over a
tree with several leaves and shapes. Because the gradient depends on the current parameters, a
wrong formula anywhere in an optimizer changes every later gradient and shows in the
trajectory; because ``A > 0`` the dynamics contract, so float32 rounding does not grow.

Three runners produce the trajectory ``theta_0, ..., theta_T`` as a ``(T + 1, n)`` float64
array (every leaf raveled and concatenated in ``jax.tree.leaves`` order):

- :func:`run_many` runs gradient transformations (optgrad's or Optax's) side by side in one
  jitted ``lax.scan`` in float32 (or another dtype);
- :func:`run_optax64` runs Optax transformations in float64 (``jax.enable_x64``), the
  oracle for optgrad's float32 trajectory: it carries no float32 rounding of its own (Optax
  computes ``1 - b**t`` in the params' precision, which in float32 is off by ~2e-5 at small
  ``t``; in float64 it is exact to ~1e-13);
- :func:`run_numpy` runs a float64 NumPy reference ``step(g, theta, t, state) -> update``
  written from a paper or from PyTorch's documented rule, on the concatenated vector.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

SHAPES = {"a": (4, 5), "b": (7,), "c": {"d": (2, 3, 5)}}
STEPS = 120

# Float32-rounding tolerance (see `assert_trajectories_close`).
RTOL = 1e-5
ATOL_REL = 1e-6


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple) and all(isinstance(d, int) for d in x)


@dataclasses.dataclass(frozen=True)
class Problem:
    """``theta0``, ``a`` and ``noise`` (leading axis: step) as trees of float64 arrays."""

    theta0: Any
    a: Any
    noise: Any

    @property
    def steps(self) -> int:
        return jax.tree.leaves(self.noise)[0].shape[0]

    @property
    def sizes(self) -> list[int]:
        return [x.size for x in jax.tree.leaves(self.theta0)]

    def flat(self, tree: Any) -> np.ndarray:
        return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


def problem(
    seed: int = 0,
    steps: int = STEPS,
    *,
    shapes: Any = None,
    scale: float = 1.0,
    noise: float = 0.5,
    curvature: tuple[float, float] = (0.2, 2.0),
) -> Problem:
    """A random problem; ``scale`` multiplies the initial params and the noise."""
    rng = np.random.default_rng(seed)
    shapes = SHAPES if shapes is None else shapes

    def leaves(f):
        return jax.tree.map(f, shapes, is_leaf=_is_shape)

    theta0 = leaves(lambda s: scale * rng.standard_normal(s))
    a = leaves(lambda s: rng.uniform(*curvature, size=s))
    n = leaves(lambda s: scale * noise * rng.standard_normal((steps, *s)))
    return Problem(theta0, a, n)


def _scan(txs: dict[str, Any], prob: Problem, dtype: Any) -> dict[str, tuple[np.ndarray, Any]]:
    """Runs every transformation of ``txs`` on ``prob`` side by side in one jitted ``lax.scan``.

    One compilation for all of them: XLA's fixed cost per compilation dominates these small
    problems, so batching the configurations of a test module keeps the suite fast.
    """
    cast = lambda t: jax.tree.map(lambda x: jnp.asarray(x, dtype), t)  # noqa: E731
    theta0, a, noise = cast(prob.theta0), cast(prob.a), cast(prob.noise)

    @jax.jit
    def go(theta0, a, noise):
        def step(carry, n_t):
            new = {}
            for name, tx in txs.items():
                theta, state = carry[name]
                g = jax.tree.map(lambda a_, th, n_: (a_ * th + n_).astype(th.dtype), a, theta, n_t)
                updates, state = tx.update(g, state, theta)
                theta = jax.tree.map(lambda th, u: (th + u).astype(th.dtype), theta, updates)
                new[name] = (theta, state)
            return new, {name: theta for name, (theta, _) in new.items()}

        init = {name: (theta0, tx.init(theta0)) for name, tx in txs.items()}
        final, traj = jax.lax.scan(step, init, noise)
        return traj, {name: state for name, (_, state) in final.items()}

    traj, states = go(theta0, a, noise)
    first = np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(theta0)])
    out = {}
    for name in txs:
        rows = [
            np.asarray(x, np.float64).reshape(prob.steps, -1) for x in jax.tree.leaves(traj[name])
        ]
        out[name] = (np.vstack([first[None], np.concatenate(rows, axis=1)]), states[name])
    return out


def run_many(
    txs: dict[str, Any], prob: Problem, dtype: Any = jnp.float32, *, with_state: bool = False
) -> dict[str, Any]:
    """The trajectories of the transformations ``txs`` (by name) on ``prob``, in ``dtype``.

    With ``with_state``, each value is ``(trajectory, final state)``.
    """
    out = _scan(txs, prob, dtype)
    return out if with_state else {name: traj for name, (traj, _) in out.items()}


def run(tx: Any, prob: Problem, dtype: Any = jnp.float32) -> np.ndarray:
    """The trajectory of one transformation on ``prob`` in ``dtype``."""
    return _scan({"tx": tx}, prob, dtype)["tx"][0]


def run_optax64(txs: dict[str, Any], prob: Problem, *, with_state: bool = False) -> dict[str, Any]:
    """Like :func:`run_many` for Optax transformations, computed in float64."""
    with jax.enable_x64(True):
        return run_many(txs, prob, jnp.float64, with_state=with_state)


def step_twice(txs: dict[str, Any], params: Any, grads: tuple[Any, Any]) -> dict[str, Any]:
    """``(updates, state0, state2)`` for each transformation: its ``init`` state and the state
    and updates after two jitted updates with ``grads[0]`` then ``grads[1]`` (one compilation
    for all of ``txs``). For checks of dtypes and of state stability."""

    @jax.jit
    def go(params, g0, g1):
        out = {}
        for name, tx in txs.items():
            state0 = tx.init(params)
            _, state1 = tx.update(g0, state0, params)
            updates, state2 = tx.update(g1, state1, params)
            out[name] = (updates, state0, state2)
        return out

    return go(params, *grads)


def signature(tree: Any) -> tuple[Any, list[tuple[tuple[int, ...], Any]]]:
    """A tree's structure with the shape and dtype of every leaf."""
    leaves = [(jnp.shape(x), jnp.result_type(x)) for x in jax.tree.leaves(tree)]
    return jax.tree.structure(tree), leaves


def dtypes(tree: Any) -> set[Any]:
    return {jnp.result_type(x) for x in jax.tree.leaves(tree)}


Step = Callable[[np.ndarray, np.ndarray, int, dict], np.ndarray]


def run_numpy(step: Step, prob: Problem) -> np.ndarray:
    """The float64 trajectory of a NumPy reference on the concatenated parameter vector.

    ``step(g, theta, t, state)`` returns the update (to be added to ``theta``) for step
    ``t = 1, 2, ...``; ``state`` is a dict it may keep anything in (empty at ``t = 1``).
    """
    theta = prob.flat(prob.theta0).astype(np.float64)
    a = prob.flat(prob.a)
    noise = np.concatenate(
        [np.reshape(x, (prob.steps, -1)) for x in jax.tree.leaves(prob.noise)], axis=1
    )
    state: dict = {}
    traj = [theta.copy()]
    for t in range(1, prob.steps + 1):
        # The gradient as the float32 runner sees it: inputs rounded to float32 once.
        g = a.astype(np.float32).astype(np.float64) * theta + noise[t - 1].astype(
            np.float32
        ).astype(np.float64)
        theta = theta + step(g, theta, t, state)
        traj.append(theta.copy())
    return np.stack(traj)


def assert_trajectories_close(
    actual: np.ndarray, expected: np.ndarray, *, rtol: float = RTOL, atol_rel: float = ATOL_REL
) -> None:
    """``|actual - expected| <= atol + rtol * |expected|`` at every step and coordinate.

    ``atol = atol_rel * max|expected|``: float32 keeps ~6e-8 relative precision, and over ~100
    steps of a contracting problem rounding accumulates to a few times 1e-7 of the largest
    parameter; 1e-6 leaves margin for that while any formula error (a misplaced eps, a
    bias correction off by one step, a missing factor) moves the trajectory by far more.
    """
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert np.all(np.isfinite(expected)), "the oracle's trajectory has non-finite values"
    assert np.all(np.isfinite(actual)), "the trajectory has non-finite values"
    atol = atol_rel * float(np.max(np.abs(expected)))
    err = np.abs(actual - expected) - (atol + rtol * np.abs(expected))
    if np.any(err > 0):
        step, index = np.unravel_index(np.argmax(err), err.shape)
        raise AssertionError(
            f"trajectories differ first at step {np.argmax(np.any(err > 0, axis=1))}; worst at "
            f"step {step}, coordinate {index}: actual {actual[step, index]!r}, expected "
            f"{expected[step, index]!r} (atol={atol:.3g}, rtol={rtol:g}); max |diff| "
            f"{np.max(np.abs(actual - expected)):.3g}"
        )


def max_relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """``max |actual - expected| / max |expected|``: to report how close two trajectories are."""
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def assert_distinguishable(a: np.ndarray, b: np.ndarray, factor: float = 100.0) -> None:
    """The two trajectories differ by ``factor`` times the tolerance: the problem can tell the
    two formulas apart, so a test comparing against either one is not vacuous."""
    err = max_relative_error(a, b)
    assert np.isfinite(err), "a trajectory has non-finite values"
    assert err > factor * ATOL_REL, f"the trajectories differ by only {err:.3g} of their scale"
