"""The run folder, ``<runs_dir>/<exp_id>/``: the one place that names every file and folder a stage writes or
reads there.

Stages talk to each other only through this folder (and the data caches it points to), so its layout is
the contract between them::

    manifest.csv  problems.csv  filter_summary.json        01_filter
    split.csv  preprocess.json                             02_preprocess (the arrays live in the data cache)
    losses.csv  samples/  checkpoints/  train_summary.json 03_train_gan
    generated/  generated_curve/  generate.json            04_generate
    metrics.json                                           05_metrics
    svm.json                                               06_svm
    figures/<name>.png                                     every stage (:data:`FIGURES`)
    notebooks/<stage>.ipynb  reports/<stage>.html          the pipeline: executed notebooks, HTML exports
    provenance/<stage>.json  provenance.json               each stage's record, merged
    stages/<stage>.done.json                               the pipeline's "finished, with this fingerprint"
    logs/<stage>.log  logs/<stage>.progress.json           the pipeline: kernel messages, live progress
    index.html                                             the run's report page

Use ``RunPaths(run_dir)`` (a notebook: ``cfg.paths``) instead of writing a name twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FIGURES: dict[str, str] = {
    "phantom_preview": "01_phantom_preview.png",
    "filter_counts": "01_counts.png",
    "shape_confidence": "01_shape_confidence.png",
    "filter_examples": "01_examples.png",
    "before_after": "02_before_after.png",
    "training_images": "02_preview.png",
    "background_patches": "02_background_patches.png",
    "training_losses": "03_losses.png",
    "samples_progression": "03_samples_progression.png",
    "generated": "04_generated.png",
    "generated_per_class": "04_generated_per_class.png",
    "grid_across_epochs": "04_grid_across_epochs.png",
    "interpolation": "04_interpolation.png",
    "real_vs_generated": "05_real_vs_generated.png",
    "table43_pairs": "05_table43_pairs.png",
    "psnr_distribution": "05_psnr_distribution.png",
    "ssim_distribution": "05_ssim_distribution.png",
    "memorisation_distances": "05_memorisation_distances.png",
    "memorisation_flagged": "05_memorisation_flagged.png",
    "power_spectra": "05_power_spectra.png",
    "metric_losses": "05_losses.png",
    "metrics_vs_epoch": "05_metrics_vs_epoch.png",
    "confusion_matrices": "06_confusion_matrices.png",
}
"""Every figure a stage writes: a name for code, the file name (stage-prefixed) for readers of the folder."""


@dataclass(frozen=True)
class RunPaths:
    """The files and folders of one run folder (see the module doc)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # 01_filter
    @property
    def manifest(self) -> Path:
        return self.root / "manifest.csv"

    @property
    def problems(self) -> Path:
        return self.root / "problems.csv"

    @property
    def filter_summary(self) -> Path:
        return self.root / "filter_summary.json"

    # 02_preprocess
    @property
    def split(self) -> Path:
        return self.root / "split.csv"

    @property
    def preprocess_record(self) -> Path:
        return self.root / "preprocess.json"

    # 03_train_gan
    @property
    def losses(self) -> Path:
        return self.root / "losses.csv"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def train_summary(self) -> Path:
        return self.root / "train_summary.json"

    # 04_generate
    @property
    def generated(self) -> Path:
        return self.root / "generated"

    @property
    def generated_curve(self) -> Path:
        return self.root / "generated_curve"

    @property
    def generate_record(self) -> Path:
        return self.root / "generate.json"

    @property
    def exported_generator(self) -> Path:
        """The chosen checkpoint's generator as one standalone ``.keras`` file (``python -m
        mammogan_lib.gan.generate`` reads it)."""
        return self.root / "export" / "generator.keras"

    @property
    def model_card(self) -> Path:
        """The exported generator's model card, beside it."""
        return self.exported_generator.with_name("model_card.json")

    # 05_metrics, 06_svm
    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def svm(self) -> Path:
        return self.root / "svm.json"

    # every stage
    @property
    def figures(self) -> Path:
        return self.root / "figures"

    def figure(self, name: str) -> Path:
        """The file of figure ``name`` (a key of :data:`FIGURES`)."""
        if name not in FIGURES:
            raise KeyError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}")
        return self.figures / FIGURES[name]

    # the pipeline
    def executed_notebook(self, stage: str) -> Path:
        return self.root / "notebooks" / f"{stage}.ipynb"

    def report(self, stage: str) -> Path:
        return self.root / "reports" / f"{stage}.html"

    @property
    def stage_records(self) -> Path:
        return self.root / "provenance"

    def stage_record(self, stage: str) -> Path:
        return self.stage_records / f"{stage}.json"

    @property
    def provenance(self) -> Path:
        return self.root / "provenance.json"

    def done_marker(self, stage: str) -> Path:
        return self.root / "stages" / f"{stage}.done.json"

    def stage_log(self, stage: str) -> Path:
        """Everything the stage's kernel wrote to its standard error, start-up noise included."""
        return self.root / "logs" / f"{stage}.log"

    def progress_file(self, stage: str) -> Path:
        """The running stage's progress bar and warnings, for the terminal (mammogan_lib.core.progress)."""
        return self.root / "logs" / f"{stage}.progress.json"

    @property
    def index(self) -> Path:
        return self.root / "index.html"

    @property
    def writer_lock(self) -> Path:
        """Held by the one process writing the run (:mod:`mammogan_lib.core.run_lock`), naming it."""
        return self.root / "writer.lock"


# --- the checkpoints of a run folder: epoch_NNNNNN/, complete once its state file is written ------------

STATE_FILE = "state.json"
CHECKPOINT_PATTERN = re.compile(r"^epoch_(\d{6,})$")


def checkpoints_dir(run_dir: Path | str) -> Path:
    """``<run_dir>/checkpoints``."""
    return RunPaths(run_dir).checkpoints


def checkpoint_name(epoch: int) -> str:
    """Folder name of the checkpoint written after ``epoch``: ``epoch_000100``."""
    return f"epoch_{epoch:06d}"


def checkpoint_epoch(path: Path | str) -> int:
    """The epoch in a checkpoint folder's name; ``ValueError`` if it is not a checkpoint name."""
    match = CHECKPOINT_PATTERN.match(Path(path).name)
    if not match:
        raise ValueError(f"{path} is not a checkpoint folder (expected a name like epoch_000100)")
    return int(match.group(1))


def list_checkpoints(run_dir: Path | str) -> list[Path]:
    """Complete checkpoints of ``run_dir``, oldest first (``.tmp-`` folders and strays are ignored)."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    found = [
        path
        for path in root.iterdir()
        if path.is_dir() and CHECKPOINT_PATTERN.match(path.name) and (path / STATE_FILE).is_file()
    ]
    return sorted(found, key=checkpoint_epoch)


def latest_checkpoint(run_dir: Path | str) -> Path | None:
    """The newest complete checkpoint of ``run_dir``, or ``None``."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None
