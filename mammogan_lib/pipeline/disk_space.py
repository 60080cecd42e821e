"""Whether a stage has room to write what it writes, checked before it starts.

A stage that runs out of disk space half-way loses time and, before every file was written whole-or-absent,
could leave broken files. :func:`estimate` gives a rough upper figure for what a stage writes, part by part,
from its parameters and what the run folder already holds (the newest checkpoint's size beats any formula);
:func:`shortfall` compares it with the free space of the disk under ``runs_dir`` (and ``data_dir``, where a
stage writes there) and says, naming the path, how much is needed and how much is free. The figures are
deliberately generous: a refused start costs a user a minute, a full disk mid-training costs them more.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mammogan_lib.core import config, files
from mammogan_lib.core.run_paths import RunPaths, latest_checkpoint

MB = 1024**2
NOTEBOOK_AND_FIGURES = 30 * MB  # the executed notebook, its HTML export with embedded figures, the PNGs
# measured at 128 px: exp3 (baseline, width 1.0) 41 MB, exp3 tuned 51 MB; fastgan at width 0.25 is 60 MB, so
# width² underestimates it before its first checkpoint, whose own size is used from then on
CHECKPOINT_AT_FULL_WIDTH = 64 * MB
PHANTOM_BYTES_PER_PIXEL = 0.2  # the phantom's JPEG full mammograms (height x 0.75 height)
FEATURE_CACHES = 200 * MB  # 05 and 06 cache features and radiomics under data_dir


@dataclass
class Estimate:
    """What a stage writes, where: ``parts`` maps a folder to ``(what, bytes)`` pairs."""

    parts: dict[Path, list[tuple[str, int]]] = field(default_factory=dict)

    def add(self, where: Path, what: str, size: float) -> None:
        self.parts.setdefault(where, []).append((what, int(size)))

    def total(self, where: Path) -> int:
        return sum(size for _, size in self.parts.get(where, []))


def readable_size(size: float) -> str:
    """``1.2 GB``, ``340 MB``, ``12 kB``."""
    for unit, scale in (("GB", 1024**3), ("MB", MB), ("kB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}" if size < 10 * scale else f"{size / scale:,.0f} {unit}"
    return f"{int(size)} bytes"


def _checkpoint_bytes(run_dir: Path, params: Mapping[str, Any]) -> tuple[int, str]:
    newest = latest_checkpoint(run_dir)
    if newest is not None:
        return sum(p.stat().st_size for p in newest.iterdir() if p.is_file()), f"as {newest.name}"
    width = float(params.get("width", 1.0))
    resolution = int(params.get("resolution", 128))
    size = CHECKPOINT_AT_FULL_WIDTH * max(width, 0.125) ** 2 * max(resolution / 128, 1.0)
    return int(size), "estimated from width and resolution"


def _images_in_run(run_dir: Path, params: Mapping[str, Any]) -> int:
    summary = files.read_json_if_present(RunPaths(run_dir).filter_summary) or {}
    kept = (summary.get("counts") or {}).get("kept")
    return int(kept) if kept is not None else int(params.get("phantom_images", 1_000))


def estimate(stage: str, params: Mapping[str, Any], run_dir: Path) -> Estimate:
    """A generous figure for what ``stage`` writes with ``params``, by folder and part."""
    run_dir = Path(run_dir)
    data_dir = config.resolve_path(params.get("data_dir", "data"))
    needed = Estimate()
    needed.add(run_dir, "executed notebook, report and figures", NOTEBOOK_AND_FIGURES)
    resolution = int(params.get("resolution", 128))
    if stage == "01_filter" and not params.get("dataset_root"):
        images = int(params.get("phantom_images", 0)) + 2 * int(params.get("phantom_healthy_images", 0))
        height = int(params.get("phantom_height", 1024))
        size = images * height**2 * 0.75 * PHANTOM_BYTES_PER_PIXEL
        needed.add(data_dir, f"the phantom ({images:,} images)", size)
    elif stage == "02_preprocess":
        images = _images_in_run(run_dir, params)
        needed.add(run_dir, f"{images:,} preprocessed images", images * resolution**2 * 4 * 3)
    elif stage == "03_train_gan":
        size, how = _checkpoint_bytes(run_dir, params)
        kept = int(params.get("keep_last", 3)) + 1  # the newest is written before retention deletes one
        needed.add(run_dir, f"{kept} checkpoints of {readable_size(size)} ({how})", kept * size)
    elif stage == "04_generate":
        count = int(params.get("generate_count", 0)) + int(params.get("curve_count", 0)) * 4
        needed.add(run_dir, f"{count:,} generated images", count * resolution**2 * 5 * 2)
        size, how = _checkpoint_bytes(run_dir, params)
        needed.add(run_dir, f"the exported generator ({how})", size / 3)
    elif stage in ("05_metrics", "06_svm"):
        needed.add(data_dir, "feature and radiomics caches", FEATURE_CACHES)
    return needed


def _existing(path: Path) -> Path:
    """The nearest existing folder at or above ``path`` (where the disk's free space can be read)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def shortfall(stage: str, params: Mapping[str, Any], run_dir: Path) -> str:
    """'' when every folder ``stage`` writes to has the room :func:`estimate` asks for, else one sentence per
    folder that lacks it: the path, what is needed (and for what), what is free."""
    needed = estimate(stage, params, run_dir)
    by_disk: dict[Path, list[Path]] = {}
    for where in needed.parts:
        by_disk.setdefault(_existing(where), []).append(where)
    lines = []
    for disk, folders in by_disk.items():
        total = sum(needed.total(folder) for folder in folders)
        free = shutil.disk_usage(disk).free
        if free < total:
            parts = "; ".join(
                f"{what} {readable_size(size)}" for folder in folders for what, size in needed.parts[folder]
            )
            lines.append(
                f"{', '.join(str(f) for f in folders)} needs about {readable_size(total)} ({parts}), "
                f"and only {readable_size(free)} is free there"
            )
    return "; ".join(lines)


def space_note(stage: str, params: Mapping[str, Any], run_dir: Path) -> str:
    """For a stage that failed with 'no space left on device': the free space now and what it needs."""
    needed = estimate(stage, params, run_dir)
    return "; ".join(
        f"{where}: {readable_size(shutil.disk_usage(_existing(where)).free)} free now, {stage} needs about "
        f"{readable_size(needed.total(where))}"
        for where in needed.parts
    )
