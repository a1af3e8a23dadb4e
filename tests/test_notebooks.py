"""The notebooks in ``notebooks/`` run from top to bottom, are stored without outputs, and are
clean under the project's ruff configuration.

Each notebook is executed with nbclient in a ``python3`` kernel that is pinned to the Python
running the tests (a kernelspec written to a temporary ``JUPYTER_PATH``, which Jupyter searches
first), so the notebooks see the same environment as the tests, whatever kernels the machine
has installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(PATHS) >= 5, PATHS


@pytest.fixture
def pinned_kernel(tmp_path, monkeypatch):
    """A ``python3`` kernelspec that runs this interpreter, first on ``JUPYTER_PATH``."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python 3 (tests)", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return tmp_path


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path, pinned_kernel):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name} is stored with outputs: clear them (small diffs)"
            )
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(pinned_kernel)}},
    )
    client.execute()
    assert nb.cells[-1].outputs[0]["text"].strip() == sys.executable
    images = sum(
        "image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", [])
    )
    assert images >= 1, f"{path.name} draws no plot"


def test_notebooks_are_ruff_clean():
    pytest.importorskip("ruff")
    root = NOTEBOOKS.parent
    for args in (["format", "--check"], ["check"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args, str(NOTEBOOKS)],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert done.returncode == 0, f"ruff {' '.join(args)} notebooks:\n{done.stdout}{done.stderr}"
