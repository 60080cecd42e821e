"""Shared test setup.

Each pytest process runs many tests (make test starts one per core), and importing torchvision after
tensorflow segfaults here (triton; see mammogan_lib/core/frameworks.py). Import the torch side first, once,
before any test module can import tensorflow. tests/test_frameworks.py keeps the dangerous order covered in
a subprocess.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one core per worker (make test runs one worker per core): frameworks that each spread over every core
    # would fight over them; read at import, so set before any framework loads, and inherited by the
    # kernels and processes the tests start
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(variable, "1")

import torchvision  # noqa: E402,F401  (import order matters, see the module docstring)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def stage_notebooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A notebooks folder the pipeline runs from, filled by :func:`write_stage`."""
    from mammogan_lib import pipeline

    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.setenv(pipeline.NOTEBOOKS_DIR_VARIABLE, str(folder))
    monkeypatch.setenv(pipeline.KERNEL_VARIABLE, "mammogan")
    return folder


def write_stage(folder: Path, stage: str, code: str) -> None:
    """A stage notebook: a ``parameters`` cell, then ``code``."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "mammogan", "language": "python", "display_name": "mammogan"}
    parameters = nbformat.v4.new_code_cell("seed = 0")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell(code)]
    nbformat.write(notebook, folder / f"{stage}.ipynb")


@pytest.fixture(autouse=True)
def _warnings_given_again():
    """progress.warn says each warning once per process; each test starts afresh."""
    from mammogan_lib.core import progress

    progress.forget_warnings()
