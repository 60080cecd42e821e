"""The lesion-patch mode of 02 (``training_images: lesion_patches``): square patches centred on the findings.

At a full-mammogram resolution of 128 px a calcification is smaller than a pixel; a patch around the finding,
cut from the image as stored, resolves a mass's margin and a calcification cluster at ``resolution``.

Geometry (``patch_scale``, ``patch_min_side``, ``patch_at_border``; :func:`patch_window`): a finding's box
(:mod:`mammogan_lib.data.datasets.locations`) is clipped to the image; the patch is the square of side
``max(patch_min_side, ceil(patch_scale x the box's longer side))`` source pixels centred on the box, so it
holds the lesion with its surroundings. A side longer than the image's shorter side is clipped to it. A patch
that crosses the image border is shifted inside it (``shift``: the finding stays wholly in the patch but off
centre; the offset is recorded) or the finding is skipped (``skip``). Patches keep 02's conventions: outside
the breast mask is background (-1), the breast's 99.5th percentile of the *whole image* is +1 (patches of one
image share the window), the chest wall is put on the left, then the patch is resized to ``resolution``.

Non-tumour patches (for 06): for each lesion patch, ``patch_background_per_finding`` patches of the same side
from the same image, at seeded random places, overlapping no finding's box (selected or not: a benign lesion
is not "non-tumour" tissue) -- an image with a finding whose place is unknown gives none. They are at least
as much breast as their lesion patch (capped at :data:`BREAST_FRACTION`), so that "less breast, more skin
line" does not tell the classes apart. They are cut the same way and stored beside the lesion patches.

Every selected finding region of a kept image is one row of the cache's ``index.csv`` -- a patch, or skipped
with its ``reason_code`` (:data:`SKIP_REASONS`) and reason -- so ``written + skipped`` is the number of
regions. ``image_id`` there is the patch id (``<image>:<type>:<finding id>:<part>``); ``source_image_id``
names the mammogram, whose patient decides the split (:func:`patch_patients`): all of a patient's patches
are on one side of the held-out split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mammogan_lib.core import files
from mammogan_lib.core.config import PreprocessConfig
from mammogan_lib.core.parallel import parallel_map
from mammogan_lib.data import breast, filtering, imaging
from mammogan_lib.data.conditioning import SELECTED_TYPES_COLUMN
from mammogan_lib.data.datasets.locations import Box, FindingLocation, finding_locations, read_mask_box

PATCH_VERSION = 2  # bump when the cutting changes, so stale patch caches are not reused
TRAINING_IMAGES = ("full", "lesion_patches")
BORDER_RULES = ("shift", "skip")
SKIP_REASONS = (
    "no_location",  # the dataset gives no box, mask or centre for the finding
    "unreadable_image",
    "no_breast",
    "outside_image",  # the finding's box lies outside the image
    "crosses_border",  # patch_at_border: skip, and the patch does not fit
    "inside_other_patch",  # a further region of one finding, already inside that finding's patch
    "no_free_area",  # background: no place away from every finding (or a finding's place is unknown)
)
BREAST_FRACTION = 0.9  # a non-tumour patch is this much breast (or as much as its lesion patch, if less)
BACKGROUND_TRIES = 200  # random places tried per non-tumour patch
INDEX_COLUMNS = (
    "image_id",
    "array_row",
    "source_image_id",
    "kind",
    "finding_type",
    "finding_id",
    "part",
    "box",
    "window",
    "side",
    "centre_offset",
    "flipped",
    "reason_code",
    "error",
)
BACKGROUND_IMAGES, BACKGROUND_INDEX = "background.npy", "background_index.csv"


@dataclass(frozen=True)
class PatchGeometry:
    """How a patch is cut (see the module doc)."""

    resolution: int
    scale: float = 2.0
    min_side: int = 256
    at_border: str = "shift"
    background_per_finding: int = 1

    def __post_init__(self) -> None:
        if self.at_border not in BORDER_RULES:
            raise ValueError(f"at_border must be one of {BORDER_RULES}, got {self.at_border!r}")

    @classmethod
    def of(cls, settings: PreprocessConfig) -> PatchGeometry:
        """The lesion-patch parameters of 02's settings."""
        return cls(
            settings.resolution,
            settings.patch_scale,
            settings.patch_min_side,
            settings.patch_at_border,
            settings.patch_background_per_finding,
        )


