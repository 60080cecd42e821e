"""Shared test setup.

pytest runs every test in one process, and importing torchvision after tensorflow segfaults here (triton;
see mammogan_lib/core/frameworks.py). Import the torch side first, once, before any test module can import
tensorflow. tests/test_frameworks.py keeps the dangerous order covered in a subprocess.
"""

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import torchvision  # noqa: E402,F401  (import order matters, see the module docstring)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
