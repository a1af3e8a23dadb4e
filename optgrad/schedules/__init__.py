"""Learning-rate (and other hyperparameter) schedules: functions of the step count.

Each factory checks its arguments when called and returns a small callable object
``count -> value`` (float32), safe under ``jax.jit`` and ``jax.vmap``, whose ``repr`` is the
call that built it (:func:`describe`). Where Optax has the schedule, the names, arguments and
defaults are those of Optax 0.2.8; differences are listed in each docstring. :func:`values`
and :func:`plot` show a schedule before training with it.
"""

from ._combine import per_epoch as per_epoch
from ._combine import product_schedule as product_schedule
from ._constant import constant_schedule as constant_schedule
from ._cosine import cosine_decay_schedule as cosine_decay_schedule
from ._cosine import sgdr_schedule as sgdr_schedule
from ._cosine import warmup_cosine_decay_schedule as warmup_cosine_decay_schedule
from ._cyclic import cyclic_schedule as cyclic_schedule
from ._described import describe as describe
from ._exponential import exponential_decay as exponential_decay
from ._inverse_time import inverse_time_decay as inverse_time_decay
from ._join import join_schedules as join_schedules
from ._onecycle import cosine_onecycle_schedule as cosine_onecycle_schedule
from ._onecycle import linear_onecycle_schedule as linear_onecycle_schedule
from ._piecewise import piecewise_constant_schedule as piecewise_constant_schedule
from ._piecewise import piecewise_interpolate_schedule as piecewise_interpolate_schedule
from ._plotting import plot as plot
from ._plotting import values as values
from ._polynomial import linear_schedule as linear_schedule
from ._polynomial import polynomial_schedule as polynomial_schedule
from ._warmup import warmup_constant_schedule as warmup_constant_schedule
from ._warmup import warmup_exponential_decay_schedule as warmup_exponential_decay_schedule
from ._warmup import warmup_stable_decay_schedule as warmup_stable_decay_schedule
