"""The Adam family against independent oracles.

- ``scale_by_adam``, ``scale_by_amsgrad`` and the aliases ``adam``, ``adamw``, ``nadam``,
  ``nadamw``, ``amsgrad`` against Optax 0.2.8 run in float64 on the same problem
  (``tests/_oracle.py``);
- ``nadamw`` against a float64 NumPy NAdam (Dozat, 2016) with decoupled decay (Loshchilov &
  Hutter, 2019);
- ``scale_by_amsgrad(max_of_raw_nu=True)`` (PyTorch's AMSGrad, which Optax lacks) against a
  float64 NumPy implementation of ``torch.optim.Adam(amsgrad=True)``'s documented rule;
- the bias corrections against a float64 NumPy Adam, update by update.

Tolerance for trajectories: ``rtol=1e-5``, ``atol=1e-6 * max|theta|`` (float32 rounding over
120 steps; see ``_oracle.assert_trajectories_close``).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optgrad as og
from tests import _oracle as oracle
from tests.optimizers._settable import assert_settable

PROB = oracle.problem(seed=1)
LR = 0.03
MASK = {"a": True, "b": False, "c": {"d": True}}


def lr_schedule(count):
    return 0.05 / (1.0 + 0.02 * count)


def wd_schedule(count):
    return 0.2 / (1.0 + 0.05 * count)


def matrices_only(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


# name: (optgrad transformation, the same in Optax)
CASES = {
    "scale_by_adam": (
        og.chain(og.scale_by_adam(), og.scale(-LR)),
        optax.chain(optax.scale_by_adam(), optax.scale(-LR)),
    ),
    "scale_by_adam_nondefault": (
        og.chain(og.scale_by_adam(b1=0.8, b2=0.99, eps=1e-3, eps_root=1e-3), og.scale(-LR)),
        optax.chain(
            optax.scale_by_adam(b1=0.8, b2=0.99, eps=1e-3, eps_root=1e-3), optax.scale(-LR)
        ),
    ),
    "scale_by_adam_nesterov": (
        og.chain(og.scale_by_adam(b1=0.8, eps=1e-3, nesterov=True), og.scale(-LR)),
        optax.chain(optax.scale_by_adam(b1=0.8, eps=1e-3, nesterov=True), optax.scale(-LR)),
    ),
    "adam": (og.adam(LR), optax.adam(LR)),
    "adam_nondefault": (
        og.adam(lr_schedule, b1=0.8, b2=0.99, eps=1e-3, eps_root=1e-3),
        optax.adam(lr_schedule, b1=0.8, b2=0.99, eps=1e-3, eps_root=1e-3),
    ),
    "adam_nesterov": (
        og.adam(LR, b1=0.8, eps=1e-3, nesterov=True),
        optax.adam(LR, b1=0.8, eps=1e-3, nesterov=True),
    ),
    "nadam": (og.nadam(lr_schedule, b1=0.8, eps=1e-3), optax.nadam(lr_schedule, b1=0.8, eps=1e-3)),
    "adamw": (og.adamw(LR, weight_decay=0.1), optax.adamw(LR, weight_decay=0.1)),
    "adamw_mask_tree_schedules": (
        og.adamw(lr_schedule, b1=0.8, eps=1e-3, weight_decay=wd_schedule, mask=MASK),
        optax.adamw(lr_schedule, b1=0.8, eps=1e-3, weight_decay=wd_schedule, mask=MASK),
    ),
    "adamw_mask_fn_nesterov": (
        og.adamw(LR, weight_decay=0.2, mask=matrices_only, nesterov=True),
        optax.adamw(LR, weight_decay=0.2, mask=matrices_only, nesterov=True),
    ),
    "nadamw": (og.nadamw(LR, weight_decay=0.1), optax.nadamw(LR, weight_decay=0.1)),
    "nadamw_mask_tree_schedules": (
        og.nadamw(lr_schedule, b1=0.8, eps=1e-3, weight_decay=wd_schedule, mask=MASK),
        optax.nadamw(lr_schedule, b1=0.8, eps=1e-3, weight_decay=wd_schedule, mask=MASK),
    ),
    "nadamw_mask_fn": (
        og.nadamw(LR, b2=0.95, weight_decay=0.3, mask=matrices_only),
        optax.nadamw(LR, b2=0.95, weight_decay=0.3, mask=matrices_only),
    ),
    # b2 = 0.95 so that the running maximum binds within 120 steps under every convention.
    "scale_by_amsgrad": (
        og.chain(og.scale_by_amsgrad(b2=0.95), og.scale(-LR)),
        optax.chain(optax.scale_by_amsgrad(b2=0.95), optax.scale(-LR)),
    ),
    "scale_by_amsgrad_no_nu_correction": (
        og.chain(
            og.scale_by_amsgrad(b1=0.8, b2=0.95, eps=1e-3, bias_correction_nu=False), og.scale(-LR)
        ),
        optax.chain(
            optax.scale_by_amsgrad(b1=0.8, b2=0.95, eps=1e-3, bias_correction_nu=False),
            optax.scale(-LR),
        ),
    ),
    "amsgrad": (og.amsgrad(LR, b2=0.95), optax.amsgrad(LR, b2=0.95)),
    "amsgrad_nondefault": (
        og.amsgrad(lr_schedule, b1=0.8, b2=0.95, eps=1e-3, eps_root=1e-3, bias_correction_mu=False),
        optax.amsgrad(
            lr_schedule, b1=0.8, b2=0.95, eps=1e-3, eps_root=1e-3, bias_correction_mu=False
        ),
    ),
    "amsgrad_paper": (
        og.amsgrad(LR, b2=0.95, bias_correction_mu=False, bias_correction_nu=False),
        optax.amsgrad(LR, b2=0.95, bias_correction_mu=False, bias_correction_nu=False),
    ),
}


# Runs that are compared against something else than Optax, batched in the same compilation.
OURS_ONLY = {
    # PyTorch's AMSGrad, which Optax does not have, and the same with Optax's convention.
    "amsgrad_torch": og.chain(
        og.scale_by_amsgrad(b1=0.8, b2=0.95, eps=1e-3, max_of_raw_nu=True),
        og.scale_by_learning_rate(lr_schedule),
    ),
    "amsgrad_optax_convention": og.chain(
        og.scale_by_amsgrad(b1=0.8, b2=0.95, eps=1e-3), og.scale_by_learning_rate(lr_schedule)
    ),
    "adam_f32": og.adam(LR, b1=0.8),
    "nadamw_paper": og.nadamw(lr_schedule, b1=0.8, b2=0.95, eps=1e-3, weight_decay=0.5),
    "adam_bf16_mu": og.adam(LR, b1=0.8, mu_dtype=jnp.bfloat16),
}
THEIRS_ONLY = {"adam_b2_095": optax.adam(LR, b2=0.95)}


@pytest.fixture(scope="module")
def runs():
    ours = oracle.run_many(
        {**{name: tx for name, (tx, _) in CASES.items()}, **OURS_ONLY}, PROB, with_state=True
    )
    theirs = oracle.run_optax64(
        {**{name: ref for name, (_, ref) in CASES.items()}, **THEIRS_ONLY}, PROB, with_state=True
    )
    return ours, theirs


@pytest.mark.parametrize("name", CASES)
def test_trajectory_matches_optax(runs, name):
    ours, theirs = runs
    oracle.assert_trajectories_close(ours[name][0], theirs[name][0])


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("scale_by_adam", "scale_by_adam_nesterov"),
        ("adam", "adamw"),
        ("adamw_mask_fn_nesterov", "adam_nesterov"),
        ("scale_by_amsgrad", "scale_by_amsgrad_no_nu_correction"),
        ("amsgrad", "amsgrad_paper"),
        ("amsgrad", "adam_b2_095"),
        ("nadamw", "adamw"),
        ("nadamw_mask_tree_schedules", "nadam"),
    ],
)
def test_the_problem_tells_the_variants_apart(runs, a, b):
    """The oracles for these pairs differ by far more than the tolerance, so matching one of
    them is no accident of a problem too easy to tell formulas apart (the last pair: the
    running maximum of AMSGrad does bind)."""
    _, theirs = runs
    oracle.assert_distinguishable(theirs[a][0], theirs[b][0])


def test_state_holds_the_moments_optax_holds(runs):
    ours, theirs = runs
    state, ref = ours["scale_by_adam_nondefault"][1][0], theirs["scale_by_adam_nondefault"][1][0]
    assert int(state.count) == int(ref.count) == PROB.steps
    for mine, expected in ((state.mu, ref.mu), (state.nu, ref.nu)):
        jax.tree.map(
            lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6 * np.max(np.abs(y))),
            mine,
            expected,
        )


# ---- PyTorch's AMSGrad, which Optax does not have ------------------------------------------


def torch_amsgrad(lr, b1, b2, eps):
    """``torch.optim.Adam(amsgrad=True)``'s rule in float64 (torch_optim.md, section 1.2):
    ``v_max = max(v_max, v)`` on the raw second moment, then ``sqrt(v_max) / sqrt(1 - b2^t)``."""

    def step(g, theta, t, state):
        m = b1 * state.get("m", 0.0) + (1 - b1) * g
        v = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        v_max = np.maximum(state.get("v_max", 0.0), v)
        state.update(m=m, v=v, v_max=v_max)
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        return -lr(t - 1) / bc1 * m / (np.sqrt(v_max) / np.sqrt(bc2) + eps)

    return step


def test_amsgrad_with_max_of_raw_nu_matches_torchs_rule(runs):
    ours, _ = runs
    expected = oracle.run_numpy(torch_amsgrad(lr_schedule, b1=0.8, b2=0.95, eps=1e-3), PROB)
    oracle.assert_trajectories_close(ours["amsgrad_torch"][0], expected)
    oracle.assert_distinguishable(ours["amsgrad_optax_convention"][0], expected)


# ---- NAdamW from the papers ----------------------------------------------------------------


def paper_nadamw(lr, b1, b2, eps, wd):
    """Dozat (2016) with a constant momentum, as Optax writes it, plus Loshchilov & Hutter's
    decoupled decay (multiplied by the learning rate), in float64:
    ``m_hat = b1 m_t / (1 - b1^(t+1)) + (1 - b1) g_t / (1 - b1^t)``,
    ``theta -= lr (m_hat / (sqrt(v_t / (1 - b2^t)) + eps) + wd theta)``."""

    def step(g, theta, t, state):
        m = b1 * state.get("m", 0.0) + (1 - b1) * g
        v = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        state.update(m=m, v=v)
        m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        return -lr(t - 1) * (m_hat / (np.sqrt(v / (1 - b2**t)) + eps) + wd * theta)

    return step


def test_nadamw_matches_the_papers(runs):
    ours, _ = runs
    expected = oracle.run_numpy(paper_nadamw(lr_schedule, 0.8, 0.95, 1e-3, 0.5), PROB)
    oracle.assert_trajectories_close(ours["nadamw_paper"][0], expected)
    oracle.assert_distinguishable(expected, ours["adam_f32"][0])


def test_nadamw_hyperparameters_live_in_the_state_and_can_be_set():
    assert_settable(
        lambda **kw: og.nadamw(0.1, **kw),
        dict(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, weight_decay=1e-4),
        b1=0.5,
        b2=0.6,
        eps=0.1,
        eps_root=0.01,
        weight_decay=0.3,
    )


# ---- Bias corrections ----------------------------------------------------------------------


def test_first_updates_match_a_float64_adam_to_1e6():
    """``1 - b**t`` in float32 loses ~3e-6 relative at small ``t`` for ``b = 0.999``; the
    ``-expm1(t log b)`` form keeps every update within float32 rounding (~3e-7)."""
    rng = np.random.default_rng(3)
    n = 256
    # A fixed sign per coordinate keeps the first moment away from cancellation, and the
    # magnitudes span several decades.
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    grads = (sign * np.exp(2 * rng.standard_normal(n)) * rng.uniform(0.5, 1.5, (20, n))).astype(
        np.float32
    )
    tx = og.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)

    @jax.jit
    def updates_of(grads):
        return jax.lax.scan(lambda s, g: tx.update(g, s)[::-1], tx.init(grads[0]), grads)[1]

    updates = np.asarray(updates_of(jnp.asarray(grads)))
    m = v = np.zeros(n)
    for t in range(1, 21):
        g = grads[t - 1].astype(np.float64)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        expected = (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(updates[t - 1], expected, rtol=1e-6, err_msg=f"step {t}")


# ---- Dtypes and state ----------------------------------------------------------------------


def _params(dtype=jnp.float32):
    return jax.tree.map(lambda x: jnp.asarray(x, dtype), PROB.theta0)


def _grads(dtype=jnp.float32):
    first = jax.tree.map(lambda x: jnp.asarray(x[0], dtype), PROB.noise)
    second = jax.tree.map(lambda x: jnp.asarray(x[1], dtype), PROB.noise)
    return first, second


BF16 = {
    "scale_by_adam_nesterov": og.scale_by_adam(nesterov=True),
    "scale_by_amsgrad": og.scale_by_amsgrad(),
    "scale_by_amsgrad_torch": og.scale_by_amsgrad(max_of_raw_nu=True),
    "adam": og.adam(1e-3),
    "adamw": og.adamw(1e-3, mask=MASK),
    "nadam": og.nadam(1e-3),
    "amsgrad": og.amsgrad(1e-3),
    "nadamw": og.nadamw(1e-3, mask=MASK),
}
# name: (transformation with float32 params, dtype of mu, dtype of nu)
MOMENT_DTYPES = {
    "scale_by_adam": (og.scale_by_adam(mu_dtype=jnp.bfloat16), jnp.bfloat16, jnp.float32),
    "adam": (og.adam(1e-3, mu_dtype=jnp.bfloat16), jnp.bfloat16, jnp.float32),
    "adamw": (
        og.adamw(1e-3, mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16),
        jnp.bfloat16,
        jnp.bfloat16,
    ),
    "nadam": (og.nadam(1e-3, nu_dtype=jnp.bfloat16), jnp.float32, jnp.bfloat16),
    "amsgrad": (og.amsgrad(1e-3, mu_dtype=jnp.bfloat16), jnp.bfloat16, jnp.float32),
    "nadamw": (og.nadamw(1e-3, mu_dtype=jnp.bfloat16), jnp.bfloat16, jnp.float32),
}


@pytest.fixture(scope="module")
def two_steps():
    bf16 = oracle.step_twice(BF16, _params(jnp.bfloat16), _grads(jnp.bfloat16))
    f32 = oracle.step_twice(
        {name: tx for name, (tx, _, _) in MOMENT_DTYPES.items()}, _params(), _grads()
    )
    return bf16, f32


@pytest.mark.parametrize("name", BF16)
def test_bf16_params_give_bf16_updates_and_stable_state(two_steps, name):
    updates, state0, state2 = two_steps[0][name]
    assert oracle.dtypes(updates) == {jnp.dtype(jnp.bfloat16)}
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))
    assert oracle.signature(state0) == oracle.signature(state2)
    for moment in ("mu", "nu"):
        assert oracle.dtypes(og.tree.get(state2, moment)) == {jnp.dtype(jnp.bfloat16)}


@pytest.mark.parametrize("name", MOMENT_DTYPES)
def test_moment_dtypes_are_honoured(two_steps, name):
    _, mu, nu = MOMENT_DTYPES[name]
    updates, state0, state2 = two_steps[1][name]
    assert oracle.dtypes(updates) == {jnp.dtype(jnp.float32)}
    assert oracle.signature(state0) == oracle.signature(state2)
    assert oracle.dtypes(og.tree.get(state2, "mu")) == {jnp.dtype(mu)}
    assert oracle.dtypes(og.tree.get(state2, "nu")) == {jnp.dtype(nu)}


def test_bf16_first_moment_stays_close_to_float32(runs):
    """A bf16 ``mu`` changes the trajectory only at bf16 precision (8 bits of mantissa)."""
    ours, _ = runs
    oracle.assert_trajectories_close(
        ours["adam_bf16_mu"][0], ours["adam_f32"][0], rtol=1e-2, atol_rel=1e-2
    )
    assert oracle.dtypes(og.tree.get(ours["adam_bf16_mu"][1], "mu")) == {jnp.dtype(jnp.bfloat16)}


# ---- Errors at build time ------------------------------------------------------------------

NAN = float("nan")
BAD_ARGUMENTS = [
    (
        og.adam,
        dict(learning_rate=-1e-3),
        "optgrad.adam(learning_rate=...) must be non-negative, got learning_rate=-0.001",
    ),
    (
        og.adam,
        dict(learning_rate=NAN),
        "optgrad.adam(learning_rate=...) must be non-negative, got learning_rate=nan",
    ),
    (
        og.adam,
        dict(learning_rate=1e-3, b1=1.0),
        "optgrad.adam(b1=...) must be in [0, 1), got b1=1.0",
    ),
    (
        og.adam,
        dict(learning_rate=1e-3, b1=-0.1),
        "optgrad.adam(b1=...) must be in [0, 1), got b1=-0.1",
    ),
    (
        og.adam,
        dict(learning_rate=1e-3, b1=NAN),
        "optgrad.adam(b1=...) must be in [0, 1), got b1=nan",
    ),
    (
        og.adam,
        dict(learning_rate=1e-3, b2=1.5),
        "optgrad.adam(b2=...) must be in [0, 1), got b2=1.5",
    ),
    (
        og.adam,
        dict(learning_rate=1e-3, eps=-1e-8),
        "optgrad.adam(eps=...) must be non-negative, got eps=-1e-08",
    ),
    (
        og.adam,
        dict(learning_rate=1e-3, eps_root=-1.0),
        "optgrad.adam(eps_root=...) must be non-negative, got eps_root=-1.0",
    ),
    (
        og.adamw,
        dict(learning_rate=1e-3, weight_decay=-0.1),
        "optgrad.adamw(weight_decay=...) must be non-negative, got weight_decay=-0.1",
    ),
    (
        og.adamw,
        dict(learning_rate=1e-3, b1=1.0),
        "optgrad.adamw(b1=...) must be in [0, 1), got b1=1.0",
    ),
    (
        og.nadam,
        dict(learning_rate=-1.0),
        "optgrad.nadam(learning_rate=...) must be non-negative, got learning_rate=-1.0",
    ),
    (
        og.nadam,
        dict(learning_rate=1e-3, b2=1.0),
        "optgrad.nadam(b2=...) must be in [0, 1), got b2=1.0",
    ),
    (
        og.amsgrad,
        dict(learning_rate=1e-3, b1=2.0),
        "optgrad.amsgrad(b1=...) must be in [0, 1), got b1=2.0",
    ),
    (
        og.amsgrad,
        dict(learning_rate=1e-3, eps=-1.0),
        "optgrad.amsgrad(eps=...) must be non-negative, got eps=-1.0",
    ),
    (
        og.nadamw,
        dict(learning_rate=1e-3, weight_decay=-1.0),
        "optgrad.nadamw(weight_decay=...) must be non-negative, got weight_decay=-1.0",
    ),
    (
        og.nadamw,
        dict(learning_rate=1e-3, b1=1.0),
        "optgrad.nadamw(b1=...) must be in [0, 1), got b1=1.0",
    ),
    (og.scale_by_adam, dict(b1=1.0), "optgrad.scale_by_adam(b1=...) must be in [0, 1), got b1=1.0"),
    (
        og.scale_by_adam,
        dict(eps=-1.0),
        "optgrad.scale_by_adam(eps=...) must be non-negative, got eps=-1.0",
    ),
    (
        og.scale_by_amsgrad,
        dict(b2=NAN),
        "optgrad.scale_by_amsgrad(b2=...) must be in [0, 1), got b2=nan",
    ),
    (
        og.scale_by_amsgrad,
        dict(eps_root=-1.0),
        "optgrad.scale_by_amsgrad(eps_root=...) must be non-negative, got eps_root=-1.0",
    ),
]


@pytest.mark.parametrize(("factory", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_rejected_when_built(factory, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)


def test_adamw_mask_structure_mismatch_is_reported_at_init():
    params = _params()
    mask = {"a": True, "b": False}
    tx = og.adamw(1e-3, mask=mask)
    with pytest.raises(ValueError, match="mask must have the tree structure of the params") as info:
        tx.init(params)
    assert str(jax.tree.structure(params)) in str(info.value)
    assert str(jax.tree.structure(mask)) in str(info.value)
