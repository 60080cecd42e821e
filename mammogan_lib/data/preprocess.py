"""02_preprocess: breast extraction, orientation, resize and scaling to [-1, 1], into an array cache.

Pre-cut crops (layout ``roi_patches``, :func:`preparation` 'crops') are not breasts: no breast is extracted
and nothing is flipped; each crop is read as stored, mapped to [-1, 1] and resized
(:func:`crop_to_training_array`), into the same cache format, so 03-05 run on crops unchanged.

The cache is shared between runs: it lives in ``<data_dir>/cache/preprocess/<key>/`` where the key hashes
the kept images (ids and paths) and the preprocessing parameters, so experiments on the same data reuse it.

Each run also records a patient-level split (``<run_dir>/split.csv``): the GAN trains on ``train`` only,
and ``heldout`` images (whole patients, so no CC/MLO twin of a test image is ever trained on) serve
05_metrics (the real-vs-real floor, the memorisation audit) and 06_svm (the classifier's tumour test set).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mammogan_lib.core import files
from mammogan_lib.core.parallel import parallel_map
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.data import breast, imaging
from mammogan_lib.data.datasets import roi

# Bump when the preprocessing algorithm changes, so stale caches are not reused.
PREPROCESS_VERSION = 1
# Images are decoded at most this tall: the largest training resolution (256) is reached with margin,
# and decoding a 5,000-row scan at full size would dominate the time.
READ_HEIGHT = 1024
# How images become training arrays: whole breasts extracted from mammograms, or pre-cut crops as stored.
BREAST, CROPS = "breast", "crops"
BREAST_EXTRACTION: dict[str, str] = {
    BREAST: "breast region extracted, chest wall put on the left (breast.py)",
    CROPS: "not applicable (pre-cut crops)",
}


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


def preparation(layout: str, training_images: str) -> str:
    """How 02 makes training arrays of a layout's images: :data:`CROPS` for pre-cut crops (``roi_patches``),
    else :data:`BREAST`. Lesion patches cannot be cut from crops: that combination is refused."""
    if layout != roi.LAYOUT:
        return BREAST
    if training_images != "full":
        raise ValueError(
            f"parameter 'training_images' is {training_images!r}, but the dataset's layout "
            f"('dataset_layout') is {roi.LAYOUT}: its images are pre-cut crops, each lesion crop already a "
            "patch around its finding, with no full mammogram to cut another from. Set training_images: full "
            "(the crops are trained on as they are)"
        )
    return CROPS


def crop_to_training_array(pixels: np.ndarray, resolution: int, resize_mode: str = "pad") -> np.ndarray:
    """A crop in [0, 1] (as :func:`imaging.read_grayscale` gives it) as a float32 (resolution, resolution)
    array in [-1, 1]: 0 -> -1, 1 -> +1, the inverse of :func:`imaging.to_uint8`, so an 8-bit value v becomes
    v / 127.5 - 1. Crops are shared already windowed: a window of our own (the breast mode's percentile)
    would stretch a fatty crop and a dense one alike. Shrinking uses INTER_AREA; ``resize_mode`` 'pad'
    keeps a non-square crop's aspect ratio, centred on a black (-1) square so that its lesion stays in
    the middle; 'stretch' resizes it to the square."""
    if resize_mode not in breast.RESIZE_MODES:
        raise ValueError(f"resize_mode must be one of {breast.RESIZE_MODES}, got {resize_mode!r}")
    pixels = np.asarray(pixels, dtype=np.float32)
    height, width = pixels.shape
    if resize_mode == "pad" and height != width:
        side = max(height, width)
        canvas = np.zeros((side, side), np.float32)
        top, left = (side - height) // 2, (side - width) // 2
        canvas[top : top + height, left : left + width] = pixels
        pixels = canvas
    resized = np.clip(breast.resize_square(pixels, int(resolution)), 0.0, 1.0)
    return (resized * np.float32(2.0) - np.float32(1.0)).astype(np.float32)


def preprocess_crop(task: tuple[str, str, int, str]) -> PreprocessedImage:
    """Make ``(image_id, path, resolution, resize_mode)``, a pre-cut crop, a training array; errors are
    returned as data."""
    image_id, path, resolution, resize_mode = task
    try:
        loaded = imaging.read_grayscale(Path(path), max_height=READ_HEIGHT)
    except imaging.ImageReadError as error:
        return PreprocessedImage(image_id, error=str(error))
    array = crop_to_training_array(loaded.pixels, resolution, resize_mode)
    return PreprocessedImage(image_id, array=array, bit_depth=loaded.bit_depth)


PREPARE = {BREAST: preprocess_image, CROPS: preprocess_crop}


def preprocess_tasks(
    manifest: pd.DataFrame, resolution: int, resize_mode: str
) -> list[tuple[str, str, int, str]]:
    kept = manifest[manifest["kept"].astype(bool)]
    if kept.empty:
        raise ValueError(
            f"the manifest keeps none of its {len(manifest)} images: see its `reason` column "
            "(lower `shape_threshold`, or check `dataset_root`, `pathology` and `abnormalities`)"
        )
    return [(row.image_id, row.image_path, resolution, resize_mode) for row in kept.itertuples()]


def cache_key(tasks: list[tuple[str, str, int, str]], preparation: str = BREAST) -> str:
    """A short hash of the images, their paths, the preprocessing parameters and how they were prepared."""
    content: dict = {"version": PREPROCESS_VERSION, "tasks": tasks}
    if preparation != BREAST:  # the breast caches made before crops existed keep their keys
        content["preparation"] = preparation
    payload = json.dumps(content, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def write_cache(folder: Path, results: list[PreprocessedImage], summary: dict) -> Path:
    """Write ``images.npy`` (N, R, R) float32, ``index.csv`` (one row per input, with errors) and summary."""
    folder.mkdir(parents=True, exist_ok=True)
    good = [r for r in results if r.array is not None]
    resolution = summary["resolution"]
    stack = np.stack([r.array for r in good]) if good else np.zeros((0, resolution, resolution), np.float32)
    files.save_array(folder / "images.npy", stack.astype(np.float32))
    index = pd.DataFrame(
        {
            "image_id": [r.image_id for r in results],
            "array_row": _array_rows(results),
            "flipped": [r.flipped for r in results],
            "bit_depth": [r.bit_depth for r in results],
            "error": [r.error for r in results],
        }
    )
    files.write_csv(folder / "index.csv", index)
    files.write_json(folder / "summary.json", summary)
    return folder


def _array_rows(results: list[PreprocessedImage]) -> list[int]:
    rows, next_row = [], 0
    for result in results:
        rows.append(next_row if result.array is not None else -1)
        next_row += result.array is not None
    return rows


def ensure_cache(
    tasks: list[tuple[str, str, int, str]],
    cache_root: Path,
    workers: int,
    progress: Callable[..., Iterable[PreprocessedImage]] | None = None,
    preparation: str = BREAST,
) -> Path:
    """The cache folder of ``tasks`` under ``cache_root``, preprocessing them first unless already cached.

    ``progress(results, total=n)`` may wrap the results iterator (e.g. ``partial(tqdm, desc=...)``); the
    library itself prints nothing. ``preparation`` (:func:`preparation`) is :data:`BREAST` or :data:`CROPS`.
    """
    if preparation not in PREPARE:
        raise ValueError(f"preparation must be one of {list(PREPARE)}, got {preparation!r}")
    if not tasks:
        raise ValueError(f"no images to preprocess into {cache_root}")
    folder = Path(cache_root) / cache_key(tasks, preparation)
    if is_cache_complete(folder):
        return folder
    _, _, resolution, resize_mode = tasks[0]
    mapped: Iterable[PreprocessedImage] = parallel_map(PREPARE[preparation], tasks, workers)
    results = list(progress(mapped, total=len(tasks)) if progress else mapped)
    summary = {
        "resolution": resolution,
        "resize_mode": resize_mode,
        "inputs": len(tasks),
        "written": sum(r.array is not None for r in results),
        "skipped": sum(r.array is None for r in results),
        "version": PREPROCESS_VERSION,
        "preparation": preparation,
        "breast_extraction": BREAST_EXTRACTION[preparation],
    }
    return write_cache(folder, results, summary)


def is_cache_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ("images.npy", "index.csv", "summary.json"))


def load_cache(folder: Path) -> tuple[np.ndarray, pd.DataFrame]:
    """The training images (N, R, R) float32 in [-1, 1] and the index (rows with ``array_row`` >= 0)."""
    images = np.load(folder / "images.npy")
    index = pd.read_csv(folder / "index.csv", keep_default_na=False)
    return images, index


def downsample(images: np.ndarray, resolution: int) -> np.ndarray:
    """``(N, R, R)`` images averaged over ``R / resolution`` square blocks to ``(N, resolution, resolution)``:
    a box filter, the 2x2 average pooling of a growing discriminator's fade path applied once per octave."""
    count, size = images.shape[0], images.shape[1]
    if size % resolution or resolution > size:
        raise ValueError(f"cannot downsample {size} x {size} images to {resolution} x {resolution}")
    factor = size // resolution
    blocks = images.astype(np.float64).reshape(count, resolution, factor, resolution, factor)
    return blocks.mean(axis=(2, 4)).astype(np.float32)


def write_stage_caches(cache_dir: Path, resolutions: Iterable[int]) -> dict[str, str]:
    """For progressive training, the cache ``cache_dir`` at each lower resolution of ``resolutions``, in
    ``<cache_dir>/resolution_<R>/``: the same rows (so the same split) box-filtered down from the cached
    images, not preprocessed again, so that a stage's real images are what the next stage's images look
    like at its resolution. Returns ``{"<R>": folder}`` for every resolution, the cache's own included."""
    images, index = load_cache(cache_dir)
    summary = files.read_json(cache_dir / "summary.json")
    folders = {}
    for resolution in resolutions:
        if resolution == summary["resolution"]:
            folders[str(resolution)] = str(cache_dir)
            continue
        folder = cache_dir / f"resolution_{resolution}"
        if not is_cache_complete(folder):
            folder.mkdir(exist_ok=True)
            files.save_array(folder / "images.npy", downsample(images, resolution))
            files.write_csv(folder / "index.csv", index)
            stage_summary = {**summary, "resolution": resolution, "downsampled_from": summary["resolution"]}
            files.write_json(folder / "summary.json", stage_summary)
        folders[str(resolution)] = str(folder)
    return folders


SPLITS = ("train", "heldout")


def heldout_patients(patient_ids: Iterable[str], holdout_fraction: float) -> set[str]:
    """``round(fraction x patients)`` patients, chosen by a hash of their id.

    A hash instead of a seeded shuffle: the choice of one patient does not depend on which other patients
    were kept, so a re-filtered dataset keeps its held-out patients held out.
    """
    patients = sorted(set(patient_ids), key=lambda pid: hashlib.sha256(pid.encode()).hexdigest())
    return set(patients[: round(holdout_fraction * len(patients))])


def split_table(index: pd.DataFrame, patients: pd.Series, holdout_fraction: float) -> pd.DataFrame:
    """One row per cached image: ``image_id, patient_id, array_row, split`` (train | heldout).

    ``patients`` maps image_id -> patient_id; an image without a patient id is its own patient.
    """
    cached = index[index["array_row"] >= 0]
    # as text: a manifest read back by pandas turns ids such as '00123' into numbers
    patient_of = cached["image_id"].map(patients.to_dict()).fillna("").astype(str)
    patient_of = patient_of.where(patient_of != "", "image:" + cached["image_id"])
    heldout = heldout_patients(patient_of, holdout_fraction)
    return pd.DataFrame(
        {
            "image_id": cached["image_id"].to_numpy(),
            "patient_id": patient_of.to_numpy(),
            "array_row": cached["array_row"].to_numpy(),
            "split": np.where(patient_of.isin(heldout), "heldout", "train"),
        }
    )


def load_split_images(
    run_dir: Path, split: str, resolution: int | None = None
) -> tuple[np.ndarray, pd.DataFrame]:
    """The ``train`` or ``heldout`` images of a run (see :func:`split_table`) and their split rows."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    images, _ = load_cached_images(run_dir, resolution)
    split_path = RunPaths(run_dir).split
    if not split_path.is_file():
        raise FileNotFoundError(f"{split_path} not found: re-run 02_preprocess for this experiment")
    rows = pd.read_csv(split_path, keep_default_na=False, dtype={"image_id": str, "patient_id": str})
    rows = rows[rows["split"] == split].reset_index(drop=True)
    return images[rows["array_row"].to_numpy()], rows


def load_training_images(run_dir: Path, resolution: int | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """The images the GAN trains on: the ``train`` split of the run's array cache."""
    return load_split_images(run_dir, "train", resolution)


def load_cached_images(run_dir: Path, resolution: int | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """The whole array cache that 02_preprocess recorded for a run (``<run_dir>/preprocess.json``).

    With ``resolution``, the cache at that resolution (02 writes one per stage of progressive training,
    :func:`write_stage_caches`); a cache of another size is refused, naming both sizes.
    """
    record_path = RunPaths(run_dir).preprocess_record
    if not record_path.is_file():
        raise FileNotFoundError(f"{record_path} not found: run 02_preprocess for this experiment first")
    record = files.read_json(record_path)
    stage_cache = (record.get("stage_caches") or {}).get(str(resolution))
    images, index = load_cache(Path(stage_cache or record["cache_dir"]))
    if resolution is not None and images.shape[1:] != (resolution, resolution):
        raise ValueError(
            f"parameter 'resolution' is {resolution}, but the array cache of 02_preprocess "
            f"({record['cache_dir']}) holds images of shape {images.shape[1:]}: re-run 02_preprocess "
            f"with resolution {resolution} (the pipeline does this when the parameter changes)"
        )
    return images, index
