"""Learning-rate (and other hyperparameter) schedules: functions of the step count.

Each factory checks its arguments when called and returns a pure function ``count -> value``
(float32), safe under ``jax.jit`` and ``jax.vmap``. The names, arguments and defaults are
those of Optax 0.2.8; differences are listed in each docstring.
"""

from ._constant import constant_schedule as constant_schedule
from ._cosine import cosine_decay_schedule as cosine_decay_schedule
from ._cosine import warmup_cosine_decay_schedule as warmup_cosine_decay_schedule
from ._exponential import exponential_decay as exponential_decay
from ._inverse_time import inverse_time_decay as inverse_time_decay
from ._join import join_schedules as join_schedules
from ._piecewise import piecewise_constant_schedule as piecewise_constant_schedule
from ._polynomial import linear_schedule as linear_schedule
from ._polynomial import polynomial_schedule as polynomial_schedule
