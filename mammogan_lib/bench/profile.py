"""Where a step's time goes: a ``tf.profiler`` trace summarised by op kind and by op."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mammogan_lib.bench.classic import build_classic_loop
from mammogan_lib.bench.measure import bench_settings, random_images
from mammogan_lib.core.timing import time_calls

# --- profile ----------------------------------------------------------------------------------------------


def op_category(op_type: str, op_name: str) -> str:
    """Where an op's time goes, in the terms of the models: conv forward / input gradient / weight gradient,
    dense, upsampling, batch normalisation, optimiser, or other (element-wise, losses, casts, copies).

    Gradients are told from the forward pass by the op's name (``gradient_tape/...``), not its type: the
    forward pass of an ``UpsampleConv2D`` is a transposed convolution, whose TensorFlow op is
    ``Conv2DBackpropInput``, and its input gradient is a ``Conv2D``.
    """
    if "/adam" in op_name.lower() or op_name.lower().startswith("adam"):
        return "optimizer (Adam)"
    if "/g_up" in f"/{op_name}":
        return "upsampling (forward + gradient)"
    if "/g_bn" in f"/{op_name}":
        return "batch norm (forward + gradient)"
    if "Conv2D" in op_type:
        if not op_name.startswith("gradient_tape/"):
            return "conv forward"
        return "conv weight gradient" if "BackpropFilter" in op_type else "conv input gradient"
    if "MatMul" in op_type:
        return "dense (matmul)"
    return "other"


def _op_stats_rows(logdir: Path) -> list[dict[str, Any]]:
    """The per-op rows of TensorFlow's profiler ("framework_op_stats") for the trace under ``logdir``."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin

    trace = sorted(logdir.glob("plugins/profile/*/*.xplane.pb"))[-1]
    data, ok = _pywrap_profiler_plugin.xspace_to_tools_data([str(trace)], "framework_op_stats", {})
    if not ok:
        raise RuntimeError(f"the profiler could not read {trace}")
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    return [{k: cell.get("v") for k, cell in zip(columns, row["c"], strict=True)} for row in table["rows"]]


def profile_step(
    kind: str = "float32",
    architecture: str = "baseline",
    resolution: int = 128,
    batch_size: int = 32,
    width: float = 1.0,
    warmup: int = 2,
    steps: int = 3,
    top: int = 25,
    logdir: str = "runs/bench/profile",
) -> dict[str, Any]:
    """Where one step's time goes: a ``tf.profiler`` trace of ``steps`` steps after ``warmup``.

    ``kind``: a name of :data:`TRAIN_MEASUREMENTS` (``reference``: the classic loop) or a precision of our
    step. Returns the self time per :func:`op_category` and the ``top`` ops (TensorFlow op type and name,
    which names the layer), in ms per
    step. Op times are summed over the threads that ran them (so they can exceed the wall time when ops
    ran side by side); ``wall - ops`` is time with no op running (Python, ``train_on_batch`` overhead).
    """
    import tensorflow as tf

    from mammogan_lib.gan.trainers import build_trainer

    images = random_images(2 * batch_size, resolution, 0)
    if kind == "reference":
        settings = bench_settings(architecture, resolution, batch_size, "float32", width, 0)
        run = build_classic_loop(images, settings).step
    else:
        precision = "float32" if kind.startswith("float32") else kind
        settings = bench_settings(architecture, resolution, batch_size, precision, width, 0)
        trainer = build_trainer(images, settings, separate_upsampling=kind == "float32_thesis_layers")
        run = lambda: trainer.train_step(np.arange(batch_size))  # noqa: E731
    time_calls(run, warmup, 0)
    folder = Path(logdir) / kind
    tf.profiler.experimental.start(str(folder))
    timing = time_calls(run, 0, steps)
    tf.profiler.experimental.stop()
    rows = [row for row in _op_stats_rows(folder) if row["host_or_device"] == "Host"]
    busy = sorted((r for r in rows if r["type"] != "IDLE"), key=lambda r: -r["total_self_time"])
    categories: dict[str, float] = {}
    for row in busy:
        category = op_category(row["type"], row["operation"])
        categories[category] = categories.get(category, 0.0) + row["total_self_time"] / 1000 / steps
    by_category = dict(sorted(categories.items(), key=lambda item: -item[1]))
    return {
        "kind": kind,
        "resolution": resolution,
        "batch_size": batch_size,
        "width": width,
        "steps": steps,
        "wall_ms_per_step": round(1000 * sum(timing.wall) / steps, 1),
        "op_ms_per_step": round(sum(categories.values()), 1),
        "ms_per_step_by_category": {name: round(ms, 1) for name, ms in by_category.items()},
        "top_ops": [
            {
                "type": r["type"],
                "name": r["operation"],
                "category": op_category(r["type"], r["operation"]),
                "ms_per_step": round(r["total_self_time"] / 1000 / steps, 1),
            }
            for r in busy[:top]
        ],
    }
