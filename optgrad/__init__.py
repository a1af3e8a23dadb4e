"""optgrad: composable gradient transformations for JAX, with PyTorch-exact optimizers.

An optimizer is a pair of pure functions, ``init(params) -> state`` and
``update(updates, state, params=None, **extra_args) -> (updates, state)``; small primitives
``chain`` into full optimizers. See the README for a tour.
"""

# ruff: noqa: I001  (sections per work stream while the catalogue is being integrated)
from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from . import schedules as schedules
from . import torch as torch
from . import tree as tree
from ._accumulation import TraceState as TraceState
from ._accumulation import trace as trace
from ._base import ArrayTree as ArrayTree
from ._base import EmptyState as EmptyState
from ._base import GradientTransformation as GradientTransformation
from ._base import OptState as OptState
from ._base import Params as Params
from ._base import ScalarOrSchedule as ScalarOrSchedule
from ._base import Schedule as Schedule
from ._base import Updates as Updates
from ._base import identity as identity
from ._base import init_empty_state as init_empty_state
from ._base import set_to_zero as set_to_zero
from ._base import stateless as stateless
from ._clipping import ClipByGlobalNormState as ClipByGlobalNormState
from ._clipping import clip as clip
from ._clipping import clip_by_block_rms as clip_by_block_rms
from ._clipping import clip_by_global_norm as clip_by_global_norm
from ._combine import chain as chain
from ._combine import named_chain as named_chain
from ._hyperparams import HyperparamsState as HyperparamsState
from ._hyperparams import with_hyperparams as with_hyperparams
from ._interop import to_optax as to_optax
from ._lr_finder import lr_finder as lr_finder
from ._lr_finder import lr_sweep as lr_sweep
from ._numerics import stochastic_round as stochastic_round
from ._optimizers._adagrad import ScaleByRssState as ScaleByRssState
from ._optimizers._adagrad import adagrad as adagrad
from ._optimizers._adagrad import scale_by_rss as scale_by_rss
from ._optimizers._adam import ScaleByAdamState as ScaleByAdamState
from ._optimizers._adam import ScaleByAmsgradState as ScaleByAmsgradState
from ._optimizers._adam import adam as adam
from ._optimizers._adam import adamw as adamw
from ._optimizers._adam import amsgrad as amsgrad
from ._optimizers._adam import nadam as nadam
from ._optimizers._adam import scale_by_adam as scale_by_adam
from ._optimizers._adam import scale_by_amsgrad as scale_by_amsgrad
from ._optimizers._rmsprop import ScaleByRmsState as ScaleByRmsState
from ._optimizers._rmsprop import ScaleByRStdDevState as ScaleByRStdDevState
from ._optimizers._rmsprop import rmsprop as rmsprop
from ._optimizers._rmsprop import scale_by_rms as scale_by_rms
from ._optimizers._rmsprop import scale_by_stddev as scale_by_stddev
from ._optimizers._sgd import sgd as sgd
from ._scale import ScaleByScheduleState as ScaleByScheduleState
from ._scale import scale as scale
from ._scale import scale_by_learning_rate as scale_by_learning_rate
from ._scale import scale_by_schedule as scale_by_schedule
from ._update import apply_updates as apply_updates
from ._weight_decay import AddDecayedWeightsState as AddDecayedWeightsState
from ._weight_decay import add_decayed_weights as add_decayed_weights
from .schedules import constant_schedule as constant_schedule
from .schedules import cosine_decay_schedule as cosine_decay_schedule
from .schedules import cosine_onecycle_schedule as cosine_onecycle_schedule
from .schedules import cyclic_schedule as cyclic_schedule
from .schedules import exponential_decay as exponential_decay
from .schedules import inverse_time_decay as inverse_time_decay
from .schedules import join_schedules as join_schedules
from .schedules import linear_onecycle_schedule as linear_onecycle_schedule
from .schedules import linear_schedule as linear_schedule
from .schedules import per_epoch as per_epoch
from .schedules import piecewise_constant_schedule as piecewise_constant_schedule
from .schedules import piecewise_interpolate_schedule as piecewise_interpolate_schedule
from .schedules import polynomial_schedule as polynomial_schedule
from .schedules import product_schedule as product_schedule
from .schedules import sgdr_schedule as sgdr_schedule
from .schedules import warmup_constant_schedule as warmup_constant_schedule
from .schedules import warmup_cosine_decay_schedule as warmup_cosine_decay_schedule
from .schedules import warmup_exponential_decay_schedule as warmup_exponential_decay_schedule
from .schedules import warmup_stable_decay_schedule as warmup_stable_decay_schedule