def patch_side(box: Box, geometry: PatchGeometry) -> int:
    """``max(min_side, ceil(scale x the box's longer side))`` source pixels."""
    extent = max(box[2] - box[0], box[3] - box[1])
    return max(int(geometry.min_side), math.ceil(geometry.scale * extent))


def clip_box(box: Box, shape: tuple[int, int]) -> Box | None:
    """``box`` cut to the image; None when nothing of it is inside."""
    top, left = max(box[0], 0), max(box[1], 0)
    bottom, right = min(box[2], shape[0]), min(box[3], shape[1])
    return (top, left, bottom, right) if bottom > top and right > left else None


def patch_window(box: Box, shape: tuple[int, int], geometry: PatchGeometry) -> Box | None:
    """The square window (top, left, bottom, right) around ``box`` in an image of ``shape``; None when it
    crosses the border and ``at_border`` is 'skip'. ``box`` must lie in the image (:func:`clip_box`)."""
    side = min(patch_side(box, geometry), shape[0], shape[1])
    corner = []
    for low, high, size in ((box[0], box[2], shape[0]), (box[1], box[3], shape[1])):
        start = math.floor((low + high) / 2 - side / 2)
        if start < 0 or start + side > size:
            if geometry.at_border == "skip":
                return None
            start = min(max(start, 0), size - side)
        corner.append(start)
    return (corner[0], corner[1], corner[0] + side, corner[1] + side)


