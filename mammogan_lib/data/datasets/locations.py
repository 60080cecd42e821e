"""Where each finding lies in its full mammogram, for the layouts that say so (the lesion-patch mode of 02).

:func:`finding_locations` returns one :class:`FindingLocation` per finding region of a dataset, keyed like the
catalogue's findings (``image_id``, ``finding_type``, ``finding_id``):

* ``kaggle_jpeg`` (CBIS-DDSM and the phantom) and ``tcia_dicom``: the finding's ROI mask. Its case-CSV
  paths name the series of the crop and of the ROI mask; which file is the mask is decided when it is read
  (:func:`read_mask_box`: the binary image in the full mammogram's frame), because neither
  ``SeriesDescription`` nor the file names can be trusted to tell crop from mask. Until then a location holds
  the candidate files (``mask_paths``).
* ``mini_mias``: the centre and radius of ``Info.txt`` (origin bottom-left, flipped here to rows from the
  top); a line without them (calcifications spread over the breast) has no location.
* ``vindr_mammo``: the box ``xmin, ymin, xmax, ymax`` of ``finding_annotations.csv``.
* ``inbreast``: each ROI outline (``Point_px``) of the image's ``AllXML`` file is one region of the finding of
  its type (``part`` counts them), its box the outline's extent.
* other layouts (``image_folder``, ``rsna_screening``) give no locations: 02 records each of
  their findings as skipped, with that reason.

Boxes are ``(top, left, bottom, right)`` in pixels, bottom/right exclusive, in the pixel grid ``frame``
(height, width) they were measured in; ``frame`` None means the image's own grid as stored.
"""

from __future__ import annotations

import math
import plistlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mammogan_lib.core.vocabulary import NO_FINDING, normalise_finding_type
from mammogan_lib.data import imaging
from mammogan_lib.data.datasets import cbis, inbreast, kaggle_jpeg, mias, tcia, vindr
from mammogan_lib.data.datasets.tables import find_in_folder, read_table

Box = tuple[int, int, int, int]
LOCATED_LAYOUTS: tuple[str, ...] = ("kaggle_jpeg", "tcia_dicom", "mini_mias", "vindr_mammo", "inbreast")
MASK_DESCRIPTION = "roi mask images"
# A ROI mask is binary: at most this share of its pixels lie strictly between black and white (JPEG ringing).
MASK_GREY_FRACTION = 0.02
MIAS_HEIGHT = 1024  # every mini-MIAS image is 1024 x 1024; its y axis points up


@dataclass(frozen=True)
class FindingLocation:
    """One region of one finding; ``box`` None with the ``reason`` when the dataset gives none."""

    image_id: str
    finding_type: str
    finding_id: str
    part: int = 0  # regions of one finding, numbered from 0 (INbreast: one per ROI outline)
    box: Box | None = None
    frame: tuple[int, int] | None = None
    mask_paths: tuple[str, ...] = ()  # CBIS-DDSM: candidate ROI-mask files, read by box_of_mask
    reason: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """(finding_type, finding_id): the finding within its image."""
        return (self.finding_type, self.finding_id)


def finding_locations(root: Path, layout: str) -> list[FindingLocation]:
    """The finding regions of the dataset at ``root`` (see the module doc); [] for layouts without any."""
    readers = {
        "kaggle_jpeg": cbis_mask_locations,
        "tcia_dicom": tcia_mask_locations,
        "mini_mias": mias_locations,
        "vindr_mammo": vindr_locations,
        "inbreast": inbreast_locations,
    }
    return readers[layout](Path(root)) if layout in readers else []


def box_from_centre(row: float, column: float, radius: float) -> Box:
    """The square box around a circle (pixels; bottom/right exclusive)."""
    return (
        math.floor(row - radius),
        math.floor(column - radius),
        math.ceil(row + radius) + 1,
        math.ceil(column + radius) + 1,
    )


