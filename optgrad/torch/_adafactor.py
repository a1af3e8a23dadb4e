"""``torch.optim.Adafactor``: torch's variant of the factored second-moment optimizer."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _check
from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import as_scalar, safe_increment, zero_count, zeros_like
from .._optimizers._common import check_hyperparams
from .._update import check_state_mirrors
from ._optim import maximize_first
from ._rounding import lerp


class AdafactorState(NamedTuple):
    """``count`` (int32) and torch's per-parameter statistics, each a tree mirroring the params:
    ``row_var`` (shape ``[..., rows, 1]``) and ``col_var`` (``[..., 1, cols]``) for parameters
    of two or more dimensions, ``variance`` (the parameter's shape) for the others; an unused
    entry is a float32 scalar 0."""

    count: jax.Array
    row_var: Any
    col_var: Any
    variance: Any


def _factored(x: Any) -> bool:
    return len(x.shape) >= 2


def _placeholder(x: Any) -> jax.Array:
    del x
    return zeros_like(jax.ShapeDtypeStruct((), jnp.float32))


def _shaped(x: Any, shape: tuple[int, ...]) -> jax.Array:
    return zeros_like(jax.ShapeDtypeStruct(shape, x.dtype))


def _adafactor_step(
    lr: Any, beta2_decay: Any, eps: Any, d: Any, weight_decay: Any
) -> GradientTransformation:
    """The whole Adafactor step, sign and decoupled weight decay included."""
    call = "optgrad.torch.Adafactor"

    def init_fn(params):
        def rows(p):
            return _shaped(p, (*p.shape[:-1], 1)) if _factored(p) else _placeholder(p)

        def cols(p):
            return _shaped(p, (*p.shape[:-2], 1, p.shape[-1])) if _factored(p) else _placeholder(p)

        variance = jax.tree.map(
            lambda p: _placeholder(p) if _factored(p) else zeros_like(p), params
        )
        return AdafactorState(
            zero_count(), jax.tree.map(rows, params), jax.tree.map(cols, params), variance
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(
                f"{call}.update needs the params: call `tx.update(grads, state, params)`"
            )
        check_state_mirrors(call, updates, state.variance, "variance")
        gamma, decay, clip, wd = map(as_scalar, (lr, beta2_decay, d, weight_decay))
        eps1, eps2 = eps
        eps2 = as_scalar(eps2)
        count = safe_increment(state.count)
        t = count.astype(jnp.float32)
        weight = t**decay  # 1 - beta2_t; 1 at t = 1
        rho = jnp.minimum(gamma, 1.0 / jnp.sqrt(t))

        def one(g, p, row, col, var):
            e1 = jnp.finfo(p.dtype).eps if eps1 is None else as_scalar(eps1)
            g2 = jnp.square(g.astype(jnp.promote_types(g.dtype, jnp.float32)))
            p32 = p.astype(g2.dtype)
            scale = jnp.maximum(eps2, jnp.sqrt(jnp.mean(jnp.square(p32)))) * rho
            if _factored(p):
                row = lerp(row, jnp.mean(g2, axis=-1, keepdims=True), weight)
                col = lerp(col, jnp.mean(g2, axis=-2, keepdims=True), weight)
                norm = jnp.maximum(jnp.mean(row, axis=-2, keepdims=True), e1)
                estimate = row * col / norm
            else:
                var = lerp(var, g2, weight)
                estimate = var
            u = g / jnp.sqrt(jnp.maximum(estimate, e1 * e1))
            denom = jnp.maximum(1.0, jnp.sqrt(jnp.mean(jnp.square(u))) / clip)
            step = -(scale / denom) * u - gamma * wd * p32
            return step.astype(g.dtype), row, col, var

        leaves, treedef = jax.tree.flatten(updates)
        rest = [
            treedef.flatten_up_to(x) for x in (params, state.row_var, state.col_var, state.variance)
        ]
        results = [one(*args) for args in zip(leaves, *rest)]
        out, rows, cols, variance = (treedef.unflatten(list(x)) for x in zip(*results))
        cast = lambda new, like: jax.tree.map(lambda n, l: n.astype(l.dtype), new, like)  # noqa: E731
        return out, AdafactorState(
            count,
            cast(rows, state.row_var),
            cast(cols, state.col_var),
            cast(variance, state.variance),
        )

    return GradientTransformation(init_fn, update_fn)


def Adafactor(
    lr: ScalarOrSchedule = 1e-2,
    beta2_decay: ScalarOrSchedule = -0.8,
    eps: tuple[ScalarOrSchedule | None, ScalarOrSchedule] = (None, 1e-3),
    d: ScalarOrSchedule = 1.0,
    weight_decay: ScalarOrSchedule = 0.0,
    *,
    foreach: Any = None,
    maximize: bool = False,
) -> GradientTransformation:
    r"""``torch.optim.Adafactor``, step for step (torch's variant, not Optax's).

    For a parameter of two or more dimensions the second moment is factored over its last two
    (rows :math:`R`, columns :math:`C`); others keep a full :math:`V`:

    .. math::
        \hat w_t &= t^{c}, \qquad \rho_t = \min(\gamma_t,\ 1/\sqrt t), \qquad
        \alpha_t = \max\left(\epsilon_2,\ \mathrm{RMS}(\theta_{t-1})\right) \rho_t \\
        R_t &= R_{t-1} + \hat w_t\,(\mathrm{mean}_{\text{cols}}(g_t^2) - R_{t-1}), \qquad
        C_t = C_{t-1} + \hat w_t\,(\mathrm{mean}_{\text{rows}}(g_t^2) - C_{t-1}) \\
        \hat V_t &= \frac{R_t C_t}{\max(\mathrm{mean}_{\text{rows}}(R_t),\ \epsilon_1)}
            \quad\text{or}\quad V_t = V_{t-1} + \hat w_t (g_t^2 - V_{t-1}) \\
        U_t &= \frac{g_t}{\sqrt{\max(\hat V_t,\ \epsilon_1^2)}}, \qquad
        \theta_t = (1 - \gamma_t\lambda)\,\theta_{t-1}
            - \frac{\alpha_t}{\max(1,\ \mathrm{RMS}(U_t)/d)}\, U_t

    with :math:`c` = ``beta2_decay`` (so :math:`1-\hat\beta_{2,t} = t^c`),
    :math:`(\epsilon_1, \epsilon_2)` = ``eps`` (:math:`\epsilon_1` = ``None`` means the
    machine epsilon of the parameter's dtype), :math:`d` = ``d`` (the update clipping
    threshold), :math:`\lambda` = ``weight_decay`` (decoupled, multiplied by ``lr``, not by
    :math:`\rho_t`); the gradient is negated first with ``maximize``. There is no first moment.
    The relative step :math:`\alpha_t` uses the parameter before the decay. Shazeer & Stern,
    "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost" (ICML 2018), Algorithms 4
    and 5, as torch implements them.

    Differences from Optax's ``adafactor`` (the T5 variant): torch factors every
    parameter of two or more dimensions (Optax only dimensions of at least 128), uses
    :math:`\min(\gamma, 1/\sqrt t)` for the relative step, and has no momentum or
    ``decay_rate`` offset; the two are not interchangeable.

    ``lr``, ``beta2_decay``, ``eps`` (a pair; ``None`` kept as ``None``), ``d`` and
    ``weight_decay`` are held in the state under these names and may be schedules of the update
    count. The statistics are ``row_var``, ``col_var`` and ``variance`` (see
    :class:`AdafactorState`). ``foreach`` is accepted and has no effect. Real parameters only.

    Args:
        lr: the learning rate :math:`\gamma`, a number or a schedule of the update count.
        beta2_decay: the exponent of the second-moment decay schedule.
        eps: the :math:`\epsilon` that keeps the denominator away from zero.
        d: the clipping threshold of the update RMS.
        weight_decay: the decay rate :math:`\lambda` (0 for none).
        foreach: accepted for torch compatibility; no effect.
        maximize: ascend the objective instead of descending it (default ``False``).

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the hyperparameters (by torch's
            names) and
            the optimizer's buffers.

    Example:
        >>> import jax, jax.numpy as jnp, optgrad as og
        >>> tx = og.torch.Adafactor(lr=0.01)
        >>> params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}
        >>> updates, state = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
        >>> og.tree.get(state, "row_var")["w"].shape, og.tree.get(state, "col_var")["w"].shape
        ((2, 1), (1, 3))
        >>> [round(x, 6) for x in updates["w"][0].tolist()]  # -max(1e-3, RMS(w)) * min(lr, 1)
        [-0.01, -0.01, -0.01]
    """
    del foreach
    call = "optgrad.torch.Adafactor"
    check_hyperparams(call, lr=("lr", lr), weight_decay=("nonneg", weight_decay))
    _check.scalar_or_schedule(call, "beta2_decay", beta2_decay)
    _check.number(call, "beta2_decay", beta2_decay, high=0.0)
    if not (isinstance(eps, (tuple, list)) and len(eps) == 2):
        raise ValueError(
            f"{call}(eps=...) must be a pair (eps1, eps2), e.g. eps=(None, 1e-3), got eps={eps!r}"
        )
    eps = tuple(eps)
    for i, e in enumerate(eps):
        if i == 0 and e is None:
            continue
        _check.scalar_or_schedule(call, f"eps[{i}]", e)
        _check.non_negative(call, f"eps[{i}]", e)
    _check.scalar_or_schedule(call, "d", d)
    _check.number(call, "d", d, low=1.0)

    def build(lr, beta2_decay, eps, d, weight_decay):
        return chain(
            *maximize_first(maximize), _adafactor_step(lr, beta2_decay, eps, d, weight_decay)
        )

    return with_hyperparams(
        build, lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay
    )
