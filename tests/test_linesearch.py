"""The line searches against Optax 0.2.8, SciPy, and the conditions they promise.

- trajectories of ``chain(sgd(1), <line search>)`` on a multi-leaf Rosenbrock function match
  Optax's in float64 (params, accepted step and number of evaluations at every step), for the
  zoom and the backtracking search under several settings;
- on test functions, the zoom step satisfies the strong Wolfe conditions (Nocedal & Wright,
  (3.7)) checked independently with ``jax.grad``, as SciPy's ``line_search`` step does; on a
  Newton direction both accept the unit step; the backtracking step satisfies Armijo's
  condition and is the longest of its geometric grid that does;
- ``value_and_grad_from_state``, the extra arguments of ``value_fn``, failures (ascent
  directions, steps outside the domain) and argument errors.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize

import optgrad as og
from tests._oracle import assert_distinguishable, assert_trajectories_close


def rosenbrock(p):
    x = jnp.concatenate([p["x"], p["y"].ravel()])
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


START = {"x": np.array([-1.2, 1.0, -0.5]), "y": np.array([[0.3, 1.4], [0.8, -0.9]])}
STEPS = 40


def _searches(lib):
    return {
        "zoom": lib.scale_by_zoom_linesearch(15),
        "zoom_one": lib.scale_by_zoom_linesearch(20, initial_guess_strategy="one"),
        "zoom_one_capped_armijo_only": lib.scale_by_zoom_linesearch(
            10, max_learning_rate=0.05, initial_guess_strategy="one", approx_dec_rtol=None
        ),
        "zoom_no_curvature": lib.scale_by_zoom_linesearch(
            8, curv_rtol=math.inf, increase_factor=3.0, slope_rtol=0.2
        ),
        "backtracking": lib.scale_by_backtracking_linesearch(20, max_learning_rate=0.05),
        "backtracking_stored": lib.scale_by_backtracking_linesearch(
            30, slope_rtol=0.3, decrease_factor=0.5, increase_factor=2.0, store_grad=True
        ),
        "backtracking_tolerant": lib.scale_by_backtracking_linesearch(
            10, rtol=0.01, atol=1e-3, max_learning_rate=0.01
        ),
    }


def _run(lib):
    """Per search: params ``(steps + 1, n)``, accepted steps and evaluation counts."""

    def one(search, params):
        tx = lib.chain(lib.sgd(1.0), search)

        def step(carry, _):
            p, s = carry
            value, grad = jax.value_and_grad(rosenbrock)(p)
            updates, s = tx.update(grad, s, p, value=value, grad=grad, value_fn=rosenbrock)
            p = jax.tree.map(lambda a, u: a + u, p, updates)
            ls = s[1]
            accepted = ls.stepsize if lib is og else ls.learning_rate
            flat = jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(p)])
            return (p, s), (flat, accepted, ls.info.num_linesearch_steps)

        _, (traj, accepted, evals) = jax.lax.scan(step, (params, tx.init(params)), None, STEPS)
        first = jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(params)])
        return jnp.concatenate([first[None], traj]), accepted, evals

    searches = _searches(lib)
    with jax.enable_x64(True):
        out = jax.jit(lambda p: {n: one(s, p) for n, s in searches.items()})(
            jax.tree.map(jnp.asarray, START)
        )
        return jax.tree.map(np.asarray, out)


@pytest.fixture(scope="module")
def runs():
    return _run(og), _run(optax)


@pytest.mark.parametrize("name", list(_searches(og)))
def test_trajectory_matches_optax_in_float64(name, runs):
    ours, theirs = runs
    (traj, accepted, evals), (t_traj, t_accepted, t_evals) = ours[name], theirs[name]
    assert_trajectories_close(traj, t_traj, rtol=1e-10, atol_rel=1e-10)
    np.testing.assert_allclose(accepted, t_accepted, rtol=1e-10)
    np.testing.assert_array_equal(evals, t_evals)


def test_the_settings_are_distinguishable(runs):
    ours, _ = runs
    assert_distinguishable(ours["zoom"][0], ours["zoom_no_curvature"][0])
    assert_distinguishable(ours["backtracking"][0], ours["backtracking_stored"][0])


# ---- the conditions, on test functions -----------------------------------------------------


def _quadratic(x):
    return 0.5 * jnp.sum(jnp.array([1.0, 10.0, 100.0]) * x**2)


def _quartic(x):
    return jnp.sum((x - 1.0) ** 4) + 0.01 * jnp.sum(x**2)


def _logsumexp(x):
    return jax.nn.logsumexp(jnp.array([[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]]) @ x) + 0.1 * x @ x


def _flat_and_far(x):
    return 1e-3 * jnp.sum(x**2)  # the unit step is far too short: the search must extrapolate


FUNCTIONS = {
    "quadratic": (_quadratic, [1.0, 1.0, 1.0]),
    "rosenbrock": (lambda x: rosenbrock({"x": x, "y": jnp.zeros((0,))}), [-1.2, 1.0, 0.5]),
    "quartic": (_quartic, [3.0, -2.0, 0.5]),
    "logsumexp": (_logsumexp, [2.0, -1.0, 0.5]),
    "flat": (_flat_and_far, [3.0, -2.0, 1.0]),
}
C1, C2 = 1e-4, 0.9


def _line(fn, x, u):
    phi = lambda a: fn(x + a * u)  # noqa: E731
    return phi, jax.grad(phi)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_the_zoom_step_satisfies_the_strong_wolfe_conditions_like_scipys(name):
    fn, x0 = FUNCTIONS[name]
    with jax.enable_x64(True):
        x = jnp.asarray(x0)
        value, grad = jax.value_and_grad(fn)(x)
        u = -grad
        search = og.scale_by_zoom_linesearch(30, approx_dec_rtol=None)
        update = jax.jit(lambda s: search.update(u, s, x, value=value, grad=grad, value_fn=fn))
        scaled, state = update(search.init(x))
        eta = float(state.stepsize)
        np.testing.assert_allclose(scaled, eta * u, rtol=1e-14)
        phi, dphi = _line(fn, x, u)
        assert float(phi(eta)) <= float(value) + C1 * eta * float(dphi(0.0))
        assert abs(float(dphi(eta))) <= C2 * abs(float(dphi(0.0)))
        assert float(state.info.decrease_error) == 0.0 == float(state.info.curvature_error)
        np.testing.assert_allclose(state.value, phi(eta), rtol=1e-14)
        np.testing.assert_allclose(state.grad, jax.grad(fn)(x + eta * u), rtol=1e-12)

        alpha, *_ = scipy.optimize.line_search(
            lambda v: float(fn(jnp.asarray(v))),
            lambda v: np.asarray(jax.grad(fn)(jnp.asarray(v))),
            np.asarray(x),
            np.asarray(u),
            c1=C1,
            c2=C2,
        )
        assert alpha is not None
        assert float(phi(alpha)) <= float(value) + C1 * alpha * float(dphi(0.0))
        assert abs(float(dphi(alpha))) <= C2 * abs(float(dphi(0.0)))


def test_both_accept_the_unit_newton_step():
    with jax.enable_x64(True):
        x = jnp.array([1.0, -2.0, 0.5])
        value, grad = jax.value_and_grad(_quadratic)(x)
        newton = -grad / jnp.array([1.0, 10.0, 100.0])
        search = og.scale_by_zoom_linesearch(10, initial_guess_strategy="one")
        _, state = search.update(
            newton, search.init(x), x, value=value, grad=grad, value_fn=_quadratic
        )
        alpha, *_ = scipy.optimize.line_search(
            lambda v: float(_quadratic(jnp.asarray(v))),
            lambda v: np.asarray(jax.grad(_quadratic)(jnp.asarray(v))),
            np.asarray(x),
            np.asarray(newton),
        )
        assert float(state.stepsize) == alpha == 1.0
        assert int(state.info.num_linesearch_steps) == 1


@pytest.mark.parametrize("name", ["quadratic", "rosenbrock", "quartic"])
def test_the_backtracking_step_is_the_longest_armijo_step_of_its_grid(name):
    fn, x0 = FUNCTIONS[name]
    with jax.enable_x64(True):
        x = jnp.asarray(x0)
        value, grad = jax.value_and_grad(fn)(x)
        u = -grad
        search = og.scale_by_backtracking_linesearch(60, decrease_factor=0.7)
        _, state = search.update(u, search.init(x), x, value=value, grad=grad, value_fn=fn)
        phi, dphi = _line(fn, x, u)
        # A float64 NumPy reference: 1, 0.7, 0.7^2, ... until Armijo holds.
        eta, trials = 1.0, 1
        while float(phi(eta)) > float(value) + C1 * eta * float(dphi(0.0)):
            eta, trials = 0.7 * eta, trials + 1
        np.testing.assert_allclose(float(state.stepsize), eta, rtol=1e-12)
        assert int(state.info.num_linesearch_steps) == trials
        assert float(state.info.decrease_error) == 0.0


# ---- reuse, extra arguments, failures, errors -------------------------------------------------


def test_value_and_grad_from_state_reuses_the_accepted_point():
    with jax.enable_x64(True):
        tx = og.chain(og.sgd(1.0), og.scale_by_zoom_linesearch(15))
        x = jnp.array([3.0, -2.0, 1.0])
        state = tx.init(x)
        value_and_grad = og.value_and_grad_from_state(_quartic)
        value, grad = value_and_grad(x, state=state)  # nothing stored yet: computed
        np.testing.assert_allclose(value, _quartic(x))
        updates, state = tx.update(grad, state, x, value=value, grad=grad, value_fn=_quartic)
        x = x + updates
        value, grad = value_and_grad(x, state=state)  # stored by the line search
        assert float(value) == float(og.tree.get(state, "value"))
        np.testing.assert_allclose(value, _quartic(x), rtol=1e-14)
        np.testing.assert_allclose(grad, jax.grad(_quartic)(x), rtol=1e-12)


def test_value_and_grad_from_state_needs_a_stored_gradient():
    tx = og.chain(og.sgd(1.0), og.scale_by_backtracking_linesearch(5))
    state = tx.init(jnp.zeros(2))
    with pytest.raises(ValueError, match="store_grad=True"):
        og.value_and_grad_from_state(_quartic)(jnp.zeros(2), state=state)
    with pytest.raises(KeyError, match="no entry named 'value'"):
        og.value_and_grad_from_state(_quartic)(jnp.zeros(2), state=og.sgd(0.1).init(jnp.zeros(2)))


def test_extra_arguments_named_by_value_fn_reach_it_and_others_are_ignored():
    def loss(w, data, target):
        return jnp.sum((data @ w - target) ** 2)

    data, target, w = jnp.array([[1.0, 2.0], [3.0, -1.0]]), jnp.array([1.0, 0.0]), jnp.zeros(2)
    for search in (og.scale_by_zoom_linesearch(10), og.scale_by_backtracking_linesearch(10)):
        value, grad = jax.value_and_grad(loss)(w, data, target)
        tx = og.chain(og.sgd(1.0), search)
        common = dict(value=value, grad=grad)
        with_args, _ = tx.update(
            grad, tx.init(w), w, **common, value_fn=loss, data=data, target=target, other=1
        )
        bound, _ = tx.update(
            grad, tx.init(w), w, **common, value_fn=lambda v: loss(v, data, target)
        )
        np.testing.assert_array_equal(with_args, bound)
        assert float(loss(w + with_args, data, target)) < float(value)


@pytest.mark.parametrize("store_grad", [False, True])
def test_backtracking_retreats_into_the_domain_and_never_steps_into_nan(store_grad):
    barrier = lambda x: -jnp.sum(jnp.log(1.0 - x)) + jnp.sum(x**2)  # noqa: E731 - x < 1
    x = jnp.array([0.5, 0.9])
    value, grad = jax.value_and_grad(barrier)(x)
    search = og.scale_by_backtracking_linesearch(40, store_grad=store_grad)
    kwargs = dict(value=value, grad=grad, value_fn=barrier)
    scaled, state = search.update(-10.0 * grad, search.init(x), x, **kwargs)
    assert float(barrier(x + scaled)) < float(value)
    nowhere = lambda x: jnp.nan * jnp.sum(x)  # noqa: E731
    scaled, state = search.update(-grad, search.init(x), x, **{**kwargs, "value_fn": nowhere})
    assert float(state.stepsize) == 0.0 and float(jnp.max(jnp.abs(scaled))) == 0.0
    assert math.isinf(float(state.info.decrease_error))


def test_an_ascent_direction_fails_visibly_and_finitely():
    x = jnp.array([3.0, -2.0, 1.0])
    value, grad = jax.value_and_grad(_quartic)(x)
    kwargs = dict(value=value, grad=grad, value_fn=_quartic)
    for search in (og.scale_by_zoom_linesearch(8), og.scale_by_backtracking_linesearch(8)):
        scaled, state = search.update(grad, search.init(x), x, **kwargs)
        assert float(state.info.decrease_error) > 0.0
        assert bool(jnp.all(jnp.isfinite(scaled)))


def test_update_without_the_objective_shows_the_calling_convention():
    search = og.scale_by_zoom_linesearch(10)
    x = jnp.zeros(2)
    with pytest.raises(TypeError, match=r"(?s)needs value, grad, value_fn:.*value_fn=loss\)"):
        search.update(x, search.init(x), x)
    with pytest.raises(TypeError, match=r"needs params"):
        og.scale_by_backtracking_linesearch(3).update(x, None, value=0.0, grad=x, value_fn=sum)


ZOOM, BACKTRACKING = og.scale_by_zoom_linesearch, og.scale_by_backtracking_linesearch


@pytest.mark.parametrize(
    "build, message",
    [
        (
            lambda: ZOOM(-1),
            r"zoom_linesearch\(max_linesearch_steps=\.\.\.\) must be a non-negative integer, "
            r"got max_linesearch_steps=-1",
        ),
        (lambda: ZOOM(5, max_learning_rate=0.0), r"max_learning_rate=\.\.\.\) must be positive"),
        (lambda: ZOOM(5, increase_factor=1.0), r"increase_factor=\.\.\.\) must be > 1"),
        (lambda: ZOOM(5, curv_rtol=-0.1), r"curv_rtol=\.\.\.\) must be non-negative"),
        (lambda: ZOOM(5, initial_guess_strategy="two"), r"must be one of 'one', 'keep'"),
        (lambda: BACKTRACKING(2.5), r"steps=\.\.\.\) must be a non-negative integer"),
        (lambda: BACKTRACKING(5, decrease_factor=1.5), r"factor=\.\.\.\) must be in \(0, 1\]"),
        (lambda: BACKTRACKING(5, increase_factor=0.5), r"increase_factor=\.\.\.\) must be >= 1"),
        (lambda: BACKTRACKING(5, atol=-1.0), r"atol=\.\.\.\) must be non-negative"),
    ],
)
def test_bad_arguments_fail_when_built(build, message):
    with pytest.raises(ValueError, match=message):
        build()
