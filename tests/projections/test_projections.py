"""Projections onto convex sets, against an independent solve of the same problem
(``scipy.optimize.minimize`` with the set's constraints, or a bisection / least-squares
formula) and against Optax 0.2.8, on random trees of several leaves."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import optimize

import optgrad as og

P = og.projections
SHAPES = {"a": (3, 2), "b": (4,)}
N = 10


def tree_of(vector, dtype=jnp.float32):
    v = jnp.asarray(vector, jnp.float32).astype(dtype)
    return {"a": v[:6].reshape(3, 2), "b": v[6:]}


def vec(tree):
    return np.concatenate([np.ravel(np.asarray(tree[k], np.float64)) for k in ("a", "b")])


def nearest(x, constraints=(), bounds=None):
    """argmin ||y - x||^2 under the constraints, by SLSQP in float64."""
    res = optimize.minimize(
        lambda y: np.sum((y - x) ** 2),
        x0=np.zeros_like(x),
        jac=lambda y: 2 * (y - x),
        constraints=constraints,
        bounds=bounds,
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 500},
    )
    # SLSQP may stop at its precision limit with status 8; the comparison checks the answer
    assert res.success or res.status == 8, res.message
    return res.x


def l1_threshold(v, s):
    """tau with sum(max(v - tau, 0)) = s, by bisection (independent of the sort-based rule)."""
    lo, hi = np.min(v) - s, np.max(v)
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.sum(np.maximum(v - mid, 0)) > s else (lo, mid)
    return (lo + hi) / 2


# the sum and l1 constraints as SLSQP sees them (l1 written with slack-free smooth pieces
# would be awkward; the ball is the convex hull of signed simplices, so use y = p - q, p, q >= 0)
def l1_ball_reference(x, s):
    n = x.size
    res = optimize.minimize(
        lambda z: np.sum((z[:n] - z[n:] - x) ** 2),
        x0=np.zeros(2 * n),
        jac=lambda z: np.concatenate([2 * (z[:n] - z[n:] - x), -2 * (z[:n] - z[n:] - x)]),
        constraints=[
            {"type": "ineq", "fun": lambda z: s - np.sum(z), "jac": lambda z: -np.ones(2 * n)}
        ],
        bounds=[(0, None)] * (2 * n),
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 500},
    )
    # SLSQP may stop at its precision limit with status 8; the comparison checks the answer
    assert res.success or res.status == 8, res.message
    return res.x[:n] - res.x[n:]


def ours_and_optax(x, a, b, s):
    """Every projection of ``x`` by optgrad and by Optax (one jitted, vmapped call)."""
    tx, ta = tree_of(x), tree_of(a)
    lo, hi = tree_of(-0.3 * jnp.ones(N)), tree_of(0.4 * jnp.ones(N))
    # Optax 0.2.8's projection_box (and so projection_hypercube) fails on scalar bounds for a
    # tree of several leaves, though its docstring allows them: it gets tree bounds here.
    cube = tree_of(s * jnp.ones(N))
    zero = tree_of(jnp.zeros(N))
    O = optax.projections
    return {
        "non_negative": (P.projection_non_negative(tx), O.projection_non_negative(tx)),
        "box": (P.projection_box(tx, -0.3, 0.4), O.projection_box(tx, lo, hi)),
        "box_trees": (P.projection_box(tx, lo, hi), O.projection_box(tx, lo, hi)),
        "hypercube": (P.projection_hypercube(tx, s), O.projection_box(tx, zero, cube)),
        "simplex": (P.projection_simplex(tx, s), O.projection_simplex(tx, s)),
        "l1_sphere": (P.projection_l1_sphere(tx, s), O.projection_l1_sphere(tx, s)),
        "l1_ball": (P.projection_l1_ball(tx, s), O.projection_l1_ball(tx, s)),
        "l2_sphere": (P.projection_l2_sphere(tx, s), O.projection_l2_sphere(tx, s)),
        "l2_ball": (P.projection_l2_ball(tx, s), O.projection_l2_ball(tx, s)),
        "linf_ball": (P.projection_linf_ball(tx, s), O.projection_linf_ball(tx, s)),
        "hyperplane": (P.projection_hyperplane(tx, ta, b), O.projection_hyperplane(tx, ta, b)),
        "halfspace": (P.projection_halfspace(tx, ta, b), O.projection_halfspace(tx, ta, b)),
        "vector": (P.projection_vector(tx, ta), O.projection_vector(tx, ta)),
    }


def scipy_references(x, a, b, s):
    """The same projections solved independently in float64."""
    lo, hi = -0.3 * np.ones(N), 0.4 * np.ones(N)
    sum_to = {"type": "eq", "fun": lambda y: np.sum(y) - s, "jac": lambda y: np.ones(N)}
    plane = {"type": "eq", "fun": lambda y: a @ y - b, "jac": lambda y: a}
    half = {"type": "ineq", "fun": lambda y: b - a @ y, "jac": lambda y: -a}
    ball2 = {"type": "ineq", "fun": lambda y: s**2 - y @ y, "jac": lambda y: -2 * y}
    sign = np.where(x < 0, -1.0, 1.0)
    box = nearest(x, bounds=list(zip(lo, hi)))
    return {
        "non_negative": nearest(x, bounds=[(0, None)] * N),
        "box": box,
        "box_trees": box,
        "hypercube": nearest(x, bounds=[(0, s)] * N),
        "simplex": nearest(x, [sum_to], [(0, None)] * N),
        "l1_sphere": sign * np.maximum(np.abs(x) - l1_threshold(np.abs(x), s), 0),
        "l1_ball": l1_ball_reference(x, s),
        "l2_sphere": s * x / np.linalg.norm(x),
        "l2_ball": nearest(x, [ball2]),
        "linf_ball": nearest(x, bounds=[(-s, s)] * N),
        "hyperplane": nearest(x, [plane]),
        "halfspace": nearest(x, [half]),
        "vector": a * np.linalg.lstsq(a[:, None], x, rcond=None)[0][0],
    }


# scales that leave x inside some sets and outside others; b on both sides of <a, x>
CASES = [(seed, s) for seed in range(4) for s in (0.5, 2.0, 30.0)]


@pytest.fixture(scope="module")
def results():
    inputs = []
    for seed, s in CASES:
        rng = np.random.default_rng(seed)
        x = np.float64(np.float32(rng.normal(size=N) * 2))
        a = np.float64(np.float32(rng.normal(size=N)))
        b = float(np.float32(a @ x + rng.normal() * 3))
        inputs.append((x, a, b, s))
    stacked = [jnp.asarray(np.stack(column), jnp.float32) for column in zip(*inputs)]
    projected = jax.jit(jax.vmap(ours_and_optax))(*stacked)
    out = []
    for i, (seed_s, (x, a, b, s)) in enumerate(zip(CASES, inputs)):
        refs = scipy_references(x, a, b, s)
        row = {
            name: (
                jax.tree.map(lambda y, i=i: y[i], ours),
                refs[name],
                jax.tree.map(lambda y, i=i: y[i], theirs),
            )
            for name, (ours, theirs) in projected.items()
        }
        out.append(((*seed_s, x, a, b), row))
    return out


@pytest.mark.parametrize(
    "name",
    ["non_negative", "box", "box_trees", "hypercube", "simplex", "l1_sphere", "l1_ball",
     "l2_sphere", "l2_ball", "linf_ball", "hyperplane", "halfspace", "vector"],
)  # fmt: skip
def test_projection_matches_scipy_and_optax(results, name):
    for case, refs in results:
        ours, ref, theirs = refs[name]
        assert jax.tree.structure(ours) == jax.tree.structure(tree_of(np.zeros(N)))
        assert {x.dtype for x in jax.tree.leaves(ours)} == {jnp.dtype(jnp.float32)}
        scale = max(1.0, np.max(np.abs(ref)))
        np.testing.assert_allclose(vec(ours), ref, atol=2e-5 * scale, err_msg=f"{name} {case[:2]}")
        np.testing.assert_allclose(vec(ours), vec(theirs), atol=2e-6 * scale, err_msg=f"{case[:2]}")


def test_the_cases_exercise_both_sides_of_every_constraint(results):
    sides = {"l1_ball": set(), "l2_ball": set(), "halfspace": set(), "box": set()}
    for (_, s, x, a, b), _ in results:
        sides["l1_ball"].add(bool(np.sum(np.abs(x)) <= s))
        sides["l2_ball"].add(bool(np.linalg.norm(x) <= s))
        sides["halfspace"].add(bool(a @ x <= b))
        sides["box"].update(bool(v) for v in (x > 0.4) | (x < -0.3))
    assert all(seen == {True, False} for seen in sides.values()), sides
    # and a plausible wrong simplex (clip at zero, then rescale to the sum) is told apart
    (_, s, x, _, _), refs = results[0]
    wrong = np.maximum(x, 0) * s / np.sum(np.maximum(x, 0))
    assert np.max(np.abs(vec(refs["simplex"][0]) - wrong)) > 1e-2


def test_sets_are_reached():
    rng = np.random.default_rng(9)
    x = tree_of(rng.normal(size=N) * 3)
    np.testing.assert_allclose(og.tree.sum(P.projection_simplex(x, 2.0)), 2.0, rtol=1e-6)
    assert float(og.tree.min(P.projection_simplex(x, 2.0))) >= 0
    np.testing.assert_allclose(og.tree.norm(P.projection_l1_sphere(x, 0.5), 1), 0.5, rtol=1e-6)
    np.testing.assert_allclose(og.tree.norm(P.projection_l1_ball(x, 0.5), 1), 0.5, rtol=1e-6)
    np.testing.assert_allclose(og.tree.norm(P.projection_l2_ball(x, 0.5)), 0.5, rtol=1e-6)
    small = og.tree.scale(1e-3, x)
    for fn in (P.projection_l1_ball, P.projection_l2_ball):
        jax.tree.map(np.testing.assert_array_equal, fn(small, 1.0), small)
    # the zero tree: on the l1 sphere (Optax 0.2.8 returns zero, off the sphere)
    zero = og.tree.zeros_like(x)
    np.testing.assert_allclose(og.tree.norm(P.projection_l1_sphere(zero, 1.0), 1), 1.0, rtol=1e-6)


def test_jit_vmap_grad_and_dtypes():
    rng = np.random.default_rng(3)
    xs = jnp.asarray(rng.normal(size=(5, N)), jnp.float32)

    @jax.jit
    def go(xs):
        batched = jax.vmap(lambda v: og.tree.sum(P.projection_simplex(tree_of(v), 1.5)))(xs)
        # the Jacobian of the simplex projection, against Optax's hand-written JVP
        x = 0.2 * xs[0]  # a support of several entries, so the Jacobian is not trivial
        ours = jax.jacobian(lambda v: vec_jnp(P.projection_simplex(tree_of(v), 1.0)))(x)
        theirs = jax.jacobian(lambda v: vec_jnp(optax.projections.projection_simplex(tree_of(v))))(
            x
        )
        bf = tree_of(xs[0], jnp.bfloat16)
        fns = (P.projection_simplex, P.projection_l1_ball, P.projection_l2_ball,
               P.projection_linf_ball, P.projection_non_negative)  # fmt: skip
        return batched, ours, theirs, [fn(bf) for fn in fns]

    sums, ours, theirs, low = go(xs)
    np.testing.assert_allclose(sums, np.full(5, 1.5), rtol=1e-6)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    off_diagonal = np.asarray(ours) - np.diag(np.diag(ours))
    assert np.count_nonzero(np.abs(off_diagonal) > 0.1) >= 2  # neither zero nor the identity
    assert {y.dtype for y in jax.tree.leaves(low)} == {jnp.dtype(jnp.bfloat16)}


def vec_jnp(tree):
    return jnp.concatenate([jnp.ravel(tree[k]) for k in ("a", "b")])


def test_box_bounds_must_match_the_tree():
    with pytest.raises(ValueError, match=r"projection_box\(lower=\.\.\.\) must be a scalar or"):
        P.projection_box(tree_of(np.zeros(N)), {"a": 0.0}, 1.0)
