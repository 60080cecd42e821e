"""The tensorflow/torchvision import-order hazard (importing torchvision after tensorflow segfaults in triton;
see mammogan_lib/frameworks.py), checked in fresh subprocesses."""

import subprocess
import sys

import pytest

from mammogan_lib import frameworks


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)


def test_torch_side_after_keras_is_refused_with_a_clear_error_not_a_crash():
    done = run_python(
        "from mammogan_lib import frameworks\n"
        "frameworks.import_keras()\n"
        "try:\n"
        "    frameworks.import_torch_side()\n"
        "except RuntimeError as error:\n"
        "    print('REFUSED:', error)\n"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "REFUSED: tensorflow is already imported" in done.stdout


def test_torch_side_first_then_keras_works_in_one_process():
    done = run_python(
        "from mammogan_lib import frameworks\n"
        "torch, torchvision = frameworks.import_torch_side()\n"
        "keras = frameworks.import_keras()\n"
        "print('OK', keras.backend.backend(), torchvision.__version__)\n"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("OK tensorflow")


def test_keras_backend_is_set_explicitly(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(RuntimeError, match="KERAS_BACKEND is 'jax'"):
        frameworks.import_keras()
