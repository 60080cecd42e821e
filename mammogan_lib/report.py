"""``runs/<exp_id>/index.html``: one page linking a run's executed-notebook reports, showing its headlines.

The page stands alone (figures are embedded), so it can be mailed or attached like the per-stage HTML
exports it links. It shows what a run holds and nothing else: a stage that has not run is listed as such,
and metric names are shown exactly as the JSON files spell them (``fid_random_inception`` stays that).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mammogan_lib import files
from mammogan_lib.runs import RunPaths

# (figure, caption): the headline figures (names of runs.FIGURES), in the order of the story
HEADLINE_FIGURES = (
    ("samples_progression", "Fixed-noise samples during training (03)"),
    ("grid_across_epochs", "The same latents across checkpoints (04)"),
    ("metric_losses", "Loss curves, thesis Figure 4.1 (05)"),
    ("metrics_vs_epoch", "Metrics across checkpoints (05)"),
    ("memorisation_distances", "Memorisation audit (05)"),
    ("confusion_matrices", "Confusion matrices, thesis Tables 4.4/4.5 (06)"),
)
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; } img { max-width: 520px; }
.warning { background: #fff3cd; border: 1px solid #e0c36a; padding: 0.6em 1em; }
"""


def _table(frame: pd.DataFrame, escape: bool = True) -> str:
    return frame.to_html(
        index=False, float_format=lambda value: f"{value:.4g}", na_rep="—", border=0, escape=escape
    )


def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _stage_rows(paths: RunPaths, stages: Sequence[str], provenance: dict[str, Any] | None) -> pd.DataFrame:
    timings = (provenance or {}).get("stages", {})
    rows = []
    for stage in stages:
        report = paths.report(stage)
        link = f'<a href="reports/{stage}.html">{stage}</a>' if report.is_file() else stage
        wall = timings.get(stage, {}).get("wall_s")
        marker = files.read_json_if_present(paths.done_marker(stage)) or {}
        state = ("stopped partway" if marker.get("partial") else "ran") if report.is_file() else "not run"
        rows.append({"stage": link, "state": state, "wall time (s)": wall})
    return pd.DataFrame(rows)


def _partial_note(training: dict[str, Any] | None) -> list[str]:
    """The banner of a run whose training stopped at its time budget."""
    partial = (training or {}).get("partial")
    if not partial:
        return []
    return [
        f"<b>Partial run:</b> training stopped at epoch {partial['epoch']:,} of {partial['epochs']:,} "
        f"({html.escape(partial['reason'])}); the stages after it used checkpoint "
        f"<code>{html.escape(partial['checkpoint'])}</code>. To continue, "
        f"{html.escape(partial['continue'])} (locally: the same <code>make reproduce</code>; on Kaggle: "
        "<code>make kaggle-continue EXP=&lt;exp&gt;</code>, or a new version of the kernel with its own "
        "output attached, <code>RESUME=1</code>)."
    ]


def _warnings(metrics: dict[str, Any] | None, svm: dict[str, Any] | None) -> list[str]:
    notes = []
    if metrics and not metrics["inception"]["pretrained"]:
        notes.append(
            "FID/KID were computed with a <b>random-weight InceptionV3</b> (keys end in "
            "<code>_random_inception</code>): they are not FID and not comparable with published values."
        )
    for name, record in (metrics or {}).get("features", {}).items():
        if name != "inception" and not record["pretrained"]:
            notes.append(
                f"Metrics in {html.escape(name)} features used <b>random weights</b> (keys end in "
                f"<code>{html.escape(record['key_suffix'])}</code>): comparable within this run only."
            )
    for warning in (metrics or {}).get("warnings", []):
        notes.append(f"<b>{html.escape(warning['comparison'])}:</b> {html.escape(warning['warning'])}")
    if svm and not svm["resnet50"]["pretrained"]:
        notes.append(
            "The SVM used <b>random-weight ResNet50</b> features (keys end in "
            "<code>_random_resnet50</code>), not the thesis's ImageNet features."
        )
    return notes


def _training_paragraph(summary: dict[str, Any]) -> str:
    """Where training stands and in which precision, from ``train_summary.json``."""
    precision = summary.get("precision") or {"policy": summary.get("dtype_policy", "?")}
    speed = summary.get("this_session", {}).get("median_ms_per_step")
    how = (
        f" ({html.escape(precision['requested'])} on {html.escape(precision['device'])}: "
        f"{html.escape(precision['reason'])})"
        if "reason" in precision
        else ""
    )
    return (
        f"<p>{summary['epoch']:,} epochs, {summary['step']:,} steps on {summary['n_images']:,} images; "
        f"precision <b>{html.escape(precision['policy'])}</b>{how}"
        + (f"; data-parallel on {summary['replicas']} devices" if summary.get("replicas", 1) > 1 else "")
        + (f"; {speed:,.1f} ms per step in the last session" if speed else "")
        + ".</p>"
    )


def _svm_table(svm: dict[str, Any]) -> pd.DataFrame | None:
    suffix = svm["resnet50"]["key_suffix"]
    rows = svm.get(f"summary{suffix}")
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    columns = [
        "non_tumour_source",
        "design",
        "repeats",
        "accuracy",
        "accuracy_ci_low",
        "accuracy_ci_high",
        "auc",
        "sensitivity",
        "specificity",
    ]
    return frame[columns].rename(columns={c: f"{c}{suffix}" for c in columns[3:]})


def write_index(run_dir: Path, stages: Sequence[str]) -> Path:
    """Write ``<run_dir>/index.html`` from what the run folder holds; return its path."""
    run_dir = Path(run_dir)
    paths = RunPaths(run_dir)
    provenance = files.read_json_if_present(paths.provenance)
    training = files.read_json_if_present(paths.train_summary)
    metrics = files.read_json_if_present(paths.metrics)
    svm = files.read_json_if_present(paths.svm)
    parts = [f"<h1>mammogan run <code>{html.escape(run_dir.name)}</code></h1>"]
    notes = [*_partial_note(training), *_warnings(metrics, svm)]
    parts += [f'<p class="warning">{note}</p>' for note in notes]
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
    parts += [
        "<h2>Stages (executed notebooks)</h2>",
        _table(_stage_rows(paths, stages, provenance), escape=False),
    ]
    if training:
        parts += ["<h2>Training (03)</h2>", _training_paragraph(training)]
    if metrics:
        headline = pd.DataFrame([metrics["headline"]])
        parts += [
            f"<h2>Metrics (05, epoch {metrics['epoch']:,})</h2>",
            _table(headline),
            _table(pd.DataFrame(metrics["sets"]).drop(columns=["warnings"], errors="ignore")),
        ]
        if metrics.get("equal_n"):
            parts += [
                "<h3>FID at equal N against the held-out images</h3>",
                _table(pd.DataFrame(metrics["equal_n"])),
            ]
    if svm and (table := _svm_table(svm)) is not None:
        parts += [
            f"<h2>Classifier (06): mean and {svm['confidence']:.0%} interval over repeats</h2>",
            _table(table),
        ]
    figures = [(paths.figure(name), caption) for name, caption in HEADLINE_FIGURES]
    parts += ["<h2>Figures</h2>", *(_figure(path, caption) for path, caption in figures if path.is_file())]
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>mammogan {html.escape(run_dir.name)}"
        f"</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
    return files.write_text(paths.index, page)
