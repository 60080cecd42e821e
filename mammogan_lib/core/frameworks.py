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


BACKENDS: tuple[str, ...] = ("tensorflow", "jax", "torch")
"""The Keras 3 backends the GAN runs on (the ``backend`` parameter); tensorflow is the default."""

DEFAULT_BACKEND = "tensorflow"
BACKEND_VARIABLE = "KERAS_BACKEND"


def use_backend(backend: str) -> None:
    """Make ``backend`` Keras's backend in this process: sets ``KERAS_BACKEND`` before Keras is imported.

    ``RuntimeError`` naming the parameter when that cannot hold: ``KERAS_BACKEND`` already names another
    backend, or Keras is already loaded on another one (Keras reads the variable once, at import)."""
    if backend not in BACKENDS:
        raise ValueError(f"parameter 'backend': {backend!r} is not one of {list(BACKENDS)}")
    current = os.environ.get(BACKEND_VARIABLE)
    loaded = loaded_backend()
    if loaded is not None and loaded != backend:
        raise RuntimeError(
            f"parameter 'backend' is {backend!r} but Keras is already loaded on {loaded!r} in this process; "
            "restart the kernel (Keras picks its backend once, when it is first imported)"
        )
    if current is not None and current != backend and loaded is None:
        raise RuntimeError(
            f"parameter 'backend' is {backend!r} but the environment sets {BACKEND_VARIABLE}={current!r}; "
            f"unset {BACKEND_VARIABLE} or make the two agree"
        )
    os.environ[BACKEND_VARIABLE] = backend


def loaded_backend() -> str | None:
    """The backend Keras runs on in this process, or ``None`` if Keras is not imported yet."""
    keras = sys.modules.get("keras")
    backend = getattr(keras, "backend", None)
    return backend.backend() if backend is not None and hasattr(backend, "backend") else None


def selected_backend() -> str:
    """The backend Keras runs on, or will run on when imported: the loaded one, else ``KERAS_BACKEND``,
    else tensorflow."""
    return loaded_backend() or os.environ.get(BACKEND_VARIABLE) or DEFAULT_BACKEND


def import_keras() -> ModuleType:
    """Return the ``keras`` module on the backend :func:`use_backend` chose (tensorflow when none was:
    set explicitly, never inferred from what happens to be installed)."""
    backend = os.environ.setdefault(BACKEND_VARIABLE, DEFAULT_BACKEND)
    if backend not in BACKENDS:
        raise RuntimeError(f"{BACKEND_VARIABLE} is {backend!r}; the GAN runs on one of {list(BACKENDS)}")
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
