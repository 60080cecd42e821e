"""``make bench-quality``: which configuration makes the best mammograms for the same training time.

Every configuration — params files and ``key=value`` overrides on top of ``params/base.yaml`` and
``params/bench_quality.yaml`` — is trained and measured by the pipeline's own stages, once per seed, in a run
folder of its own (``<out>/runs/<name>_s<seed>_<digest>``, the digest of its parameters, so a changed
configuration never resumes another's checkpoints):

1. 01 and 02 on the data (``--data``; the embedded phantom when none), the held-out patients set aside;
2. 03 in ``--points`` segments of training time, ``train_minutes`` = minutes × i / points for i = 1 ...
   points, each segment resuming the last exactly (training time is the epochs' own wall time, summed over
   sessions in the checkpoints, so start-up, evaluation and interruptions do not count; the first epoch of
   each segment includes compiling the step, a second or two);
3. after each segment 04 (images from the newest checkpoint) and 05: FD in EfficientNet-Lite0 features and
   FRD, generated and real training images each drawn to one N against the held-out patients (the real
   floor), precision, recall and coverage against the held-out images, each with its interval;
4. with ``--svm``, 06 after the last segment (SVM accuracy of real-only and synthetic-only training).

Each measured point is appended to ``<out>/results.jsonl`` when it is done. Running the same command again
reads the finished points back and resumes the rest, so a bench may be filled in several sittings. The
outputs, in ``<out>/``: ``table.md`` and ``table.csv`` (the last point of each configuration: per seed, and
the mean with a 95 % interval over seeds), ``quality_vs_time.png`` (distance against training minutes per
configuration) and ``grids.png`` (held-out real images above each configuration's generated ones).

Compare only rows of one machine: the same minutes buy different numbers of steps on another CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from mammogan_lib import pipeline
from mammogan_lib.core import config, failures, files, plots, terminal
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.data import preprocess
from mammogan_lib.evaluate.classify import mean_interval
from mammogan_lib.gan.generate import load_generated
from mammogan_lib.pipeline import provenance

BASE_FILES = (
    config.CHECKOUT_ROOT / "params" / "base.yaml",
    config.CHECKOUT_ROOT / "params" / "bench_quality.yaml",
)
DEFAULT_OUT = Path("runs/bench_quality")
DEFAULT_CONFIGS = tuple(
    f"{name}={config.CHECKOUT_ROOT / 'params' / file}"
    for name, file in (("exp3", "exp3_baseline.yaml"), ("exp4_diffaug", "exp4_diffaug.yaml"))
)
EVALUATED_STAGES = ("01_filter", "02_preprocess", "03_train_gan", "04_generate", "05_metrics")
FD = "fd_effnet_lite0"
FRD = "frd"
PRC = ("precision", "recall", "coverage")
# the keys of a configuration's parameters that do not make it another configuration
NOT_CONFIGURATION = ("exp_id", "seed", "train_minutes", "runs_dir", "workers")
OVERLAP_WORDS = {True: "yes", False: "no", None: "—"}


class BenchError(ValueError):
    """A bench option or configuration that cannot be run, named."""


@dataclass(frozen=True)
class Configuration:
    """A named configuration: params files and ``key=value`` overrides, in the order given."""

    name: str
    files: tuple[Path, ...]
    overrides: tuple[str, ...]

    @classmethod
    def parse(cls, spec: str) -> Configuration:
        """``NAME=ITEM+ITEM+...``, each ITEM a params file (``.yaml``) or a ``key=value`` override (its value
        read as YAML), e.g. ``exp3_r1=params/exp3_baseline.yaml+r1_gamma=1.0``."""
        name, sep, items = spec.partition("=")
        if not sep or not name or not config.EXP_ID_PATTERN.match(name):
            raise BenchError(
                f"--config {spec!r}: expected NAME=ITEM+ITEM..., NAME letters, digits, '_', '-' or '.' "
                "and each ITEM a params .yaml file or a key=value override"
            )
        parts = [item for item in items.split("+") if item]
        paths = tuple(Path(item) for item in parts if "=" not in item)
        missing = [str(path) for path in paths if not path.is_file()]
        if missing or not parts:
            raise BenchError(f"--config {spec!r}: " + (f"no such file {missing}" if missing else "no items"))
        return cls(name, paths, tuple(item for item in parts if "=" in item))


@dataclass(frozen=True)
class Plan:
    """What one bench invocation measures."""

    configurations: tuple[Configuration, ...]
    seeds: tuple[int, ...]
    minutes: float
    points: int
    data: str  # '' = the embedded phantom
    overrides: tuple[str, ...]  # --set, for every configuration
    out: Path
    svm: bool = False
    report_only: bool = False

    @property
    def point_minutes(self) -> list[float]:
        return [round(self.minutes * index / self.points, 6) for index in range(1, self.points + 1)]


def stage_keys(configs: Sequence[type]) -> set[str]:
    """The parameters the given stages' config classes declare."""
    return {field.name for cls in configs for field in dataclasses.fields(cls)}


