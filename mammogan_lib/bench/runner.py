"""Every measurement in a fresh Python process (its own peak memory; TensorFlow and torch never in one
process): ``python -m mammogan_lib.bench --measure NAME --config JSON`` prints one JSON line."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from mammogan_lib.bench.flops import measure_flops
from mammogan_lib.bench.measure import (
    choose_auto_precision,
    measure_features,
    measure_matmul_peak,
    measure_matmul_reduced,
    measure_preprocess,
    time_classic_loop,
    time_train_step,
)
from mammogan_lib.bench.profile import profile_step

SUBPROCESS_TIMEOUT_S = 3600


# --- subprocesses ----------------------------------------------------------------------------------------


MEASURES: dict[str, Callable[..., dict[str, Any]]] = {
    "reference": time_classic_loop,
    "train_step": time_train_step,
    "matmul": measure_matmul_peak,
    "matmul_reduced": measure_matmul_reduced,
    "auto_precision": choose_auto_precision,
    "flops": measure_flops,
    "preprocess": measure_preprocess,
    "features": measure_features,
    "profile": profile_step,
}


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_measurement(
    measure: str,
    config: dict[str, Any],
    timeout_s: float = SUBPROCESS_TIMEOUT_S,
    required: bool = True,
    backend: str = "tensorflow",
) -> dict:
    """Run ``MEASURES[measure](**config)`` in a fresh Python process on Keras's ``backend``; return its
    result and peak memory.

    ``RuntimeError`` with the end of the child's stderr when it fails; with ``required=False`` the
    failure is returned instead, as ``{"error": ...}`` (an emulated dtype some builds cannot run).
    """
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [
        sys.executable,
        "-m",
        "mammogan_lib.bench",
        "--measure",
        measure,
        "--config",
        json.dumps(config),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=environment)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        message = f"measurement {measure} {config} failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
        if not required:
            return {"error": message.splitlines()[0] + " " + (done.stderr.strip().splitlines() or [""])[-1]}
        raise RuntimeError(message)
    return json.loads(lines[-1])


def measure_in_this_process(measure: str, config: dict[str, Any]) -> dict[str, Any]:
    """The child's side of :func:`run_measurement`: the result plus this process's peak RSS."""
    return {**MEASURES[measure](**config), "peak_rss_mib": peak_rss_mib()}
