"""AdaBelief: Adam with the variance of the gradient around its moving average."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._base import GradientTransformation, ScalarOrSchedule
from .._combine import chain
from .._hyperparams import with_hyperparams
from .._numerics import (
    abs_sq,
    as_scalar,
    bias_correction,
    safe_increment,
    zero_count,
    zeros_like,
)
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from ._common import check_hyperparams
from ._moments import cast_like, ema, real_full_like


class ScaleByBeliefState(NamedTuple):
    """``count`` (int32), first moment ``mu`` and belief ``nu`` (real), like the params."""

    count: jax.Array
    mu: Any
    nu: Any


def _rules(b1, b2, eps, eps_root):
    return {
        "b1": ("unit", b1),
        "b2": ("unit", b2),
        "eps": ("nonneg", eps),
        "eps_root": ("nonneg", eps_root),
    }


def scale_by_belief(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-16,
    eps_root: float | jax.Array = 1e-16,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""AdaBelief's direction: the first moment over the root of the "belief" in it.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        s_t = \beta_2 s_{t-1} + (1-\beta_2) |g_t - m_t|^2 + \epsilon_{root}, \quad
        d_t = \frac{m_t / (1-\beta_1^t)}{\sqrt{s_t / (1-\beta_2^t)} + \epsilon}

    :math:`\epsilon_{root}` is added once, into the stored :math:`s_t` (so it accumulates over
    steps), as in the authors' implementation and Optax. The paper's Algorithm 2 adds
    :math:`\epsilon` a second time inside the bias correction, :math:`(s_t +
    \epsilon)/(1-\beta_2^t)`; optgrad follows Optax (the two differ by
    :math:`\epsilon_{root}/(1-\beta_2^t)` under the root, nothing at the default ``1e-16``).
    ``nesterov=True`` uses the look-ahead first moment of :func:`scale_by_adam`. Complex
    gradients are supported (:math:`|\cdot|^2` is the squared modulus).

    Args:
        b1, b2: decay rates :math:`\beta_1, \beta_2` in ``[0, 1)``.
        eps: :math:`\epsilon`, outside the root.
        eps_root: :math:`\epsilon_{root}`, added to :math:`s_t`.
        nesterov: use Dozat's look-ahead first moment.

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`ScaleByBeliefState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_belief()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)

    References:
        Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
        Gradients" (NeurIPS 2020), Algorithm 2.
    """
    call = "optgrad.scale_by_belief"
    check_hyperparams(call, **_rules(b1, b2, eps, eps_root))

    def init_fn(params):
        return ScaleByBeliefState(zero_count(), zeros_like(params), real_full_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.mu, "mu")
        beta1, beta2, e, e_root = map(as_scalar, (b1, b2, eps, eps_root))
        count = safe_increment(state.count)
        c1 = 1.0 / bias_correction(beta1, count)
        c2 = 1.0 / bias_correction(beta2, count)
        c1_next = 1.0 / bias_correction(beta1, safe_increment(count))
        mu = ema(updates, state.mu, beta1)
        nu = jax.tree.map(
            lambda g, m, s: beta2 * s + (1.0 - beta2) * abs_sq(g - m) + e_root,
            updates,
            mu,
            state.nu,
        )

        def direction(g, m, s):
            m_hat = beta1 * m * c1_next + (1.0 - beta1) * g * c1 if nesterov else m * c1
            return (m_hat / (jnp.sqrt(s * c2) + e)).astype(g.dtype)

        updates = jax.tree.map(direction, updates, mu, nu)
        return updates, ScaleByBeliefState(count, cast_like(mu, state.mu), cast_like(nu, state.nu))

    return GradientTransformation(init_fn, update_fn)


def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-16,
    eps_root: ScalarOrSchedule = 1e-16,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""AdaBelief: :math:`\theta_t = \theta_{t-1} - \eta_t d_t` with :math:`d_t` from
    :func:`scale_by_belief` (see there for the maths and the one difference from the paper).

    Optax 0.2.8's signature: no weight decay (add ``optgrad.add_decayed_weights`` in a
    ``chain`` before the learning rate for decoupled decay). ``torch.optim`` has no
    AdaBelief. Hyperparameters live in the state.

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule of the step count.
        b1, b2, eps, eps_root, nesterov: as in :func:`scale_by_belief`.

    Returns:
        A :class:`optgrad.GradientTransformation`.

    References:
        Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
        Gradients" (NeurIPS 2020).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.adabelief(0.1)
        >>> updates, _ = tx.update({"w": jnp.array([1.0, -2.0])}, tx.init({"w": jnp.zeros(2)}))
        >>> [round(x, 4) for x in updates["w"].tolist()]
        [-0.1111, 0.1111]
    """
    rules = _rules(b1, b2, eps, eps_root)
    check_hyperparams("optgrad.adabelief", learning_rate=("lr", learning_rate), **rules)

    def build(learning_rate, b1, b2, eps, eps_root):
        return chain(
            scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov),
            scale_by_learning_rate(learning_rate),
        )

    return with_hyperparams(
        build, learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root
    )
