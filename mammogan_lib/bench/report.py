"""The benchmark run and its report: the training rows, their derived figures, the targets, auto's pick,
exp3's hours, the T4 estimate, and the printed table."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mammogan_lib.bench.flops import CLASSIC_LOOP_PASSES, OUR_STEP_PASSES
from mammogan_lib.bench.measure import FEATURE_NETWORKS
from mammogan_lib.bench.runner import run_measurement

TRAIN_MEASUREMENTS: tuple[str, ...] = ("reference", "float32_thesis_layers", "float32", "mixed")
"""(a), (b0), (b), (c): the order of the table; the speed-ups are relative to the first."""

TRAIN_LABELS: dict[str, str] = {
    "reference": "(a) classic Keras loop, thesis layers",
    "float32_thesis_layers": "(b0) our step, float32, thesis layers",
    "float32": "(b) our step, float32",
    "mixed": "(c) our step, mixed precision",
}
TARGET_SPEEDUPS: dict[str, float] = {"float32": 1.3}
"""The float32 step must beat the classic loop by this much on every CPU (speed-up over (a))."""
AUTO_TOLERANCE = 1.05
"""``precision: auto``'s pick may be at most 5 % slower than float32 on the machine it runs on."""
EMULATED_WARMUP, EMULATED_REPEATS = 1, 3
"""Steps of a precision the device only emulates (each can take a minute at full size)."""

EXP3_EPOCHS = 20_000
EXP3_IMAGES = 500
"""The thesis's exp3: 20,000 "epochs" at batch 32 on ~500 training images."""

T4_PEAK_TFLOPS: dict[str, float] = {"float32": 8.1, "mixed_float16": 65.0}
"""NVIDIA T4 datasheet peaks: 8.1 TFLOP/s float32, 65 TFLOP/s float16 on tensor cores (boost clock)."""
T4_ASSUMED_UTILISATION: dict[str, tuple[float, float]] = {"float32": (0.3, 0.6), "mixed_float16": (0.1, 0.3)}
"""Assumed share of the T4 peak a batch-32 DCGAN step reaches (low, high): assumed, never measured."""


# --- the report ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchOptions:
    """What one benchmark run measures (the CLI's flags)."""

    architecture: str = "baseline"
    resolution: int = 128
    batch_size: int = 32
    width: float = 1.0
    warmup: int = 3
    repeats: int = 10
    matmul_size: int = 2048
    preprocess: bool = True
    preprocess_images: int = 1570
    preprocess_workers: int = 2
    data_dir: str = "data"
    features: bool = True
    feature_batch_size: int = 32
    feature_repeats: int = 5
    jit_compile: bool = False  # (b) and (c) compiled with XLA: an experiment, not the default step
    backend: str = "tensorflow"  # Keras's backend of every GAN measurement (the features are torch's)


def mixed_is_native(machine: Mapping[str, Any]) -> bool:
    """Whether ``precision: mixed`` runs natively here: float16 on a GPU, or bfloat16 on a CPU with the
    flags for it (the parent process reads them; it never loads a framework)."""
    return bool(machine.get("gpus")) or bool(machine.get("native_bfloat16"))


def train_configs(options: BenchOptions, mixed_native: bool = True) -> dict[str, tuple[str, dict[str, Any]]]:
    """The training measurements, in :data:`TRAIN_MEASUREMENTS` order: name -> (measure, config).

    An emulated mixed precision is timed with :data:`EMULATED_REPEATS` steps after
    :data:`EMULATED_WARMUP` (fewer than ``options.repeats``): its steps are many times slower.
    """
    common = {
        "architecture": options.architecture,
        "resolution": options.resolution,
        "batch_size": options.batch_size,
        "width": options.width,
        "warmup": options.warmup,
        "repeats": options.repeats,
        "backend": options.backend,
    }
    ours = {**common, "jit_compile": options.jit_compile, "precision": "float32"}
    mixed = {**ours, "precision": "mixed"}
    if not mixed_native:
        mixed.update(
            warmup=min(options.warmup, EMULATED_WARMUP), repeats=min(options.repeats, EMULATED_REPEATS)
        )
    return {
        "reference": ("reference", common),
        "float32_thesis_layers": ("train_step", {**ours, "separate_upsampling": True}),
        "float32": ("train_step", ours),
        "mixed": ("train_step", mixed),
    }


