"""Derived columns (ratios, bandwidth bound), the printed tables and the JSON report."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from benchmarks import registry

Row = dict[str, Any]

STATUS_LABELS = {"timeout": "timeout", "error": "error", "unavailable": "n/a", "skipped": "skipped"}


def bound_ms(n_params: int, bytes_per_param: int, bandwidth_gbs: float | None) -> float | None:
    """The step time if the step only streamed its bytes at ``bandwidth_gbs``."""
    if not bandwidth_gbs:
        return None
    return bytes_per_param * n_params / (bandwidth_gbs * 1e9) * 1e3


def peak_mb(row: Row) -> float | None:
    """Largest peak over all phases (the 'first' window already includes init)."""
    peaks = [row.get(f"peak_{phase}_mb") for phase in ("init", "first", "steady")]
    peaks = [p for p in peaks if p is not None]
    return max(peaks) if peaks else None


def _reference_steps(rows: list[Row], impl: str) -> dict[tuple[str, str], float]:
    return {
        (row["tree"], row["optimizer"]): row["step_ms"]
        for row in rows
        if row["impl"] == impl and row["status"] == "ok"
    }


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return value / reference


def add_derived_columns(rows: list[Row], bandwidth_gbs: float | None) -> None:
    """Adds peak_mb, bound_ms, bound_fraction, vs_optax and vs_torch_fused to every row."""
    optax_steps = _reference_steps(rows, registry.OPTAX_REFERENCE)
    fused_steps = _reference_steps(rows, registry.TORCH_REFERENCE)
    for row in rows:
        key = (row["tree"], row["optimizer"])
        step = row.get("step_ms") if row["status"] == "ok" else None
        row["peak_mb"] = peak_mb(row)
        row["bound_ms"] = bound_ms(row["n_params"], row["bytes_per_param"], bandwidth_gbs)
        row["bound_fraction"] = _ratio(row["bound_ms"], step)
        row["vs_optax"] = _ratio(step, optax_steps.get(key))
        row["vs_torch_fused"] = _ratio(step, fused_steps.get(key))
    mark_checksums(rows)


PAIRED = ("step_ms", "vs_optax", "vs_torch_fused", "bound_fraction")
TIMINGS = ("step_ms_min", "init_s", "trace_s", "compile_s", "first_step_s", "first_call_s")


def merge_rounds(rounds: list[list[Row]]) -> list[Row]:
    """One row per configuration: the median over rounds of every timing.

    The ratios are medians of the ratios taken within each round (``vs_optax`` of round ``r``
    divides by Optax's step of round ``r``), so a slow minute of a shared machine lands on
    both sides of a ratio instead of on one implementation. A configuration that failed in
    any round keeps the failed row. The per-round values stay in ``<field>_rounds``.
    """
    if len(rounds) == 1:
        return rounds[0]
    merged = []
    for index, first in enumerate(rounds[0]):
        same = [rows[index] for rows in rounds]
        bad = [row for row in same if row["status"] != "ok"]
        if bad:
            merged.append(bad[0])
            continue
        row = dict(first)
        for field in PAIRED + TIMINGS:
            values = [r.get(field) for r in same]
            row[f"{field}_rounds"] = values
            present = [v for v in values if v is not None]
            row[field] = statistics.median(present) if present else None
        row["step_ms_all"] = [t for r in same for t in r.get("step_ms_all", [])]
        row["other_load_cores"] = max(r.get("other_load_cores") or 0.0 for r in same)
        row["checksum_ok"] = all(r.get("checksum_ok", True) for r in same)
        merged.append(row)
    return merged


CHECKSUM_RTOL = 1e-3


def mark_checksums(rows: list[Row]) -> None:
    """Every implementation ran the same steps on the same numbers, so the mean |param| after
    the run must agree within ``CHECKSUM_RTOL``; sets ``checksum_ok`` on every measured row."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        if row["status"] == "ok" and row.get("param_mean_abs") is not None:
            groups.setdefault((row["tree"], row["optimizer"]), []).append(row)
    for group in groups.values():
        reference = statistics.median(row["param_mean_abs"] for row in group)
        for row in group:
            error = abs(row["param_mean_abs"] - reference)
            row["checksum_ok"] = error <= CHECKSUM_RTOL * abs(reference)


# --- printing --------------------------------------------------------------------------------

COLUMNS = (
    # header, width, row -> text
    ("optimizer", 13, lambda r: r["optimizer"]),
    ("impl", 14, lambda r: r["impl"]),
    ("step ms", 10, lambda r: _number(r.get("step_ms"), "{:.2f}", r) + _noisy_mark(r)),
    ("min ms", 9, lambda r: _number(r.get("step_ms_min"), "{:.2f}", r)),
    ("first s", 8, lambda r: _number(r.get("first_call_s"), "{:.2f}")),
    ("init s", 7, lambda r: _number(r.get("init_s"), "{:.3f}")),
    ("peak MB", 8, lambda r: _number(r.get("peak_mb"), "{:.0f}")),
    ("steady MB", 9, lambda r: _number(r.get("peak_steady_mb"), "{:.0f}")),
    ("x optax", 8, lambda r: _number(r.get("vs_optax"), "{:.2f}")),
    ("x fused", 8, lambda r: _number(r.get("vs_torch_fused"), "{:.2f}")),
    ("% bound", 8, lambda r: _number(_percent(r.get("bound_fraction")), "{:.0f}%")),
)


NOISY_CORES = 0.25  # other processes used this many cores on average during the timed steps


def _noisy_mark(row: Row) -> str:
    return "*" if (row.get("other_load_cores") or 0) > NOISY_CORES else ""


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else 100 * fraction


def _number(value: float | None, spec: str, row: Row | None = None) -> str:
    if row is not None and row["status"] != "ok":
        return STATUS_LABELS.get(row["status"], row["status"])
    return "-" if value is None else spec.format(value)


def _line(cells: list[str]) -> str:
    parts = [
        cell.ljust(width) if i < 2 else cell.rjust(width)
        for i, (cell, (_, width, _)) in enumerate(zip(cells, COLUMNS, strict=True))
    ]
    return "  ".join(parts).rstrip()


def _tree_header(tree: dict[str, Any], optimizers: dict[str, Any], bandwidth: float | None) -> str:
    title = f"{tree['name']}: {tree['description']} ({tree['n_params'] / 1e6:.2f}M params, "
    title += f"{tree['n_leaves']} leaves)"
    bounds = [
        f"{name} {bound_ms(tree['n_params'], spec['bytes_per_param'], bandwidth):.2f} ms"
        for name, spec in optimizers.items()
        if bandwidth
    ]
    if bounds:
        title += f"\n  bandwidth bound at {bandwidth:.1f} GB/s: " + ", ".join(bounds)
    return title


def format_tree_table(
    tree: dict[str, Any], rows: list[Row], optimizers: dict, bandwidth: float | None
) -> str:
    lines = [_tree_header(tree, optimizers, bandwidth)]
    lines.append(_line([header for header, _, _ in COLUMNS]))
    lines.append(_line(["-" * width for _, width, _ in COLUMNS]))
    lines.extend(_line([cell(row) for _, _, cell in COLUMNS]) for row in rows)
    return "\n".join(lines)


def format_report(report: dict[str, Any]) -> str:
    bandwidth = report["meta"]["bandwidth"].get("bound_gbs")
    blocks = []
    for name, tree in report["trees"].items():
        rows = [row for row in report["rows"] if row["tree"] == name]
        optimizers = {
            key: spec
            for key, spec in report["optimizers"].items()
            if any(row["optimizer"] == key for row in rows)
        }
        blocks.append(format_tree_table({"name": name, **tree}, rows, optimizers, bandwidth))
    notes = [
        "step ms: median steady-state step; min ms: fastest step;",
        "first s: first call (JAX: trace + compile + step; torch: first step, which allocates",
        "the optimizer state); init s: tx.init (torch: the optimizer constructor);",
        "peak MB: peak RSS above the RSS after params/grads exist; steady MB: same, steps only;",
        "x optax / x fused: step time / step time of optax / torch_fused (< 1 is faster);",
        "% bound: bandwidth-bound time / step time;",
        f"*: other processes used > {NOISY_CORES} cores during the timed steps (noisy).",
    ]
    return "\n\n".join(blocks) + "\n\n" + "\n".join(notes)


def problems(report: dict[str, Any]) -> list[str]:
    """Errors, unavailable implementations and rows whose final params disagree."""
    notes = []
    for row in report["rows"]:
        label = f"{row['tree']}/{row['optimizer']}/{row['impl']}"
        if row["status"] in ("error", "unavailable"):
            notes.append(f"{label}: {row['status']}: {row.get('error', '')}")
        elif row.get("checksum_ok") is False:
            notes.append(f"{label}: final mean |param| {row['param_mean_abs']:.7g} disagrees")
    return notes


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
