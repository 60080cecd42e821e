"""Timing repeated calls: wall and CPU seconds per call, after untimed warm-up calls.

Used by the benchmark and by ``precision: auto``'s calibration; speed is measured and reported, never
asserted in a test.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Wall seconds and this process's CPU seconds (all its threads) of each timed call."""

    wall: list[float]
    cpu: list[float]

    def cpu_share(self, cores: int | None = None) -> list[float]:
        """CPU seconds / (wall seconds x cores) per call: how much of the machine the call had.

        A call that had the cores to itself while keeping them busy is near 1; one that shared them with
        another process is visibly lower, so this flags disturbed steps without guessing.
        """
        cores = cores or os.cpu_count() or 1
        return [cpu / (wall * cores) for wall, cpu in zip(self.wall, self.cpu, strict=True)]


def time_calls(function: Callable[[], Any], warmup: int, repeats: int) -> Timing:
    """Time ``repeats`` calls of ``function`` after ``warmup`` untimed ones (tracing, caches).

    ``function`` must return only when its work is done (e.g. by converting a result to numpy).
    """
    for _ in range(warmup):
        function()
    wall, cpu = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return Timing(wall, cpu)


def summarise(timing: Timing, images_per_call: int) -> dict[str, Any]:
    """Median ms per call, images/s at the median, the CPU share, and every timed call (for the record)."""
    median = statistics.median(timing.wall)
    return {
        "ms_per_step": round(1000 * median, 2),
        "images_per_s": round(images_per_call / median, 2),
        "ms_min": round(1000 * min(timing.wall), 2),
        "ms_max": round(1000 * max(timing.wall), 2),
        "cpu_share_median": round(statistics.median(timing.cpu_share()), 3),
        "step_ms": [round(1000 * s, 2) for s in timing.wall],
        "step_cpu_share": [round(share, 3) for share in timing.cpu_share()],
    }
