"""Two processes on loopback train together with ``jax.distributed`` and checkpoint.

Each process has 2 simulated CPU devices and uses gloo CPU collectives; see
``_multiprocess.py``. They must agree with each other and with a one-device run, and the
orbax checkpoint they write together must restore to the same state.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np

from tests.sharding._devices import ROOT, device_env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_data_parallel_and_checkpoint(tmp_path):
    port = _free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.sharding._multiprocess",
                str(i),
                str(port),
                str(tmp_path),
            ],
            cwd=ROOT,
            env=device_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=150)
            assert proc.returncode == 0, f"process failed:\n{out[-2000:]}\n{err[-6000:]}"
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    a, b = outputs
    assert a["losses"] == b["losses"]  # one computation, seen from both processes
    assert len(a["losses"]) == 12
    np.testing.assert_allclose(a["losses"], a["reference"], rtol=1e-5)
    for res in outputs:
        assert res["max_param_diff"] <= 1e-6, res
        assert res["restored_equal"] and res["restored_type"] == "HyperparamsState", res
        assert res["restored_count"] == 12
