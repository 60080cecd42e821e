"""The benchmark's command line, ``python -m mammogan_lib.bench`` (see :mod:`mammogan_lib.bench`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mammogan_lib.bench.report import (
    TRAIN_MEASUREMENTS,
    BenchOptions,
    format_profiles,
    format_report,
    run_benchmark,
    run_profiles,
)
from mammogan_lib.bench.runner import MEASURES, measure_in_this_process
from mammogan_lib.core.frameworks import BACKENDS

DEFAULT_OUTPUT = Path("runs/bench/bench.json")

# --- CLI ----------------------------------------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, BenchOptions]:
    defaults = BenchOptions()
    parser = argparse.ArgumentParser(prog="python -m mammogan_lib.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--architecture", default=defaults.architecture)
    parser.add_argument("--resolution", type=int, default=defaults.resolution)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--width", type=float, default=defaults.width)
    parser.add_argument("--warmup", type=int, default=defaults.warmup, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=defaults.repeats, help="timed steps (median)")
    parser.add_argument("--matmul-size", type=int, default=defaults.matmul_size)
    parser.add_argument("--skip-preprocess", action="store_true")
    parser.add_argument(
        "--preprocess-images",
        type=int,
        default=defaults.preprocess_images,
        help="phantom full mammograms (generated under --data-dir if missing)",
    )
    parser.add_argument("--preprocess-workers", type=int, default=defaults.preprocess_workers)
    parser.add_argument("--data-dir", default=defaults.data_dir)
    parser.add_argument("--skip-features", action="store_true")
    parser.add_argument("--feature-batch-size", type=int, default=defaults.feature_batch_size)
    parser.add_argument("--feature-repeats", type=int, default=defaults.feature_repeats)
    parser.add_argument("--jit-compile", action="store_true", help="(b) and (c) with XLA (an experiment)")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=defaults.backend,
        help="Keras backend of the GAN measurements (jax: pip install -e '.[jax]')",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the JSON report")
    parser.add_argument(
        "--profile",
        nargs="+",
        choices=TRAIN_MEASUREMENTS,
        metavar="KIND",
        help="instead of the benchmark: where the step's time goes (tf.profiler) for each "
        f"KIND of {', '.join(TRAIN_MEASUREMENTS)}; writes profile.json next to "
        "--output",
    )
    parser.add_argument("--profile-steps", type=int, default=3)
    parser.add_argument("--measure", choices=sorted(MEASURES), help=argparse.SUPPRESS)  # a child process
    parser.add_argument("--config", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    options = BenchOptions(
        architecture=args.architecture,
        resolution=args.resolution,
        batch_size=args.batch_size,
        width=args.width,
        warmup=args.warmup,
        repeats=args.repeats,
        matmul_size=args.matmul_size,
        preprocess=not args.skip_preprocess,
        preprocess_images=args.preprocess_images,
        preprocess_workers=args.preprocess_workers,
        data_dir=args.data_dir,
        features=not args.skip_features,
        feature_batch_size=args.feature_batch_size,
        feature_repeats=args.feature_repeats,
        jit_compile=args.jit_compile,
        backend=args.backend,
    )
    if args.profile and args.backend != "tensorflow":
        parser.error("--profile uses TensorFlow's profiler: it needs --backend tensorflow")
    return args, options


def main(argv: Sequence[str] | None = None) -> int:
    args, options = parse_options(argv)
    if args.measure:  # inside a child process: one measurement, one JSON line
        print(json.dumps(measure_in_this_process(args.measure, json.loads(args.config))), flush=True)
        return 0
    from mammogan_lib.core.files import write_json

    if args.profile:
        profiles = run_profiles(args.profile, options, args.profile_steps)
        write_json(args.output.with_name("profile.json"), profiles)
        print(format_profiles(profiles), flush=True)
        return 0
    started = time.perf_counter()
    arguments = list(argv) if argv is not None else sys.argv[1:]
    command = " ".join(["python -m mammogan_lib.bench", *arguments])

    def write(report: dict) -> None:
        wall_s = round(time.perf_counter() - started, 1)
        write_json(args.output, {**report, "command": command, "wall_s": wall_s})

    report = run_benchmark(
        options, progress=lambda text: print(f"... {text}", file=sys.stderr, flush=True), partial=write
    )
    write(report)
    report["command"] = command
    print(format_report(report), flush=True)
    print(f"\nwritten: {args.output}", flush=True)
    return 0
