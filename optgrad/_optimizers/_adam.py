"""The Adam family: ``scale_by_adam``, ``scale_by_amsgrad`` and the aliases built on them."""

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
    canonical_dtype,
    safe_increment,
    stochastic_round,
    zero_count,
    zeros_like,
)
from .._scale import scale_by_learning_rate
from .._update import check_state_mirrors
from .._weight_decay import add_decayed_weights
from ._common import check_hyperparams


class ScaleByAdamState(NamedTuple):
    """``count`` (int32), first moment ``mu`` and second moment ``nu``, mirroring the params."""

    count: jax.Array
    mu: Any
    nu: Any


def _moments(updates, mu, nu, b1, b2):
    """The new moments at full precision, computed first so the update derives from them."""
    mu = jax.tree.map(lambda g, m: b1 * m + (1.0 - b1) * g, updates, mu)
    nu = jax.tree.map(lambda g, v: b2 * v + (1.0 - b2) * abs_sq(g), updates, nu)
    return mu, nu


def _store(values, like, key):
    """``values`` cast to the dtypes of ``like``; stochastically rounded when ``key`` is given."""
    leaves, treedef = jax.tree.flatten(values)
    likes = treedef.flatten_up_to(like)
    if key is None:
        return treedef.unflatten([v.astype(l.dtype) for v, l in zip(leaves, likes)])
    keys = jax.random.split(key, len(leaves))
    rounded = [stochastic_round(v, l.dtype, k) for v, l, k in zip(leaves, likes, keys)]
    return treedef.unflatten(rounded)


def _rounding_keys(stochastic_rounding, count):
    """Two keys (for ``mu`` and ``nu``) that change every step, or ``None``s."""
    if not stochastic_rounding:
        return None, None
    key = jax.random.fold_in(jax.random.PRNGKey(0), count)
    return jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)


