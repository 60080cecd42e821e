"""``runs/<exp_id>/index.html``: one page linking a run's executed-notebook reports, showing its headlines.

The page stands alone (figures are embedded), so it can be mailed or attached like the per-stage HTML
exports it links. It shows what a run holds and nothing else: a stage that has not run is listed as such,
and metric names are shown exactly as the JSON files spell them (``fid_random_inception`` stays that).
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mammogan_lib.core import files
from mammogan_lib.core.run_paths import RunPaths

# (figure, caption): the headline figures, in the order of the story
HEADLINE_FIGURES = (
    ("samples_progression", "Fixed-noise samples during training (03)"),
    ("grid_across_epochs", "The same latents across checkpoints (04)"),
    ("metric_losses", "Loss curves, thesis Figure 4.1 (05)"),
    ("metrics_vs_epoch", "Metrics across checkpoints (05)"),
    ("memorisation_distances", "Memorisation audit (05)"),
    ("confusion_matrices", "Confusion matrices, thesis Tables 4.4/4.5 (06)"),
)
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; max-width: 100%; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td { overflow-wrap: normal; word-break: keep-all; }  /* a number never breaks: a wide table scrolls */
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
table.keyvalue td, table.keyvalue th { text-align: left; }
.scroll { max-width: 100%; overflow-x: auto; }
figure { display: block; margin: 0.5em 0 1.5em; max-width: 100%; }
img { max-width: 100%; height: auto; }
.lead { font-size: 1.1em; }
.warning { background: #fff3cd; border: 1px solid #e0c36a; padding: 0.6em 1em; }
details { margin: 0.5em 0 1.5em; } summary { cursor: pointer; }
"""
METRIC_STEMS = ("precision", "recall", "density", "coverage")
HEADLINE_SCALARS = ("n", "psnr", "ssim", "memorised", "beta")  # metrics.json headline keys shown as is
MAX_TABLE_COLUMNS = 7  # more, and a table of short numbers runs off a laptop's screen
SVM_COLUMNS = ("accuracy", "auc", "sensitivity", "specificity")


@dataclass(frozen=True)
class StageState:
    stage: str
    state: str  # "ran" | "stopped partway" | "not run"
    wall_s: float | None
    has_report: bool


@dataclass(frozen=True)
class Headline:
    """One line of a run's headline: what (``label``), the number with its key, and the N behind it."""

    label: str
    value: str
    detail: str = ""


@dataclass(frozen=True)
class RunOverview:
    """What a run folder holds, as both ``index.html`` and the pipeline's closing summary show it."""

    exp_id: str
    index: Path
    stages: list[StageState]
    headline: list[Headline]
    alerts: list[str]  # a partial run, random weights: plain text, keys in `backticks`
    trust: list[tuple[str, list[str]]]  # each distinct trust warning, with the comparisons it applies to

    @property
    def trust_count(self) -> int:
        return sum(len(comparisons) for _, comparisons in self.trust)


def _number(value: Any) -> str:
    """A number as a reader takes it in: whole numbers and anything from 1,000 up with thousands separators
    and no decimals (``23,330``, ``71``), three significant digits below (``232``, ``17.7``, ``0.431``),
    scientific notation only under 0.001 (``3.2e-05``); '—' for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() or abs(value) >= 1000:
        return f"{round(value):,}"
    if abs(value) < 0.001:
        return f"{value:.1e}"
    return f"{float(f'{value:.3g}'):g}"


def with_interval(values: Mapping[str, Any], key: str, bounds: str = "") -> str:
    """``12.5 [10, 16]``: a value and its 95 % interval where there is one: ``<key>_low`` and ``<key>_high``
    (05's bootstrap intervals), or with ``bounds="_ci"`` ``<key>_ci_low`` and ``<key>_ci_high`` (06's)."""
    low, high = values.get(f"{key}{bounds}_low"), values.get(f"{key}{bounds}_high")
    interval = f" [{_number(low)}, {_number(high)}]" if low is not None and high is not None else ""
    return f"{_number(values.get(key))}{interval}"


def _stage_states(
    paths: RunPaths, stages: Sequence[str], provenance: dict[str, Any] | None
) -> list[StageState]:
    timings = (provenance or {}).get("stages", {})
    states = []
    for stage in stages:
        has_report = paths.report(stage).is_file()
        marker = files.read_json_if_present(paths.done_marker(stage)) or {}
        state = ("stopped partway" if marker.get("partial") else "ran") if has_report else "not run"
        states.append(StageState(stage, state, timings.get(stage, {}).get("wall_s"), has_report))
    return states


def _partial_alert(training: dict[str, Any] | None) -> list[str]:
    """The alert of a run whose training stopped at its time budget."""
    partial = (training or {}).get("partial")
    if not partial:
        return []
    return [
        f"Partial run: training stopped at epoch {partial['epoch']:,} of {partial['epochs']:,} "
        f"({partial['reason']}); the stages after it used checkpoint `{partial['checkpoint']}`. To continue, "
        f"{partial['continue']} (locally: the same `make reproduce`; on Kaggle: `make kaggle-continue "
        "EXP=<exp>`, or a new version of the kernel with its own output attached, `RESUME=1`)."
    ]


def svm_networks(svm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """06's feature networks and their records, the lead first (older svm.json files: ResNet50 alone)."""
    return svm.get("feature_networks") or {"resnet50": svm["resnet50"]}


