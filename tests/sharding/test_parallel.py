"""ZeRO-1, whole-tree reductions under sharding, data parallelism and resharded checkpoints.

Each fixture runs one part of ``_check_parallel.py`` in a subprocess with 8 simulated CPU
devices and the tests assert on its measurements.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.sharding._devices import run_json

MODES = pytest.mark.parametrize("mode", ["Auto", "Explicit"])


@pytest.fixture(scope="module")
def zero() -> dict:
    return run_json("tests.sharding._check_parallel", "zero")


@pytest.fixture(scope="module")
def reductions() -> dict:
    return run_json("tests.sharding._check_parallel", "reductions")


@MODES
def test_zero1_holds_an_eighth_of_the_state_per_device(zero, mode):
    res = zero[mode]
    # Every parameter of the MLP divides by 8, so every array of the state does too.
    assert res["array_bytes_plain"] == 8 * res["array_bytes_zero"], res
    # The rest is scalars (count, learning-rate hyperparameters), replicated.
    assert res["bytes_zero"] - res["array_bytes_zero"] < 64
    assert res["state_zero_bytes_after"] == res["bytes_zero"]  # still sharded after training
    assert "P('data', None)" in res["zero_specs"] and "P(None, 'data')" in res["zero_specs"]


@MODES
def test_zero1_trains_like_plain_data_parallelism(zero, mode):
    res = zero[mode]
    assert res["steps"] >= 20
    np.testing.assert_allclose(res["losses_zero"], res["losses_plain"], rtol=2e-6)
    assert res["max_param_diff"] <= 2e-7 * res["max_param"] + 1e-7, res["max_param_diff"]
    assert res["params_replicated"]
    assert res["compiles"][1] == 1  # the ZeRO-1 step compiled once
    assert res["losses_plain"][-1] < 0.8 * res["losses_plain"][0]  # it trained


@MODES
def test_whole_tree_reductions_give_the_single_device_answer(reductions, mode):
    for name, res in reductions[mode].items():
        assert res["leaves"] > 0
        assert res["max_diff"] <= 2e-6 * max(res["scale"], 1.0), (name, res)


def test_clip_by_global_norm_inside_shard_map(reductions):
    res = reductions["shard_map"]
    assert res["local_norms_differ"]  # each device alone sees a smaller norm
    np.testing.assert_allclose(res["norm"], res["ref_norm"], rtol=1e-6)
    np.testing.assert_allclose(res["tree_norm"], res["ref_norm"], rtol=1e-6)
    assert res["max_update_diff"] <= 1e-6


def test_data_parallel_digits_matches_one_device():
    res = run_json("tests.sharding._check_parallel", "digits")
    assert len(res["single"]) >= 20
    np.testing.assert_allclose(res["data_parallel"], res["single"], rtol=1e-5)
    assert res["max_param_diff"] <= 1e-6
    assert res["params_replicated"]
    assert res["single"][-1] < 0.7 * res["single"][0]


def test_orbax_restores_into_another_sharding():
    res = run_json("tests.sharding._check_parallel", "orbax")
    for name in ("same", "replicated", "zero1"):
        assert res[name]["same_type"], name
        assert res[name]["equal"], name
        assert res[name]["placed"], (name, res[name]["specs"])
    assert res["replicated"]["specs"] == ["P()"]
    assert any("data" in spec for spec in res["zero1"]["specs"])