def overlaps(a: Box, b: Box) -> bool:
    """Whether two boxes share a pixel."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def contains_point(box: Box, row: float, column: float) -> bool:
    return box[0] <= row < box[2] and box[1] <= column < box[3]


def breast_fraction(breast_mask: np.ndarray, window: Box) -> float:
    return float(breast_mask[window[0] : window[2], window[1] : window[3]].mean())


def background_window(
    side: int,
    breast_mask: np.ndarray,
    avoid: Sequence[Box],
    rng: np.random.Generator,
    min_breast: float = BREAST_FRACTION,
    tries: int = BACKGROUND_TRIES,
) -> Box | None:
    """A random square of ``side`` inside the image, at least ``min_breast`` breast and overlapping no box
    of ``avoid``; None when ``tries`` places all fail."""
    height, width = breast_mask.shape
    if side > height or side > width:
        return None
    area = np.pad(np.cumsum(np.cumsum(breast_mask, axis=0, dtype=np.int64), axis=1), ((1, 0), (1, 0)))
    for _ in range(tries):
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        window = (top, left, top + side, left + side)
        if any(overlaps(window, box) for box in avoid):
            continue
        inside = (
            area[top + side, left + side] - area[top, left + side] - area[top + side, left] + area[top, left]
        )
        if inside >= min_breast * side * side:
            return window
    return None


def patch_array(
    breast_pixels: np.ndarray, window: Box, flip: bool, top: float, resolution: int
) -> np.ndarray:
    """The window of an extracted breast (background 0) as a float32 (resolution, resolution) array in
    [-1, 1]: 0 -> -1, ``top`` -> +1, mirrored when ``flip`` (chest wall on the right)."""
    patch = np.asarray(breast_pixels[window[0] : window[2], window[1] : window[3]], dtype=np.float32)
    if flip:
        patch = patch[:, ::-1]
    scaled = np.clip(
        breast.resize_square(np.ascontiguousarray(patch), resolution) / np.float32(top), 0.0, 1.0
    )
    return (scaled * np.float32(2.0) - np.float32(1.0)).astype(np.float32)


def image_rng(image_id: str) -> np.random.Generator:
    """A generator seeded by the image id alone: the same places whatever else the dataset holds."""
    return np.random.default_rng(int(hashlib.sha256(image_id.encode()).hexdigest()[:16], 16))


# ------------------------------------------------------------------------------------------------ one image


@dataclass(frozen=True)
class PatchTask:
    """One kept mammogram: its selected finding regions (patches) and the others (only avoided)."""

    image_id: str
    path: str
    selected: tuple[FindingLocation, ...]
    others: tuple[FindingLocation, ...]
    geometry: PatchGeometry


@dataclass(frozen=True)
class PatchRecord:
    """One row of the patch index, and its array (None when skipped)."""

    image_id: str  # patch id
    source_image_id: str
    kind: str  # lesion | background
    finding_type: str = ""
    finding_id: str = ""
    part: int = 0
    box: str = ""
    window: str = ""
    side: int = 0
    centre_offset: float = 0.0  # pixels between the finding's centre and the patch's (shifted at a border)
    flipped: bool = False
    reason_code: str = ""
    error: str = ""
    array: np.ndarray | None = field(default=None, repr=False)


def patch_id(location: FindingLocation) -> str:
    return f"{location.image_id}:{location.finding_type}:{location.finding_id}:{location.part}"


def _box_text(box: Box | None) -> str:
    return "" if box is None else " ".join(str(v) for v in box)


def _box_of_text(text: str) -> Box:
    top, left, bottom, right = (int(v) for v in text.split())
    return (top, left, bottom, right)


def _scaled(box: Box, frame: tuple[int, int] | None, shape: tuple[int, int]) -> Box:
    """``box`` from the grid it was measured in to the image's."""
    if frame is None or tuple(frame) == tuple(shape):
        return box
    fy, fx = shape[0] / frame[0], shape[1] / frame[1]
    return (math.floor(box[0] * fy), math.floor(box[1] * fx), math.ceil(box[2] * fy), math.ceil(box[3] * fx))


def _resolved(location: FindingLocation, shape: tuple[int, int]) -> FindingLocation:
    """The location with its box in the image's pixels (a ROI mask read, a frame scaled)."""
    box, frame, reason = location.box, location.frame, location.reason
    if box is None and location.mask_paths:
        box, frame, reason = read_mask_box(location, shape)
    if box is not None:
        box, frame = _scaled(box, frame, shape), None
    return dataclasses.replace(location, box=box, frame=frame, reason=reason)


