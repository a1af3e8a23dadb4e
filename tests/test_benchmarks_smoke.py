"""Smoke test of the benchmark harness: ``benchmarks/run.py --quick`` on tiny trees.

Runs the harness as a subprocess and checks the JSON report: one row per (tree, optimizer,
implementation), each with positive timings.  Torch rows are left out when torch is missing.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN = REPO_ROOT / "benchmarks" / "run.py"

sys.path.insert(0, str(REPO_ROOT))
from benchmarks import registry, trees  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None
IMPLS = [
    name
    for name, impl in registry.IMPLEMENTATIONS.items()
    if HAS_TORCH or impl.framework != "torch"
]


def run_harness(tmp_path: Path, *args: str, timeout: float = 150) -> dict:
    report_path = tmp_path / "report.json"
    # One torch thread: on a busy CI machine, two spinning OpenMP threads can stall for
    # hundreds of milliseconds per step; the smoke test checks the harness, not the figures.
    command = [sys.executable, str(RUN), "--quick", "--torch-threads", "1"]
    command += ["--json", str(report_path), *args]
    subprocess.run(command, check=True, timeout=timeout, cwd=REPO_ROOT, capture_output=True)
    return json.loads(report_path.read_text())


def rows_by_key(report: dict) -> dict[tuple[str, str, str], dict]:
    return {(row["tree"], row["optimizer"], row["impl"]): row for row in report["rows"]}


def assert_measured(row: dict) -> None:
    assert row["status"] == "ok", row
    for key in ("step_ms", "step_ms_min", "first_call_s", "bound_ms", "bound_fraction"):
        assert row[key] > 0, (key, row)
    assert row["init_s"] >= 0, row
    assert row["peak_mb"] >= 0, row
    assert row["repeats"] == 2, row
    assert row["param_mean_abs"] > 0, row
    assert row["checksum_ok"], row


def test_quick_inline_report_has_every_row(tmp_path):
    report = run_harness(tmp_path, "--inline", "--impls", *IMPLS)

    assert report["meta"]["bandwidth"]["bound_gbs"] > 0
    expected = set(itertools.product(trees.DEFAULT_TREES, registry.OPTIMIZERS, IMPLS))
    rows = rows_by_key(report)
    assert set(rows) == expected
    for row in rows.values():
        assert_measured(row)
        assert row["vs_optax"] > 0
        if HAS_TORCH:
            assert row["vs_torch_fused"] > 0
    for tree, spec in report["trees"].items():
        assert spec["n_params"] == trees.build_tree(tree, quick=True).n_params


def test_quick_isolated_rows_report_memory(tmp_path):
    impls = ["optax", "torch_fused"] if HAS_TORCH else ["optax"]
    args = ["--trees", "single", "--optimizers", "clip_adamw", "--impls", *impls]
    report = run_harness(tmp_path, *args)

    rows = rows_by_key(report)
    assert set(rows) == {("single", "clip_adamw", impl) for impl in impls}
    for row in rows.values():
        assert_measured(row)
        assert row["memory_method"]
        assert row["peak_first_mb"] >= row["peak_init_mb"] >= 0


def test_slow_configurations_are_reported_not_fatal(tmp_path):
    impls = ["optax", "optax_flatten"]  # optax is marked slow on "many": skipped
    args = ["--trees", "many", "--optimizers", "sgd_nesterov", "--impls", *impls]
    report = run_harness(tmp_path, *args, "--skip-slow", "--timeout", "0.01")

    rows = rows_by_key(report)
    assert rows["many", "sgd_nesterov", "optax"]["status"] == "skipped"
    assert rows["many", "sgd_nesterov", "optax_flatten"]["status"] == "timeout"
    assert all(row.get("step_ms") is None for row in rows.values())


def test_rounds_merge_to_medians_and_paired_ratios():
    from benchmarks import report

    def row(impl, step, optax_step):
        return {
            "tree": "gpt",
            "optimizer": "clip_adamw",
            "impl": impl,
            "status": "ok",
            "step_ms": step,
            "vs_optax": step / optax_step,
            "step_ms_all": [step],
        }

    # The machine is twice as slow in round 2: both sides of the ratio see it.
    rounds = [
        [row("optgrad", 10.0, 20.0), row("optax", 20.0, 20.0)],
        [row("optgrad", 20.0, 40.0), row("optax", 40.0, 40.0)],
        [row("optgrad", 12.0, 20.0), row("optax", 20.0, 20.0)],
    ]
    merged = report.merge_rounds(rounds)
    assert [r["impl"] for r in merged] == ["optgrad", "optax"]
    assert merged[0]["step_ms"] == 12.0
    assert merged[0]["step_ms_rounds"] == [10.0, 20.0, 12.0]
    # Median of the per-round ratios (0.5, 0.5, 0.6), not 12 / 20.
    assert merged[0]["vs_optax"] == 0.5
    assert merged[0]["step_ms_all"] == [10.0, 20.0, 12.0]
    failed = [dict(rounds[1][0], status="timeout"), rounds[1][1]]
    assert report.merge_rounds([rounds[0], failed])[0]["status"] == "timeout"