from ._packing import Packed as Packed
from ._packing import pack as pack
from ._packing import unpack as unpack

# >>> adaptive
from ._optimizers._adabelief import ScaleByBeliefState as ScaleByBeliefState
from ._optimizers._adabelief import adabelief as adabelief
from ._optimizers._adabelief import scale_by_belief as scale_by_belief
from ._optimizers._adam import nadamw as nadamw
from ._optimizers._adamax import ScaleByAdamaxState as ScaleByAdamaxState
from ._optimizers._adamax import adamax as adamax
from ._optimizers._adamax import adamaxw as adamaxw
from ._optimizers._adamax import scale_by_adamax as scale_by_adamax
from ._optimizers._adan import ScaleByAdanState as ScaleByAdanState
from ._optimizers._adan import adan as adan
from ._optimizers._adan import scale_by_adan as scale_by_adan
from ._optimizers._lion import ScaleByLionState as ScaleByLionState
from ._optimizers._lion import lion as lion
from ._optimizers._lion import scale_by_lion as scale_by_lion
from ._optimizers._novograd import ScaleByNovogradState as ScaleByNovogradState
from ._optimizers._novograd import novograd as novograd
from ._optimizers._novograd import scale_by_novograd as scale_by_novograd
from ._optimizers._radam import radam as radam
from ._optimizers._radam import scale_by_radam as scale_by_radam
from ._optimizers._trust_ratio import fromage as fromage
from ._optimizers._trust_ratio import lamb as lamb
from ._optimizers._trust_ratio import lars as lars
from ._optimizers._trust_ratio import scale_by_param_block_norm as scale_by_param_block_norm
from ._optimizers._trust_ratio import scale_by_param_block_rms as scale_by_param_block_rms
from ._optimizers._trust_ratio import scale_by_trust_ratio as scale_by_trust_ratio
from ._optimizers._yogi import scale_by_yogi as scale_by_yogi
from ._optimizers._yogi import yogi as yogi

# <<< adaptive
# >>> catalogue
from ._accumulation import EmaState as EmaState
from ._accumulation import ema as ema
from ._optimizers._adadelta import ScaleByAdaDeltaState as ScaleByAdaDeltaState
from ._optimizers._adadelta import adadelta as adadelta
from ._optimizers._adadelta import scale_by_adadelta as scale_by_adadelta
from ._optimizers._adafactor import FactoredState as FactoredState
from ._optimizers._adafactor import adafactor as adafactor
from ._optimizers._adafactor import scale_by_factored_rms as scale_by_factored_rms
from ._optimizers._dog import DoGState as DoGState
from ._optimizers._dog import ScaleByDistanceOverGradientsState as ScaleByDistanceOverGradientsState
from ._optimizers._dog import dog as dog
from ._optimizers._dog import scale_by_distance_over_gradients as scale_by_distance_over_gradients
from ._optimizers._dog import scale_by_dog as scale_by_dog
from ._optimizers._noise import AddNoiseState as AddNoiseState
from ._optimizers._noise import add_noise as add_noise
from ._optimizers._noise import noisy_sgd as noisy_sgd
from ._optimizers._normalize import centralize as centralize
from ._optimizers._normalize import normalize_by_update_norm as normalize_by_update_norm
from ._optimizers._optimistic import (
    ScaleByOptimisticGradientState as ScaleByOptimisticGradientState,
)
from ._optimizers._optimistic import optimistic_adam_v2 as optimistic_adam_v2
from ._optimizers._optimistic import optimistic_gradient_descent as optimistic_gradient_descent
from ._optimizers._optimistic import scale_by_optimistic_gradient as scale_by_optimistic_gradient
from ._optimizers._polyak import polyak_sgd as polyak_sgd
from ._optimizers._polyak import scale_by_polyak as scale_by_polyak
from ._optimizers._rprop import ScaleByRpropState as ScaleByRpropState
from ._optimizers._rprop import rprop as rprop
from ._optimizers._rprop import scale_by_rprop as scale_by_rprop
from ._optimizers._sign import scale_by_sign as scale_by_sign
from ._optimizers._sign import sign_sgd as sign_sgd
from ._optimizers._sign import signum as signum
from ._optimizers._sm3 import ScaleBySM3State as ScaleBySM3State
from ._optimizers._sm3 import scale_by_sm3 as scale_by_sm3
from ._optimizers._sm3 import sm3 as sm3