def add_derived_figures(row: dict[str, Any], reference_ms: float, matmul: dict[str, Any]) -> dict[str, Any]:
    """Speed-up over (a), achieved GFLOP/s and its share of the float32 (and reduced-precision) matmul."""
    seconds = row["ms_per_step"] / 1000
    gflops = row["flops_per_step"] / seconds / 1e9
    row = {
        **row,
        "speedup_vs_reference": round(reference_ms / row["ms_per_step"], 3),
        "gflop_per_step": round(row["flops_per_step"] / 1e9, 2),
        "gflop_per_s": round(gflops, 1),
        "fraction_of_float32_matmul_peak": round(gflops / matmul["float32_peak_gflops"], 3),
    }
    reduced = matmul.get("reduced", {}).get(row["dtype_policy"].removeprefix("mixed_"), {})
    if row["dtype_policy"].startswith("mixed") and reduced.get("gflops"):
        row["fraction_of_reduced_matmul_peak"] = round(gflops / reduced["gflops"], 3)
    return row


def check_auto(rows: Mapping[str, Mapping[str, Any]], choice: Mapping[str, Any]) -> dict[str, Any]:
    """Whether ``auto``'s pick was right here: its policy's measured step at most :data:`AUTO_TOLERANCE`
    times float32's (float32 itself always is)."""
    measured = {
        row["dtype_policy"]: row["ms_per_step"]
        for name, row in timed_rows(rows).items()
        if name in ("float32", "mixed")
    }
    picked_ms = measured.get(choice["policy"])
    ratio = None if picked_ms is None else round(picked_ms / measured["float32"], 3)
    return {
        "policy": choice["policy"],
        "reason": choice["reason"],
        "ms_per_step": picked_ms,
        "vs_float32": ratio,
        "tolerance": AUTO_TOLERANCE,
        "right": ratio is not None and ratio <= AUTO_TOLERANCE,
        "calibration_ms_per_step": choice.get("calibration_ms_per_step"),
        "choice_s": choice.get("choice_s"),
    }


def exp3_hours(ms_per_step: float, batch_size: int = 32) -> dict[str, float]:
    """Hours for the thesis's exp3 at ``ms_per_step``, for both readings of its "20,000 epochs".

    Reading 1: an epoch is a full pass over 500 images (15 steps of 32) -> 300,000 steps.
    Reading 2: an epoch is one batch -> 20,000 steps.
    """
    full_pass_steps = EXP3_EPOCHS * (EXP3_IMAGES // batch_size)
    hours = ms_per_step / 3.6e6
    return {
        "full_pass_steps": full_pass_steps,
        "full_pass_epochs_h": round(full_pass_steps * hours, 1),
        "one_batch_steps": EXP3_EPOCHS,
        "one_batch_epochs_h": round(EXP3_EPOCHS * hours, 1),
    }


def t4_estimate(flops_per_step: int, batch_size: int = 32) -> dict[str, Any]:
    """ESTIMATE (no GPU measured): our step on a Kaggle T4 from its FLOPs, the datasheet peak and an
    assumed utilisation range; ms/step and exp3 hours for both readings of "epoch"."""
    estimate: dict[str, Any] = {
        "kind": "estimate from FLOPs, datasheet peak and assumed utilisation; not a measurement"
    }
    for precision, peak in T4_PEAK_TFLOPS.items():
        for bound, utilisation in zip(("slow", "fast"), T4_ASSUMED_UTILISATION[precision], strict=True):
            ms = flops_per_step / (peak * 1e12 * utilisation) * 1000
            estimate[f"{precision}_{bound}"] = {
                "peak_tflops": peak,
                "assumed_utilisation": utilisation,
                "ms_per_step": round(ms, 2),
                **exp3_hours(ms, batch_size),
            }
    return estimate


def check_targets(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "target_speedup": target,
            "speedup": rows[name]["speedup_vs_reference"],
            "met": rows[name]["speedup_vs_reference"] >= target,
        }
        for name, target in TARGET_SPEEDUPS.items()
        if name in rows
    }


