"""What training leaves in the run folder as it goes: the per-step losses (``losses.csv``, appended at each
checkpoint, so a resume continues it exactly) and the fixed-noise sample grids (``samples/``), with the
all-black test of the divergence guard."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np

from mammogan_lib.core import files
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.data.imaging import tile, to_uint8
from mammogan_lib.gan.losses import LOSS_KEYS

LOSS_COLUMNS: tuple[str, ...] = ("step", "epoch", *LOSS_KEYS)

BLACK_MEAN = -0.98
BLACK_STD = 0.02
"""Fixed-noise samples with mean below ``BLACK_MEAN`` and std below ``BLACK_STD`` (in [-1, 1]) are black."""


class LossLog:
    """Per-step losses, buffered in memory and appended to ``losses.csv`` only at checkpoints."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.pending: list[tuple[Any, ...]] = []

    def add(self, first_step: int, epoch: int, losses: np.ndarray) -> None:
        """Buffer one epoch's rows (``losses``: ``(steps, 4)``, first row is step ``first_step``)."""
        for offset, row in enumerate(losses):
            self.pending.append((first_step + offset, epoch, *(float(v) for v in row)))

    def flush(self) -> None:
        """Append the buffered rows (floats written exactly, as ``repr``) and empty the buffer."""
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(LOSS_COLUMNS)
            writer.writerows([(s, e, *(repr(v) for v in values)) for s, e, *values in self.pending])
            handle.flush()
            os.fsync(handle.fileno())
        self.pending = []

    def truncate(self, last_step: int) -> None:
        """Drop the rows after ``last_step`` (a resume from the checkpoint at ``last_step``)."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as handle:
            rows = list(csv.reader(handle))
        # a row cut short while appending (a kill, a full disk) goes with the steps past the checkpoint
        whole = [row for row in rows[1:] if len(row) == len(LOSS_COLUMNS) and row[0].isdigit()]
        kept = [row for row in whole if int(row[0]) <= last_step]

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as handle:
                csv.writer(handle).writerows([list(LOSS_COLUMNS), *kept])

        files.write_atomically(self.path, write)


def write_sample_grid(samples: np.ndarray, path: Path, columns: int) -> Path:
    """Write the samples' grid as an 8-bit PNG, atomically; return ``path``."""
    import cv2

    ok, encoded = cv2.imencode(".png", tile(to_uint8(samples), columns))
    if not ok:
        raise RuntimeError(f"could not encode the sample grid for {path}")
    return files.write_bytes(path, encoded.tobytes())


def is_black(samples: np.ndarray) -> bool:
    """Whether samples in [-1, 1] are all black (mode collapse to the background)."""
    return float(samples.mean()) < BLACK_MEAN and float(samples.std()) < BLACK_STD


def sample_grids(run_dir: Path | str) -> list[tuple[int, Path]]:
    """The fixed-noise sample grids of a run, ``(epoch, path)`` in epoch order."""
    paths = sorted(RunPaths(run_dir).samples.glob("epoch_*.png"))
    return [(int(path.stem.split("_")[1]), path) for path in paths]
