"""L-BFGS (``scale_by_lbfgs``, ``lbfgs``) against Optax 0.2.8 and SciPy.

Three smooth deterministic problems over several leaves, in float64: a random convex quadratic
whose dense Hessian couples all the leaves, the Rosenbrock function in 8 dimensions split over
two leaves, and L2-regularised logistic regression on random data (weights and bias). On each,
``og.lbfgs`` and ``optax.lbfgs`` (same arguments; with the default zoom line search, with a
backtracking one, without one) run side by side, each reusing the line search's value and
gradient (``value_and_grad_from_state``); the iterates agree to 1e-10 of their scale at every
step. The final iterate is then SciPy's minimiser (``BFGS``/``L-BFGS-B`` with tight tolerances,
or the exact solution) to 1e-7.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize

import optgrad as og
from tests._oracle import assert_distinguishable, assert_trajectories_close

RNG = np.random.default_rng(0)

# The quadratic 0.5 (x - x*)'A(x - x*) over leaves (4, 5), (7,), (2, 3); A is dense with
# eigenvalues in [0.1, 10].
Q_SHAPES = {"a": (4, 5), "b": (7,), "c": (2, 3)}
_N = 33
_Q, _ = np.linalg.qr(RNG.standard_normal((_N, _N)))
A = (_Q * np.geomspace(0.1, 10.0, _N)) @ _Q.T
X_STAR = RNG.standard_normal(_N)
X_LOGIT = RNG.standard_normal((60, 6))
Y_LOGIT = (X_LOGIT @ RNG.standard_normal(6) + 0.5 * RNG.standard_normal(60) > 0).astype(float)


def _flat(tree):
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])


def quadratic(p):
    r = _flat(p) - jnp.asarray(X_STAR)
    return 0.5 * r @ (jnp.asarray(A) @ r)


def rosenbrock(p):
    x = _flat(p)
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def logistic(p):
    logits = jnp.asarray(X_LOGIT) @ p["w"] + p["b"]
    y = jnp.asarray(Y_LOGIT)
    return jnp.mean(jnp.logaddexp(0.0, logits) - y * logits) + 0.05 * jnp.sum(p["w"] ** 2)


def _start(name):
    rng = np.random.default_rng(1)
    if name == "quadratic":
        return {k: rng.standard_normal(s) for k, s in Q_SHAPES.items()}
    if name == "rosenbrock":
        return {"x": np.full(5, -1.2) + 0.1 * rng.standard_normal(5), "y": np.ones(3)}
    return {"w": rng.standard_normal(6), "b": np.float64(0.5)}


PROBLEMS = {"quadratic": quadratic, "rosenbrock": rosenbrock, "logistic": logistic}
STEPS = {"quadratic": 150, "rosenbrock": 80, "logistic": 30}


def _cases(lib):
    backtracking = lib.scale_by_backtracking_linesearch(
        25, increase_factor=float("inf"), store_grad=True
    )
    return {
        "quadratic": ("quadratic", lib.lbfgs()),
        "quadratic_small_memory_unscaled": (
            "quadratic",
            lib.lbfgs(memory_size=3, scale_init_precond=False),
        ),
        "quadratic_no_linesearch": (
            "quadratic",
            lib.lbfgs(learning_rate=0.5, memory_size=4, linesearch=None),
        ),
        "rosenbrock": ("rosenbrock", lib.lbfgs()),
        "rosenbrock_backtracking": (
            "rosenbrock",
            lib.lbfgs(memory_size=5, linesearch=backtracking),
        ),
        "logistic": ("logistic", lib.lbfgs(memory_size=4)),
    }


def _trajectories(lib):
    """Each case's iterates ``(steps + 1, n)``, all cases in one jitted function."""
    cases = _cases(lib)
    value_and_grad_from_state = lib.value_and_grad_from_state

    def one(name, problem, tx, params):
        fn = PROBLEMS[problem]
        # Without a line search nothing is stored to reuse.
        reuse = None if name.endswith("no_linesearch") else value_and_grad_from_state(fn)

        def step(carry, _):
            p, s = carry
            if reuse is None:
                value, grad = jax.value_and_grad(fn)(p)
            else:
                value, grad = reuse(p, state=s)
            updates, s = tx.update(grad, s, p, value=value, grad=grad, value_fn=fn)
            p = jax.tree.map(lambda a, u: a + u, p, updates)
            return (p, s), _flat(p)

        _, traj = jax.lax.scan(step, (params, tx.init(params)), None, length=STEPS[problem])
        return jnp.concatenate([_flat(params)[None], traj])

    starts = {name: _start(problem) for name, (problem, _) in cases.items()}
    with jax.enable_x64(True):
        run = jax.jit(lambda s: {n: one(n, p, tx, s[n]) for n, (p, tx) in cases.items()})
        out = run(jax.tree.map(jnp.asarray, starts))
        return {name: np.asarray(traj) for name, traj in out.items()}


@pytest.fixture(scope="module")
def runs():
    return _trajectories(og), _trajectories(optax)


