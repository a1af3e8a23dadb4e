"""NovoGrad: momentum on gradients normalised by a per-leaf (layer-wise) second moment."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._masking import resolve_mask, where_mask
from .._numerics import (
    abs_sq,
    as_scalar,
    canonical_dtype,
    full_like,
    safe_increment,
    zero_count,
    zeros_like,
)
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from ._common import check_hyperparams
from ._moments import cast_like, real_dtype


class ScaleByNovogradState(NamedTuple):
    """``count`` (int32), the momentum ``mu`` (like the params) and one second moment ``nu``
    per leaf (a real scalar, at least float32)."""

    count: jax.Array
    mu: Any
    nu: Any


def _rules(b1, b2, eps, eps_root, weight_decay):
    return {
        "b1": ("unit", b1),
        "b2": ("unit", b2),
        "eps": ("nonneg", eps),
        "eps_root": ("nonneg", eps_root),
        "weight_decay": ("nonneg", weight_decay),
    }


def _scalar_like(x: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct((), jnp.promote_types(real_dtype(x.dtype), jnp.float32))


def scale_by_novograd(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.25,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    weight_decay: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    *,
    mask: Any = None,
) -> GradientTransformation:
    r"""NovoGrad's direction, weight decay included (it enters the momentum).

    For each leaf (layer) :math:`l`, with :math:`\|\cdot\|` the norm over the leaf:

    .. math::
        v^l_1 = \|g^l_1\|^2, \quad v^l_t = \beta_2 v^l_{t-1} + (1-\beta_2) \|g^l_t\|^2,

    .. math::
        m^l_t = \beta_1 m^l_{t-1} + \frac{g^l_t}{\sqrt{v^l_t + \epsilon_{root}} + \epsilon}
            + \lambda\, \theta^l_{t-1}, \quad d^l_t = m^l_t

    with :math:`m_0 = 0` and :math:`\lambda` = ``weight_decay`` on the leaves selected by
    ``mask`` (an optgrad addition; Optax decays every leaf). Norms are taken in at least
    float32, so float16 leaves neither overflow nor underflow. Complex gradients are supported.

    Args:
        b1: momentum :math:`\beta_1` in ``[0, 1)``.
        b2: decay of the second moment :math:`\beta_2` in ``[0, 1)``.
        eps: :math:`\epsilon`, outside the root; ``eps_root``: :math:`\epsilon_{root}`, inside.
        weight_decay: :math:`\lambda \ge 0`.
        mu_dtype: dtype of the momentum (default: the params').
        mask: which leaves to decay (default: all).

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`ScaleByNovogradState`;
        ``update`` needs the params.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_novograd()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)

    References:
        Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive Moments for
        Training of Deep Networks" (arXiv:1905.11286, 2019), Algorithm 1.
    """
    call = "optgrad.scale_by_novograd"
    check_hyperparams(call, **_rules(b1, b2, eps, eps_root, weight_decay))
    mu_dtype = canonical_dtype(mu_dtype)

    def init_fn(params):
        if mask is not None:
            resolve_mask(call, mask, params)
        nu = full_like(jax.tree.map(_scalar_like, params), 0.0)
        return ScaleByNovogradState(zero_count(), zeros_like(params, mu_dtype), nu)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError(
                f"{call}.update needs the params: call `tx.update(grads, state, params)`"
            )
        check_state_mirrors(call, updates, state.mu, "mu")
        beta1, beta2, e, e_root, wd = map(as_scalar, (b1, b2, eps, eps_root, weight_decay))
        first = state.count == 0
        masks = (
            resolve_mask(call, mask, params)
            if mask is not None
            else jax.tree.map(lambda _: True, params)
        )

        def second(g, v):
            sq = jnp.sum(abs_sq(g.astype(jnp.promote_types(g.dtype, jnp.float32))))
            return jnp.where(first, sq, beta2 * v + (1.0 - beta2) * sq).astype(v.dtype)

        nu = jax.tree.map(second, updates, state.nu)

        def momentum(g, p, m, v, keep):
            normalised = g / (jnp.sqrt(v + e_root) + e)
            return beta1 * m + where_mask(keep, normalised + wd * p, normalised)

        mu = jax.tree.map(momentum, updates, params, state.mu, nu, masks)
        updates = jax.tree.map(lambda g, m: m.astype(g.dtype), updates, mu)
        return updates, ScaleByNovogradState(
            safe_increment(state.count), cast_like(mu, state.mu), nu
        )

    return GradientTransformation(init_fn, update_fn)


def novograd(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.25,
    eps: ScalarOrSchedule = 1e-6,
    eps_root: ScalarOrSchedule = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> GradientTransformation:
    r"""NovoGrad: :math:`\theta_t = \theta_{t-1} - \eta_t m_t` with :math:`m_t` from
    :func:`scale_by_novograd` (see there for the maths).

    The weight decay is inside the momentum, as in the paper and Optax (not decoupled);
    ``mask`` selects the leaves to decay (an optgrad addition, appended to Optax's
    signature). ``torch.optim`` has no NovoGrad. Hyperparameters live in the state.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule of the step count.
        b1, b2, eps, eps_root, weight_decay, mask: as in :func:`scale_by_novograd`.

    Returns:
        A :class:`optgrad.GradientTransformation`; ``update`` needs the params.

    References:
        Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive Moments for
        Training of Deep Networks" (arXiv:1905.11286, 2019).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.novograd(0.1)
        >>> params = {"w": jnp.zeros(2)}
        >>> updates, _ = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init(params), params)
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.06, -0.08]
    """
    rules = _rules(b1, b2, eps, eps_root, weight_decay)
    check_hyperparams("optgrad.novograd", learning_rate=("lr", learning_rate), **rules)

    def build(learning_rate, b1, b2, eps, eps_root, weight_decay):
        return chain(
            scale_by_novograd(b1, b2, eps, eps_root, weight_decay, mask=mask),
            scale_by_learning_rate(learning_rate),
        )

    return with_hyperparams(
        build,
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        weight_decay=weight_decay,
    )