TRAINING_KEYS = stage_keys(config.STAGE_CONFIGS[:3]) - set(NOT_CONFIGURATION)  # 01, 02, 03
EVALUATION_KEYS = stage_keys(config.STAGE_CONFIGS[3:]) - TRAINING_KEYS - {"data_dir", "runs_dir"}  # 04-06


def _digest(values: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:8]


def run_digest(plan: Plan, configuration: Configuration) -> str:
    """What makes a configuration's training: the data and the 01-03 parameters its own files, its
    overrides and ``--set`` give (not base.yaml's defaults, so a parameter added later leaves the run
    folders as they are: its default is what the checkpoints ran with)."""
    given = {}
    for path in configuration.files:
        given.update(yaml.safe_load(path.read_text()) or {})
    given.update(pipeline.load_params([], [*plan.overrides, *configuration.overrides]).values)
    return _digest({"data": plan.data, **{k: v for k, v in given.items() if k in TRAINING_KEYS}})


def merged_params(
    plan: Plan, configuration: Configuration, seed: int, minutes: float
) -> pipeline.MergedParams:
    """The pipeline parameters of one configuration, seed and point; its exp_id names the configuration and
    :func:`run_digest`, so a changed configuration never resumes another's checkpoints."""
    overrides = [
        *(["dataset_root=" + json.dumps(plan.data)] if plan.data else []),
        f"runs_dir={json.dumps(str(plan.out / 'runs'))}",
        *plan.overrides,
        *configuration.overrides,
        f"seed={seed}",
        f"train_minutes={minutes}",
    ]
    merged = pipeline.load_params([*BASE_FILES, *configuration.files], overrides)
    merged.values["exp_id"] = f"{configuration.name}_s{seed}_{run_digest(plan, configuration)}"
    merged.origins["exp_id"] = "make bench-quality"
    return merged


def evaluation_digest(merged: pipeline.MergedParams) -> str:
    """What makes a point's measurement (the 04-06 parameters): a point measured otherwise is measured
    again."""
    return _digest({key: value for key, value in merged.values.items() if key in EVALUATION_KEYS})


def done_points(results: Path) -> dict[tuple[str, float, str], dict[str, Any]]:
    """The measured points of ``results.jsonl``, by (exp_id, minutes, evaluation digest)."""
    if not results.is_file():
        return {}
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    return {(row["exp_id"], float(row["train_minutes"]), row.get("evaluation", "")): row for row in rows}


def heldout_row(metrics: Mapping[str, Any], features: str, comparison: str) -> Mapping[str, Any]:
    """The row of 05's set table for ``comparison`` in ``features`` (``{}`` when absent)."""
    return next(
        (r for r in metrics["sets"] if r["features"] == features and r["comparison"] == comparison), {}
    )