def _random_weight_alerts(metrics: dict[str, Any] | None, svm: dict[str, Any] | None) -> list[str]:
    notes = []
    records = (metrics.get("features") or {"inception": metrics["inception"]}) if metrics else {}
    for name, record in records.items():  # a metrics.json from before several networks: Inception's alone
        if record["pretrained"]:
            continue
        if name == "inception":
            notes.append(
                "FID/KID were computed with a random-weight InceptionV3 (keys end in `_random_inception`): "
                "they are not FID and not comparable with published values."
            )
        else:
            notes.append(
                f"Metrics in {name} features used random weights (keys end in `{record['key_suffix']}`): "
                "comparable within this run only."
            )
    for name, record in svm_networks(svm).items() if svm else ():
        if not record["pretrained"]:
            thesis = ", not the thesis's ImageNet features" if name == "resnet50" else ""
            notes.append(
                f"The SVM used random-weight {name} features (keys end in `{record['key_suffix']}`){thesis}."
            )
    for stage, results in (("05", metrics), ("06", svm)):
        for gone in (results or {}).get("left_out_networks", []):
            notes.append(
                f"{gone['name']} was left out of {stage}: no pretrained weights on this machine "
                "(allow_random_weights: true computes it with random ones, labelled as such)."
            )
    return notes


def _grouped_trust(metrics: dict[str, Any] | None) -> list[tuple[str, list[str]]]:
    """05's trust warnings, each distinct text once with every comparison it was raised for; the
    random-weight ones are left to the alerts, which say it once per network."""
    grouped: dict[str, list[str]] = {}
    for warning in (metrics or {}).get("warnings", []):
        if not warning["warning"].startswith("random-weight"):
            grouped.setdefault(warning["warning"], []).append(warning["comparison"])
    return list(grouped.items())


def _training_value(summary: dict[str, Any]) -> tuple[str, str]:
    """Where training stands and in which precision, from ``train_summary.json``: (value, detail)."""
    precision = summary.get("precision") or {"policy": summary.get("dtype_policy", "?")}
    speed = summary.get("this_session", {}).get("median_ms_per_step")
    value = (
        f"{summary['epoch']:,} epochs, {summary['step']:,} steps on {summary['n_images']:,} images; "
        f"precision {precision['policy']}"
    )
    details = []
    if "reason" in precision:
        details.append(f"{precision['requested']} on {precision['device']}: {precision['reason']}")
    if summary.get("replicas", 1) > 1:
        details.append(f"data-parallel on {summary['replicas']} devices")
    if speed:
        details.append(f"{speed:,.1f} ms per step in the last session")
    if summary.get("partial"):
        details.append(f"stopped partway: {summary['partial']['reason']}")
    return value, "; ".join(details)