def cut_patches(task: PatchTask) -> list[PatchRecord]:
    """The lesion and non-tumour patches of one image, and a skipped record for each one not made."""
    geometry = task.geometry

    def lesion(location: FindingLocation, **fields: Any) -> PatchRecord:
        return PatchRecord(
            patch_id(location),
            task.image_id,
            "lesion",
            location.finding_type,
            location.finding_id,
            location.part,
            **fields,
        )

    def skipped(location: FindingLocation, code: str, reason: str) -> PatchRecord:
        return lesion(location, box=_box_text(location.box), reason_code=code, error=reason)

    try:
        loaded = imaging.read_grayscale(Path(task.path))
    except imaging.ImageReadError as error:
        return [skipped(location, "unreadable_image", str(error)) for location in task.selected]
    segmentation = breast.segment_breast(loaded.pixels)
    if not segmentation.mask.any():
        return [skipped(loc, "no_breast", f"{task.path}: no breast region found") for loc in task.selected]
    shape = loaded.pixels.shape
    breast_pixels = np.where(segmentation.mask, loaded.pixels, 0).astype(np.float32)
    top = float(np.percentile(breast_pixels[segmentation.mask], breast.INTENSITY_PERCENTILE))
    flip = segmentation.chest_wall_side != "left"
    selected = [_resolved(location, shape) for location in task.selected]
    others = [_resolved(location, shape) for location in task.others]
    records: list[PatchRecord] = []
    windows: dict[tuple[str, str], list[Box]] = {}
    for location in selected:
        if location.box is None:
            records.append(skipped(location, "no_location", location.reason))
            continue
        box = clip_box(location.box, shape)
        if box is None:
            reason = f"box {_box_text(location.box)} lies outside the {shape[0]}x{shape[1]} image"
            records.append(skipped(location, "outside_image", reason))
            continue
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        earlier = [w for w in windows.get(location.key, []) if contains_point(w, *centre)]
        if earlier:
            reason = f"centre inside this finding's patch {_box_text(earlier[0])}"
            records.append(skipped(location, "inside_other_patch", reason))
            continue
        window = patch_window(box, shape, geometry)
        if window is None:
            side = min(patch_side(box, geometry), *shape)
            reason = f"a patch of side {side} around box {_box_text(box)} crosses the image border"
            records.append(skipped(location, "crosses_border", reason))
            continue
        windows.setdefault(location.key, []).append(window)
        offset = math.hypot(centre[0] - (window[0] + window[2]) / 2, centre[1] - (window[1] + window[3]) / 2)
        records.append(
            lesion(
                location,
                box=_box_text(box),
                window=_box_text(window),
                side=window[2] - window[0],
                centre_offset=round(offset, 2),
                flipped=flip,
                array=patch_array(breast_pixels, window, flip, top, geometry.resolution),
            )
        )
    records += _background_patches(
        task, [*selected, *others], records, segmentation.mask, breast_pixels, top, flip
    )
    return records


def _background_patches(
    task: PatchTask,
    locations: Sequence[FindingLocation],
    records: Sequence[PatchRecord],
    breast_mask: np.ndarray,
    breast_pixels: np.ndarray,
    top: float,
    flip: bool,
) -> list[PatchRecord]:
    """``background_per_finding`` non-tumour patches per lesion patch of ``records`` (see the module doc)."""
    lesions = [
        (r.side, min(BREAST_FRACTION, breast_fraction(breast_mask, _box_of_text(r.window))))
        for r in records
        if r.array is not None
    ]
    wanted = [lesion for lesion in lesions for _ in range(task.geometry.background_per_finding)]
    unknown = [loc for loc in locations if loc.box is None]
    avoid = [loc.box for loc in locations if loc.box is not None]
    rng = image_rng(task.image_id)
    made = []
    for number, (side, fraction) in enumerate(wanted):
        window = None if unknown else background_window(side, breast_mask, avoid, rng, fraction)
        common = {"image_id": f"{task.image_id}:background:{number}", "source_image_id": task.image_id}
        if window is None:
            reason = (
                f"the place of finding {unknown[0].finding_type} {unknown[0].finding_id} is unknown"
                if unknown
                else f"no {side}-pixel square away from every finding is {fraction:.0%} breast (its lesion's)"
            )
            made.append(
                PatchRecord(**common, kind="background", side=side, reason_code="no_free_area", error=reason)
            )
            continue
        made.append(
            PatchRecord(
                **common,
                kind="background",
                window=_box_text(window),
                side=side,
                flipped=flip,
                array=patch_array(breast_pixels, window, flip, top, task.geometry.resolution),
            )
        )
    return made


# -------------------------------------------------------------------------------------- tasks from 01's run


def selected_findings(row: pd.Series, selection: filtering.Selection) -> list[tuple[str, str]]:
    """(finding_type, finding_id) of each finding of a manifest row that 01's selection wants."""
    basis = row.get("label_basis", "")
    ids = str(row["finding_ids"]).split(";") if row["finding_ids"] else []
    findings = filtering.image_findings(row)
    ids = [*ids, *[""] * (len(findings) - len(ids))]
    return [
        (finding.type, finding_id)
        for finding, finding_id in zip(findings, ids, strict=False)
        if selection.wants_type(finding.type) and selection.wants_label(finding, basis)
    ]