def box_of_points(points: Sequence[tuple[float, float]]) -> Box:
    """The extent of outline points ``(x, y)`` as a box."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (math.floor(min(ys)), math.floor(min(xs)), math.floor(max(ys)) + 1, math.floor(max(xs)) + 1)


# --------------------------------------------------------------------------------------- CBIS-DDSM masks


def cbis_mask_locations(root: Path) -> list[FindingLocation]:
    """Kaggle JPEG layout: the mask candidates of each finding are the files ``dicom_info.csv`` lists for
    its crop and ROI-mask series (those described as ROI masks first), then the series folders' images."""
    named = kaggle_jpeg.read_dicom_info(root)

    def series_files(uids: Sequence[str], listed_paths: Sequence[str]) -> list[str]:
        listed = [image for uid in uids for image in named.get(uid, [])]
        listed.sort(key=lambda image: image.description.strip().lower() != MASK_DESCRIPTION)
        found = [str(image.path) for image in listed if image.path.is_file()]
        return found + [str(p) for uid in uids for p in kaggle_jpeg.folder_images(root, uid)]

    cases = list(zip(cbis.CASE_CSVS, kaggle_jpeg.case_csv_paths(root), strict=True))
    return case_csv_locations(root, cases, series_files)


def tcia_mask_locations(root: Path) -> list[FindingLocation]:
    """TCIA DICOM layout: the mask candidates are the files at the CSV's crop and ROI-mask paths, then every
    DICOM whose header names one of the two series (ROI masks first)."""
    tree = tcia.scan_tree(root)
    cases, _ = tcia.case_csv_paths(root, tree)
    headers, _ = tcia.scan_headers(root, tree.dicom_files)

    def series_files(uids: Sequence[str], listed_paths: Sequence[str]) -> list[str]:
        direct = tcia.direct_hits(root, tree.dicom_files, dict(enumerate(listed_paths)))
        listed = [item for uid in uids for item in headers.get(uid, [])]
        listed.sort(key=lambda item: item.description.strip().lower() != MASK_DESCRIPTION)
        return [hit.path for hit in direct.values()] + [str(item.path) for item in listed]

    return case_csv_locations(root, cases, series_files)


def case_csv_locations(
    root: Path,
    cases: Sequence[tuple[cbis.CaseCsv, Path]],
    series_files: Callable[[Sequence[str], Sequence[str]], list[str]],
) -> list[FindingLocation]:
    """One location per case-CSV finding, holding as mask candidates ``series_files(uids, listed paths)`` of
    its ROI-mask and crop paths (either may hold the mask: only reading tells, :func:`read_mask_box`)."""
    locations = []
    for case, path in cases:
        table = read_table(path, root, ("image file path",))
        for finding in cbis.read_case_csv(path, root, case):
            row = table.rows[finding.row - 2]
            listed = [row.get(column, "") for column in ("roi mask file path", "cropped image file path")]
            listed = [text for text in listed if text]
            uids = list(dict.fromkeys(uid for uid in map(cbis.series_uid, listed) if uid))
            candidates = list(dict.fromkeys(series_files(uids, listed)))
            reason = "" if candidates else f"no ROI mask or crop file found for series {uids or '(none)'}"
            locations.append(
                FindingLocation(
                    finding.image_id,
                    finding.finding_type,
                    finding.finding_id,
                    mask_paths=tuple(candidates),
                    reason=reason,
                )
            )
    return locations


def box_of_mask(mask: np.ndarray) -> Box | None:
    """The box of a ROI mask's foreground (pixels above half its range), or None when it is not a mask: not
    binary (a crop) or empty."""
    mask = np.asarray(mask, dtype=np.float32)
    high = float(mask.max())
    if high <= 0:
        return None
    grey = np.mean((mask > 0.1 * high) & (mask < 0.9 * high))
    if grey > MASK_GREY_FRACTION:
        return None
    rows = np.flatnonzero((mask > 0.5 * high).any(axis=1))
    columns = np.flatnonzero((mask > 0.5 * high).any(axis=0))
    return (int(rows[0]), int(columns[0]), int(rows[-1]) + 1, int(columns[-1]) + 1)


def read_mask_box(
    location: FindingLocation, image_shape: tuple[int, int]
) -> tuple[Box | None, tuple[int, int] | None, str]:
    """(box, frame, reason) of the first candidate file that is a ROI mask of the full image's aspect (a
    crop is smaller and not binary); reason says why none was."""
    seen = []
    for path in location.mask_paths:
        try:
            pixels = imaging.read_grayscale(Path(path)).pixels
        except imaging.ImageReadError as error:
            seen.append(f"{Path(path).name}: unreadable ({error})")
            continue
        aspect_full = image_shape[1] / image_shape[0]
        aspect = pixels.shape[1] / pixels.shape[0]
        if abs(aspect - aspect_full) > 0.02 * aspect_full or pixels.shape[0] < 0.5 * image_shape[0]:
            seen.append(f"{Path(path).name}: {pixels.shape[0]}x{pixels.shape[1]}, not the full image's frame")
            continue
        box = box_of_mask(pixels)
        if box is None:
            seen.append(f"{Path(path).name}: not a binary mask")
            continue
        return box, (int(pixels.shape[0]), int(pixels.shape[1])), ""
    return None, None, "no ROI mask among " + ("; ".join(seen) if seen else "no candidate file")