@pytest.mark.parametrize("case", list(_cases(og)))
def test_iterates_match_optax_in_float64(case, runs):
    ours, theirs = runs
    # Without a line search, L-BFGS near the optimum amplifies the last-bit differences of the
    # two libraries' reductions (y = g_k - g_{k-1} is a difference of tiny gradients): 1e-12
    # of the scale at step 77, 2e-9 at step 118. Compare it while it is still converging.
    steps = 80 if case.endswith("no_linesearch") else None
    assert_trajectories_close(ours[case][:steps], theirs[case][:steps], rtol=1e-10, atol_rel=1e-10)


def _scipy_minimizer(problem):
    fn = PROBLEMS[problem]
    start = _start(problem)
    leaves, treedef = jax.tree.flatten(start)
    sizes = [np.size(x) for x in leaves]

    def unflat(v):
        parts = np.split(v, np.cumsum(sizes)[:-1])
        return treedef.unflatten(
            [jnp.asarray(x.reshape(np.shape(l))) for x, l in zip(parts, leaves)]
        )

    with jax.enable_x64(True):
        value_and_grad = jax.jit(jax.value_and_grad(lambda v: fn(unflat(v))))
        v0 = np.concatenate([np.ravel(x) for x in leaves])
        fun = lambda v: tuple(np.asarray(x, np.float64) for x in value_and_grad(v))  # noqa: E731
        method, options = ("BFGS", {"gtol": 1e-11}) if problem != "logistic" else (
            "L-BFGS-B", {"gtol": 1e-13, "ftol": 1e-16, "maxiter": 10_000})  # fmt: skip
        result = scipy.optimize.minimize(fun, v0, jac=True, method=method, options=options)
    return result.x


@pytest.mark.parametrize(
    "case", ["quadratic", "quadratic_small_memory_unscaled", "rosenbrock", "logistic"]
)
def test_reaches_scipys_minimizer(case, runs):
    ours, _ = runs
    problem = _cases(og)[case][0]
    expected = _scipy_minimizer(problem)
    if problem == "quadratic":
        np.testing.assert_allclose(expected, X_STAR, atol=1e-7)
    np.testing.assert_allclose(ours[case][-1], expected, rtol=1e-7, atol=1e-7)


def test_the_variants_are_distinguishable(runs):
    ours, _ = runs
    assert_distinguishable(ours["quadratic"], ours["quadratic_small_memory_unscaled"])
    assert_distinguishable(ours["quadratic"][:10], ours["quadratic_no_linesearch"][:10])


def test_state_keeps_a_ring_buffer_that_mirrors_the_params():
    params = {"w": jnp.zeros((3, 2), jnp.bfloat16), "b": jnp.zeros(4)}
    state = og.scale_by_lbfgs(memory_size=5).init(params)
    assert state.diff_params_memory["w"].shape == (5, 3, 2)
    assert state.diff_updates_memory["w"].dtype == jnp.bfloat16
    assert state.diff_params_memory["b"].shape == (5, 4)
    assert state.weights_memory.shape == (5,)
    assert state.count.dtype == jnp.int32


def test_first_direction_is_the_gradient_capped_to_unit_norm():
    tx = og.scale_by_lbfgs()
    params = {"w": jnp.zeros(2)}
    for g, scale in (([3.0, 4.0], 1 / 5), ([0.3, 0.4], 1.0)):
        direction, _ = tx.update({"w": jnp.array(g)}, tx.init(params), params)
        np.testing.assert_allclose(direction["w"], scale * np.array(g), rtol=1e-6)


def test_the_learning_rate_is_held_in_the_state():
    state = og.lbfgs(0.5).init({"w": jnp.zeros(2)})
    assert float(og.tree.get(state, "learning_rate")) == 0.5
    with pytest.raises(KeyError, match="no entry named 'learning_rate'"):
        og.tree.get(og.lbfgs().init({"w": jnp.zeros(2)}), "learning_rate")


@pytest.mark.parametrize(
    "build, error, message",
    [
        (
            lambda: og.lbfgs(memory_size=0),
            ValueError,
            r"lbfgs\(memory_size=\.\.\.\) must be a posi",
        ),
        (lambda: og.scale_by_lbfgs(memory_size=2.5), ValueError, r"got memory_size=2\.5"),
        (lambda: og.lbfgs(learning_rate=-1.0), ValueError, r"must be non-negative, got"),
        (lambda: og.lbfgs(linesearch="zoom"), TypeError, r"linesearch=\.\.\.\) must be a gradie"),
    ],
)
def test_bad_arguments_fail_when_built(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_update_without_params_or_the_objective_says_what_is_missing():
    tx = og.lbfgs()
    params = {"w": jnp.ones(2)}
    with pytest.raises(TypeError, match=r"scale_by_lbfgs\.update needs `params`"):
        tx.update(params, tx.init(params))
    with pytest.raises(TypeError, match=r"(?s)needs value, value_fn:.*value_fn=loss\)"):
        tx.update(params, tx.init(params), params, grad=params)
