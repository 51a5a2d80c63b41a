"""The example notebooks run top to bottom (nbclient, a kernel on this venv's Python) at their
small settings, show what they compute (tables, inline figures, one line per epoch), and are
committed with their outputs cleared."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))
EXPECTED = {"01-rnn-lstm-gru", "02-why-gates-help", "03-your-own-data"}
CELL_TIMEOUT = 300
"""Seconds one cell may take (the small settings need a few)."""


def test_the_notebooks_are_there_and_committed_clean() -> None:
    assert {p.stem for p in NOTEBOOKS} == EXPECTED
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name
        source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "RNNLAB_NOTEBOOK_SCALE" in source and "full run" in source  # how to go bigger


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `python3` kernel spec on this interpreter (first on JUPYTER_PATH, so no user or system
    spec with a bare `python` wins), and every cache and Jupyter/IPython folder under tmp_path;
    the caches of the test session (conftest) pass on to the kernel's environment."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "Python 3 (rnnlab)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    for name in ("JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two test workers share two cores
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the notebook picks its own (inline)
    monkeypatch.delenv("RNNLAB_NOTEBOOK_SCALE", raising=False)  # the small settings
    for name in ("RNNLAB_CACHE_DIR", "MPLCONFIGDIR", "HF_HOME", "RNNLAB_KERNELS_DIR"):
        assert os.environ.get(name), f"{name} is not set for the kernel"  # conftest sets them
    work = tmp_path / "work"
    work.mkdir()
    return work


def outputs(nb: Any, kind: str) -> list[Any]:
    return [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == kind
    ]


def stream_text(nb: Any) -> str:
    return "".join(o.text for o in outputs(nb, "stream"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, kernel_env: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3",
        resources={"metadata": {"path": str(kernel_env)}},
    )  # fmt: skip
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first cell that fails
    seconds = time.perf_counter() - start
    print(f"{path.name}: {seconds:.1f} s")
    assert not outputs(nb, "error")
    rich = outputs(nb, "display_data") + outputs(nb, "execute_result")
    images = [o for o in rich if "image/png" in o.data]
    tables = [o for o in rich if "rnnlab-table" in o.data.get("text/html", "")]
    text = stream_text(nb)
    assert "Traceback" not in text
    assert "\r" not in text and "\x1b[" not in text  # no progress-bar control codes
    assert list(kernel_env.glob("runs/*")), "the runs are written next to the notebook"
    if path.stem == "01-rnn-lstm-gru":
        assert len(images) == 2 and len(tables) == 2  # curves, confusion; comparison, predictions
        for model in ("rnn", "lstm", "gru"):  # one line per epoch under each model's header
            part = text.split(f"== {model}\n")[1].split("==")[0]
            assert re.search(r"^epoch 1/\d+ \| train loss", part, re.M), part
    elif path.stem == "02-why-gates-help":
        # gradient flow x3, hidden and cell states, accuracy and gradient vs length
        assert len(images) == 7 and len(tables) == 4  # fresh, trained, states, sweep
        assert text.count("orders of magnitude lost per 100 steps") == 3
    else:
        assert len(images) == 1 and len(tables) == 1  # curves; the run
        assert "fresh" in text and "rotten" in text
        assert (kernel_env / "saved" / "my-reviews-gru" / "summary.json").is_file()