def measure_peaks(options: BenchOptions, machine: Mapping[str, Any], progress: Callable[[str], None]) -> dict:
    """The float32 matmul peak, and the mixed policy's dtype (float16 on a GPU, bfloat16 on a CPU)."""
    progress(f"matmul peak ({options.matmul_size}^2)")
    matmul = run_measurement(
        "matmul", {"size": options.matmul_size, "backend": options.backend}, backend=options.backend
    )
    reduced = "float16" if machine.get("gpus") else "bfloat16"
    progress(f"matmul {reduced} ({options.matmul_size}^2{'' if mixed_is_native(machine) else ', emulated'})")
    config = {"size": options.matmul_size, "dtype": reduced, "backend": options.backend}
    matmul["reduced"] = {
        reduced: run_measurement("matmul_reduced", config, required=False, backend=options.backend)
    }
    return matmul


def measure_training(
    options: BenchOptions,
    machine: Mapping[str, Any],
    matmul: Mapping[str, Any],
    progress: Callable[[str], None],
    measured: Callable[[dict[str, dict[str, Any]]], None] = lambda _: None,
) -> dict[str, dict[str, Any]]:
    """The rows (a), (b0), (b), (c), each with its derived figures and the load around it;
    ``measured(rows)`` is called with the rows so far after each one.

    Mixed precision may fail where float32 runs (a framework without that dtype's kernels on this device):
    its row then holds the ``error`` instead of figures, and the other rows stand.
    """
    rows: dict[str, dict[str, Any]] = {}
    for name, (measure, config) in train_configs(options, mixed_is_native(machine)).items():
        progress(f"training step: {TRAIN_LABELS[name]}")
        load_before = os.getloadavg()[0]
        label = TRAIN_LABELS[name] + (", XLA" if config.get("jit_compile") else "")
        result = run_measurement(measure, config, required=name != "mixed", backend=options.backend)
        rows[name] = {
            "label": label,
            **result,
            "load_average_1min_before": round(load_before, 2),
            "load_average_1min_after": round(os.getloadavg()[0], 2),
        }
        measured(rows)
    reference_ms = rows["reference"]["ms_per_step"]
    return {
        name: row if "error" in row else add_derived_figures(row, reference_ms, matmul)
        for name, row in rows.items()
    }


