"""Tree tools: named access to optimizer state, and whole-tree arithmetic."""

from ._access import get as get
from ._access import set as set  # noqa: A004
from ._arith import norm as norm
from ._arith import sum_of_squares as sum_of_squares
# >>> telemetry
# <<< telemetry
# >>> sharding
# <<< sharding