def selection_of(filter_summary: Mapping) -> filtering.Selection:
    """01's selection, as its summary records it."""
    recorded = filter_summary.get("selection_parameters")
    if recorded is None:
        raise ValueError(
            "filter_summary.json records no selection_parameters (it was written by an older 01_filter): "
            "re-run 01_filter before cutting lesion patches"
        )
    return filtering.Selection(
        recorded["pathology"], tuple(recorded["abnormalities"]), int(recorded["birads_min"])
    )


def patch_tasks(
    manifest: pd.DataFrame,
    filter_summary: Mapping,
    geometry: PatchGeometry,
    locations: Iterable[FindingLocation] | None = None,
) -> list[PatchTask]:
    """One task per kept image: its selected findings' regions (a finding the dataset does not locate is
    one region without a box, recorded as skipped) and its other findings' regions.

    ``locations`` defaults to those of 01's dataset (:func:`~.locations.finding_locations`).
    """
    kept = manifest[manifest["kept"].astype(bool)]
    if kept.empty:
        raise ValueError(f"the manifest keeps none of its {len(manifest)} images: see its `reason` column")
    layout = filter_summary["layout"]
    if locations is None:
        locations = finding_locations(Path(filter_summary["dataset_root"]), layout)
    by_image: dict[str, list[FindingLocation]] = {}
    for location in locations:
        by_image.setdefault(location.image_id, []).append(location)
    selection = selection_of(filter_summary)
    tasks = []
    for _, row in kept.iterrows():
        image_locations = by_image.get(row["image_id"], [])
        wanted = selected_findings(row, selection)
        selected, found = [], set()
        for location in image_locations:
            if location.key in wanted:
                selected.append(location)
                found.add(location.key)
        for finding_type, finding_id in wanted:
            if (finding_type, finding_id) not in found:
                reason = f"the {layout} layout gives no location for {finding_type} {finding_id or '(no id)'}"
                selected.append(FindingLocation(row["image_id"], finding_type, finding_id, reason=reason))
        selected.sort(key=lambda loc: (wanted.index(loc.key), loc.part))
        others = [location for location in image_locations if location.key not in wanted]
        tasks.append(PatchTask(row["image_id"], row["image_path"], tuple(selected), tuple(others), geometry))
    return tasks


def finding_types(index: pd.DataFrame) -> pd.DataFrame:
    """Each patch's finding type as the class source of conditional training (``image_id``,
    ``selected_types``, the columns :func:`mammogan_lib.data.conditioning.label_split` reads from 01's
    manifest): a patch is centred on one finding, so it has exactly one type."""
    return pd.DataFrame({"image_id": index["image_id"], SELECTED_TYPES_COLUMN: index["finding_type"]})


def patch_patients(index: pd.DataFrame, manifest: pd.DataFrame) -> pd.Series:
    """patch id -> the patient of its mammogram (for :func:`~mammogan_lib.data.preprocess.split_table`)."""
    patient_of = manifest.set_index("image_id")["patient_id"].to_dict()
    patients = index["source_image_id"].map(patient_of).fillna("")
    patients = patients.where(patients != "", "image:" + index["source_image_id"])
    return pd.Series(patients.to_numpy(), index=index["image_id"].to_numpy())


# ---------------------------------------------------------------------------------------------- the cache


def _task_payload(task: PatchTask) -> dict:
    return dataclasses.asdict(task)


