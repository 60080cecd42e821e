"""Atomic writes and plain reads of the files a run consists of (JSON records, arrays, tables, images).

Every write goes to a temporary sibling first and is renamed over the target with ``os.replace`` only when
complete, so a reader (a resumed run, the next stage, the report) never sees half a file, even when the
writer was killed. JSON is strict: NaN and infinity (a metric that could not be computed) become null.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def write_atomically(path: Path | str, write: Callable[[Path], Any]) -> Path:
    """Call ``write(temporary_path)``, then rename the temporary file to ``path``; return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")  # keeps the suffix: np.save adds .npy otherwise
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _strict_json(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(item) for item in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
        return _strict_json(value.item())
    return value


def write_json(path: Path | str, payload: Any) -> Path:
    """Write ``payload`` as strict, indented JSON, atomically (NaN and infinity are written as null)."""
    text = json.dumps(_strict_json(payload), indent=2, sort_keys=False, default=str, allow_nan=False) + "\n"
    return write_text(path, text)


def read_json(path: Path | str) -> Any:
    return json.loads(Path(path).read_text())


def read_json_if_present(path: Path | str) -> Any | None:
    """The JSON at ``path``, or ``None`` when the file does not exist (a stage that has not run)."""
    path = Path(path)
    return read_json(path) if path.is_file() else None


def write_text(path: Path | str, text: str) -> Path:
    return write_atomically(path, lambda tmp: tmp.write_text(text))


def write_bytes(path: Path | str, data: bytes) -> Path:
    return write_atomically(path, lambda tmp: tmp.write_bytes(data))


def write_csv(path: Path | str, table: Any) -> Path:
    """A pandas DataFrame as CSV without its index, atomically."""
    return write_atomically(path, lambda tmp: table.to_csv(tmp, index=False))


def save_array(path: Path | str, array: np.ndarray) -> Path:
    """``np.save`` atomically (a ``.npy`` file)."""
    return write_atomically(path, lambda tmp: np.save(tmp, array))