# <<< catalogue
# >>> lbfgs
from ._linesearch import BacktrackingLinesearchInfo as BacktrackingLinesearchInfo
from ._linesearch import ScaleByBacktrackingLinesearchState as ScaleByBacktrackingLinesearchState
from ._linesearch import scale_by_backtracking_linesearch as scale_by_backtracking_linesearch
from ._linesearch import value_and_grad_from_state as value_and_grad_from_state
from ._optimizers._lbfgs import ScaleByLBFGSState as ScaleByLBFGSState
from ._optimizers._lbfgs import lbfgs as lbfgs
from ._optimizers._lbfgs import scale_by_lbfgs as scale_by_lbfgs
from ._zoom_linesearch import ScaleByZoomLinesearchState as ScaleByZoomLinesearchState
from ._zoom_linesearch import ZoomLinesearchInfo as ZoomLinesearchInfo
from ._zoom_linesearch import scale_by_zoom_linesearch as scale_by_zoom_linesearch

# <<< lbfgs
# >>> wrappers
from ._conditional import ConditionallyMaskState as ConditionallyMaskState
from ._conditional import ConditionallyTransformState as ConditionallyTransformState
from ._conditional import conditionally_mask as conditionally_mask
from ._conditional import conditionally_transform as conditionally_transform
from ._masked import MaskedNode as MaskedNode
from ._masked import MaskedState as MaskedState
from ._masked import masked as masked
from ._multi_steps import ApplyEvery as ApplyEvery
from ._multi_steps import MultiSteps as MultiSteps
from ._multi_steps import MultiStepsState as MultiStepsState
from ._multi_steps import apply_every as apply_every
from ._nonfinite import ApplyIfFiniteState as ApplyIfFiniteState
from ._nonfinite import ZeroNansState as ZeroNansState
from ._nonfinite import apply_if_finite as apply_if_finite
from ._nonfinite import skip_large_updates as skip_large_updates
from ._nonfinite import skip_not_finite as skip_not_finite
from ._nonfinite import zero_nans as zero_nans
from ._partition import PartitionState as PartitionState
from ._partition import freeze as freeze
from ._partition import partition as partition
from ._partition import selective_transform as selective_transform

# <<< wrappers
# >>> averaging
from ._averaging import AveragedParamsState as AveragedParamsState
from ._averaging import ema_params as ema_params
from ._averaging import swa_params as swa_params
from ._constraints import keep_params_nonnegative as keep_params_nonnegative
from ._eval_params import eval_params as eval_params
from ._eval_params import register_eval_params as register_eval_params
from ._flatten import flatten as flatten
from ._lookahead import LookaheadParams as LookaheadParams
from ._lookahead import LookaheadState as LookaheadState
from ._lookahead import lookahead as lookahead
from ._periodic import incremental_update as incremental_update
from ._periodic import periodic_update as periodic_update

# <<< averaging
# >>> telemetry
from . import projections as projections
from ._agc import AdaptiveGradClipState as AdaptiveGradClipState
from ._agc import adaptive_grad_clip as adaptive_grad_clip
from ._clipping import ClipByBlockRmsState as ClipByBlockRmsState
from ._monitor import MonitorState as MonitorState
from ._monitor import metrics as metrics
from ._monitor import monitor as monitor
from ._per_example import per_example_global_norm_clip as per_example_global_norm_clip
from ._per_example import per_example_layer_norm_clip as per_example_layer_norm_clip

# <<< telemetry
# >>> ecosystem
from . import train as train

# <<< ecosystem
# >>> sharding
from ._checkpoint import restore_state as restore_state
from ._sharding import state_shardings as state_shardings
# <<< sharding

try:
    __version__ = _version("optgrad")
except _PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"