def scale_by_adam(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
    stochastic_rounding: bool = False,
) -> GradientTransformation:
    r"""Adam's direction: bias-corrected first moment over the root of the second.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
        u_t = \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t) + \epsilon_{root}} + \epsilon}

    With ``nesterov=True`` the first moment is replaced by Dozat's look-ahead
    :math:`\beta_1 m_t/(1-\beta_1^{t+1}) + (1-\beta_1) g_t/(1-\beta_1^t)` (NAdam). Bias
    corrections are computed as ``-expm1(t log b)``, within float32 rounding of float64.
    Kingma & Ba, "Adam: A Method for Stochastic Optimization" (2015), Algorithm 1; Dozat,
    "Incorporating Nesterov Momentum into Adam" (2016).

    Args:
        b1, b2: decay rates :math:`\beta_1, \beta_2` in ``[0, 1)``.
        eps: :math:`\epsilon`, added outside the square root.
        eps_root: :math:`\epsilon_{root}`, added inside it.
        mu_dtype, nu_dtype: dtypes of the moments (default: the params'); scalars stay float32.
            ``mu_dtype=nu_dtype=jnp.bfloat16`` halves the state (4 bytes per parameter).
        nesterov: use NAdam's first moment.
        stochastic_rounding: store bfloat16 moments with stochastic rounding
            (:func:`optgrad.stochastic_round`), so that small changes to a long average are
            not lost; the update itself always uses the unrounded moments.

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`ScaleByAdamState` (count,
            ``mu``, ``nu``).

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_adam()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)
    """
    check_hyperparams(
        "optgrad.scale_by_adam",
        b1=("unit", b1),
        b2=("unit", b2),
        eps=("nonneg", eps),
        eps_root=("nonneg", eps_root),
    )
    mu_dtype, nu_dtype = canonical_dtype(mu_dtype), canonical_dtype(nu_dtype)

    def init_fn(params):
        return ScaleByAdamState(
            zero_count(), zeros_like(params, mu_dtype), zeros_like(params, nu_dtype)
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors("optgrad.scale_by_adam", updates, state.mu, "mu")
        beta1, beta2, e, e_root = map(as_scalar, (b1, b2, eps, eps_root))
        count = safe_increment(state.count)
        c1 = 1.0 / bias_correction(beta1, count)
        c2 = 1.0 / bias_correction(beta2, count)
        c1_next = 1.0 / bias_correction(beta1, safe_increment(count))
        mu, nu = _moments(updates, state.mu, state.nu, beta1, beta2)

        def direction(g, m, v):
            if nesterov:
                m_hat = beta1 * m * c1_next + (1.0 - beta1) * g * c1
            else:
                m_hat = m * c1
            return (m_hat / (jnp.sqrt(v * c2 + e_root) + e)).astype(g.dtype)

        updates = jax.tree.map(direction, updates, mu, nu)
        key_mu, key_nu = _rounding_keys(stochastic_rounding, count)
        mu, nu = _store(mu, state.mu, key_mu), _store(nu, state.nu, key_nu)
        return updates, ScaleByAdamState(count, mu, nu)

    return GradientTransformation(init_fn, update_fn)


class ScaleByAmsgradState(NamedTuple):
    """``count``, moments ``mu`` and ``nu``, and the running maximum ``nu_max``."""

    count: jax.Array
    mu: Any
    nu: Any
    nu_max: Any


def scale_by_amsgrad(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    max_of_raw_nu: bool = False,
) -> GradientTransformation:
    r"""AMSGrad: Adam with the running maximum of the second moment in the denominator.

    Three conventions exist for where the bias correction of :math:`v` goes, and they give
    different trajectories:

    - default (Optax): :math:`\hat v^{max}_t = \max(\hat v^{max}_{t-1}, v_t/(1-\beta_2^t))`;
    - ``max_of_raw_nu=True`` (PyTorch): :math:`v^{max}_t = \max(v^{max}_{t-1}, v_t)`, then
      divided by :math:`1-\beta_2^t`;
    - ``bias_correction_nu=False`` (the paper): the maximum of the raw :math:`v`, uncorrected.

    Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond" (2018).

    Args:
        b1: decay of the first moment :math:`\beta_1` (default 0.9).
        b2: decay of the second moment :math:`\beta_2` (default 0.999).
        eps: :math:`\epsilon`, added outside the square root.
        eps_root: :math:`\epsilon_{root}`, added inside it (default 0).
        mu_dtype: dtype of the first moment (default: the params').
        bias_correction_mu: correct the first moment for its zero start (default ``True``).
        bias_correction_nu: correct the second moment likewise (default ``True``).
        max_of_raw_nu: keep the maximum of the uncorrected second moment, as torch does (default
            ``False``).

    Returns:
        A :class:`optgrad.GradientTransformation` with state :class:`ScaleByAmsgradState`.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.scale_by_amsgrad()
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)
    """
    check_hyperparams(
        "optgrad.scale_by_amsgrad",
        b1=("unit", b1),
        b2=("unit", b2),
        eps=("nonneg", eps),
        eps_root=("nonneg", eps_root),
    )
    mu_dtype = canonical_dtype(mu_dtype)

    def init_fn(params):
        return ScaleByAmsgradState(
            zero_count(), zeros_like(params, mu_dtype), zeros_like(params), zeros_like(params)
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_state_mirrors("optgrad.scale_by_amsgrad", updates, state.mu, "mu")
        beta1, beta2, e, e_root = map(as_scalar, (b1, b2, eps, eps_root))
        count = safe_increment(state.count)
        c1 = 1.0 / bias_correction(beta1, count) if bias_correction_mu else 1.0
        c2 = 1.0 / bias_correction(beta2, count) if bias_correction_nu else 1.0
        mu, nu = _moments(updates, state.mu, state.nu, beta1, beta2)
        if max_of_raw_nu:
            nu_max = jax.tree.map(
                lambda vm, v: jnp.maximum(vm, v).astype(vm.dtype), state.nu_max, nu
            )
            denom_nu = jax.tree.map(lambda v: v * c2, nu_max)
        else:
            nu_max = jax.tree.map(
                lambda vm, v: jnp.maximum(vm, v * c2).astype(vm.dtype), state.nu_max, nu
            )
            denom_nu = nu_max
        updates = jax.tree.map(
            lambda g, m, v: (m * c1 / (jnp.sqrt(v + e_root) + e)).astype(g.dtype),
            updates,
            mu,
            denom_nu,
        )
        return updates, ScaleByAmsgradState(
            count, _store(mu, state.mu, None), _store(nu, state.nu, None), nu_max
        )

    return GradientTransformation(init_fn, update_fn)


def _adam_rules(learning_rate, b1, b2, eps, eps_root):
    return {
        "learning_rate": ("lr", learning_rate),
        "b1": ("unit", b1),
        "b2": ("unit", b2),
        "eps": ("nonneg", eps),
        "eps_root": ("nonneg", eps_root),
    }


def adam(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""Adam: :math:`\theta_t = \theta_{t-1} - \eta_t\, u_t` with :math:`u_t` from
    :func:`scale_by_adam` (see there for the maths).

    Hyperparameters live in the state: ``optgrad.tree.get(state, "learning_rate")``.

    PyTorch equivalent: ``torch.optim.Adam`` without weight decay gives the same numbers (same
    :math:`\epsilon` placement, outside the root after the bias correction). Its
    ``weight_decay`` is an L2 term added to the gradient, and ``amsgrad=True`` is its own
    convention: use ``optgrad.torch.Adam`` for either.

    Args:
        learning_rate: the step size :math:`\eta`, a number or a schedule of the step count.
        b1: decay of the first moment :math:`\beta_1` (default 0.9).
        b2: decay of the second moment :math:`\beta_2` (default 0.999).
        eps: :math:`\epsilon`, added outside the square root.
        eps_root: :math:`\epsilon_{root}`, added inside it (default 0).
        mu_dtype: dtype of the first moment (default: the params').
        nesterov: use NAdam's look-ahead first moment (default ``False``).
        nu_dtype: dtype of the second moment (default: the params').

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the step count and both moments.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.adam(1e-3)
        >>> updates, state = tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.zeros(2)}))
        >>> [round(x, 6) for x in updates["w"].tolist()]
        [-0.001, -0.001]
    """
    check_hyperparams("optgrad.adam", **_adam_rules(learning_rate, b1, b2, eps, eps_root))

    def build(learning_rate, b1, b2, eps, eps_root):
        return chain(
            scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
            scale_by_learning_rate(learning_rate),
        )

    return with_hyperparams(
        build, learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root
    )


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""AdamW: Adam with decoupled weight decay.

    .. math:: \theta_t = \theta_{t-1} - \eta_t \left(u_t + \lambda\, \theta_{t-1}\right)

    with :math:`u_t` from :func:`scale_by_adam` and :math:`\lambda` = ``weight_decay``. The
    decay is multiplied by the learning rate, as in ``torch.optim.AdamW`` and Optax (the paper
    multiplies it by a separate schedule factor). Default :math:`\lambda = 10^{-4}` as in Optax;
    torch's default is ``1e-2``. ``mask`` selects the leaves to decay. Loshchilov & Hutter,
    "Decoupled Weight Decay Regularization" (2019).

    PyTorch equivalent: ``torch.optim.AdamW(lr, weight_decay=wd)`` is ``adamw(lr,
    weight_decay=wd)`` (pass torch's default ``1e-2`` explicitly); ``optgrad.torch.AdamW``
    takes torch's names and defaults, and its ``amsgrad=True``.

    Args:
        learning_rate: the step size :math:`\eta`, a number or a schedule of the step count.
        b1: decay of the first moment :math:`\beta_1` (default 0.9).
        b2: decay of the second moment :math:`\beta_2` (default 0.999).
        eps: :math:`\epsilon`, added outside the square root.
        eps_root: :math:`\epsilon_{root}`, added inside it (default 0).
        mu_dtype: dtype of the first moment (default: the params').
        weight_decay: :math:`\lambda`, the decoupled decay rate (default ``1e-4``).
        mask: a tree of booleans (or a function of the params giving one) selecting the leaves to
            decay; ``None`` decays all.
        nesterov: use NAdam's look-ahead first moment (default ``False``).
        nu_dtype: dtype of the second moment (default: the params').

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the step count and both moments.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.adamw(0.5, weight_decay=0.5)
        >>> params = {"w": jnp.ones(2)}
        >>> updates, _ = tx.update({"w": jnp.zeros(2)}, tx.init(params), params)
        >>> updates["w"].tolist()
        [-0.25, -0.25]
    """
    rules = _adam_rules(learning_rate, b1, b2, eps, eps_root)
    check_hyperparams("optgrad.adamw", weight_decay=("nonneg", weight_decay), **rules)

    def build(learning_rate, b1, b2, eps, eps_root, weight_decay):
        return chain(
            scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
            add_decayed_weights(weight_decay, mask),
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


def nadam(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    mu_dtype: Any = None,
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""NAdam as in Optax: :func:`adam` with ``nesterov=True`` (Dozat, 2016).

    This is Dozat's algorithm with a constant momentum :math:`\beta_1`; ``torch.optim.NAdam``
    uses a momentum schedule :math:`\mu_t = \beta_1 (1 - \tfrac12 0.96^{t\psi})` instead and
    gives different numbers.

    PyTorch equivalent: none with these numbers; ``torch.optim.NAdam``'s momentum-decay schedule
    (``momentum_decay=4e-3``) is ``optgrad.torch.NAdam``.

    Args:
        learning_rate: the step size :math:`\eta`, a number or a schedule of the step count.
        b1: decay of the first moment :math:`\beta_1` (default 0.9).
        b2: decay of the second moment :math:`\beta_2` (default 0.999).
        eps: :math:`\epsilon`, added outside the square root.
        eps_root: :math:`\epsilon_{root}`, added inside it (default 0).
        mu_dtype: dtype of the first moment (default: the params').
        nu_dtype: dtype of the second moment (default: the params').

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the step count and both moments.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.nadam(1e-3)
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)
    """
    check_hyperparams("optgrad.nadam", **_adam_rules(learning_rate, b1, b2, eps, eps_root))
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=True, nu_dtype=nu_dtype)


def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> GradientTransformation:
    r"""AMSGrad (Reddi et al., 2018): :math:`\theta_t = \theta_{t-1} - \eta_t u_t` with
    :math:`u_t` from :func:`scale_by_amsgrad`, Optax's convention (the maximum of the
    bias-corrected second moment).

    PyTorch equivalent: ``torch.optim.Adam(amsgrad=True)`` (and TensorFlow's
    ``Adam(amsgrad=True)``) keep the maximum of the *raw* :math:`v_t` and divide it by
    :math:`1-\beta_2^t` afterwards; optgrad's ``amsgrad`` follows Optax (maximum of the
    corrected :math:`v_t / (1-\beta_2^t)`), and the trajectories differ once the maximum binds.
    For torch's numbers use ``optgrad.torch.Adam(amsgrad=True)`` (or
    ``scale_by_amsgrad(max_of_raw_nu=True)``).

    Args:
        learning_rate: the step size :math:`\eta`, a number or a schedule of the step count.
        b1: decay of the first moment :math:`\beta_1` (default 0.9).
        b2: decay of the second moment :math:`\beta_2` (default 0.999).
        eps: :math:`\epsilon`, added outside the square root.
        eps_root: :math:`\epsilon_{root}`, added inside it (default 0).
        mu_dtype: dtype of the first moment (default: the params').
        bias_correction_mu: correct the first moment for its zero start (default ``True``).
        bias_correction_nu: correct the second moment likewise (default ``True``).

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the step count, the moments and
            the running maximum.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.amsgrad(1e-3)
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, tx.init(params), params)
        >>> updates["w"].shape
        (2,)
    """
    check_hyperparams("optgrad.amsgrad", **_adam_rules(learning_rate, b1, b2, eps, eps_root))

    def build(learning_rate, b1, b2, eps, eps_root):
        return chain(
            scale_by_amsgrad(
                b1, b2, eps, eps_root, mu_dtype, bias_correction_mu, bias_correction_nu
            ),
            scale_by_learning_rate(learning_rate),
        )

    return with_hyperparams(
        build, learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root
    )


def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    eps_root: ScalarOrSchedule = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
    r"""NAdamW as in Optax: :func:`adamw` with ``nesterov=True``.

    .. math:: \theta_t = \theta_{t-1} - \eta_t \left(u_t + \lambda\, \theta_{t-1}\right)

    with :math:`u_t` the NAdam direction of :func:`scale_by_adam` (Dozat's look-ahead first
    moment with a constant :math:`\beta_1`) and decoupled decay :math:`\lambda` =
    ``weight_decay`` on the leaves selected by ``mask``. Dozat (2016); Loshchilov & Hutter
    (2019).

    PyTorch equivalent: none with these numbers; ``torch.optim.NAdam(decoupled_weight_decay=
    True)`` adds a momentum-decay schedule, see ``optgrad.torch.NAdam``.

    Args:
        learning_rate: the step size :math:`\eta`, a number or a schedule of the step count.
        b1: decay of the first moment :math:`\beta_1` (default 0.9).
        b2: decay of the second moment :math:`\beta_2` (default 0.999).
        eps: :math:`\epsilon`, added outside the square root.
        eps_root: :math:`\epsilon_{root}`, added inside it (default 0).
        mu_dtype: dtype of the first moment (default: the params').
        weight_decay: :math:`\lambda`, the decoupled decay rate (default ``1e-4``).
        mask: a tree of booleans (or a function of the params giving one) selecting the leaves to
            decay; ``None`` decays all.
        nu_dtype: dtype of the second moment (default: the params').

    Returns:
        A :class:`optgrad.GradientTransformation` whose state holds the step count and both moments.

    Example:
        >>> import jax.numpy as jnp, optgrad as og
        >>> tx = og.nadamw(1e-3, weight_decay=0.0)
        >>> params = {"w": jnp.zeros(2)}
        >>> updates, _ = tx.update({"w": jnp.ones(2)}, tx.init(params), params)
        >>> [round(x, 6) for x in updates["w"].tolist()]  # Nesterov: 1 + 0.9 * 0.1 / 0.19
        [-0.001474, -0.001474]
    """
    rules = _adam_rules(learning_rate, b1, b2, eps, eps_root)
    check_hyperparams("optgrad.nadamw", weight_decay=("nonneg", weight_decay), **rules)
    return adamw(
        learning_rate,
        b1,
        b2,
        eps,
        eps_root,
        mu_dtype,
        weight_decay,
        mask,
        nesterov=True,
        nu_dtype=nu_dtype,
    )
