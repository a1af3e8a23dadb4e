"""The public surface: what `import optgrad` offers, each name documented and exported once."""

from __future__ import annotations

import inspect

import optgrad as og

EXPECTED = {
    # contract
    "GradientTransformation", "EmptyState", "ArrayTree", "Params", "Updates", "OptState",
    "Schedule", "ScalarOrSchedule", "chain", "named_chain", "apply_updates", "identity",
    "set_to_zero", "stateless", "init_empty_state", "with_hyperparams", "HyperparamsState",
    "to_optax",
    # primitives and their states
    "scale", "scale_by_learning_rate", "scale_by_schedule", "ScaleByScheduleState",
    "scale_by_adam", "ScaleByAdamState", "scale_by_amsgrad", "ScaleByAmsgradState",
    "scale_by_rms", "ScaleByRmsState", "scale_by_stddev", "ScaleByRStdDevState",
    "scale_by_rss", "ScaleByRssState", "trace", "TraceState", "stochastic_round",
    "add_decayed_weights", "AddDecayedWeightsState",
    "clip", "clip_by_global_norm", "ClipByGlobalNormState", "clip_by_block_rms",
    # optimizers
    "sgd", "adam", "adamw", "nadam", "amsgrad", "rmsprop", "adagrad",
    # schedules
    "constant_schedule", "linear_schedule", "polynomial_schedule", "exponential_decay",
    "piecewise_constant_schedule", "cosine_decay_schedule", "warmup_cosine_decay_schedule",
    "inverse_time_decay", "join_schedules", "piecewise_interpolate_schedule",
    "warmup_constant_schedule", "warmup_exponential_decay_schedule", "linear_onecycle_schedule",
    "cosine_onecycle_schedule", "sgdr_schedule", "warmup_stable_decay_schedule",
    "cyclic_schedule", "product_schedule", "per_epoch",
    # choosing a learning rate
    "lr_finder", "lr_sweep",
    # namespaces
    "schedules", "torch", "tree",
    # packed parameters
    "pack", "unpack", "Packed",
    # Optax-named adaptive optimizers
    "scale_by_adamax", "ScaleByAdamaxState", "adamax", "adamaxw",
    "scale_by_belief", "ScaleByBeliefState", "adabelief", "scale_by_yogi", "yogi",
    "scale_by_radam", "radam", "scale_by_adan", "ScaleByAdanState", "adan",
    "scale_by_lion", "ScaleByLionState", "lion", "scale_by_novograd", "ScaleByNovogradState",
    "novograd", "scale_by_trust_ratio", "scale_by_param_block_norm", "scale_by_param_block_rms",
    "lamb", "lars", "fromage", "nadamw",
    # the rest of the Optax-named catalogue
    "EmaState", "ema", "ScaleByAdaDeltaState", "adadelta", "scale_by_adadelta", "FactoredState",
    "adafactor", "scale_by_factored_rms", "DoGState",
    "ScaleByDistanceOverGradientsState", "dog", "scale_by_distance_over_gradients",
    "scale_by_dog", "AddNoiseState", "add_noise", "noisy_sgd", "centralize",
    "normalize_by_update_norm", "ScaleByOptimisticGradientState", "optimistic_adam_v2",
    "optimistic_gradient_descent", "scale_by_optimistic_gradient", "polyak_sgd",
    "scale_by_polyak", "ScaleByRpropState", "rprop", "scale_by_rprop", "scale_by_sign",
    "sign_sgd", "signum", "ScaleBySM3State", "scale_by_sm3", "sm3",
    # L-BFGS and line searches
    "lbfgs", "scale_by_lbfgs", "ScaleByLBFGSState", "scale_by_backtracking_linesearch",
    "ScaleByBacktrackingLinesearchState", "BacktrackingLinesearchInfo",
    "scale_by_zoom_linesearch", "ScaleByZoomLinesearchState", "ZoomLinesearchInfo",
    "value_and_grad_from_state",
    # training wrappers
    "partition", "PartitionState", "freeze", "selective_transform", "masked", "MaskedState",
    "MaskedNode", "MultiSteps", "MultiStepsState", "apply_every", "ApplyEvery",
    "apply_if_finite", "ApplyIfFiniteState", "skip_not_finite", "skip_large_updates",
    "zero_nans", "ZeroNansState", "conditionally_transform", "ConditionallyTransformState",
    "conditionally_mask", "ConditionallyMaskState",
    # averaging, lookahead and friends
    "lookahead", "LookaheadParams", "LookaheadState", "flatten", "keep_params_nonnegative",
    "periodic_update", "incremental_update", "ema_params", "swa_params", "AveragedParamsState",
    "eval_params", "register_eval_params",
    # telemetry, clipping and projections
    "monitor", "MonitorState", "metrics", "adaptive_grad_clip", "AdaptiveGradClipState",
    "per_example_global_norm_clip", "per_example_layer_norm_clip", "ClipByBlockRmsState",
    "projections",
    # the main job
    "train",  # the `optgrad-train` command: `og.train.main(argv)`
    # sharding and checkpoints
    "state_shardings", "restore_state",
}  # fmt: skip


def _public(module):
    # `optgrad.demo` is a script module, bound only once something imports it.
    return {n for n in vars(module) if not n.startswith("_")} - {"demo"}


def test_the_facade_exports_exactly_the_expected_names():
    assert _public(og) == EXPECTED


def test_every_public_callable_is_documented():
    for module in (og, og.tree, og.schedules, og.torch, og.torch.lr_scheduler, og.projections):
        for name in _public(module):
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"


# Type aliases (`Params = Any`-style typing objects) are not functions or classes with an API of
# their own; `inspect` may still report them, so they are exempt from the sections test below.
_TYPE_ALIASES = {"ArrayTree", "Params", "Updates", "OptState"}


def _is_state(obj) -> bool:
    # NamedTuple states document their fields, not a call.
    return inspect.isclass(obj) and issubclass(obj, tuple) and hasattr(obj, "_fields")


def test_every_public_callable_has_args_returns_and_an_example():
    missing = []
    for module in (og, og.tree, og.schedules, og.torch, og.torch.lr_scheduler, og.projections):
        for name in sorted(_public(module)):
            obj = getattr(module, name)
            if name in _TYPE_ALIASES or _is_state(obj):
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            doc = inspect.getdoc(obj) or ""
            lacks = [] if ">>>" in doc else ["an example (>>>)"]
            if inspect.isfunction(obj):
                if inspect.signature(obj).parameters and "Args:" not in doc:
                    lacks.append("Args:")
                if "Returns:" not in doc:
                    lacks.append("Returns:")
            if lacks:
                missing.append(f"{module.__name__}.{name}: {', '.join(lacks)}")
    assert not missing, "public names whose docstring lacks a section:\n" + "\n".join(missing)


def test_version_comes_from_package_metadata():
    from importlib.metadata import version

    assert og.__version__ == version("optgrad")