def timed_rows(rows: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The training rows that have figures (not a failed mixed precision's)."""
    return {name: row for name, row in rows.items() if "error" not in row}


def measure_throughput(options: BenchOptions, progress: Callable[[str], None]) -> dict[str, Any]:
    """02_preprocess's and the feature networks' images/s, as far as the options ask for them."""
    measured: dict[str, Any] = {}
    if options.preprocess:
        progress(f"02_preprocess throughput ({options.preprocess_images} phantom images)")
        config = {
            "images": options.preprocess_images,
            "workers": options.preprocess_workers,
            "data_dir": options.data_dir,
        }
        measured["preprocess"] = run_measurement("preprocess", config)
    if options.features:
        measured["features"] = {}
        for network in FEATURE_NETWORKS:
            progress(f"feature throughput: {network}")
            config = {
                "network": network,
                "batch_size": options.feature_batch_size,
                "resolution": options.resolution,
                "repeats": options.feature_repeats,
            }
            measured["features"][network] = run_measurement("features", config)
    return measured


def run_benchmark(
    options: BenchOptions,
    progress: Callable[[str], None] = lambda _: None,
    partial: Callable[[dict[str, Any]], None] = lambda _: None,
) -> dict[str, Any]:
    """Every measurement of one benchmark run, each in its own subprocess; the JSON-ready report.

    ``progress(message)`` is told what starts (``main`` prints it); the library prints nothing.
    ``partial(report)`` is given the report so far after each measurement, with ``"complete": False``
    (``main`` writes it, so that a run stopped after an hour keeps what it measured).
    """
    from mammogan_lib.pipeline.provenance import git_state, hardware, package_versions

    machine = hardware()
    report: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_start": list(os.getloadavg()),
        "options": options.__dict__.copy(),
        "machine": machine,
        "packages": package_versions(),
        "git": git_state(),
        "complete": False,
    }
    matmul = measure_peaks(options, machine, progress)
    report["matmul_peak"] = matmul
    partial(report)
    progress("FLOP count")
    shape = {
        "architecture": options.architecture,
        "resolution": options.resolution,
        "width": options.width,
        "batch_size": options.batch_size,
    }
    report["flops"] = run_measurement("flops", shape, backend=options.backend)
    partial(report)
    rows = measure_training(
        options, machine, matmul, progress, measured=lambda rows: partial({**report, "train_raw": rows})
    )
    report.update(train=rows, targets=check_targets(rows))
    partial(report)
    progress("the policy precision: auto picks")
    choice = run_measurement("auto_precision", {**shape, "backend": options.backend}, backend=options.backend)
    report["auto"] = check_auto(rows, choice)
    partial(report)
    report.update(
        step_passes={
            "ours": [p.__dict__ for p in OUR_STEP_PASSES],
            "reference": [p.__dict__ for p in CLASSIC_LOOP_PASSES],
        },
        exp3_hours={
            name: exp3_hours(row["ms_per_step"], options.batch_size) for name, row in timed_rows(rows).items()
        },
        t4_estimate=t4_estimate(rows["float32"]["flops_per_step"], options.batch_size),
        **measure_throughput(options, progress),
    )
    report.update(load_average_end=list(os.getloadavg()), complete=True)
    return report


# --- text output ----------------------------------------------------------------------------------------


def format_header(report: dict[str, Any]) -> list[str]:
    """The machine (CPU flags included), the matmul peaks and the training configuration."""
    options, matmul, machine = report["options"], report["matmul_peak"], report["machine"]
    reduced = [
        f"{options.get('backend', 'tensorflow')}_{dtype} "
        + (f"{row['gflops']} GFLOP/s" if "gflops" in row else "failed")
        for dtype, row in matmul.get("reduced", {}).items()
    ]
    yes_no = {key: "yes" if machine.get(key) else "no" for key in ("avx512", "native_bfloat16")}
    lines = [
        f"machine: {machine['cpu']}, {machine['cpu_count']} cores; CPU flags "
        f"{' '.join(machine.get('cpu_flags', [])) or '?'} (AVX-512: {yes_no['avx512']}, "
        f"native bfloat16: {yes_no['native_bfloat16']}); GPUs: "
        f"{', '.join(machine.get('gpus', [])) or 'none'}; load average at start "
        f"{report['load_average_start'][0]:.2f}, at end {report['load_average_end'][0]:.2f}",
        f"matmul {matmul['size']}^2 best of {matmul['repeats']}: "
        + ", ".join([f"{k} {v} GFLOP/s" for k, v in matmul["gflops"].items()] + reduced)
        + f"; float32 peak = {matmul['float32_peak_source']}",
        f"training on Keras's {options.get('backend', 'tensorflow')} backend: {options['architecture']} at "
        f"{options['resolution']}x{options['resolution']}, "
        f"batch {options['batch_size']}, width {options['width']}; median of {options['repeats']} steps "
        f"after {options['warmup']} warm-up steps (an emulated policy: {EMULATED_REPEATS} after "
        f"{EMULATED_WARMUP})",
        "",
    ]
    return lines


def format_training_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    """One line per training row: policy, ms/step, images/s, speed-up, FLOPs, share of peak, memory."""
    header = (
        f"{'measurement':<42}{'policy':>15}{'ms/step':>10}{'img/s':>8}{'vs (a)':>8}{'GFLOP/step':>12}"
        f"{'GFLOP/s':>9}{'% fp32 peak':>12}{'peak MiB':>10}{'CPU share':>10}"
        f"{'load 1m':>10}"
    )
    lines = [header, "-" * len(header)]
    for row in rows.values():
        if "error" in row:
            lines.append(f"{row['label']:<42} FAILED: {row['error']}")
            continue
        lines.append(
            f"{row['label']:<42}{row['dtype_policy']:>15}{row['ms_per_step']:>10.1f}"
            f"{row['images_per_s']:>8.1f}{row['speedup_vs_reference']:>7.2f}x{row['gflop_per_step']:>12.1f}"
            f"{row['gflop_per_s']:>9.1f}{100 * row['fraction_of_float32_matmul_peak']:>11.1f}%"
            f"{row['peak_rss_mib']:>10.0f}{row['cpu_share_median']:>10.2f}"
            f"{row['load_average_1min_before']:>5.1f}->"
            f"{row['load_average_1min_after']:.1f}"
        )
    return lines


def format_report(report: dict[str, Any]) -> str:
    """The human-readable table of a report from :func:`run_benchmark`."""
    lines = [*format_header(report), *format_training_table(report["train"])]
    lines.append("")
    for name, target in report["targets"].items():
        lines.append(
            f"target {report['train'][name]['label']}: >= {target['target_speedup']}x (a): "
            f"{target['speedup']:.2f}x -> {'met' if target['met'] else 'MISSED'}"
        )
    auto = report["auto"]
    verdict = "right" if auto["right"] else f"WRONG PICK (more than {auto['tolerance']:.2f}x float32's step)"
    ratio = f"{auto['vs_float32']:.2f}x float32's step" if auto["vs_float32"] is not None else "not timed"
    lines.append(f"precision auto picks {auto['policy']}: {auto['reason']} -> {ratio}: {verdict}")
    for name, hours in report["exp3_hours"].items():
        lines.append(
            f"exp3 with {report['train'][name]['label']}: {hours['full_pass_epochs_h']} h "
            f"({hours['full_pass_steps']:,} steps), {hours['one_batch_epochs_h']} h "
            f"({hours['one_batch_steps']:,} steps)"
        )
    for key, value in report["t4_estimate"].items():
        if isinstance(value, dict):
            lines.append(
                f"T4 ESTIMATE {key}: {value['ms_per_step']} ms/step at "
                f"{value['assumed_utilisation']:.0%} of {value['peak_tflops']} TFLOP/s -> "
                f"exp3 {value['full_pass_epochs_h']} h / "
                f"{value['one_batch_epochs_h']} h"
            )
    if "preprocess" in report:
        pre = report["preprocess"]
        lines.append(
            f"02_preprocess: {pre['images']} phantom images ({pre['succeeded']} ok), "
            f"{pre['workers']} workers: {pre['seconds']} s, {pre['images_per_s']} images/s; "
            f"peak MiB main "
            f"{pre['peak_rss_mib']:.0f}, worker {pre['worker_peak_rss_mib']:.0f}"
        )
    for network, row in report.get("features", {}).items():
        weights = "pretrained" if row["pretrained"] else "RANDOM weights"
        lines.append(
            f"features {network} ({weights}; from {row['input_resolution']} px arrays, "
            f"batch {row['batch_size']}): "
            f"{row['ms_per_step']} ms/batch, {row['images_per_s']} images/s, "
            f"peak {row['peak_rss_mib']:.0f} MiB"
        )
    return "\n".join(lines)


def run_profiles(kinds: Sequence[str], options: BenchOptions, steps: int) -> dict[str, Any]:
    """:func:`profile_step` for each kind, each in its own subprocess (``runs/bench/profile/<kind>``)."""
    config = {
        "architecture": options.architecture,
        "resolution": options.resolution,
        "batch_size": options.batch_size,
        "width": options.width,
        "steps": steps,
    }
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_start": list(os.getloadavg()),
        "profiles": {kind: run_measurement("profile", {**config, "kind": kind}) for kind in kinds},
        "load_average_end": list(os.getloadavg()),
    }


def format_profiles(report: dict[str, Any], top: int = 12) -> str:
    """Per kind: ms per step by category, then the ``top`` ops."""
    lines = []
    for kind, profile in report["profiles"].items():
        lines.append(
            f"{TRAIN_LABELS[kind]}: wall {profile['wall_ms_per_step']} ms/step, ops "
            f"{profile['op_ms_per_step']} ms/step (summed over threads)"
        )
        categories = profile["ms_per_step_by_category"].items()
        lines += [f"  {ms:>8.1f} ms  {category}" for category, ms in categories]
        lines += [
            f"  {op['ms_per_step']:>8.1f} ms  {op['type']}  {op['name']}" for op in profile["top_ops"][:top]
        ]
        lines.append("")
    return "\n".join(lines)
