"""Lazy, order-safe loading of the two deep-learning frameworks.

Why this module exists: with tensorflow 2.21 and torch 2.14.1/torchvision 0.29.1, importing torchvision (or
torchmetrics) *after* tensorflow in one process segfaults inside triton's native module (two bundled LLVMs).
The torch side first is safe. Notebooks use one framework each (03/04: Keras; 05/06: torch), and pytest
imports the torch side first in ``tests/conftest.py``. Code that needs the torch side calls
:func:`import_torch_side`, which refuses with a clear message instead of crashing the kernel.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

TORCH_AFTER_TENSORFLOW_MESSAGE = (
    "tensorflow is already imported in this process, and importing torchvision/torchmetrics after it "
    "crashes the process (triton segfault). Restart the kernel and import the torch side first, or run "
    "the torch-based stage (05_metrics, 06_svm) in its own notebook/process."
)


def import_keras() -> ModuleType:
    """Return the ``keras`` module on the TensorFlow backend (set explicitly, never inferred)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if os.environ["KERAS_BACKEND"] != "tensorflow":
        raise RuntimeError(
            f"KERAS_BACKEND is {os.environ['KERAS_BACKEND']!r}; the GAN stage needs 'tensorflow'."
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def import_torch_side() -> tuple[ModuleType, ModuleType]:
    """Return ``(torch, torchvision)``, refusing if tensorflow was imported first (see module doc)."""
    already_loaded = "torchvision" in sys.modules
    if "tensorflow" in sys.modules and not already_loaded:
        raise RuntimeError(TORCH_AFTER_TENSORFLOW_MESSAGE)
    import torch
    import torchvision

    return torch, torchvision