def cache_key(tasks: Sequence[PatchTask]) -> str:
    payload = json.dumps(
        {"version": PATCH_VERSION, "tasks": [_task_payload(t) for t in tasks]}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _write_patches(
    folder: Path, images_name: str, index_name: str, records: Sequence[PatchRecord], resolution: int
) -> pd.DataFrame:
    good = [r.array for r in records if r.array is not None]
    stack = np.stack(good) if good else np.zeros((0, resolution, resolution), np.float32)
    files.save_array(folder / images_name, stack.astype(np.float32))
    rows, next_row = [], 0
    for record in records:
        row = {name: getattr(record, name) for name in INDEX_COLUMNS if name != "array_row"}
        row["array_row"] = next_row if record.array is not None else -1
        next_row += record.array is not None
        rows.append(row)
    index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
    files.write_csv(folder / index_name, index)
    return index


def skip_counts(index: pd.DataFrame) -> dict[str, int]:
    """Rows per reason_code of the rows not made (every code of :data:`SKIP_REASONS` present)."""
    codes = index.loc[index["array_row"] < 0, "reason_code"]
    return {code: int((codes == code).sum()) for code in SKIP_REASONS}


def ensure_patch_cache(
    tasks: Sequence[PatchTask],
    cache_root: Path,
    workers: int,
    progress: Callable[..., Iterable[list[PatchRecord]]] | None = None,
) -> Path:
    """The folder of the patch cache of ``tasks`` (made unless complete): ``images.npy`` and ``index.csv``
    (lesion patches, the array format and index of :func:`~mammogan_lib.data.preprocess.load_cache`), the
    non-tumour patches in ``background.npy`` / ``background_index.csv``, and ``summary.json``."""
    if not tasks:
        raise ValueError(f"no images to cut patches from into {cache_root}")
    folder = Path(cache_root) / cache_key(tasks)
    if is_patch_cache_complete(folder):
        return folder
    mapped: Iterable[list[PatchRecord]] = parallel_map(cut_patches, list(tasks), workers)
    results = [
        record
        for records in (progress(mapped, total=len(tasks)) if progress else mapped)
        for record in records
    ]
    geometry = tasks[0].geometry
    folder.mkdir(parents=True, exist_ok=True)
    lesions = _write_patches(
        folder, "images.npy", "index.csv", [r for r in results if r.kind == "lesion"], geometry.resolution
    )
    background = _write_patches(
        folder,
        BACKGROUND_IMAGES,
        BACKGROUND_INDEX,
        [r for r in results if r.kind == "background"],
        geometry.resolution,
    )
    summary = {
        "resolution": geometry.resolution,
        "training_images": "lesion_patches",
        "geometry": dataclasses.asdict(geometry),
        "inputs": len(tasks),
        "findings": len(
            {(r.source_image_id, r.finding_type, r.finding_id) for r in results if r.kind == "lesion"}
        ),
        "regions": len(lesions),
        **written_and_skipped(lesions),
        "skipped_by_reason": skip_counts(lesions),
        **written_and_skipped(background, prefix="background_"),
        "version": PATCH_VERSION,
    }
    files.write_json(folder / "summary.json", summary)
    return folder


def written_and_skipped(index: pd.DataFrame, prefix: str = "") -> dict[str, int]:
    """How many rows of a cache index hold an array (``array_row`` >= 0) and how many were skipped."""
    written = int((index["array_row"] >= 0).sum())
    return {f"{prefix}written": written, f"{prefix}skipped": len(index) - written}


def is_patch_cache_complete(folder: Path) -> bool:
    names = ("images.npy", "index.csv", BACKGROUND_IMAGES, BACKGROUND_INDEX, "summary.json")
    return all((folder / name).is_file() for name in names)


def load_background(folder: Path) -> tuple[np.ndarray, pd.DataFrame]:
    """The non-tumour patches of a patch cache and their index (rows with ``array_row`` >= 0 made)."""
    images = np.load(Path(folder) / BACKGROUND_IMAGES)
    index = pd.read_csv(Path(folder) / BACKGROUND_INDEX, keep_default_na=False, dtype={"image_id": str})
    return images, index


def load_patch_index(folder: Path) -> pd.DataFrame:
    return pd.read_csv(
        Path(folder) / "index.csv", keep_default_na=False, dtype={"image_id": str, "source_image_id": str}
    )


# -------------------------------------------------------------------------- non-tumour patches for 06


def patch_sides(folder: Path) -> list[int]:
    """The sides (source pixels) of the lesion patches of a patch cache, in index order."""
    index = load_patch_index(folder)
    return [int(side) for side in index.loc[index["array_row"] >= 0, "side"]]


def cut_healthy_patch(task: tuple[str, str, int, int]) -> PatchRecord:
    """``(image_id, path, side, resolution)``: one patch of ``side`` at a seeded random place that is at
    least :data:`BREAST_FRACTION` breast, cut like a lesion patch (or skipped, with the reason)."""
    image_id, path, side, resolution = task
    try:
        loaded = imaging.read_grayscale(Path(path))
    except imaging.ImageReadError as error:
        return PatchRecord(
            image_id, image_id, "healthy", side=side, reason_code="unreadable_image", error=str(error)
        )
    segmentation = breast.segment_breast(loaded.pixels)
    if not segmentation.mask.any():
        return PatchRecord(
            image_id,
            image_id,
            "healthy",
            side=side,
            reason_code="no_breast",
            error=f"{path}: no breast region found",
        )
    side = min(side, *loaded.pixels.shape)
    window = background_window(side, segmentation.mask, [], image_rng(image_id))
    if window is None:
        reason = f"no {side}-pixel square is {BREAST_FRACTION:.0%} breast"
        return PatchRecord(image_id, image_id, "healthy", side=side, reason_code="no_free_area", error=reason)
    breast_pixels = np.where(segmentation.mask, loaded.pixels, 0).astype(np.float32)
    top = float(np.percentile(breast_pixels[segmentation.mask], breast.INTENSITY_PERCENTILE))
    flip = segmentation.chest_wall_side != "left"
    return PatchRecord(
        image_id,
        image_id,
        "healthy",
        window=_box_text(window),
        side=side,
        flipped=flip,
        array=patch_array(breast_pixels, window, flip, top, resolution),
    )


def ensure_healthy_patch_cache(
    images: Sequence[tuple[str, str]],
    sides: Sequence[int],
    resolution: int,
    cache_root: Path,
    workers: int,
    progress: Callable[..., Iterable[PatchRecord]] | None = None,
) -> Path:
    """One patch per healthy image ``(image_id, path)``, the sides taken in turn from ``sides`` (the lesion
    patches'), so both classes are cut at the same scales; a cache folder :func:`~.preprocess.load_cache`
    reads."""
    if not sides:
        raise ValueError("no lesion patch was made: there are no patch sides to cut non-tumour patches at")
    tasks = [
        (image_id, path, int(sides[number % len(sides)]), resolution)
        for number, (image_id, path) in enumerate(images)
    ]
    payload = json.dumps({"version": PATCH_VERSION, "healthy": tasks}, sort_keys=True)
    folder = Path(cache_root) / f"healthy-{hashlib.sha256(payload.encode()).hexdigest()[:16]}"
    if all((folder / name).is_file() for name in ("images.npy", "index.csv", "summary.json")):
        return folder
    mapped: Iterable[PatchRecord] = parallel_map(cut_healthy_patch, tasks, workers)
    records = list(progress(mapped, total=len(tasks)) if progress else mapped)
    folder.mkdir(parents=True, exist_ok=True)
    index = _write_patches(folder, "images.npy", "index.csv", records, resolution)
    summary = {
        "resolution": resolution,
        "inputs": len(tasks),
        **written_and_skipped(index),
        "version": PATCH_VERSION,
    }
    files.write_json(folder / "summary.json", summary)
    return folder


SAME_IMAGE_NOTE = "patches of the tumours' own mammograms, away from every finding (02_preprocess)"
