"""Training-speed figures: ms per step of the compiled train step, after warm-up, median of repeats.

``python -m mammogan_lib.bench [--resolution 128] [--batch-size 32] [--precision float32 mixed]``
prints one line per precision. Random images stand in for data: the step's cost does not depend on pixel
values. Speed is measured here and reported, never asserted in a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np


def time_train_step(
    architecture: str = "baseline",
    resolution: int = 128,
    batch_size: int = 32,
    precision: str = "float32",
    width: float = 1.0,
    warmup: int = 3,
    repeats: int = 20,
    seed: int = 0,
) -> dict[str, Any]:
    """Median wall time of one training step (G(z) once, both updates) on ``2 * batch_size`` images."""
    from mammogan_lib.training import TrainSettings, build_trainer

    images = np.random.default_rng(seed).uniform(-1, 1, (2 * batch_size, resolution, resolution))
    settings = TrainSettings(architecture=architecture, resolution=resolution, batch_size=batch_size,
                             precision=precision, width=width, seed=seed, run_dir="unused")  # fmt: skip
    trainer = build_trainer(images.astype(np.float32), settings)
    batch = np.arange(batch_size)
    for _ in range(warmup):
        trainer.train_step(batch)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        trainer.train_step(batch)  # returns numpy values: the step has finished
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    return {"architecture": architecture, "resolution": resolution, "batch_size": batch_size, "width": width,
            "precision": precision, "dtype_policy": trainer.dtype_policy, "repeats": repeats,
            "ms_per_step": round(1000 * median, 2),
            "images_per_s": round(batch_size / median, 1)}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mammogan_lib.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--architecture", default="baseline")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--precision", nargs="+", default=["float32", "mixed"])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    for precision in args.precision:
        result = time_train_step(args.architecture, args.resolution, args.batch_size, precision, args.width,
                                 repeats=args.repeats)  # fmt: skip
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
