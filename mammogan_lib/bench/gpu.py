"""The GPU check: exp3's train step on a GPU machine that has jax and torch but no TensorFlow.

``python -m mammogan_lib.bench.gpu --output DIR`` measures, for each of the jax and torch backends that is
installed: the float32 and reduced-precision (float16) matmul peak on the GPU, and exp3's train step
(baseline, 128x128, batch 32, full width) in float32 and in mixed precision (``mixed``: float16 with loss
scaling on a GPU), each after warm-up, the median of repeated steps, every measurement in its own process
(:func:`mammogan_lib.bench.runner.run_measurement`). From them: the FLOP/s the step reaches and its share of
the measured matmul peak, the hours of the thesis's 20,000 epochs in both readings of "epoch"
(:func:`~mammogan_lib.bench.report.exp3_hours`), and a **T4 estimate**: the step's FLOPs at the same share
of the T4's datasheet peak (an estimate, labelled so: a T4 is not the GPU measured). Writes ``gpu.json``
and ``gpu.md`` (the table for ``docs/benchmarks.md``) into ``DIR``.

Nothing here imports TensorFlow. ``make gpu-bundle`` puts what the machine lacks in ``dist/gpu/`` (the
keras wheel and its small dependencies, and this project's wheel); on the machine::

    pip install -q --find-links dist/gpu --no-index keras==3.15.1    # what is missing, from the bundle
    pip install -q --no-deps --ignore-requires-python dist/gpu/mammogan_lib-*.whl
    python -m mammogan_lib.bench.gpu --output "$OUT"

(The bundle's compiled wheels are for this machine's Python; a machine on another Python version needs
its own keras dependencies, which a machine with jax usually has: optree, ml_dtypes, h5py.) At full size
the check takes a few minutes of GPU time: XLA compiles each jax step once (tens of seconds), then 25 steps
of each of the four configurations.

It runs where there is no GPU too (on the CPU, e.g. with small ``--resolution`` / ``--width`` to test it):
the report then says the device was the CPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mammogan_lib.bench.report import T4_PEAK_TFLOPS, exp3_hours
from mammogan_lib.bench.runner import run_measurement

GPU_BACKENDS: tuple[str, ...] = ("jax", "torch")
PRECISIONS: tuple[str, ...] = ("float32", "mixed")


def reduced_dtype(machine: dict[str, Any]) -> str:
    """The mixed policy's compute dtype (``precision: mixed``), whose matmul peak is measured too: float16
    on a GPU, bfloat16 on a CPU."""
    return "float16" if machine.get("gpus") else "bfloat16"


def installed_backends(wanted: Sequence[str]) -> list[str]:
    """The backends of ``wanted`` whose framework is importable here."""
    return [backend for backend in wanted if importlib.util.find_spec(backend) is not None]


def measure_backend(backend: str, options: argparse.Namespace, dtype: str) -> dict[str, Any]:
    """The matmul peaks (float32 and the mixed policy's ``dtype``) and the train steps of one backend (each
    in its own process)."""
    matmul = run_measurement("matmul", {"size": options.matmul_size, "backend": backend}, backend=backend)
    reduced = run_measurement(
        "matmul_reduced",
        {"size": options.matmul_size, "dtype": dtype, "backend": backend},
        required=False,
        backend=backend,
    )
    steps = {}
    for precision in PRECISIONS:
        config = {
            "architecture": "baseline",
            "resolution": options.resolution,
            "batch_size": options.batch_size,
            "width": options.width,
            "precision": precision,
            "warmup": options.warmup,
            "repeats": options.repeats,
            "backend": backend,
        }
        # mixed precision may be refused where float32 runs (torch's bfloat16 on some CPUs): recorded
        step = run_measurement("train_step", config, required=precision == "float32", backend=backend)
        steps[precision] = (
            {"backend": backend, "dtype_policy": precision, **step}
            if "error" in step
            else derived(step, matmul, reduced)
        )
    return {"matmul": matmul, "matmul_reduced": reduced, "train_step": steps}


def derived(step: dict[str, Any], matmul: dict[str, Any], reduced: dict[str, Any]) -> dict[str, Any]:
    """A step's FLOP rate, its share of the matmul peak of its own dtype, the exp3 hours and the T4
    estimate at that share."""
    seconds = step["ms_per_step"] / 1000
    tflops = step["flops_per_step"] / seconds / 1e12
    mixed = step["dtype_policy"].startswith("mixed")
    peak_gflops = reduced.get("gflops") if mixed else matmul["float32_peak_gflops"]
    utilisation = tflops * 1000 / peak_gflops if peak_gflops else None
    t4_peak = T4_PEAK_TFLOPS["mixed_float16" if mixed else "float32"]
    t4_ms = None if utilisation is None else step["flops_per_step"] / (t4_peak * 1e12 * utilisation) * 1000
    return {
        **step,
        "tflop_per_s": float(f"{tflops:.3g}"),
        "fraction_of_matmul_peak": None if utilisation is None else round(utilisation, 3),
        "exp3_hours": exp3_hours(step["ms_per_step"], step["batch_size"]),
        "t4_estimate": None
        if t4_ms is None
        else {
            "kind": "ESTIMATE: the step's FLOPs at the measured share of the matmul peak, on the T4's "
            "datasheet peak; not a measurement",
            "t4_peak_tflops": t4_peak,
            "ms_per_step": round(t4_ms, 2),
            "exp3_hours": exp3_hours(t4_ms, step["batch_size"]),
        },
    }


def format_table(report: dict[str, Any]) -> str:
    """The Markdown table of ``gpu.md``."""
    device = ", ".join(report["machine"].get("gpus") or []) or f"CPU ({report['machine']['cpu']})"
    lines = [
        f"Device: {device}. exp3 (baseline) at {report['resolution']}², batch {report['batch_size']}, width "
        f"{report['width']}; median of {report['repeats']} steps after {report['warmup']} warm-up steps. "
        f"Measured {report['created']} in {report['wall_s']} s.",
        "",
        "| backend | policy | ms/step | TFLOP/s | share of matmul peak | exp3 h (300k steps) | exp3 h (20k "
        "steps) | T4 ESTIMATE ms/step | T4 ESTIMATE h (300k / 20k) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, measured in report["backends"].items():
        for row in measured["train_step"].values():
            if "error" in row:
                lines.append(f"| {backend} | {row['dtype_policy']} | FAILED: {row['error']} |")
                continue
            t4 = row["t4_estimate"]
            hours = row["exp3_hours"]
            lines.append(
                f"| {backend} | {row['dtype_policy']} | {row['ms_per_step']} | {row['tflop_per_s']} | "
                f"{row['fraction_of_matmul_peak']} | {hours['full_pass_epochs_h']} | "
                f"{hours['one_batch_epochs_h']} | {t4['ms_per_step'] if t4 else '-'} | "
                + (
                    f"{t4['exp3_hours']['full_pass_epochs_h']} / {t4['exp3_hours']['one_batch_epochs_h']} |"
                    if t4
                    else "- |"
                )
            )
    lines.append("")
    for backend, measured in report["backends"].items():
        peaks = measured["matmul"]["gflops"]
        reduced = measured["matmul_reduced"]
        lines.append(
            f"- {backend} matmul {report['matmul_size']}²: "
            + ", ".join(f"{name} {value} GFLOP/s" for name, value in peaks.items())
            + (
                f", {reduced['dtype']} {reduced['gflops']} GFLOP/s"
                if "gflops" in reduced
                else f", reduced precision failed: {reduced.get('error', '?')}"
            )
        )
    return "\n".join(lines) + "\n"


def parse_options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mammogan_lib.bench.gpu", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--output", type=Path, required=True, help="folder for gpu.json and gpu.md")
    parser.add_argument("--backends", nargs="+", choices=GPU_BACKENDS, default=list(GPU_BACKENDS))
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--matmul-size", type=int, default=8192)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from mammogan_lib.core.files import write_json
    from mammogan_lib.pipeline.provenance import hardware, package_versions

    options = parse_options(argv)
    started = time.perf_counter()
    backends = installed_backends(options.backends)
    if not backends:
        raise SystemExit(f"none of {options.backends} is installed here")
    report: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": hardware(),
        "packages": package_versions(),
        **{key: getattr(options, key) for key in ("resolution", "batch_size", "width", "warmup", "repeats")},
        "matmul_size": options.matmul_size,
        "backends": {},
    }
    for backend in backends:
        print(f"... {backend}", flush=True)
        report["backends"][backend] = measure_backend(backend, options, reduced_dtype(report["machine"]))
    report["wall_s"] = round(time.perf_counter() - started, 1)
    options.output.mkdir(parents=True, exist_ok=True)
    write_json(options.output / "gpu.json", report)
    table = format_table(report)
    (options.output / "gpu.md").write_text(table)
    print(table, flush=True)
    print(json.dumps({"written": str(options.output / "gpu.json")}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
