"""``optgrad.torch.lr_scheduler`` against the real ``torch.optim.lr_scheduler``.

PyTorch runs the usual loop (train an epoch of ``steps_per_epoch`` updates, then
``scheduler.step()``) and records ``param_groups[0]["lr"]`` for every epoch; optgrad's
schedule must give that rate for every update count of the epoch, to float32 rounding.
"""

from __future__ import annotations

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from optgrad import schedules
from optgrad.torch import lr_scheduler

_RNG = np.random.default_rng(7)
# float32's normal range: below it optgrad flushes to 0 while PyTorch keeps float64 values.
_TINY = float(np.finfo(np.float32).tiny)
_COUNTS = 300 * 11


def _torch_lrs(make_scheduler, lr: float, epochs: int) -> np.ndarray:
    """The learning rate PyTorch uses during each of ``epochs`` epochs."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = make_scheduler(optimizer)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients: a no-op, but keeps PyTorch's call order
        scheduler.step()
    return np.asarray(lrs, np.float64)


def _assert_matches_torch(ours, torch_lrs: np.ndarray, steps_per_epoch: int) -> None:
    expected = np.repeat(torch_lrs, steps_per_epoch)  # count e*k + j is in epoch e
    # Evaluate on a fixed number of counts (eager op compilations are shared by shape).
    counts = np.arange(max(len(expected), _COUNTS))
    values = np.asarray(ours(jnp.asarray(counts, jnp.int32)), np.float64)[: len(expected)]
    normal = expected >= _TINY
    if expected[0] > 0:
        assert normal[: steps_per_epoch * 50].all(), "configuration underflows too early to test"
    np.testing.assert_allclose(values[normal], expected[normal], rtol=1e-6, atol=0)
    assert np.all(values[~normal] <= _TINY)
    assert np.all(values[expected == 0] == 0)


STEP_LR = [
    dict(lr=0.1, step_size=30),  # torch's default gamma=0.1
    dict(lr=1.0, step_size=1, gamma=0.5),
    dict(lr=0.05, step_size=7, gamma=0.9, steps_per_epoch=3),
    dict(lr=3e-4, step_size=4, gamma=1.5, steps_per_epoch=2),  # growth
    dict(lr=0.0, step_size=10, gamma=0.3),
    *(
        dict(
            lr=float(_RNG.uniform(1e-4, 1)),
            step_size=int(_RNG.integers(1, 60)),
            gamma=float(_RNG.uniform(0.05, 0.99)),
            steps_per_epoch=int(_RNG.choice([1, 5, 11])),
        )
        for _ in range(5)
    ),
]


@pytest.mark.parametrize("kwargs", STEP_LR, ids=repr)
def test_step_lr_matches_torch(kwargs):
    torch_kwargs = {k: v for k, v in kwargs.items() if k not in ("lr", "steps_per_epoch")}
    expected = _torch_lrs(
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, **torch_kwargs), kwargs["lr"], 300
    )
    _assert_matches_torch(lr_scheduler.StepLR(**kwargs), expected, kwargs.get("steps_per_epoch", 1))


EXPONENTIAL_LR = [
    dict(lr=0.1, gamma=0.5),
    dict(lr=1.0, gamma=0.96, steps_per_epoch=4),
    dict(lr=1e-5, gamma=1.02, steps_per_epoch=3),  # growth
    dict(lr=0.3, gamma=1.0),
    *(
        dict(
            lr=float(_RNG.uniform(1e-4, 1)),
            gamma=float(_RNG.uniform(0.8, 0.999)),
            steps_per_epoch=int(_RNG.choice([1, 2, 9])),
        )
        for _ in range(5)
    ),
]


@pytest.mark.parametrize("kwargs", EXPONENTIAL_LR, ids=repr)
def test_exponential_lr_matches_torch(kwargs):
    expected = _torch_lrs(
        lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=kwargs["gamma"]),
        kwargs["lr"],
        300,
    )
    _assert_matches_torch(
        lr_scheduler.ExponentialLR(**kwargs), expected, kwargs.get("steps_per_epoch", 1)
    )


@pytest.mark.parametrize("gamma", [0.998, 0.9999, 0.97])
def test_exponential_lr_stays_accurate_for_thousands_of_epochs(gamma):
    # A float32 exp(e * log(gamma)) would be off by ~|e log(gamma)| * 6e-8, i.e. > 1e-6
    # relative once the rate has decayed by more than e^-17.
    expected = _torch_lrs(
        lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma), 0.1, 6000
    )
    _assert_matches_torch(lr_scheduler.ExponentialLR(0.1, gamma), expected, 1)


def test_step_lr_is_a_staircase_exponential_decay():
    ours = lr_scheduler.StepLR(0.1, step_size=3, gamma=0.7, steps_per_epoch=5)
    same = schedules.exponential_decay(0.1, transition_steps=15, decay_rate=0.7, staircase=True)
    counts = jnp.arange(1000)
    np.testing.assert_array_equal(ours(counts), same(counts))


@pytest.mark.parametrize(
    "schedule",
    [
        lr_scheduler.StepLR(0.1, 30),
        lr_scheduler.StepLR(1.0, 2, gamma=0.5, steps_per_epoch=3),
        lr_scheduler.ExponentialLR(0.1, 0.9),
        lr_scheduler.ExponentialLR(0.1, 0.9, steps_per_epoch=7),
    ],
    ids=repr,
)
def test_float32_scalar_jit_without_recompiling_and_vmap(schedule):
    counts = np.arange(400)
    eager = np.asarray(schedule(jnp.asarray(counts, jnp.int32)))
    for count in (0, 7, np.int32(7), jnp.int32(250)):
        value = schedule(count)
        assert value.dtype == jnp.float32 and value.shape == ()
        np.testing.assert_allclose(value, eager[int(count)], rtol=1e-6)

    traces = []

    def traced(count):
        traces.append(count)
        return schedule(count)

    jitted = jax.jit(traced)
    values = [jitted(jnp.int32(c)) for c in (0, 1, 17, 250, 399)]
    assert len(traces) == 1
    assert jitted._cache_size() == 1
    assert all(v.dtype == jnp.float32 and v.shape == () for v in values)
    np.testing.assert_allclose(values, eager[[0, 1, 17, 250, 399]], rtol=1e-6)

    mapped = jax.vmap(schedule)(jnp.asarray(counts, jnp.int32))
    assert mapped.dtype == jnp.float32 and mapped.shape == counts.shape
    np.testing.assert_allclose(mapped, eager, rtol=1e-6)


def test_lr_may_be_traced():
    lrs = jnp.asarray([0.1, 1.0])
    batched = jax.vmap(lambda lr: lr_scheduler.StepLR(lr, 2, 0.5)(5))(lrs)
    np.testing.assert_allclose(batched, [0.025, 0.25], rtol=1e-6)


def test_repr_signature_and_immutability():
    schedule = lr_scheduler.StepLR(0.1, 30)
    assert repr(schedule) == "StepLR(lr=0.1, step_size=30, gamma=0.1, steps_per_epoch=1)"
    assert (
        repr(lr_scheduler.ExponentialLR(lr=0.5, gamma=0.9, steps_per_epoch=4))
        == "ExponentialLR(lr=0.5, gamma=0.9, steps_per_epoch=4)"
    )
    assert schedule == lr_scheduler.StepLR(lr=0.1, step_size=30, gamma=0.1)
    assert hash(schedule) == hash(lr_scheduler.StepLR(0.1, 30))
    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.gamma = 0.5
    with pytest.raises(TypeError):
        lr_scheduler.StepLR(0.1, 30, 0.1, 2)  # steps_per_epoch is keyword-only


C = "optgrad.torch.lr_scheduler."


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: lr_scheduler.StepLR(0.1, 0), ValueError,
         "StepLR(step_size=...) must be a positive integer, got step_size=0"),
        (lambda: lr_scheduler.StepLR(0.1, 2.5), ValueError,
         "StepLR(step_size=...) must be a positive integer, got step_size=2.5"),
        (lambda: lr_scheduler.StepLR(0.1, 10, gamma=0.0), ValueError,
         "StepLR(gamma=...) must be positive, got gamma=0.0"),
        (lambda: lr_scheduler.StepLR(0.1, 10, gamma=float("nan")), ValueError,
         "StepLR(gamma=...) must be a finite number, got gamma=nan"),
        (lambda: lr_scheduler.StepLR(-0.1, 10), ValueError,
         "StepLR(lr=...) must be non-negative, got lr=-0.1"),
        (lambda: lr_scheduler.StepLR(0.1, 10, steps_per_epoch=0), ValueError,
         "StepLR(steps_per_epoch=...) must be a positive integer, got steps_per_epoch=0"),
        (lambda: lr_scheduler.ExponentialLR(0.1, gamma=-0.5), ValueError,
         "ExponentialLR(gamma=...) must be positive, got gamma=-0.5"),
        (lambda: lr_scheduler.ExponentialLR(float("inf"), gamma=0.5), ValueError,
         "ExponentialLR(lr=...) must be a finite number, got lr=inf"),
        (lambda: lr_scheduler.ExponentialLR(0.1, 0.9, steps_per_epoch=1.0), ValueError,
         "ExponentialLR(steps_per_epoch=...) must be a positive integer, got steps_per_epoch=1.0"),
        (lambda: lr_scheduler.ExponentialLR("0.1", gamma=0.5), TypeError,
         "ExponentialLR(lr=...) must be a number, got str: '0.1'"),
        (lambda: lr_scheduler.ExponentialLR(0.1, gamma=jnp.ones(3)), TypeError,
         "ExponentialLR(gamma=...) must be a concrete real number (not a traced or non-scalar "
         "array)"),
    ],
)  # fmt: skip
def test_construction_errors(make, error, message):
    with pytest.raises(error, match="^" + re.escape(C + message)):
        make()


# --- The other epoch schedulers, against the real ones -------------------------------------
#
# Each row: (id, optgrad schedule, torch scheduler factory (optimizer -> scheduler), lr,
# steps_per_epoch). PyTorch runs 300 epochs; optgrad's schedule must give each epoch's rate for
# every update count of that epoch: |optgrad - torch| <= 1e-6 |torch| + 1e-15 max|torch|. The
# absolute term only covers PyTorch's double-rounding residue where a rate reaches 0 (its
# LinearLR to end_factor=0 ends at -2.7e-18, not 0) and float32 underflow.


def _assert_close_to_torch(ours, torch_lrs: np.ndarray, steps_per_epoch: int) -> None:
    expected = np.repeat(torch_lrs, steps_per_epoch)
    counts = np.arange(max(len(expected), _COUNTS))
    values = np.asarray(ours(jnp.asarray(counts, jnp.int32)), np.float64)[: len(expected)]
    atol = 1e-15 * np.max(np.abs(expected))
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=atol)


S, T = lr_scheduler, torch.optim.lr_scheduler


def _cases():
    r = np.random.default_rng(11)
    lr = float(r.uniform(0.01, 1))
    cases = [
        (
            "MultiStep-0-repeated",
            S.MultiStepLR(0.1, [0, 3, 3, 10]),
            lambda o: T.MultiStepLR(o, [0, 3, 3, 10]),
            0.1,
            1,
        ),
        (
            "MultiStep-unsorted-spe3",
            S.MultiStepLR(lr, [50, 10, 30], 0.5, steps_per_epoch=3),
            lambda o: T.MultiStepLR(o, [50, 10, 30], 0.5),
            lr,
            3,
        ),
        (
            "MultiStep-empty-growth",
            S.MultiStepLR(0.01, [], 2.0),
            lambda o: T.MultiStepLR(o, [], 2.0),
            0.01,
            1,
        ),
        (
            "MultiStep-grow",
            S.MultiStepLR(1e-3, [5, 100, 100, 250], 1.7),
            lambda o: T.MultiStepLR(o, [5, 100, 100, 250], 1.7),
            1e-3,
            1,
        ),
        ("Constant-default", S.ConstantLR(0.1), lambda o: T.ConstantLR(o), 0.1, 1),
        (
            "Constant-spe2",
            S.ConstantLR(lr, 0.5, 7, steps_per_epoch=2),
            lambda o: T.ConstantLR(o, 0.5, 7),
            lr,
            2,
        ),
        ("Linear-default", S.LinearLR(0.1), lambda o: T.LinearLR(o), 0.1, 1),
        (
            "Linear-to-zero",
            S.LinearLR(0.3, 0.1, 0.0, 40),
            lambda o: T.LinearLR(o, 0.1, 0.0, 40),
            0.3,
            1,
        ),
        (
            "Linear-down-spe4",
            S.LinearLR(lr, 1.0, 0.05, 250, steps_per_epoch=4),
            lambda o: T.LinearLR(o, 1.0, 0.05, 250),
            lr,
            4,
        ),
        ("Polynomial-default", S.PolynomialLR(0.1), lambda o: T.PolynomialLR(o), 0.1, 1),
        (
            "Polynomial-p2",
            S.PolynomialLR(lr, 280, 2.0),
            lambda o: T.PolynomialLR(o, 280, 2.0),
            lr,
            1,
        ),
        (
            "Polynomial-p0.5-spe3",
            S.PolynomialLR(0.2, 100, 0.5, steps_per_epoch=3),
            lambda o: T.PolynomialLR(o, 100, 0.5),
            0.2,
            3,
        ),
        (
            "Lambda-rational",
            S.LambdaLR(0.1, lambda e: 1.0 / (1.0 + 0.05 * e)),
            lambda o: T.LambdaLR(o, lambda e: 1.0 / (1.0 + 0.05 * e)),
            0.1,
            1,
        ),
        (
            "Lambda-warmup-spe2",
            S.LambdaLR(lr, lambda e: jnp.minimum(1.0, (e + 1) / 10), steps_per_epoch=2),
            lambda o: T.LambdaLR(o, lambda e: min(1.0, (e + 1) / 10)),
            lr,
            2,
        ),
        (
            "Multiplicative-const",
            S.MultiplicativeLR(0.1, lambda e: 0.97),
            lambda o: T.MultiplicativeLR(o, lambda e: 0.97),
            0.1,
            1,
        ),
        (
            "Multiplicative-varying-spe3",
            S.MultiplicativeLR(lr, lambda e: 1.0 - 0.0005 * e, steps_per_epoch=3, max_epochs=400),
            lambda o: T.MultiplicativeLR(o, lambda e: 1.0 - 0.0005 * e),
            lr,
            3,
        ),
        (
            "Cosine-periodic",
            S.CosineAnnealingLR(0.1, 50),
            lambda o: T.CosineAnnealingLR(o, 50),
            0.1,
            1,
        ),
        (
            "Cosine-eta-min",
            S.CosineAnnealingLR(0.1, 40, eta_min=0.01),
            lambda o: T.CosineAnnealingLR(o, 40, eta_min=0.01),
            0.1,
            1,
        ),
        (
            "Cosine-eta-above-lr",
            S.CosineAnnealingLR(0.01, 33, eta_min=0.05),
            lambda o: T.CosineAnnealingLR(o, 33, eta_min=0.05),
            0.01,
            1,
        ),
        (
            "Cosine-T1",
            S.CosineAnnealingLR(lr, 1, 1e-3),
            lambda o: T.CosineAnnealingLR(o, 1, 1e-3),
            lr,
            1,
        ),
        (
            "Cosine-spe3",
            S.CosineAnnealingLR(lr, 7, 1e-4, steps_per_epoch=3),
            lambda o: T.CosineAnnealingLR(o, 7, 1e-4),
            lr,
            3,
        ),
        (
            "WarmRestarts-T10",
            S.CosineAnnealingWarmRestarts(0.1, 10),
            lambda o: T.CosineAnnealingWarmRestarts(o, 10),
            0.1,
            1,
        ),
        (
            "WarmRestarts-mult2",
            S.CosineAnnealingWarmRestarts(0.1, 3, 2, eta_min=1e-3),
            lambda o: T.CosineAnnealingWarmRestarts(o, 3, 2, eta_min=1e-3),
            0.1,
            1,
        ),
        (
            "WarmRestarts-T1-mult3",
            S.CosineAnnealingWarmRestarts(lr, 1, 3),
            lambda o: T.CosineAnnealingWarmRestarts(o, 1, 3),
            lr,
            1,
        ),
        (
            "WarmRestarts-mult2-spe2",
            S.CosineAnnealingWarmRestarts(lr, 5, 2, steps_per_epoch=2),
            lambda o: T.CosineAnnealingWarmRestarts(o, 5, 2),
            lr,
            2,
        ),
        (
            "Sequential-warmup-cosine",
            S.SequentialLR(
                [S.LinearLR(0.1, 0.01, total_iters=5), S.CosineAnnealingLR(0.1, 60, 1e-3)],
                milestones=[5],
            ),
            lambda o: T.SequentialLR(
                o,
                [T.LinearLR(o, 0.01, total_iters=5), T.CosineAnnealingLR(o, 60, 1e-3)],
                milestones=[5],
            ),
            0.1,
            1,
        ),
        (
            "Sequential-milestone-0",
            S.SequentialLR(
                [
                    S.ConstantLR(lr, 0.5),
                    S.ExponentialLR(lr, 0.98),
                    S.MultiStepLR(lr, [0, 10, 10], 0.5),
                ],
                milestones=[0, 20],
            ),
            lambda o: T.SequentialLR(
                o,
                [
                    T.ConstantLR(o, 0.5),
                    T.ExponentialLR(o, 0.98),
                    T.MultiStepLR(o, [0, 10, 10], 0.5),
                ],
                milestones=[0, 20],
            ),
            lr,
            1,
        ),
        (
            "Sequential-multiplicative-child",
            S.SequentialLR(
                [
                    S.ExponentialLR(0.1, 0.95),
                    S.MultiplicativeLR(0.1, lambda e: 0.99),
                    S.StepLR(0.1, 10, 0.5),
                    S.MultiplicativeLR(0.1, lambda e: 1.0 - 0.001 * e),
                ],
                milestones=[10, 60, 150],
            ),
            lambda o: T.SequentialLR(
                o,
                [
                    T.ExponentialLR(o, 0.95),
                    T.MultiplicativeLR(o, lambda e: 0.99),
                    T.StepLR(o, 10, 0.5),
                    T.MultiplicativeLR(o, lambda e: 1.0 - 0.001 * e),
                ],
                milestones=[10, 60, 150],
            ),
            0.1,
            1,
        ),
        (
            "Sequential-multiplicative-first-repeated-spe2",
            S.SequentialLR(
                [
                    S.MultiplicativeLR(lr, lambda e: 0.98, steps_per_epoch=2),
                    S.LambdaLR(lr, lambda e: 1.0 / (1.0 + e), steps_per_epoch=2),
                    S.CosineAnnealingWarmRestarts(lr, 4, 2, steps_per_epoch=2),
                ],
                milestones=[30, 30],
            ),
            lambda o: T.SequentialLR(
                o,
                [
                    T.MultiplicativeLR(o, lambda e: 0.98),
                    T.LambdaLR(o, lambda e: 1.0 / (1.0 + e)),
                    T.CosineAnnealingWarmRestarts(o, 4, 2),
                ],
                milestones=[30, 30],
            ),
            lr,
            2,
        ),
        (
            "Chained-exp-step",
            S.ChainedScheduler([S.ExponentialLR(0.1, 0.99), S.StepLR(0.1, 7, 0.5)]),
            lambda o: T.ChainedScheduler([T.ExponentialLR(o, 0.99), T.StepLR(o, 7, 0.5)]),
            0.1,
            1,
        ),
        (
            "Chained-linear-multistep-exp-spe3",
            S.ChainedScheduler(
                [
                    S.LinearLR(lr, 0.2, total_iters=10, steps_per_epoch=3),
                    S.MultiStepLR(lr, [0, 50, 50], 0.3, steps_per_epoch=3),
                    S.ExponentialLR(lr, 0.995, steps_per_epoch=3),
                ]
            ),
            lambda o: T.ChainedScheduler(
                [
                    T.LinearLR(o, 0.2, total_iters=10),
                    T.MultiStepLR(o, [0, 50, 50], 0.3),
                    T.ExponentialLR(o, 0.995),
                ]
            ),
            lr,
            3,
        ),
        (
            "Chained-constant-poly-mult",
            S.ChainedScheduler(
                [
                    S.ConstantLR(0.1, 0.25, 9),
                    S.PolynomialLR(0.1, 200, 1.5),
                    S.MultiplicativeLR(0.1, lambda e: 1.0 if e % 4 else 0.9),
                ]
            ),
            lambda o: T.ChainedScheduler(
                [
                    T.ConstantLR(o, 0.25, 9),
                    T.PolynomialLR(o, 200, 1.5),
                    T.MultiplicativeLR(o, lambda e: 1.0 if e % 4 else 0.9),
                ]
            ),
            0.1,
            1,
        ),
    ]
    from optgrad.torch import swa_utils

    swa = torch.optim.swa_utils
    cases += [
        ("SWALR-cos", swa_utils.SWALR(0.1, 0.01), lambda o: swa.SWALR(o, 0.01), 0.1, 1),
        (
            "SWALR-linear-up-spe2",
            swa_utils.SWALR(lr, 2.0, 25, "linear", steps_per_epoch=2),
            lambda o: swa.SWALR(o, 2.0, 25, "linear"),
            lr,
            2,
        ),
        ("SWALR-anneal0", swa_utils.SWALR(0.1, 0.03, 0), lambda o: swa.SWALR(o, 0.03, 0), 0.1, 1),
    ]
    return cases  # fmt: skip


CASES = _cases()


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_scheduler_matches_torch(case):
    _, ours, make, lr, steps_per_epoch = case
    _assert_close_to_torch(ours, _torch_lrs(make, lr, 300), steps_per_epoch)


def test_sequential_multiplicative_child_continues_from_the_current_rate():
    # Not a restart from lr (what the closed forms of the other children do): the oracle
    # above would accept either if this did not differ.
    s = S.SequentialLR([S.ExponentialLR(1.0, 0.5), S.MultiplicativeLR(1.0, lambda e: 0.9)], [3])
    expected = [1, 0.5, 0.25, 0.25 * 0.9, 0.25 * 0.81, 0.25 * 0.729]
    np.testing.assert_allclose(s(jnp.arange(6)), expected, rtol=1e-6)


def test_multiplicative_lr_past_max_epochs_is_nan():
    s = S.MultiplicativeLR(1.0, lambda e: 0.5, max_epochs=4, steps_per_epoch=2)
    values = np.asarray(s(jnp.arange(12)))
    np.testing.assert_array_equal(values[:10], np.repeat([1, 0.5, 0.25, 0.125, 0.0625], 2))
    assert np.isnan(values[10:]).all()


# One configuration of every class (the first of its rows), jitted and vmapped over counts.
JIT_CASES = {type(c[1]).__name__: c[1] for c in reversed(CASES)}


@pytest.mark.parametrize("schedule", list(JIT_CASES.values()), ids=list(JIT_CASES))
def test_jit_and_vmap_agree_with_eager(schedule):
    counts = jnp.arange(700, dtype=jnp.int32)
    eager = np.asarray(schedule(counts))
    mapped = jax.jit(jax.vmap(schedule))(counts)
    assert mapped.dtype == jnp.float32 and mapped.shape == counts.shape
    np.testing.assert_allclose(mapped, eager, rtol=2e-6, atol=1e-30)
    scalar = jax.jit(schedule)(jnp.int32(123))
    assert scalar.shape == () and scalar.dtype == jnp.float32
    np.testing.assert_allclose(scalar, eager[123], rtol=2e-6)


def test_reprs_of_new_schedulers():
    assert repr(S.MultiStepLR(0.1, [30, 80])) == (
        "MultiStepLR(lr=0.1, milestones=(30, 80), gamma=0.1, steps_per_epoch=1)"
    )
    assert repr(S.LinearLR(0.1, steps_per_epoch=4)) == (
        "LinearLR(lr=0.1, start_factor=0.3333333333333333, end_factor=1.0, total_iters=5, "
        "steps_per_epoch=4)"
    )
    seq = S.SequentialLR([S.ConstantLR(0.1), S.CosineAnnealingLR(0.1, 10)], [5])
    assert repr(seq) == (
        "SequentialLR(schedulers=(ConstantLR(lr=0.1, factor=0.3333333333333333, total_iters=5, "
        "steps_per_epoch=1), CosineAnnealingLR(lr=0.1, T_max=10, eta_min=0.0, "
        "steps_per_epoch=1)), milestones=(5,), steps_per_epoch=1)"
    )
    assert S.CosineAnnealingLR(0.1, 10) == S.CosineAnnealingLR(lr=0.1, T_max=10)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: S.MultiStepLR(0.1, [3, -1]), ValueError,
         "MultiStepLR(milestones=...) must be a list of non-negative integers (epoch indices), "
         "got milestones=[3, -1]"),
        (lambda: S.MultiStepLR(0.1, [2.5]), ValueError, "MultiStepLR(milestones=...) must be"),
        (lambda: S.ConstantLR(0.1, factor=0.0), ValueError,
         "ConstantLR(factor=...) must be in (0, 1], got factor=0.0"),
        (lambda: S.ConstantLR(0.1, total_iters=0), ValueError,
         "ConstantLR(total_iters=...) must be a positive integer, got total_iters=0"),
        (lambda: S.LinearLR(0.1, start_factor=1.5), ValueError,
         "LinearLR(start_factor=...) must be in (0, 1], got start_factor=1.5"),
        (lambda: S.LinearLR(0.1, end_factor=-0.1), ValueError,
         "LinearLR(end_factor=...) must be in [0, 1], got end_factor=-0.1"),
        (lambda: S.PolynomialLR(0.1, power=-1.0), ValueError,
         "PolynomialLR(power=...) must be non-negative, got power=-1.0"),
        (lambda: S.PolynomialLR(0.1, total_iters=-3), ValueError,
         "PolynomialLR(total_iters=...) must be a positive integer, got total_iters=-3"),
        (lambda: S.LambdaLR(0.1, 0.5), TypeError,
         "LambdaLR(lr_lambda=...) must be a function of the integer epoch, got float: 0.5"),
        (lambda: S.LambdaLR(0.1, lambda e: 1.0 if e < 5 else 0.1), ValueError,
         "LambdaLR(lr_lambda=...) must be traceable by JAX"),
        (lambda: S.MultiplicativeLR(0.1, lambda e: 1 / (e - 3)), ValueError,
         "MultiplicativeLR(lr_lambda=...) is called with the Python ints 0..max_epochs when the "
         "schedule is built; lr_lambda(3) failed with ZeroDivisionError"),
        (lambda: S.CosineAnnealingLR(0.1, 0), ValueError,
         "CosineAnnealingLR(T_max=...) must be a positive integer, got T_max=0"),
        (lambda: S.CosineAnnealingLR(0.1, 10, eta_min=-1e-3), ValueError,
         "CosineAnnealingLR(eta_min=...) must be non-negative, got eta_min=-0.001"),
        (lambda: S.CosineAnnealingWarmRestarts(0.1, 10, T_mult=0), ValueError,
         "CosineAnnealingWarmRestarts(T_mult=...) must be a positive integer, got T_mult=0"),
        (lambda: S.CosineAnnealingWarmRestarts(0.1, 2.0), ValueError,
         "CosineAnnealingWarmRestarts(T_0=...) must be a positive integer, got T_0=2.0"),
        (lambda: S.SequentialLR([S.ConstantLR(0.1), S.ExponentialLR(0.1, 0.9)], [5, 10]),
         ValueError, "SequentialLR(milestones=...) must have one entry fewer than schedulers "
         "(2 schedulers need 1 milestones), got milestones=[5, 10]"),
        (lambda: S.SequentialLR([S.ConstantLR(0.1), S.ConstantLR(0.1), S.ConstantLR(0.1)],
                                [10, 5]), ValueError,
         "SequentialLR(milestones=...) must be non-decreasing, got milestones=[10, 5]"),
        (lambda: S.SequentialLR([S.ConstantLR(0.1), S.ConstantLR(0.2)], [5]), ValueError,
         "SequentialLR(schedulers=...) must all be built with the same lr"),
        (lambda: S.SequentialLR([S.ConstantLR(0.1), S.ConstantLR(0.1, steps_per_epoch=2)], [5]),
         ValueError, "SequentialLR(steps_per_epoch=...) must be the same for the composite"),
        (lambda: S.SequentialLR([S.ConstantLR(0.1), S.OneCycleLR(0.1, 100)], [5]), TypeError,
         "SequentialLR(schedulers=...) accepts"),
        (lambda: S.SequentialLR([], []), ValueError,
         "SequentialLR(schedulers=...) must be a non-empty list of schedulers"),
        (lambda: S.ChainedScheduler([S.ExponentialLR(0.1, 0.9), S.CosineAnnealingLR(0.1, 10)]),
         TypeError, "ChainedScheduler(schedulers=...) accepts StepLR, MultiStepLR"),
        (lambda: S.StepLR(0.1, 3, steps_per_epoch=-1), ValueError,
         "StepLR(steps_per_epoch=...) must be a positive integer, got steps_per_epoch=-1"),
    ],
)  # fmt: skip
def test_construction_errors_of_new_schedulers(make, error, message):
    with pytest.raises(error, match="^" + re.escape(C + message)):
        make()


def test_swalr_construction_errors():
    from optgrad.torch import swa_utils

    with pytest.raises(ValueError, match=re.escape(
        "optgrad.torch.swa_utils.SWALR(anneal_epochs=...) must be a non-negative integer, got "
        "anneal_epochs=-1")):  # fmt: skip
        swa_utils.SWALR(0.1, 0.01, -1)
    with pytest.raises(ValueError, match=re.escape("SWALR(anneal_strategy=...) must be one of")):
        swa_utils.SWALR(0.1, 0.01, anneal_strategy="exp")
