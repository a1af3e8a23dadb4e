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
