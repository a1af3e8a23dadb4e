"""DoG: step sizes from the distance travelled over the accumulated gradient norms."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _check
from .._base import GradientTransformation, ScalarOrSchedule, identity
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import abs_sq, as_scalar, canonical_dtype, safe_increment, zero_count, zeros_like
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from .._weight_decay import add_decayed_weights
from ..tree import sum_of_squares
from ._common import check_hyperparams

_INIT_STEPS = ("distance", "learning_rate", "heuristic")


def _safe_root(sq: jax.Array) -> jax.Array:
    """``sqrt(sq)`` whose derivative at 0 is 0 rather than NaN (so meta-gradients stay finite)."""
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def _wide(x: Any) -> Any:
    """The real dtype of ``x``, at least float32: that of the statistics kept for it."""
    return jnp.promote_types(jnp.finfo(x.dtype).dtype, jnp.float32)


def _leaf_sq(x: jax.Array) -> jax.Array:
    return jnp.sum(abs_sq(x), dtype=_wide(x))


def _needs_params(call: str, params: Any) -> None:
    if params is None:
        raise ValueError(f"{call}.update needs the params: call `tx.update(grads, state, params)`")


class ScaleByDistanceOverGradientsState(NamedTuple):
    """``count`` (int32); per leaf, the largest distance ``max_dist`` from the initial params,
    the ``grad_sum_of_squares`` (scalars, float32 or wider), and the ``init_params``."""

    count: jax.Array
    max_dist: Any
    grad_sum_of_squares: Any
    init_params: Any


def scale_by_distance_over_gradients(
    reps_rel: float | jax.Array = 1e-6,
    eps: float | jax.Array = 1e-8,
    param_dtype: Any = jnp.float32,
    global_scale: float | jax.Array = 1.0,
) -> GradientTransformation:
    r"""Layer-wise DoG: each leaf's step is the largest distance it has moved from its start
    over the root of the sum of its squared gradient norms.

    For a leaf :math:`x` with initial value :math:`x_0`:

    .. math::
        \bar r_t = \max\big(\bar r_{t-1}, \|x_{t-1} - x_0\|\big), \quad
        \bar r_0 = r_\epsilon (1 + \|x_0\|), \quad
        G_t = G_{t-1} + \|g_t\|^2, \quad
        u_t = s\, \frac{\bar r_t}{\sqrt{G_t + \epsilon}}\, g_t

    with :math:`r_\epsilon` = ``reps_rel`` and :math:`s` = ``global_scale``; the result is an
    ascent direction (chain a learning rate, which flips the sign). This is "L-DoG" of the
    paper, as in Optax's function of the same name. :math:`x_0` is the params passed to the
    *first update* (Optax takes them in ``init``; the same thing when ``init`` is given the
    real params), so ``init`` works on abstract shapes and its state mirrors the params.
    Norms are computed in float32 or wider, and the root of a zero distance has a zero (not
    NaN) derivative.

    Args:
        reps_rel: :math:`r_\epsilon > 0`; the paper suggests 1e-6 (1e-4 with batch norm).
        eps: :math:`\epsilon \ge 0`, added to :math:`G_t`.
        param_dtype: dtype of the stored copy of the initial params (complex leaves: its
            complex counterpart; Optax casts them to real).
        global_scale: :math:`s`.

    Returns:
        A :class:`GradientTransformation` whose state is a
        :class:`ScaleByDistanceOverGradientsState`; ``update`` needs the params.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_distance_over_gradients()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)

    References:
        Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size
        Schedule" (ICML 2023), arXiv:2302.12022, eq. (1) and section 3.3 (L-DoG).
    """
    call = "optgrad.scale_by_distance_over_gradients"
    _check.scalar_or_schedule(call, "reps_rel", reps_rel)
    _check.positive(call, "reps_rel", reps_rel)
    check_hyperparams(call, eps=("nonneg", eps))
    _check.scalar_or_schedule(call, "global_scale", global_scale)
    _check.number(call, "global_scale", global_scale)

    def init_fn(params):
        scalars = jax.tree.map(lambda x: jnp.zeros([], _wide(x)), params)
        # Canonicalised here, not when built: float64 needs `jax.enable_x64` at init time.
        dtype = canonical_dtype(param_dtype)

        def stored(x):  # complex leaves keep their imaginary part, at param_dtype's precision
            complex_leaf = jnp.issubdtype(x.dtype, jnp.complexfloating)
            return zeros_like(x, jnp.result_type(dtype, jnp.complex64) if complex_leaf else dtype)

        return ScaleByDistanceOverGradientsState(
            zero_count(), scalars, scalars, jax.tree.map(stored, params)
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _needs_params(call, params)
        check_state_mirrors(call, updates, state.init_params, "init_params")
        first = state.count == 0
        r_eps, e, s = as_scalar(reps_rel), as_scalar(eps), as_scalar(global_scale)
        x0 = jax.tree.map(
            lambda p, old: jnp.where(first, p.astype(old.dtype), old), params, state.init_params
        )

        def distance(d, p, start):
            d = jnp.where(first, r_eps * (1.0 + _safe_root(_leaf_sq(start))), d)
            moved = _safe_root(_leaf_sq(p - start.astype(p.dtype)))
            return jnp.maximum(d, moved).astype(d.dtype)

        max_dist = jax.tree.map(distance, state.max_dist, params, x0)
        sums = jax.tree.map(
            lambda acc, g: (acc + _leaf_sq(g)).astype(acc.dtype),
            state.grad_sum_of_squares,
            updates,
        )
        out = jax.tree.map(
            lambda g, d, sq: (g * (s * d / jnp.sqrt(sq + e))).astype(g.dtype),
            updates,
            max_dist,
            sums,
        )
        return out, ScaleByDistanceOverGradientsState(
            safe_increment(state.count), max_dist, sums, x0
        )

    return GradientTransformation(init_fn, update_fn)


class DoGState(NamedTuple):
    """``count`` (int32), the ``init_params``, and the scalars (float32 or wider) ``max_dist``
    (the largest distance from them) and ``sum_sq_norm_grads``."""

    count: jax.Array
    init_params: Any
    max_dist: jax.Array
    sum_sq_norm_grads: jax.Array


def _check_init_step(call: str, init_step: Any) -> None:
    if not (isinstance(init_step, tuple) and len(init_step) == 2):
        raise TypeError(
            f"{call}(init_step=...) must be a pair (kind, value) with kind one of "
            f"{', '.join(map(repr, _INIT_STEPS))}, got init_step={init_step!r}"
        )
    _check.one_of(call, "init_step[0]", init_step[0], _INIT_STEPS)
    _check.number(call, "init_step[1]", init_step[1], low=0.0)


def scale_by_dog(
    init_step: tuple[str, float] = ("heuristic", 1e-6), eps: float | jax.Array = 1e-8
) -> GradientTransformation:
    r"""DoG's step size, global over the whole tree (an ascent direction).

    .. math::
        \bar r_t = \max_{k < t} \|x_k - x_0\|, \quad G_t = \sum_{k \le t} \|g_k\|^2, \quad
        u_t = \frac{\max(\bar r_t, r_\epsilon)}{\sqrt{G_t + \epsilon}}\, g_t

    ``init_step = (kind, v)`` sets the start: ``("distance", v)``: :math:`r_\epsilon = v`;
    ``("heuristic", v)``: :math:`r_\epsilon = v (1 + \|x_0\|)` (the paper's suggestion, with
    :math:`v = 10^{-6}`, or :math:`10^{-4}` with batch norm); ``("learning_rate", v)``: the
    first step size is :math:`v` and :math:`r_\epsilon = 0`. :math:`x_0` is the params passed to
    the first update (see :func:`scale_by_distance_over_gradients`). As Optax's
    ``optax.contrib`` DoG.

    Args:
        init_step: ``(kind, value)`` as above.
        eps: :math:`\epsilon \ge 0`.

    Returns:
        A :class:`GradientTransformation` whose state is a :class:`DoGState`; ``update`` needs
        the params.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_dog()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)

    References:
        Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size
        Schedule" (ICML 2023), eq. (1).
    """
    call = "optgrad.scale_by_dog"
    _check_init_step(call, init_step)
    check_hyperparams(call, eps=("nonneg", eps))
    kind, value = init_step

    def init_fn(params):
        dtypes = [_wide(x) for x in jax.tree.leaves(params)]
        zero = jnp.zeros([], jnp.result_type(jnp.float32, *dtypes))
        return DoGState(zero_count(), zeros_like(params), zero, zero)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _needs_params(call, params)
        check_state_mirrors(call, updates, state.init_params, "init_params")
        first = state.count == 0
        x0 = jax.tree.map(
            lambda p, old: jnp.where(first, p.astype(old.dtype), old), params, state.init_params
        )
        if kind == "heuristic":
            start = as_scalar(value) * (1.0 + _safe_root(sum_of_squares(x0)))
        elif kind == "distance":
            start = as_scalar(value)
        else:
            start = jnp.zeros([], state.max_dist.dtype)
        moved = _safe_root(sum_of_squares(jax.tree.map(lambda p, a: p - a, params, x0)))
        dtype = state.max_dist.dtype
        max_dist = jnp.maximum(jnp.where(first, start, state.max_dist), moved).astype(dtype)
        sums = (state.sum_sq_norm_grads + sum_of_squares(updates)).astype(dtype)
        step = max_dist / jnp.sqrt(sums + as_scalar(eps))
        if kind == "learning_rate":
            step = jnp.where(first, as_scalar(value), step)
        out = jax.tree.map(lambda g: (g * step).astype(g.dtype), updates)
        return out, DoGState(safe_increment(state.count), x0, max_dist, sums)

    return GradientTransformation(init_fn, update_fn)


def dog(
    learning_rate: ScalarOrSchedule = 1.0,
    init_step: tuple[str, float] = ("heuristic", 1e-6),
    eps: ScalarOrSchedule = 1e-8,
    weight_decay: ScalarOrSchedule | None = None,
    mask: Any = None,
) -> GradientTransformation:
    r"""DoG, a parameter-free SGD: :math:`\theta_t = \theta_{t-1} - \eta_t u_t` with
    :math:`u_t` from :func:`scale_by_dog` applied to :math:`g_t + \lambda\theta_{t-1}`.

    :math:`\eta_t` = ``learning_rate`` is a multiplier (1: the paper's method, which needs no
    tuning). :math:`\lambda` = ``weight_decay`` (``None``: no decay stage) enters the gradient
    before the step size is computed, as in Optax's ``optax.contrib.dog``, whose arguments and
    defaults these are; ``mask`` selects the leaves to decay. The authors recommend averaging
    the iterates. PyTorch has no DoG.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule.
        init_step, eps: see :func:`scale_by_dog`.
        weight_decay: :math:`\lambda \ge 0` or ``None``.
        mask: which leaves to decay.

    Returns:
        A :class:`GradientTransformation`; ``update`` needs the params.

    References:
        Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size
        Schedule" (ICML 2023), arXiv:2302.12022.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.dog(init_step=("learning_rate", 0.1))
        >>> params = {"w": jnp.ones(2)}
        >>> [round(x, 6) for x in tx.update(params, tx.init(params), params)[0]["w"].tolist()]
        [-0.1, -0.1]
    """
    call = "optgrad.dog"
    _check_init_step(call, init_step)
    check_hyperparams(call, learning_rate=("lr", learning_rate), eps=("nonneg", eps))
    hyperparams = {"learning_rate": learning_rate, "eps": eps}
    if weight_decay is not None:
        check_hyperparams(call, weight_decay=("nonneg", weight_decay))
        hyperparams["weight_decay"] = weight_decay
    elif mask is not None:
        raise ValueError(f"{call}(mask=...) selects leaves for weight decay: pass weight_decay too")

    def build(learning_rate, eps, weight_decay=None):
        return chain(
            identity() if weight_decay is None else add_decayed_weights(weight_decay, mask),
            scale_by_dog(init_step, eps),
            scale_by_learning_rate(learning_rate),
        )

    return with_hyperparams(build, **hyperparams)
