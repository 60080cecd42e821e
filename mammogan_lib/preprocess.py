"""02_preprocess: breast extraction, orientation, resize and scaling to [-1, 1], into an array cache.

The cache is shared between runs: it lives in ``<data_dir>/cache/preprocess/<key>/`` where the key hashes
the kept images (ids and paths) and the preprocessing parameters, so experiments on the same data reuse it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mammogan_lib import breast, imaging
from mammogan_lib.provenance import write_json

# Bump when the preprocessing algorithm changes, so stale caches are not reused.
PREPROCESS_VERSION = 1
# Images are decoded at most this tall: the largest training resolution (256) is reached with margin,
# and decoding a 5,000-row scan at full size would dominate the time.
READ_HEIGHT = 1024


@dataclass(frozen=True)
class PreprocessedImage:
    """One training image, or the reason it could not be made."""

    image_id: str
    array: np.ndarray | None = field(default=None, repr=False)  # float32 (R, R) in [-1, 1]
    flipped: bool = False
    bit_depth: int = 0
    error: str = ""


def preprocess_image(task: tuple[str, str, int, str]) -> PreprocessedImage:
    """Preprocess ``(image_id, path, resolution, resize_mode)``; errors are returned as data."""
    image_id, path, resolution, resize_mode = task
    try:
        loaded = imaging.read_grayscale(Path(path), max_height=READ_HEIGHT)
    except imaging.ImageReadError as error:
        return PreprocessedImage(image_id, error=str(error))
    segmentation = breast.segment_breast(loaded.pixels)
    if not segmentation.mask.any():
        return PreprocessedImage(image_id, error=f"{path}: no breast region found")
    extracted = breast.extract_breast(loaded.pixels, segmentation)
    oriented = breast.orient_chest_wall_left(extracted, segmentation.chest_wall_side)
    array = breast.to_training_array(oriented, resolution, resize_mode)
    return PreprocessedImage(
        image_id, array=array, flipped=segmentation.chest_wall_side != "left", bit_depth=loaded.bit_depth
    )


def preprocess_tasks(manifest: pd.DataFrame, resolution: int, resize_mode: str) -> list[tuple[str, str, int, str]]:
    kept = manifest[manifest["kept"].astype(bool)]
    if kept.empty:
        raise ValueError(
            f"the manifest keeps none of its {len(manifest)} images: see its `reason` column "
            "(lower `shape_threshold`, or check `dataset_root`, `pathology` and `abnormalities`)"
        )
    return [(row.image_id, row.image_path, resolution, resize_mode) for row in kept.itertuples()]


def cache_key(tasks: list[tuple[str, str, int, str]]) -> str:
    """A short hash of the images, their paths and the preprocessing parameters."""
    payload = json.dumps({"version": PREPROCESS_VERSION, "tasks": tasks}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def write_cache(folder: Path, results: list[PreprocessedImage], summary: dict) -> Path:
    """Write ``images.npy`` (N, R, R) float32, ``index.csv`` (one row per input, with errors) and summary."""
    folder.mkdir(parents=True, exist_ok=True)
    good = [r for r in results if r.array is not None]
    resolution = summary["resolution"]
    stack = np.stack([r.array for r in good]) if good else np.zeros((0, resolution, resolution), np.float32)
    np.save(folder / "images.tmp.npy", stack.astype(np.float32))
    (folder / "images.tmp.npy").replace(folder / "images.npy")  # atomic: no half-written cache
    index = pd.DataFrame(
        {
            "image_id": [r.image_id for r in results],
            "array_row": _array_rows(results),
            "flipped": [r.flipped for r in results],
            "bit_depth": [r.bit_depth for r in results],
            "error": [r.error for r in results],
        }
    )
    index.to_csv(folder / "index.csv", index=False)
    write_json(folder / "summary.json", summary)
    return folder


def _array_rows(results: list[PreprocessedImage]) -> list[int]:
    rows, next_row = [], 0
    for result in results:
        rows.append(next_row if result.array is not None else -1)
        next_row += result.array is not None
    return rows


def is_cache_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ("images.npy", "index.csv", "summary.json"))


def load_cache(folder: Path) -> tuple[np.ndarray, pd.DataFrame]:
    """The training images (N, R, R) float32 in [-1, 1] and the index (rows with ``array_row`` >= 0)."""
    images = np.load(folder / "images.npy")
    index = pd.read_csv(folder / "index.csv", keep_default_na=False)
    return images, index


def load_training_images(run_dir: Path, resolution: int | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """The array cache that 02_preprocess recorded for a run (``<run_dir>/preprocess.json``).

    With ``resolution``, a cache of another size is refused, naming both sizes.
    """
    record_path = Path(run_dir) / "preprocess.json"
    if not record_path.is_file():
        raise FileNotFoundError(f"{record_path} not found: run 02_preprocess for this experiment first")
    record = json.loads(record_path.read_text())
    images, index = load_cache(Path(record["cache_dir"]))
    if resolution is not None and images.shape[1:] != (resolution, resolution):
        raise ValueError(
            f"parameter 'resolution' is {resolution}, but the array cache of 02_preprocess "
            f"({record['cache_dir']}) holds images of shape {images.shape[1:]}: re-run 02_preprocess "
            f"with resolution {resolution} (the pipeline does this when the parameter changes)"
        )
    return images, index
