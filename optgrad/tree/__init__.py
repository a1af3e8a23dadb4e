"""Tree tools: named access to optimizer state, and whole-tree arithmetic."""

from ._access import get as get
from ._access import set as set  # noqa: A004
from ._arith import add as add
from ._arith import add_scale as add_scale
from ._arith import clip as clip
from ._arith import conj as conj
from ._arith import div as div
from ._arith import max as max  # noqa: A004
from ._arith import min as min  # noqa: A004
from ._arith import mul as mul
from ._arith import norm as norm
from ._arith import real as real
from ._arith import scale as scale
from ._arith import size as size
from ._arith import sub as sub
from ._arith import sum as sum  # noqa: A004
from ._arith import sum_of_squares as sum_of_squares
from ._arith import vdot as vdot
from ._arith import where as where
from ._build import cast as cast
from ._build import cast_like as cast_like
from ._build import dtype as dtype
from ._build import full_like as full_like
from ._build import ones_like as ones_like
from ._build import random_like as random_like
from ._build import split_key_like as split_key_like
from ._build import zeros_like as zeros_like
from ._state import get_all_with_path as get_all_with_path
from ._state import map_params as map_params