def _data_headline(filtered: dict[str, Any] | None, prepared: dict[str, Any] | None) -> list[Headline]:
    lines = []
    if filtered:
        counts, threshold = filtered.get("counts", {}), filtered.get("threshold")
        # pre-cut crops are not scored: no threshold, and their record says why
        scored = threshold is not None
        shape = f"shape confidence ≥ {threshold}" if scored else f"shape {filtered.get('shape_scoring')}"
        lines.append(
            Headline(
                "images kept (01)",
                f"{counts.get('kept', 0):,} of {counts.get('images_in_dataset', 0):,}",
                f"{filtered.get('selection', '')}, {shape}, {filtered.get('layout', '')} layout",
            )
        )
    if prepared:
        split = prepared.get("split", {})
        train, heldout = split.get("train", {}), split.get("heldout", {})
        lines.append(
            Headline(
                "training / held-out (02)",
                f"{train.get('images', 0):,} / {heldout.get('images', 0):,} images",
                f"{train.get('patients', 0):,} / {heldout.get('patients', 0):,} patients, "
                f"{prepared.get('resolution')} px",
            )
        )
    return lines


def _fd_headline(name: str, record: dict[str, Any], headline: dict[str, Any]) -> Headline:
    """A feature network's line: its Fréchet distance to the training images, then at equal N against the
    held-out patients beside the real floor, and their ratio."""
    suffix = record["key_suffix"]
    key = f"fid{suffix}" if name == "inception" else f"fd{suffix}"
    ratio = headline.get(f"{key}_floor_ratio")
    floor = _number(headline.get(f"{key}_real_floor_equal_n"))
    note = f"; {record['note']}" if record.get("note") else ""
    return Headline(
        "FID (05)" if name == "inception" else f"FD, {name} features (05)",
        f"{key} {with_interval(headline, key)}",
        f"N = {_number(headline.get('n_generated'))} generated vs {_number(headline.get('n_train'))} "
        f"training images; at equal N ({_number(headline.get('n_equal'))}) against the held-out images "
        f"{_number(headline.get(f'{key}_equal_n'))}, real floor {floor}"
        f"{f' (floor / {key} {ratio:.3g})' if ratio is not None else ''}{note}",
    )


def _frd_headline(record: dict[str, Any], headline: dict[str, Any]) -> Headline:
    """FRD's line: against the held-out patients and the real floor at equal N (the held-out set first
    inside FRD for both), and the gap between them in FRD's log units."""
    gap = headline.get("frd_gap_to_floor")
    return Headline(
        f"FRD {record.get('frd_version', '')}, radiomic features (05)",
        f"frd_equal_n {with_interval(headline, 'frd_equal_n')} against the held-out images, real floor "
        f"{_number(headline.get('frd_real_floor_equal_n'))}"
        + (f" (gap {gap:.3g})" if gap is not None else ""),
        f"N = {_number(headline.get('n_equal'))} generated or training images vs "
        f"{_number(headline.get('n_heldout'))} held-out; log(d²) with the held-out set first, so a gap of 1 "
        "is e ≈ 2.7× the squared distance; no network weights",
    )


def _metrics_headline(metrics: dict[str, Any]) -> list[Headline]:
    """One line per feature network and one for FRD, in the order ``metrics.json`` lists them (the lead
    network first, FRD second)."""
    headline = metrics["headline"]
    return [
        _frd_headline(record, headline) if name == "radiomics" else _fd_headline(name, record, headline)
        for name, record in metrics.get("features", {"inception": metrics.get("inception")}).items()
    ]


def _svm_headline(svm: dict[str, Any]) -> list[Headline]:
    """One line per feature network and non-tumour source: each design's accuracy with its interval."""
    test = svm.get("test_per_class", "?")
    lines = []
    for name, record in svm_networks(svm).items():
        suffix = record["key_suffix"]
        by_source: dict[str, list[dict[str, Any]]] = {}
        for row in svm.get(f"summary{suffix}") or []:
            by_source.setdefault(row["non_tumour_source"], []).append(row)
        lines += [
            Headline(
                f"SVM accuracy (06), {name} features, {source}",
                f"accuracy{suffix}: "
                + " · ".join(f"{row['design']} {with_interval(row, 'accuracy', '_ci')}" for row in rows),
                f"{svm['confidence']:.0%} interval over {rows[0]['repeats']} repeats, "
                f"{test} + {test} test images each",
            )
            for source, rows in by_source.items()
        ]
    return lines


