"""PyTorch's ``torch.optim.lr_scheduler`` as pure schedules.

Each class here is named, and takes the arguments (names and defaults), of the PyTorch
scheduler it reproduces, except that it takes the base learning rate ``lr`` instead of an
optimizer, and has no ``last_epoch``: it is a frozen, stateless schedule, a callable
``count -> float32 learning rate`` where ``count`` is the number of optimizer updates already
applied (the step count that optgrad optimizers pass to their schedules), safe under
``jax.jit`` and ``jax.vmap``. Resuming is free: evaluate at the restored count.
``CyclicLR`` and ``OneCycleLR`` also expose the momentum PyTorch cycles (``.momentum``,
``.betas()``). ``ReduceLROnPlateau``, which depends on the losses, is instead a gradient
transformation wrapped around the optimizer it drives. ``SWALR`` is in
:mod:`optgrad.torch.swa_utils`.

PyTorch's epoch-based schedulers are stepped by the training loop, usually once per epoch::

    for epoch in range(epochs):
        for batch in loader:      # steps_per_epoch optimizer steps
            ...; optimizer.step()
        scheduler.step()

The keyword-only ``steps_per_epoch`` (default 1: the scheduler is stepped after every
update) maps the update count to PyTorch's epoch counter, ``epoch = count //
steps_per_epoch``, so the learning rate used for update ``count`` is exactly the one the
PyTorch loop above uses for it. (``OneCycleLR``, stepped per batch, keeps PyTorch's meaning
of ``steps_per_epoch``: ``total_steps = epochs * steps_per_epoch``.)

Values are computed from float64 constants with an exact float32 split of the exponent
(``base ** n`` to ~1.5 float32 ulp), so they match PyTorch's float64 chained
multiplications to float32 rounding even after tens of thousands of decays.
"""

from ._plateau import ReduceLROnPlateau as ReduceLROnPlateau
from ._plateau import ReduceLROnPlateauState as ReduceLROnPlateauState
from ._schedulers_compose import ChainedScheduler as ChainedScheduler
from ._schedulers_compose import SequentialLR as SequentialLR
from ._schedulers_cosine import CosineAnnealingLR as CosineAnnealingLR
from ._schedulers_cosine import CosineAnnealingWarmRestarts as CosineAnnealingWarmRestarts
from ._schedulers_cyclic import CycledMomentum as CycledMomentum
from ._schedulers_cyclic import CyclicLR as CyclicLR
from ._schedulers_cyclic import OneCycleLR as OneCycleLR
from ._schedulers_decay import ConstantLR as ConstantLR
from ._schedulers_decay import ExponentialLR as ExponentialLR
from ._schedulers_decay import LambdaLR as LambdaLR
from ._schedulers_decay import LinearLR as LinearLR
from ._schedulers_decay import MultiplicativeLR as MultiplicativeLR
from ._schedulers_decay import MultiStepLR as MultiStepLR
from ._schedulers_decay import PolynomialLR as PolynomialLR
from ._schedulers_decay import StepLR as StepLR
