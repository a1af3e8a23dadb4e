"""Rectified Adam: momentum SGD while the second moment is too young, then rectified Adam."""

from __future__ import annotations

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
from ._adam import ScaleByAdamState
from ._common import check_hyperparams
from ._moments import cast_like, ema, real_full_like


def _rules(b1, b2, eps, eps_root, threshold):
    return {
        "b1": ("unit", b1),
        "b2": ("unit", b2),
        "eps": ("nonneg", eps),
        "eps_root": ("nonneg", eps_root),
        "threshold": ("nonneg", threshold),
    }


def _rho(b2: jax.Array, count: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""``(rho_t, rho_inf)``: the length of the approximated simple moving average.

    :math:`\rho_\infty = 2/(1-\beta_2) - 1` and :math:`\rho_t = \rho_\infty - 2t\beta_2^t /
    (1-\beta_2^t)` is, for small :math:`t`, a difference of two numbers near
    :math:`2/(1-\beta_2)`: in float32 for :math:`\beta_2 = 0.999` it is off by ~3e-4 at
    :math:`t = 6`, which moves the rectifier by ~1e-4. With :math:`\delta = 1-\beta_2`,
    :math:`\ell = -\log\beta_2` and :math:`x = t\ell`,
    :math:`\rho_t = 2(\ell-\delta)/(\delta\ell) - 1 + t - 2t\,R(x)` with
    :math:`R(x) = 1/\mathrm{expm1}(x) - 1/x + 1/2`; for :math:`\delta \le 0.1` and
    :math:`x < 1` every term is computed from its series (:math:`\ell - \delta =
    \sum_{k\ge2}\delta^k/k`; Bernoulli's series for :math:`R`, truncated after :math:`x^9`,
    the next term being under 1e-12), so :math:`\rho_t` keeps float32's relative precision
    (measured: ~1e-6 over :math:`\beta_2 \in [0, 0.99999]`, :math:`t \le 2\cdot10^4`).
    Elsewhere the direct form is that accurate already.
    """
    t = count.astype(jnp.float32)
    delta = 1.0 - b2  # exact in float32 for b2 >= 0.5
    rho_inf = 2.0 / delta - 1.0
    direct = rho_inf - 2.0 * t * jnp.exp(t * jnp.log(b2)) / bias_correction(b2, count)
    d = jnp.minimum(delta, 0.1)
    ell = -jnp.log1p(-d)
    x = jnp.minimum(t * ell, 1.0)
    x2 = x * x
    remainder = x * (
        1 / 12 + x2 * (-1 / 720 + x2 * (1 / 30240 + x2 * (-1 / 1209600 + x2 / 47900160)))
    )
    ell_minus_d = d * d * sum(d ** (k - 2) / k for k in range(2, 14))
    series = 2.0 * ell_minus_d / (d * ell) - 1.0 + t - 2.0 * t * remainder
    return jnp.where((delta <= 0.1) & (t * ell < 1.0), series, direct), rho_inf


def _rectifier(rho: jax.Array, rho_inf: jax.Array) -> jax.Array:
    """``r_t``; finite (zero) where ``rho_t < 4`` so that no NaN enters a branch not taken."""
    num = jnp.maximum((rho - 4.0) * (rho - 2.0) * rho_inf, 0.0)
    den = (rho_inf - 4.0) * (rho_inf - 2.0) * rho
    return jnp.sqrt(num / jnp.where(den > 0, den, 1.0))


def scale_by_radam(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    threshold: float | jax.Array = 5.0,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""Rectified Adam's direction.

    .. math::
        \rho_\infty = \frac{2}{1-\beta_2} - 1, \quad
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t}, \quad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}

    .. math::
        d_t = \begin{cases}
        r_t\, \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)
            & \rho_t \ge \text{threshold} \\
        \hat m_t & \text{otherwise}
        \end{cases}

    with Adam's moments and bias corrections :math:`\hat m_t, \hat v_t` (see
    :func:`scale_by_adam`; ``nesterov=True`` uses its look-ahead :math:`\hat m_t`).
    :math:`\rho_t` is computed so that it keeps float32's relative precision (see ``_rho``).

    Threshold semantics: Optax's, :math:`\rho_t \ge` ``threshold`` (default 5). The paper's
    Algorithm 2 rectifies when :math:`\rho_t > 4`; ``torch.optim.RAdam`` when
    :math:`\rho_t > 5`. Since :math:`\rho_t` is never exactly 5 for the usual :math:`\beta_2`,
    torch's rule is ``threshold=5`` and the paper's is ``threshold=4`` (these differ from each
    other in the first few steps). Complex gradients are supported.

    Args:
        b1, b2: decay rates :math:`\beta_1, \beta_2` in ``[0, 1)``.
        eps: :math:`\epsilon`, outside the root; ``eps_root``: :math:`\epsilon_{root}`, inside.
        threshold: the :math:`\rho_t` from which the adaptive step is used.
        nesterov: use Dozat's look-ahead first moment.

    Returns:
        A :class:`optgrad.GradientTransformation` with state
        :class:`optgrad.ScaleByAdamState` (as in Optax).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_radam()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)

    References:
        Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond" (ICLR 2020),
        Algorithm 2.
    """
    call = "optgrad.scale_by_radam"
    check_hyperparams(call, **_rules(b1, b2, eps, eps_root, threshold))

    def init_fn(params):
        return ScaleByAdamState(zero_count(), zeros_like(params), real_full_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors(call, updates, state.mu, "mu")
        beta1, beta2, e, e_root, thresh = map(as_scalar, (b1, b2, eps, eps_root, threshold))
        count = safe_increment(state.count)
        c1 = 1.0 / bias_correction(beta1, count)
        c2 = 1.0 / bias_correction(beta2, count)
        c1_next = 1.0 / bias_correction(beta1, safe_increment(count))
        rho, rho_inf = _rho(beta2, count)
        rectify = rho >= thresh
        r = _rectifier(rho, rho_inf)
        mu = ema(updates, state.mu, beta1)
        nu = ema(jax.tree.map(abs_sq, updates), state.nu, beta2)

        def direction(g, m, v):
            m_hat = beta1 * m * c1_next + (1.0 - beta1) * g * c1 if nesterov else m * c1
            scale = jnp.where(rectify, r / (jnp.sqrt(v * c2 + e_root) + e), 1.0)
            return (m_hat * scale).astype(g.dtype)

        updates = jax.tree.map(direction, updates, mu, nu)
        return updates, ScaleByAdamState(count, cast_like(mu, state.mu), cast_like(nu, state.nu))

    return GradientTransformation(init_fn, update_fn)


def radam(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    threshold: ScalarOrSchedule = 5.0,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""RAdam: :math:`\theta_t = \theta_{t-1} - \eta_t d_t` with :math:`d_t` from
    :func:`scale_by_radam` (see there for the maths and the threshold conventions).

    PyTorch equivalent: ``torch.optim.RAdam`` differs in two ways: it rectifies when
    :math:`\rho_t > 5` (the same steps as ``threshold=5`` here), and it adds :math:`\epsilon`
    to :math:`\sqrt{v_t}` before the bias correction, i.e. it uses
    :math:`\epsilon\sqrt{1-\beta_2^t}` where optgrad and Optax use :math:`\epsilon`; its
    ``weight_decay`` is an L2 term (``decoupled_weight_decay=True`` for AdamW-style decay).
    For torch's numbers use ``optgrad.torch.RAdam``. Hyperparameters live in the state
    (``threshold`` included).

    Args:
        learning_rate: :math:`\eta_t`, a number or a schedule of the step count.
        b1, b2, eps, eps_root, threshold, nesterov: as in :func:`scale_by_radam`.

    Returns:
        A :class:`optgrad.GradientTransformation`.

    References:
        Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond" (ICLR 2020).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.radam(0.1)  # the first steps are momentum SGD
        >>> updates, _ = tx.update({"w": jnp.array([1.0, -2.0])}, tx.init({"w": jnp.zeros(2)}))
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.1, 0.2]
    """
    rules = _rules(b1, b2, eps, eps_root, threshold)
    check_hyperparams("optgrad.radam", learning_rate=("lr", learning_rate), **rules)

    def build(learning_rate, b1, b2, eps, eps_root, threshold):
        return chain(
            scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov),
            scale_by_learning_rate(learning_rate),
        )

    return with_hyperparams(
        build,
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        threshold=threshold,
    )
