"""Annealed Gaussian gradient noise: ``add_noise`` and ``noisy_sgd``."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import as_scalar, safe_increment, zero_count
from .._scale import scale_by_learning_rate
from ._common import check_hyperparams


class AddNoiseState(NamedTuple):
    """``count`` updates so far (int32) and the typed PRNG key ``rng_key`` of the next step."""

    count: jax.Array
    rng_key: jax.Array


def _canonical_key(call: str, key: Any, seed: Any) -> Any:
    """A typed PRNG key from ``key`` (an int, a typed key or a raw ``uint32[2]`` key) or the
    deprecated ``seed``; ``None`` for both means seed 0 (as in Optax)."""
    if seed is not None:
        if key is not None:
            raise ValueError(f"{call}(key=..., seed=...): pass only one of them (seed is `key`)")
        key = seed
    if key is None:
        key = 0
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return lambda: jax.random.key(int(key))
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{call}(key=...) must be a single key, got shape {key.shape}")
        return lambda: key
    if isinstance(key, (jax.Array, np.ndarray)) and key.dtype == np.uint32 and key.shape == (2,):
        return lambda: jax.random.wrap_key_data(jnp.asarray(key))
    raise TypeError(
        f"{call}(key=...) must be an int seed or a PRNG key from jax.random.key, got {key!r}"
    )


def add_noise(
    eta: float | jax.Array,
    gamma: float | jax.Array,
    key: Any = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
    r"""Adds annealed Gaussian noise to the updates.

    .. math::
        u_t = g_t + \sigma_t\, \xi_t, \qquad \xi_t \sim \mathcal N(0, I), \qquad
        \sigma_t^2 = \frac{\eta}{t^{\gamma}}, \quad t = 1, 2, \dots

    The noise stream is the same as Optax's for the same ``key`` (a fresh key is split from the
    one in the state at every step, then one per leaf), so the two give the same updates for
    float32 params. Float16 and bfloat16 leaves draw their noise in float32 before rounding;
    complex leaves draw complex noise with :math:`E|\xi|^2 = 1`.

    Args:
        eta: :math:`\eta \ge 0`, the variance at the first step.
        gamma: :math:`\gamma \ge 0`, the annealing exponent.
        key: an int seed or a key from ``jax.random.key`` (``None``: seed 0).
        seed: Optax's deprecated spelling of an int ``key``.

    Returns:
        A :class:`GradientTransformation` whose state is an :class:`AddNoiseState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.add_noise(0.01, 0.55, key=0)
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)

    References:
        Neelakantan et al., "Adding Gradient Noise Improves Learning for Very Deep Networks"
        (2015), arXiv:1511.06807, section 2.
    """
    call = "optgrad.add_noise"
    check_hyperparams(call, eta=("nonneg", eta), gamma=("nonneg", gamma))
    make_key = _canonical_key(call, key, seed)

    def init_fn(params):
        del params
        return AddNoiseState(zero_count(), make_key())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        std = jnp.sqrt(as_scalar(eta) / count.astype(jnp.float32) ** as_scalar(gamma))
        next_key, sample_key = jax.random.split(state.rng_key)
        leaves, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(sample_key, len(leaves))

        def noisy(g, k):
            dtype = g.dtype if g.dtype.itemsize >= 4 else jnp.float32
            noise = jax.random.normal(k, g.shape, dtype)
            return (g + std * noise).astype(g.dtype)

        updates = treedef.unflatten([noisy(g, k) for g, k in zip(leaves, keys)])
        return updates, AddNoiseState(count, next_key)

    return GradientTransformation(init_fn, update_fn)


def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta: ScalarOrSchedule = 0.01,
    gamma: ScalarOrSchedule = 0.55,
    key: Any = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
    r"""SGD with annealed Gaussian gradient noise:

    .. math::
        \theta_t = \theta_{t-1} - \eta_t \big(g_t + \sigma_t \xi_t\big), \qquad
        \sigma_t^2 = \eta / t^{\gamma}

    (:func:`add_noise` then the learning rate; the paper recommends :math:`\gamma = 0.55` and
    :math:`\eta \in \{0.01, 0.3, 1\}`). Runs with the same ``key`` are reproducible, and match
    Optax's ``noisy_sgd`` for float32 params. PyTorch has no such optimizer.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule.
        eta: the noise variance at step 1 (a hyperparameter held in the state).
        gamma: the annealing exponent.
        key, seed: see :func:`add_noise`.

    Returns:
        A :class:`GradientTransformation`.

    References:
        Neelakantan et al., "Adding Gradient Noise Improves Learning for Very Deep Networks"
        (2015), arXiv:1511.06807.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.noisy_sgd(0.1, eta=0.0, key=1)
        >>> tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.zeros(2)}))[0]["w"].tolist()
        [-0.10000000149011612, -0.10000000149011612]
    """
    call = "optgrad.noisy_sgd"
    check_hyperparams(
        call, learning_rate=("lr", learning_rate), eta=("nonneg", eta), gamma=("nonneg", gamma)
    )
    _canonical_key(call, key, seed)

    def build(learning_rate, eta, gamma):
        return chain(add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate))

    return with_hyperparams(build, learning_rate=learning_rate, eta=eta, gamma=gamma)