def point_row(plan: Plan, configuration: Configuration, seed: int, minutes: float, run_dir: Path) -> dict:
    """What one measured point keeps: the training it had, and 05's (and 06's) numbers against held-out
    patients."""
    paths = RunPaths(run_dir)
    summary, metrics = files.read_json(paths.train_summary), files.read_json(paths.metrics)
    trained_s, epoch_s = summary.get("train_seconds") or 0.0, summary.get("this_session", {}).get("train_s")
    # the last epoch may run past the point; a run that trained well past it was measured at a later one
    slack = max(30.0, 0.05 * minutes * 60)
    if trained_s > minutes * 60 + slack:
        raise BenchError(
            f"{run_dir.name} has trained {trained_s / 60:.2f} minutes, past this point's {minutes:g} (its "
            "newest checkpoint is all 04-05 can measure): bench it into another --out, or remove the run "
            f"folder to train it again ({epoch_s} s trained in its last session)"
        )
    headline = metrics["headline"]
    keys = [
        f"{FD}_equal_n",
        f"{FD}_equal_n_low",
        f"{FD}_equal_n_high",
        f"{FD}_real_floor_equal_n",
        f"{FD}_floor_ratio",
        f"{FRD}_equal_n",
        f"{FRD}_equal_n_low",
        f"{FRD}_equal_n_high",
        f"{FRD}_real_floor_equal_n",
        f"{FRD}_gap_to_floor",
        "n_equal",
        "n_train",
        "n_heldout",
        "n_generated",
    ]
    manifold = heldout_row(metrics, "effnet_lite0", "generated vs heldout")
    row = {
        "exp_id": run_dir.name,
        "configuration": configuration.name,
        "seed": seed,
        "train_minutes": minutes,
        "train_seconds": summary.get("train_seconds"),
        "step": summary["step"],
        "epoch": summary["epoch"],
        "dtype_policy": summary.get("dtype_policy"),
        "evaluated_epoch": metrics["epoch"],
        **{key: headline.get(key) for key in keys},
        **{
            f"{stem}_heldout{end}": manifold.get(f"{stem}_effnet_lite0{end}")
            for stem in PRC
            for end in ("", "_low", "_high")
        },
        "real_sets": metrics.get("real_sets"),
        "cpu": provenance.hardware().get("cpu"),
    }
    svm = files.read_json_if_present(paths.svm) if plan.svm and minutes == plan.point_minutes[-1] else None
    for summary_row in (svm or {}).get("summary_effnet_lite0", []):
        source, design = summary_row["non_tumour_source"], summary_row["design"]
        row[f"svm_{source}_{design}_accuracy"] = summary_row["accuracy"]
    return row


def run_point(
    plan: Plan, configuration: Configuration, seed: int, minutes: float, shown: terminal.Terminal
) -> dict:
    """Train one configuration and seed up to ``minutes`` and measure it; return its result row."""
    merged = merged_params(plan, configuration, seed, minutes)
    stages = EVALUATED_STAGES + (("06_svm",) if plan.svm and minutes == plan.point_minutes[-1] else ())
    pipeline.run_pipeline(merged, stages, shown=shown)
    row = point_row(plan, configuration, seed, minutes, pipeline.run_dir_of(merged, Path.cwd()))
    return row | {"evaluation": evaluation_digest(merged)}