def run_overview(run_dir: Path | str, stages: Sequence[str]) -> RunOverview:
    """Everything a reader needs first about a run, from what its folder holds."""
    paths = RunPaths(run_dir)
    read = files.read_json_if_present
    provenance, training = read(paths.provenance), read(paths.train_summary)
    metrics, svm = read(paths.metrics), read(paths.svm)
    headline = _data_headline(read(paths.filter_summary), read(paths.preprocess_record))
    if training:
        headline.append(Headline("training (03)", *_training_value(training)))
    if metrics:
        headline += _metrics_headline(metrics)
    if svm:
        headline += _svm_headline(svm)
    return RunOverview(
        exp_id=paths.root.name,
        index=paths.index,
        stages=_stage_states(paths, stages, provenance),
        headline=headline,
        alerts=[*_partial_alert(training), *_random_weight_alerts(metrics, svm)],
        trust=_grouped_trust(metrics),
    )


# --- index.html -----------------------------------------------------------------------------------------


def _inline(text: str) -> str:
    """Plain text with `keys` -> HTML with <code>keys</code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _table(frame: pd.DataFrame, escape: bool = True, css_class: str = "") -> str:
    table = frame.to_html(
        index=False,
        float_format=lambda value: f"{value:.4g}",
        na_rep="—",
        border=0,
        escape=escape,
        classes=css_class or None,
    )
    return f'<div class="scroll">{table}</div>'


def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _stage_table(overview: RunOverview) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "stage": f'<a href="reports/{s.stage}.html">{s.stage}</a>' if s.has_report else s.stage,
                "state": s.state,
                "wall time (s)": float("nan") if s.wall_s is None else s.wall_s,
            }
            for s in overview.stages
        ]
    )


def network_table(metrics: dict[str, Any], network: str) -> pd.DataFrame:
    """One feature network's set-level numbers (or FRD's, for ``radiomics``): a row per metric (keys as
    ``metrics.json`` spells them), a column per comparison, each cell the value and its 95 % interval."""
    record = metrics.get("features", {}).get(network, metrics.get("inception"))
    suffix = record["key_suffix"]
    if network == "radiomics":
        keys = ["frd"]
    else:
        distances = ("fid", "kid") if network == "inception" else ("fd", "kd")
        keys = [
            f"{distances[0]}{suffix}",
            f"{distances[1]}{suffix}_mean",
            *(f"{s}{suffix}" for s in METRIC_STEMS),
        ]
    rows = [row for row in metrics["sets"] if row.get("features", "inception") == network]
    table = {"metric": ["N (first set vs second)", *keys]}
    for row in rows:
        table[row["comparison"]] = [
            f"{_number(row.get('n_a'))} vs {_number(row.get('n_b'))}",
            *(with_interval(row, key) for key in keys),
        ]
    return pd.DataFrame(table)


def _equal_n_table(metrics: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for row in metrics["equal_n"]:
        key = next(k for k in row if k.endswith("_equal_n"))
        rows.append(
            {
                "features": row.get("features"),
                "against the held-out images": row.get("candidates"),
                "N": f"{_number(row.get('n_candidates'))} vs {_number(row.get('n_reference'))}",
                "key": key,
                "value [95 % interval]": with_interval(row, key),
            }
        )
    return pd.DataFrame(rows)


def _svm_tables(svm: dict[str, Any]) -> list[tuple[str, pd.DataFrame]]:
    """06's results, a table per feature network (the lead first): each design's scores with intervals."""
    tables = []
    for name, record in svm_networks(svm).items():
        suffix = record["key_suffix"]
        rows = svm.get(f"summary{suffix}") or []
        if rows:
            table = pd.DataFrame(
                [
                    {
                        "non-tumour images": row["non_tumour_source"],
                        "design": row["design"],
                        "repeats": row["repeats"],
                        **{f"{column}{suffix}": with_interval(row, column, "_ci") for column in SVM_COLUMNS},
                    }
                    for row in rows
                ]
            )
            tables.append((name, table))
    return tables


def _trust_section(overview: RunOverview) -> list[str]:
    if not overview.trust:
        return []
    items = "".join(
        f"<li>{_inline(text)} <i>({html.escape('; '.join(comparisons))})</i></li>"
        for text, comparisons in overview.trust
    )
    return [
        f"<details><summary><b>{overview.trust_count} trust warnings</b> on these numbers "
        f"({len(overview.trust)} distinct), computed from N and the features</summary>"
        f"<ul>{items}</ul></details>"
    ]


NEGATIVE_KERNEL_DISTANCE = (
    "A negative KID or KD is not an error: it is an unbiased estimate of a squared distance, which scatters "
    "around zero when two sets are alike at this N; read it as no difference found."
)


def negative_kernel_distances(metrics: dict[str, Any]) -> list[str]:
    """The comparisons whose KID or KD (mean over subsets) is below zero."""
    return [
        f"{row.get('comparison')} ({row.get('features', 'inception')})"
        for row in metrics.get("sets", [])
        for key, value in row.items()
        if re.match(r"^(kid|kd)(_\w+)?_mean$", key) and isinstance(value, int | float) and value < 0
    ]


def headline_in_words(metrics: dict[str, Any]) -> str:
    """05's lead distance as a sentence: the generated images' Fréchet distance to the held-out real
    images at equal N, its interval, and how many times the real-vs-real floor it is; '' without one."""
    headline = metrics.get("headline", {})
    for name, record in metrics.get("features", {}).items():
        if name == "radiomics":
            continue
        key = f"{'fid' if name == 'inception' else 'fd'}{record['key_suffix']}"
        distance, floor = headline.get(f"{key}_equal_n"), headline.get(f"{key}_real_floor_equal_n")
        if distance is None or not floor:
            continue
        low, high = headline.get(f"{key}_equal_n_low"), headline.get(f"{key}_equal_n_high")
        interval = f" (95 % interval {_number(low)} to {_number(high)})" if low is not None else ""
        caveat = (
            " These are random-weight features: the figure compares images within this run only."
            if "random" in record["key_suffix"]
            else ""
        )
        return (
            f"At equal N ({_number(headline.get('n_equal'))} images), the generated images are at "
            f"{'FID' if name == 'inception' else 'FD'} {_number(distance)}{interval} from the held-out real "
            f"images in {name} features: {distance / floor:,.1f} times the {_number(floor)} between two sets "
            f"of real images of different patients (the floor; 1 time would mean these features cannot tell "
            f"them from new real images).{caveat}"
        )
    return ""


def write_index(run_dir: Path, stages: Sequence[str]) -> Path:
    """Write ``<run_dir>/index.html`` from what the run folder holds; return its path."""
    run_dir = Path(run_dir)
    paths = RunPaths(run_dir)
    overview = run_overview(run_dir, stages)
    provenance = files.read_json_if_present(paths.provenance)
    metrics = files.read_json_if_present(paths.metrics)
    svm = files.read_json_if_present(paths.svm)
    parts = [f"<h1>mammogan run <code>{html.escape(run_dir.name)}</code></h1>"]
    lead = paths.figure("real_vs_generated")
    if lead.is_file():
        epoch = f", checkpoint of epoch {metrics['epoch']:,}" if metrics and metrics.get("epoch") else ""
        caption = f"Real images of held-out patients (top) and generated images (bottom){epoch}"
        parts.append(_figure(lead, caption))
    words = headline_in_words(metrics) if metrics else ""
    if words:
        parts.append(f'<p class="lead">{html.escape(words)}</p>')
    warnings = [_inline(note) for note in overview.alerts]
    if overview.trust:
        warnings.append(
            f'{overview.trust_count} trust warnings on 05\'s numbers: <a href="#metrics">under Metrics</a>.'
        )
    if warnings:
        items = "".join(f"<li>{warning}</li>" for warning in warnings)
        parts.append(
            f'<details class="warning"><summary><b>{len(warnings)} warning{"s" if len(warnings) > 1 else ""}'
            f"</b> about these numbers</summary><ul>{items}</ul></details>"
        )
    if provenance:
        stage_records = list(provenance.get("stages", {}).values())
        git = stage_records[-1].get("git", {}) if stage_records else {}
        hardware = provenance.get("hardware", {})
        parts.append(
            f"<p>commit <code>{html.escape(str(git.get('commit', '?')))}</code>"
            f"{' (uncommitted changes)' if git.get('dirty') else ''} · "
            f"{html.escape(str(hardware.get('cpu', '?')))}, {hardware.get('cpu_count', '?')} cores · "
            f"GPUs: {html.escape(', '.join(hardware.get('gpus', [])) or 'none')}</p>"
        )
    if overview.headline:
        headline = pd.DataFrame(
            [
                {"": h.label, "value": _inline(h.value), "N and conditions": _inline(h.detail)}
                for h in overview.headline
            ]
        )
        parts += ["<h2>Headline</h2>", _table(headline, escape=False, css_class="keyvalue")]
    parts += ["<h2>Stages (executed notebooks)</h2>", _table(_stage_table(overview), escape=False)]
    if metrics:
        parts.append(f'<h2 id="metrics">Metrics (05, epoch {metrics["epoch"]:,})</h2>')
        parts += _trust_section(overview)
        for name in metrics.get("features", {"inception": None}):
            parts += [f"<h3>{html.escape(name)} features</h3>", _table(network_table(metrics, name))]
        if negative_kernel_distances(metrics):
            parts.append(f"<p><i>{html.escape(NEGATIVE_KERNEL_DISTANCE)}</i></p>")
        if metrics.get("equal_n"):
            parts += [
                "<h3>Distances at equal N against the held-out images</h3>",
                _table(_equal_n_table(metrics)),
            ]
        scalars = {k: v for k, v in metrics["headline"].items() if k.split("_")[0] in HEADLINE_SCALARS}
        if scalars:
            parts += [
                "<h3>Images against their nearest real image, memorisation, texture</h3>",
                _table(
                    pd.DataFrame({"key": list(scalars), "value": list(scalars.values())}),
                    css_class="keyvalue",
                ),
            ]
    for name, table in _svm_tables(svm) if svm else ():
        parts += [
            f"<h2>Classifier (06), {html.escape(name)} features: mean and {svm['confidence']:.0%} interval "
            "over repeats</h2>",
            _table(table),
        ]
    figures = [(paths.figure(name), caption) for name, caption in HEADLINE_FIGURES]
    parts += ["<h2>Figures</h2>", *(_figure(path, caption) for path, caption in figures if path.is_file())]
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>mammogan "
        f"{html.escape(run_dir.name)}</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
    return files.write_text(paths.index, page)


# --- the closing summary in the terminal ----------------------------------------------------------------


def summary_lines(
    overview: RunOverview,
    outcome: Mapping[str, str],
    wall_s: Mapping[str, float],
    failed: str | None = None,
    shown_trust: int = 3,
) -> list[str]:
    """The end of a pipeline run in plain lines: each stage's state in this run with its wall time, the
    headline, the warnings that matter, and where the report is — what ``index.html`` opens with."""
    ran = [stage for stage, state in outcome.items() if state in ("ran", "partial")]
    verdict = f"stopped: {failed} failed" if failed else "finished"
    lines = [
        f"── mammogan run {overview.exp_id}: {verdict} ({len(ran)} of {len(overview.stages)} stages ran) ──"
    ]
    width = max(len(s.stage) for s in overview.stages) if overview.stages else 0
    for state in overview.stages:
        this_run = outcome.get(state.stage)
        if state.stage == failed:
            what = f"FAILED after {wall_s.get(state.stage, 0):.0f} s (the reason is above)"
        elif this_run in ("ran", "partial"):
            verb = "stopped partway" if this_run == "partial" else "ran"
            what = f"{verb} in {wall_s.get(state.stage, 0):.0f} s"
        elif this_run == "skipped":
            what = "skipped: unchanged since its last run"
        else:
            what = state.state if state.state == "not run" else f"{state.state} earlier (not selected)"
        lines.append(f"  {state.stage:<{width}}  {what}")
    label_width = max((len(h.label) for h in overview.headline), default=0)
    for item in overview.headline:
        lines.append(f"  {item.label:<{label_width}}  {item.value}")
        if item.detail:
            lines.append(f"  {'':<{label_width}}    {item.detail}")
    warnings = [f"  ! {alert}" for alert in overview.alerts]
    if overview.trust:
        warnings.append(
            f"  ! {overview.trust_count} trust warnings on 05's numbers ({len(overview.trust)} distinct); "
            + ("the first:" if len(overview.trust) > shown_trust else "")
        )
        warnings += [
            f"      - {text} ({len(comparisons)}×)" for text, comparisons in overview.trust[:shown_trust]
        ]
    if warnings:
        lines += ["  warnings:", *warnings]
    lines.append(f"  report: {overview.index}")
    return lines