# ------------------------------------------------------------------------------------------------ mini-MIAS


def mias_locations(root: Path) -> list[FindingLocation]:
    """Centre and radius of each ``Info.txt`` finding line, as a box (rows counted from the top)."""
    path = find_in_folder(root, mias.INFO) or root / mias.INFO
    lines = path.read_text(encoding="latin-1").splitlines()
    locations = []
    for finding in mias.read_info(path, root):
        if finding.finding_type == NO_FINDING:
            continue
        tokens = lines[finding.row - 1].split("*")[0].split()
        if len(tokens) == 7:
            x, y, radius = (int(t) for t in tokens[4:])
            box = box_from_centre(MIAS_HEIGHT - y, x, radius)
            frame = (MIAS_HEIGHT, MIAS_HEIGHT)
            located = FindingLocation(
                finding.image_id, finding.finding_type, finding.finding_id, box=box, frame=frame
            )
        else:
            located = FindingLocation(
                finding.image_id,
                finding.finding_type,
                finding.finding_id,
                reason=f"{mias.INFO} line {finding.row} gives no centre and radius",
            )
        locations.append(located)
    return locations


# ---------------------------------------------------------------------------------------------- VinDr-Mammo


def vindr_locations(root: Path) -> list[FindingLocation]:
    """The box of each finding row of ``finding_annotations.csv`` (one per type it lists)."""
    findings, _ = vindr.read_findings(root)
    path = find_in_folder(root, vindr.FINDINGS) or root / vindr.FINDINGS
    table = read_table(path, root, vindr.FINDING_COLUMNS)
    locations = []
    for finding in findings:
        if finding.finding_type == NO_FINDING or finding.source != table.source:
            continue
        row = table.rows[finding.row - 2]
        try:
            xmin, ymin, xmax, ymax = (float(row.get(name, "")) for name in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            where = table.where(finding.row - 2)
            located = FindingLocation(
                finding.image_id,
                finding.finding_type,
                finding.finding_id,
                reason=f"{where}: no box xmin, ymin, xmax, ymax",
            )
        else:
            box = (math.floor(ymin), math.floor(xmin), math.ceil(ymax), math.ceil(xmax))
            located = FindingLocation(finding.image_id, finding.finding_type, finding.finding_id, box=box)
        locations.append(located)
    return locations


# ------------------------------------------------------------------------------------------------- INbreast

_POINT = re.compile(r"\(\s*([-\d.eE+]+)\s*,\s*([-\d.eE+]+)")


def inbreast_locations(root: Path) -> list[FindingLocation]:
    """Each ROI outline of each ``AllXML/<File Name>.xml``, numbered per finding type (``part``)."""
    findings = inbreast.load_inbreast(root).images
    locations = []
    for row in findings.itertuples():
        xml = root / inbreast.XMLS / f"{row.image_id}.xml"
        if not xml.is_file():
            continue
        document = plistlib.loads(xml.read_bytes())
        ids = dict(zip(row.finding_types.split(";"), row.finding_ids.split(";"), strict=True))
        parts: dict[str, int] = {}
        for image in document.get("Images", []):
            for roi in image.get("ROIs", []):
                name = str(roi.get("Name", "")).strip()
                finding_type = normalise_finding_type(name, f"{xml.name} ROI name") if name else ""
                if finding_type not in ids:
                    continue
                part = parts.get(finding_type, 0)
                parts[finding_type] = part + 1
                matches = [_POINT.match(str(point)) for point in roi.get("Point_px", [])]
                points = [(float(m.group(1)), float(m.group(2))) for m in matches if m]
                common = (row.image_id, finding_type, ids[finding_type], part)
                if points:
                    locations.append(FindingLocation(*common, box=box_of_points(points)))
                else:
                    reason = f"{xml.name}: ROI {part} ({name}) has no Point_px outline"
                    locations.append(FindingLocation(*common, reason=reason))
    return locations