def run_bench(plan: Plan, shown: terminal.Terminal) -> list[dict]:
    """Every configuration, seed and point of ``plan``, the finished ones read back from ``results.jsonl``;
    each new point is appended to it as soon as it is measured."""
    results = plan.out / "results.jsonl"
    done = done_points(results)
    rows = []
    for configuration in plan.configurations:
        for seed in plan.seeds:
            for minutes in plan.point_minutes:
                merged = merged_params(plan, configuration, seed, minutes)
                key = (merged.values["exp_id"], minutes, evaluation_digest(merged))
                if key in done:
                    rows.append(done[key])
                    continue
                if plan.report_only:
                    continue
                shown.line(f"[bench-quality] {configuration.name}, seed {seed}: training to {minutes:g} min")
                row = run_point(plan, configuration, seed, minutes, shown)
                results.parent.mkdir(parents=True, exist_ok=True)
                with open(results, "a") as handle:
                    handle.write(json.dumps(row) + "\n")
                shown.line(
                    f"[bench-quality] {configuration.name}, seed {seed}, {minutes:g} min ({row['step']:,} "
                    f"steps): FD {_fmt(row[f'{FD}_equal_n'])} (floor {_fmt(row[f'{FD}_real_floor_equal_n'])}"
                    f"), FRD {_fmt(row[f'{FRD}_equal_n'])} (floor {_fmt(row[f'{FRD}_real_floor_equal_n'])})"
                )
                rows.append(row)
    return rows


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def seed_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95 % t-interval of one value over seeds (the value itself for one seed; NaN for none)."""
    clean = np.array([v for v in values if v is not None and not np.isnan(v)], dtype=float)
    return mean_interval(clean) if len(clean) else (np.nan, np.nan, np.nan)


def final_table(rows: Sequence[Mapping[str, Any]], plan: Plan) -> pd.DataFrame:
    """One row per configuration at the last point: the mean over seeds of each measure with its 95 %
    interval over seeds (or, for one seed, 05's interval), the steps, and whether its FD and FRD intervals
    overlap those of the first configuration (the reference)."""
    last = plan.point_minutes[-1]
    frame = pd.DataFrame([row for row in rows if row["train_minutes"] == last])
    table = []
    for configuration in plan.configurations:
        runs = frame[frame["configuration"] == configuration.name] if len(frame) else frame
        if not len(runs):
            continue
        entry: dict[str, Any] = {"configuration": configuration.name, "seeds": len(runs)}
        for key in (f"{FD}_equal_n", f"{FRD}_equal_n"):
            mean, low, high = seed_interval(runs[key].tolist())
            if len(runs) == 1:  # 05's interval over draws; none where the generated set was used whole
                low, high = (runs[f"{key}_{end}"].iloc[0] for end in ("low", "high"))
                low, high = (mean if pd.isna(v) else v for v in (low, high))
            entry |= {key: mean, f"{key}_low": low, f"{key}_high": high}
        for key in (
            f"{FD}_real_floor_equal_n",
            f"{FD}_floor_ratio",
            f"{FRD}_real_floor_equal_n",
            f"{FRD}_gap_to_floor",
            *(f"{stem}_heldout" for stem in PRC),
            "step",
            "train_seconds",
            "n_equal",
            "n_heldout",
        ):
            entry[key] = seed_interval(runs[key].tolist())[0] if key in runs else np.nan
        entry["per_seed"] = {
            int(r["seed"]): {"fd": r[f"{FD}_equal_n"], "frd": r[f"{FRD}_equal_n"], "steps": r["step"]}
            for _, r in runs.iterrows()
        }
        svm_keys = [column for column in runs.columns if column.startswith("svm_")]
        entry |= {key: seed_interval(runs[key].tolist())[0] for key in svm_keys}
        table.append(entry)
    result = pd.DataFrame(table)
    if len(result):
        reference = result.iloc[0]
        for key, name in ((f"{FD}_equal_n", "fd"), (f"{FRD}_equal_n", "frd")):
            result[f"{name}_overlaps_{reference['configuration']}"] = [None] + [
                intervals_overlap(row, reference, key) for _, row in result.iloc[1:].iterrows()
            ]
    return result


def intervals_overlap(row: Mapping[str, Any], reference: Mapping[str, Any], key: str) -> bool | None:
    """Whether two configurations' 95 % intervals over seeds of ``key`` overlap; ``None`` unless both have
    two seeds or more: with one seed the interval is 05's spread over draws of one generator, which says
    nothing of how far another seed would move it."""
    if min(row["seeds"], reference["seeds"]) < 2:
        return None
    return not (row[f"{key}_high"] < reference[f"{key}_low"] or row[f"{key}_low"] > reference[f"{key}_high"])


def markdown_table(table: pd.DataFrame, plan: Plan) -> str:
    """The table as ``docs/quality.md`` shows it: one line per configuration, intervals in brackets."""
    if not len(table):
        return "(no finished configuration yet)\n"
    reference = table.iloc[0]["configuration"]
    lines = [
        f"| configuration | seeds | steps in {plan.minutes:g} min | FD effnet_lite0 vs held-out [95 %] | "
        f"floor | floor / FD | FRD vs held-out [95 %] | floor | gap | precision | recall | coverage | "
        f"overlaps {reference}: FD, FRD |",
        "|---|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for _, row in table.iterrows():

        def interval(key: str, row=row) -> str:
            return f"{_fmt(row[key])} [{_fmt(row[f'{key}_low'])}, {_fmt(row[f'{key}_high'])}]"

        lines.append(
            f"| {row['configuration']} | {row['seeds']} | {row['step']:,.0f} | {interval(f'{FD}_equal_n')} | "
            f"{_fmt(row[f'{FD}_real_floor_equal_n'])} | {_fmt(row[f'{FD}_floor_ratio'], 2)} | "
            f"{interval(f'{FRD}_equal_n')} | "
            f"{_fmt(row[f'{FRD}_real_floor_equal_n'])} | {_fmt(row[f'{FRD}_gap_to_floor'], 2)} | "
            f"{_fmt(row['precision_heldout'], 2)} | {_fmt(row['recall_heldout'], 2)} | "
            f"{_fmt(row['coverage_heldout'], 2)} | "
            + (
                "reference |"
                if row["configuration"] == reference
                else f"{OVERLAP_WORDS[row[f'fd_overlaps_{reference}']]}, "
                f"{OVERLAP_WORDS[row[f'frd_overlaps_{reference}']]} |"
            )
        )
    n_equal, n_heldout = table.iloc[0]["n_equal"], table.iloc[0]["n_heldout"]
    lines.append(
        f"\nFD and FRD: generated and real training images each drawn to N = {n_equal:,.0f} against "
        f"{n_heldout:,.0f} held-out images; floor = the training images' distance (the best a generator can "
        "do at this N); with several seeds the mean and a 95 % t-interval over seeds, with one seed 05's "
        "interval over draws; overlap is judged only between intervals over seeds (— where a row has one "
        "seed)."
    )
    return "\n".join(lines) + "\n"


def points_table(rows: Sequence[Mapping[str, Any]], plan: Plan) -> str:
    """FD / FRD of each configuration at every measured point: the mean over seeds, with FD's 95 %
    interval over seeds where there are two or more (a configuration may lead early and not at the end)."""
    frame = pd.DataFrame(rows)
    lines = [
        "| configuration | seeds | " + " | ".join(f"{m:g} min" for m in plan.point_minutes) + " |",
        "|---|---:|" + "---|" * len(plan.point_minutes),
    ]
    for configuration in plan.configurations:
        runs = frame[frame["configuration"] == configuration.name] if len(frame) else frame
        if not len(runs):
            continue
        cells = []
        for minutes in plan.point_minutes:
            at = runs[runs["train_minutes"] == minutes]
            fd, fd_low, fd_high = seed_interval(at[f"{FD}_equal_n"].tolist())
            interval = f" [{_fmt(fd_low)}, {_fmt(fd_high)}]" if len(at) > 1 else ""
            cells.append(f"{_fmt(fd)}{interval} / {_fmt(seed_interval(at[f'{FRD}_equal_n'].tolist())[0])}")
        lines.append(f"| {configuration.name} | {runs['seed'].nunique()} | " + " | ".join(cells) + " |")
    caption = "FD effnet_lite0 / FRD at equal N against the held-out images, at each point."
    return "\n".join(lines) + f"\n\n{caption}\n"


def quality_figure(rows: Sequence[Mapping[str, Any]], plan: Plan):
    """Distance to the held-out images against training minutes: FD (EfficientNet-Lite0) and FRD, one
    colour per configuration, each seed a thin line and the mean over seeds a thick one, the real floor
    dashed."""
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, title in (
        (axes[0], FD, "FD, EfficientNet-Lite0 features (ImageNet; not FID)"),
        (axes[1], FRD, "FRD v1 (radiomic features; log scale)"),
    ):
        for index, configuration in enumerate(plan.configurations):
            runs = frame[frame["configuration"] == configuration.name] if len(frame) else frame
            if not len(runs):
                continue
            colour = f"C{index}"
            for _, seed_rows in runs.groupby("seed"):
                seed_rows = seed_rows.sort_values("train_minutes")
                ax.plot(
                    seed_rows["train_minutes"], seed_rows[f"{key}_equal_n"], color=colour, lw=0.7, alpha=0.5
                )
            mean = runs.groupby("train_minutes")[f"{key}_equal_n"].mean()
            ax.plot(mean.index, mean.to_numpy(), color=colour, lw=2.2, marker="o", label=configuration.name)
        if len(frame):
            floor = frame[f"{key}_real_floor_equal_n"].mean()
            ax.axhline(floor, color="black", ls="--", lw=1, label=f"real floor ({floor:.3g})")
        ax.set_xlabel("training time (minutes of training steps)")
        ax.set_ylabel(f"{key} at equal N vs held-out patients")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"Quality for compute ({provenance.hardware().get('cpu', '?')})", fontsize=10)
    fig.tight_layout()
    return fig


def grid_figure(plan: Plan, per_row: int = 8):
    """Held-out real images in the first row, then each configuration's generated images (first seed, last
    point), at a size where texture can be seen."""
    images, titles = [], []
    first_seed = plan.seeds[0]
    for configuration in plan.configurations:
        merged = merged_params(plan, configuration, first_seed, plan.point_minutes[-1])
        run_dir = pipeline.run_dir_of(merged, Path.cwd())
        if not RunPaths(run_dir).generated.is_dir():
            continue
        if not images:
            heldout, _ = preprocess.load_split_images(run_dir, "heldout")
            images += list(heldout[:per_row])
            titles += ["real, held-out"] + [""] * (min(per_row, len(heldout)) - 1)
        generated, epoch = load_generated(run_dir)
        images += list(generated[:per_row])
        titles += [f"{configuration.name}, epoch {epoch:,}"] + [""] * (min(per_row, len(generated)) - 1)
    if not images:
        return None
    return plots.image_grid(images, titles, ncols=per_row, value_range=(-1, 1), tile_inches=1.5)


def write_outputs(rows: Sequence[Mapping[str, Any]], plan: Plan) -> str:
    """Write the table (markdown and CSV), the figure and the grids into ``plan.out``; return the table."""
    table = final_table(rows, plan)
    text = markdown_table(table, plan) + "\n" + points_table(rows, plan)
    files.write_text(plan.out / "table.md", text)
    files.write_text(
        plan.out / "table.csv", table.drop(columns=["per_seed"], errors="ignore").to_csv(index=False)
    )
    files.write_json(plan.out / "final.json", table.to_dict(orient="records"))
    plots.save_figure(quality_figure(rows, plan), plan.out / "quality_vs_time.png")
    grids = grid_figure(plan)
    if grids is not None:
        plots.save_figure(grids, plan.out / "grids.png")
    return text


def parse_plan(argv: Sequence[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(
        prog="python -m mammogan_lib.bench.quality", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data", default="", help="dataset root (any layout); '' = the embedded phantom")
    parser.add_argument(
        "--config",
        dest="configs",
        action="append",
        default=[],
        metavar="NAME=ITEM+ITEM",
        help="a configuration: params .yaml files and key=value overrides joined by '+', the first "
        "configuration being the reference (default: exp3 and exp4_diffaug, the experiment files)",
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument(
        "--minutes", type=float, default=2.0, help="training minutes per configuration and seed"
    )
    parser.add_argument("--points", type=int, default=2, help="measured points along the training time")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results, table and figures")
    parser.add_argument("--svm", action="store_true", help="also run 06 after the last point")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the table and figures from the points results.jsonl already holds",
    )
    args = parser.parse_args(argv)
    try:
        seeds = tuple(int(seed) for seed in args.seeds.split(","))
    except ValueError:
        raise BenchError(f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. 0,1,2") from None
    problems = [f"--minutes {args.minutes}: must be above 0"] if args.minutes <= 0 else []
    problems += [f"--points {args.points}: must be at least 1"] if args.points < 1 else []
    configurations = tuple(Configuration.parse(spec) for spec in args.configs or DEFAULT_CONFIGS)
    names = [c.name for c in configurations]
    problems += [f"--config names repeat: {names}"] if len(set(names)) != len(names) else []
    if problems:
        raise BenchError("; ".join(problems))
    data = str(config.resolve_path(args.data)) if args.data else ""
    plan = Plan(
        configurations,
        seeds,
        args.minutes,
        args.points,
        data,
        tuple(args.overrides),
        config.resolve_path(str(args.out)),
        args.svm,
        args.report_only,
    )
    for configuration in configurations:  # every configuration's parameters are checked before any runs
        pipeline.check_params(merged_params(plan, configuration, seeds[0], plan.point_minutes[0]))
    return plan


def main(argv: Sequence[str] | None = None) -> int:
    try:
        plan = parse_plan(argv)
    except (BenchError, config.ParameterError, yaml.YAMLError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    shown = terminal.Terminal()
    try:
        rows = run_bench(plan, shown)
    except failures.StageFailed as error:
        print(error, file=sys.stderr)
        return 1
    text = write_outputs(rows, plan)
    shown.line(f"[bench-quality] {len(rows)} points; table, figure and grids in {plan.out}/")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
