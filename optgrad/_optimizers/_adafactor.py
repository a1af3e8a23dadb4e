"""Adafactor: factored second moments (row and column statistics) for matrices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _check
from .._accumulation import ema
from .._base import GradientTransformation, ScalarOrSchedule
from .._clipping import clip_by_block_rms
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import abs_sq, as_scalar, safe_increment, zero_count, zeros_like
from .._scale import scale, scale_by_learning_rate
from .._update import check_state_mirrors
from .._weight_decay import add_decayed_weights
from ._common import check_hyperparams
from ._trust_ratio import scale_by_param_block_rms


class FactoredState(NamedTuple):
    """``count`` (int32); per leaf, the row and column statistics ``v_row``, ``v_col`` of a
    factored leaf, or the full second moment ``v`` of an unfactored one (the unused fields of a
    leaf hold float scalars)."""

    count: jax.Array
    v_row: Any
    v_col: Any
    v: Any


def _decay_rate_pow(step: jax.Array, exponent: Any = 0.8) -> jax.Array:
    r"""Adafactor's schedule :math:`\hat\beta_{2,t} = 1 - t^{-c}` with ``t = step + 1``, and
    :math:`t \ge 1` (a ``step_offset`` beyond the count restarts the average; Optax's gives NaN)."""
    t = jnp.maximum(jnp.asarray(step + 1, jnp.float32), 1.0)
    return 1.0 - t ** (-as_scalar(exponent))


def _factored_axes(shape, factored: bool, min_dim_size_to_factor: int):
    """``(column_axis, row_axis)``: the second largest and the largest axis, or ``None`` when the
    leaf is not factored (fewer than 2 axes, or the second largest below the threshold)."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape, kind="stable")
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


def _real_dtype(dtype: Any) -> Any:
    return jnp.finfo(dtype).dtype


def _reduced_zeros(x: Any, axis: int) -> Any:
    """Zeros shaped like ``x`` without ``axis``, real, with the placement a reduction gets."""
    target = jax.eval_shape(lambda y: jnp.sum(abs_sq(y), axis=axis), x)
    return zeros_like(target)


def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: float | jax.Array = 0.8,
    step_offset: int | jax.Array = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: float | jax.Array = 1e-30,
    decay_rate_fn: Callable[[jax.Array, Any], jax.Array] = _decay_rate_pow,
) -> GradientTransformation:
    r"""Divides updates by a factored estimate of the root mean square gradient (Adafactor).

    For a leaf whose two largest axes (rows :math:`i`, columns :math:`j`) both have at least
    ``min_dim_size_to_factor`` entries, only row and column means of :math:`G^2 = g^2+\epsilon_1`
    are kept:

    .. math::
        R_t = \hat\beta_t R_{t-1} + (1-\hat\beta_t)\,\mathrm{mean}_j G^2_t, \quad
        C_t = \hat\beta_t C_{t-1} + (1-\hat\beta_t)\,\mathrm{mean}_i G^2_t, \quad
        u_t = g_t \Big/ \sqrt{R_t C_t / \mathrm{mean}_i R_t}

    (other axes are batch axes); other leaves keep the full
    :math:`V_t = \hat\beta_t V_{t-1} + (1-\hat\beta_t) G^2_t` and :math:`u_t = g_t/\sqrt{V_t}`.
    The decay :math:`\hat\beta_t` = ``decay_rate_fn(t - 1 - step_offset, decay_rate)``, by
    default :math:`1 - (t - \text{step\_offset})^{-0.8}`, so :math:`\hat\beta_1 = 0`. This is
    Algorithms 4 and 5 of the paper with means instead of sums (the same :math:`\hat V`). The
    statistics are computed in float32 or wider (:math:`\epsilon_1 = 10^{-30}` vanishes in
    float16) and stored in the params' real dtype. The update needs no params (Optax's asks
    for them); a leaf's factoring depends only on its shape.

    Args:
        factored: factor the statistics of leaves with at least two axes.
        decay_rate: the exponent :math:`c` of the default decay schedule.
        step_offset: subtracted from the step count (to restart the schedule when fine-tuning).
        min_dim_size_to_factor: the smallest second-largest axis that is factored.
        epsilon: :math:`\epsilon_1`, added to the squared gradient.
        decay_rate_fn: ``(step, decay_rate) -> decay``, ``step`` 0 on the first update.

    Returns:
        A :class:`GradientTransformation` whose state is a :class:`FactoredState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_factored_rms()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)

    References:
        Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost"
        (ICML 2018), arXiv:1804.04235.
    """
    call = "optgrad.scale_by_factored_rms"
    check_hyperparams(call, decay_rate=("nonneg", decay_rate), epsilon=("nonneg", epsilon))
    _check.number(call, "step_offset", step_offset)
    if isinstance(min_dim_size_to_factor, bool) or not isinstance(
        min_dim_size_to_factor, (int, np.integer)
    ):
        raise TypeError(
            f"{call}(min_dim_size_to_factor=...) must be an int, got {min_dim_size_to_factor!r}"
        )

    def axes_of(x):
        return _factored_axes(jnp.shape(x), factored, min_dim_size_to_factor)

    def init_fn(params):
        def scalar(x):
            return jnp.zeros([], _real_dtype(x.dtype))

        def row(x):
            axes = axes_of(x)
            return scalar(x) if axes is None else _reduced_zeros(x, axes[1])

        def col(x):
            axes = axes_of(x)
            return scalar(x) if axes is None else _reduced_zeros(x, axes[0])

        def full(x):
            if axes_of(x) is not None:
                return scalar(x)
            return zeros_like(x, _real_dtype(x.dtype))

        return FactoredState(
            zero_count(),
            jax.tree.map(row, params),
            jax.tree.map(col, params),
            jax.tree.map(full, params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.v, "v")
        beta = as_scalar(decay_rate_fn(state.count - step_offset, decay_rate))
        eps1 = as_scalar(epsilon)

        def one(g, v_row, v_col, v):
            sq = abs_sq(g) + eps1  # float32 or wider: eps1 is a float32 array
            axes = axes_of(g)
            if axes is None:
                new_v = beta * v + (1.0 - beta) * sq
                return g * jax.lax.rsqrt(new_v), v_row, v_col, new_v.astype(v.dtype)
            col_axis, row_axis = axes
            new_row = beta * v_row + (1.0 - beta) * jnp.mean(sq, axis=row_axis)
            new_col = beta * v_col + (1.0 - beta) * jnp.mean(sq, axis=col_axis)
            # `new_row` lost `row_axis`; the column axis of what remains:
            reduced_col = col_axis - 1 if col_axis > row_axis else col_axis
            row_mean = jnp.mean(new_row, axis=reduced_col, keepdims=True)
            row_factor = jax.lax.rsqrt(new_row / row_mean)
            col_factor = jax.lax.rsqrt(new_col)
            u = g * jnp.expand_dims(row_factor, row_axis) * jnp.expand_dims(col_factor, col_axis)
            return u, new_row.astype(v_row.dtype), new_col.astype(v_col.dtype), v

        leaves, treedef = jax.tree.flatten(updates)
        rest = [treedef.flatten_up_to(t) for t in (state.v_row, state.v_col, state.v)]
        out = [one(g, *r) for g, *r in zip(leaves, *rest)]
        u, v_row, v_col, v = (treedef.unflatten([o[k] for o in out]) for k in range(4))
        u = jax.tree.map(lambda x, g: x.astype(g.dtype), u, updates)
        return u, FactoredState(safe_increment(state.count), v_row, v_col, v)

    return GradientTransformation(init_fn, update_fn)


def adafactor(
    learning_rate: ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: float = 0.8,
    decay_offset: int = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: ScalarOrSchedule | None = 1.0,
    momentum: ScalarOrSchedule | None = None,
    dtype_momentum: Any = jnp.float32,
    weight_decay: ScalarOrSchedule | None = None,
    eps: ScalarOrSchedule = 1e-30,
    factored: bool = True,
    mask: Any = None,
) -> GradientTransformation:
    r"""Adafactor as in Optax (the T5 / Mesh-TensorFlow variant), a chain of

    :func:`scale_by_factored_rms` (:math:`u_t`), :func:`clip_by_block_rms` (each leaf's RMS at
    most ``clipping_threshold`` :math:`d`), the learning rate :math:`\eta_t`,
    :func:`scale_by_param_block_rms` (if ``multiply_by_parameter_scale``), :func:`ema` without
    debiasing (if ``momentum``), then weight decay :math:`\lambda` added *after* the learning
    rate (not multiplied by it):

    .. math::
        \theta_t = \theta_{t-1} - \Big(\mathrm{EMA}_{\beta_1}\big[\eta_t
        \max(\operatorname{rms}\theta_{t-1}, 10^{-3})\, u_t / \max(1, \operatorname{rms}(u_t)/d)
        \big] + \lambda\, \theta_{t-1}\Big).

    ``learning_rate=None`` means :math:`\eta = 1` (then the step is relative to the
    parameter scale). ``weight_decay`` and ``mask`` are Optax's ``weight_decay_rate`` and
    ``weight_decay_mask``, renamed to optgrad's one spelling.

    PyTorch: ``torch.optim.Adafactor`` is a different variant (every matrix factored, no
    update clipping, :math:`\hat\beta_t = 1 - t^{-0.8}` from step 1, :math:`\epsilon` on the
    RMS, relative step :math:`\min(\eta, 1/\sqrt t)`) and does not match this one; use
    ``optgrad.torch.Adafactor`` for it.

    Args:
        learning_rate: :math:`\eta_t` (``None``: 1).
        min_dim_size_to_factor, decay_rate, decay_offset, factored: see
            :func:`scale_by_factored_rms` (``decay_offset`` is its ``step_offset``; ``eps`` its
            ``epsilon``).
        multiply_by_parameter_scale: scale by each leaf's parameter RMS.
        clipping_threshold: :math:`d \ge 1`, or ``None`` for no clipping.
        momentum: :math:`\beta_1` in ``[0, 1]``, or ``None`` for none.
        dtype_momentum: dtype of the momentum buffer.
        weight_decay: :math:`\lambda \ge 0`, or ``None``.
        mask: which leaves to decay.

    Returns:
        A :class:`GradientTransformation`; ``update`` needs the params.

    References:
        Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost"
        (ICML 2018), arXiv:1804.04235.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.adafactor(0.1, multiply_by_parameter_scale=False)
        >>> params = {"w": jnp.zeros((2, 3))}
        >>> updates, _ = tx.update({"w": jnp.ones((2, 3))}, tx.init(params), params)
        >>> [round(x, 6) for x in updates["w"][0].tolist()]
        [-0.1, -0.1, -0.1]
    """
    call = "optgrad.adafactor"
    learning_rate = 1.0 if learning_rate is None else learning_rate
    check_hyperparams(call, learning_rate=("lr", learning_rate), decay_rate=("nonneg", decay_rate))
    check_hyperparams(call, eps=("nonneg", eps))
    hyperparams = {"learning_rate": learning_rate, "decay_rate": decay_rate, "eps": eps}
    if clipping_threshold is not None:
        _check.scalar_or_schedule(call, "clipping_threshold", clipping_threshold)
        _check.number(call, "clipping_threshold", clipping_threshold, low=1.0)
        hyperparams["clipping_threshold"] = clipping_threshold
    if momentum is not None:
        check_hyperparams(call, momentum=("closed_unit", momentum))
        hyperparams["momentum"] = momentum
    if weight_decay is not None:
        check_hyperparams(call, weight_decay=("nonneg", weight_decay))
        hyperparams["weight_decay"] = weight_decay
    elif mask is not None:
        raise ValueError(f"{call}(mask=...) selects leaves for weight decay: pass weight_decay too")

    def build(
        learning_rate, decay_rate, eps, clipping_threshold=None, momentum=None, weight_decay=None
    ):
        parts = [
            scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)
        ]
        if clipping_threshold is not None:
            parts.append(clip_by_block_rms(clipping_threshold))
        parts.append(scale_by_learning_rate(learning_rate, flip_sign=False))
        if multiply_by_parameter_scale:
            parts.append(scale_by_param_block_rms())
        if momentum is not None:
            parts.append(ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
        if weight_decay is not None:
            parts.append(add_decayed_weights(weight_decay, mask))
        parts.append(scale(-1.0))
        return chain(*parts)

    return with_hyperparams(build, **hyperparams)
