"""The main job, ``optgrad-train``: runs end to end, and its reports say what happened.

The TensorBoard event files are read back with a small reader of the TFRecord framing and
tensorboardX's own protobufs (no TensorFlow or TensorBoard needed); the learning rates they
hold are compared with the schedule evaluated independently, and the clipped gradient norms
with ``min(norm, max_norm)``.
"""

from __future__ import annotations

import glob
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import optgrad as og

pytest.importorskip("flax")
pytest.importorskip("sklearn")
pytest.importorskip("tensorboardX")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

STEPS = 40


def read_scalars(logdir: str) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` from the event files of ``logdir``."""
    from tensorboardX.proto import event_pb2

    out: dict[str, dict[int, float]] = {}
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):  # TFRecord: length u64, crc u32, payload, crc u32
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event()
            event.ParseFromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                out.setdefault(value.tag, {})[event.step] = value.simple_value
    return out


def test_digits_run_reports_table_json_png_and_tensorboard_events(tmp_path, capsys):
    """One run (compiling is the cost) checked for every report it writes."""
    argv = [
        "--steps", str(STEPS), "--seeds", "0", "1", "--out", str(tmp_path), "--no-progress",
        "--optimizers", "adamw", "torch.SGD:lr=0.05,momentum=0.9", "--model-size", "32",
    ]  # fmt: skip
    assert og.train.main(argv) == 0
    table = capsys.readouterr().out
    for column in ("optimizer", "train loss", "test accuracy", "steps to >=0.95", "compile s"):
        assert column in table
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["results"]) == {"adamw", "torch.SGD:lr=0.05,momentum=0.9"}
    for row in results["results"].values():
        assert row["seeds"] == 2
        assert np.isfinite(row["train_loss"]) and 0.0 <= row["test_metric"] <= 1.0
        assert row["test_metric"] > 0.5  # 40 steps on digits already learn something
        assert row["compile_s"] > 0 and row["train_s"] > 0
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    dirs = sorted(os.listdir(tmp_path / "tensorboard"))
    assert dirs == [
        "adamw-seed0",
        "adamw-seed1",
        "torch.SGD_lr_0.05_momentum_0.9-seed0",
        "torch.SGD_lr_0.05_momentum_0.9-seed1",
    ]
    scalars = read_scalars(str(tmp_path / "tensorboard" / "adamw-seed0"))
    assert set(scalars) == {
        "train/loss",
        "test/accuracy",
        "optim/learning_rate",
        "optim/grad_norm",
        "optim/grad_norm_clipped",
        "optim/update_param_ratio",
    }
    steps = np.arange(1, STEPS + 1)
    for tag in scalars:
        assert sorted(scalars[tag]) == list(steps), tag
    # The learning rate the t-th update used: the preset's warmup-cosine schedule at count t-1.
    schedule = og.warmup_cosine_decay_schedule(0.0, 3e-3, 2, STEPS, end_value=3e-5)
    lr = np.array([scalars["optim/learning_rate"][t] for t in steps])
    np.testing.assert_allclose(lr, [float(schedule(t - 1)) for t in steps], rtol=1e-6)
    norm = np.array([scalars["optim/grad_norm"][t] for t in steps])
    clipped = np.array([scalars["optim/grad_norm_clipped"][t] for t in steps])
    np.testing.assert_allclose(clipped, np.minimum(norm, 1.0), rtol=1e-5)
    assert np.any(norm > 1.0), "clipping never acted: the check above would be vacuous"
    ratio = np.array([scalars["optim/update_param_ratio"][t] for t in steps])
    assert np.all(ratio[1:] > 0) and np.all(ratio < 1)


def test_regression_reports_an_error(tmp_path, capsys):
    argv = [
        "--dataset",
        "diabetes",
        "--steps",
        "30",
        "--optimizers",
        "adam",
        "--out",
        str(tmp_path),
        "--target",
        "1000",
    ]
    assert og.train.main(argv) == 0
    captured = capsys.readouterr()
    assert "test RMSE" in captured.out and "steps to <=1000" in captured.out
    assert "adam (seed 0)" in captured.err and "30/30" in captured.err  # the progress bar
    row = json.loads((tmp_path / "results.json").read_text())["results"]["adam"]
    assert 20.0 < row["test_metric"] < 200.0  # RMSE in the target's units (its std is ~77)
    assert row["steps_to_target"] == 1.0  # any model is under an error of 1000
    scalars = read_scalars(str(tmp_path / "tensorboard" / "adam-seed0"))
    assert "test/RMSE" in scalars


def test_help_explains_each_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        og.train.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--dataset",
        "--model-size",
        "--optimizers",
        "--schedule",
        "--steps",
        "--seeds",
        "--out",
        "--clip",
        "--target",
        "warmup-cosine",
        "torch.SGD",
    ):
        assert option in text, option


def test_bad_arguments_are_explained(capsys):
    with pytest.raises(SystemExit) as exit_info:
        og.train.main(["--optimizers", "adamz", "--no-progress", "--steps", "5"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown optimizer 'adamz'" in err and "adamw" in err
    with pytest.raises(SystemExit):
        og.train.main(["--optimizers", "adam:b1=1.5", "--no-progress", "--steps", "5"])
    assert "b1" in capsys.readouterr().err


def test_entry_points_and_module_runs():
    tomllib = pytest.importorskip("tomllib")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts == {"optgrad-train": "optgrad.train:main"}
    for module in ("optgrad.train", "optgrad.demo"):
        done = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "usage: optgrad-train" in done.stdout


@pytest.mark.parametrize("module", ["flax", "sklearn", "tqdm", "tensorboardX", "matplotlib"])
def test_missing_extras_say_what_to_install(module, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(SystemExit) as exit_info:
        og.train.main(["--steps", "5", "--out", str(tmp_path), "--no-progress"])
    message = str(exit_info.value.code)
    name = {"sklearn": "scikit-learn"}.get(module, module)
    assert name in message and 'pip install "optgrad[examples]"' in message
    assert not os.listdir(tmp_path), "nothing should run before the check"


def test_plots_without_matplotlib_say_what_to_install(monkeypatch):
    import jax.numpy as jnp

    result = og.lr_finder(lambda w: jnp.sum(w**2), jnp.ones(2), num_steps=10)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        og.schedules.plot(og.constant_schedule(1.0), 10)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        result.plot()
