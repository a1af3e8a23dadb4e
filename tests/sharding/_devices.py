"""Runs a check module in a fresh Python with simulated CPU devices and reads its JSON result.

The device count of XLA:CPU is fixed when JAX initialises, and the pytest process has one
device, so multi-device checks run in a subprocess with ``XLA_FLAGS`` set before ``import jax``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def device_env(count: int) -> dict[str, str]:
    """The environment of a CPU-only Python with ``count`` devices."""
    flags = os.environ.get("XLA_FLAGS", "")
    flags = " ".join(f for f in flags.split() if "force_host_platform_device_count" not in f)
    return {
        **os.environ,
        "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={count}".strip(),
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(ROOT),
    }


def run_json(module: str, *args: str, devices: int = 8, timeout: float = 240) -> dict:
    """``python -m module *args`` with ``devices`` CPU devices; its last stdout line as JSON."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=device_env(devices),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{module} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])
