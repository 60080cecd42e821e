"""Layout ``kaggle_jpeg``: the Kaggle JPEG copy of CBIS-DDSM.

``root/csv/`` holds ``dicom_info.csv`` and the four case-description CSVs; ``root/jpeg/<SeriesUID>/``
holds the series' JPEGs (a full-mammogram series one image, a crop/ROI-mask series two). A case row's full
image is found by its SeriesInstanceUID:

1. the ``dicom_info.csv`` row(s) of that SeriesInstanceUID name the file (``CBIS-DDSM/jpeg/<uid>/1-204.jpg``
   -> ``root/jpeg/<uid>/1-204.jpg``); SeriesDescription only breaks ties between several rows;
2. otherwise (no row, or its file is missing) ``root/jpeg/<uid>/`` is used if it holds exactly one image;
3. otherwise the image is not found: catalogue row with ``image_path`` '' and a problem per case row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mammogan_lib.data.datasets.catalogue import LoadedDataset, loaded
from mammogan_lib.data.datasets.cbis import (
    CASE_CSVS,
    Resolution,
    attach_images,
    path_parts,
    read_case_csv,
    series_requests,
)
from mammogan_lib.data.datasets.tables import find_in_folder, read_table

LAYOUT = "kaggle_jpeg"
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
DICOM_INFO = "dicom_info.csv"
FULL_DESCRIPTION = "full mammogram images"


@dataclass(frozen=True)
class NamedImage:
    """A file that dicom_info.csv lists for a series."""

    path: Path  # where it is under root
    listed: str  # dicom_info's image_path
    description: str  # dicom_info's SeriesDescription ('' when empty or absent)


def jpeg_path(root: Path, listed: str) -> Path:
    """``CBIS-DDSM/jpeg/<uid>/1-1.jpg`` or ``jpeg/<uid>/1-1.jpg`` -> ``root/jpeg/<uid>/1-1.jpg``."""
    parts = path_parts(listed)
    lowered = [part.lower() for part in parts]
    if "jpeg" in lowered:
        parts = parts[lowered.index("jpeg") :]
    return root.joinpath(*parts)


def read_dicom_info(root: Path) -> dict[str, list[NamedImage]]:
    """SeriesInstanceUID -> the files dicom_info.csv lists for it."""
    path = find_in_folder(root / "csv", DICOM_INFO) or root / "csv" / DICOM_INFO
    table = read_table(path, root, ("image path", "seriesinstanceuid"))
    named: dict[str, list[NamedImage]] = {}
    for row in table.rows:
        if row["seriesinstanceuid"] and row["image path"]:
            image = NamedImage(
                jpeg_path(root, row["image path"]), row["image path"], row.get("seriesdescription", "")
            )
            named.setdefault(row["seriesinstanceuid"], []).append(image)
    return named


def folder_images(root: Path, uid: str) -> list[Path]:
    """The images in ``root/jpeg/<uid>/`` (none when the folder does not exist)."""
    folder = root / "jpeg" / uid
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def pick_named(named: list[NamedImage]) -> NamedImage | None:
    """The one listed file of a series; with several rows, the one described as a full mammogram."""
    if len(named) == 1:
        return named[0]
    full = [image for image in named if image.description.strip().lower() == FULL_DESCRIPTION]
    return full[0] if len(full) == 1 else None


def _not_found_reason(
    uid: str, named: list[NamedImage], chosen: NamedImage | None, images: list[Path]
) -> str:
    held = f"jpeg/{uid}/ holds {len(images)} images ({', '.join(p.name for p in images)})" if images else ""
    if not named:
        if images:
            return (
                f"{held} and csv/{DICOM_INFO} has no row for series {uid} to tell which is the full mammogram"
            )
        return f"image file path series {uid} matches no JPEG under jpeg/ and no dicom_info row"
    folder = held or f"jpeg/{uid}/ holds no image"
    if chosen is None:
        listed = ", ".join(f"{n.listed} ({n.description or 'no SeriesDescription'})" for n in named)
        return (
            f"csv/{DICOM_INFO} has {len(named)} rows for series {uid} ({listed}) and not exactly one "
            f"says {FULL_DESCRIPTION!r}; {folder}"
        )
    return f"csv/{DICOM_INFO} names {chosen.listed} for series {uid} but {chosen.path} is missing; {folder}"


def resolve_series(root: Path, uid: str, named: list[NamedImage]) -> Resolution:
    """The full mammogram of series ``uid`` (see the module docstring for the rules)."""
    chosen = pick_named(named) if named else None
    if chosen is not None and chosen.path.is_file():
        return Resolution(path=str(chosen.path))
    images = folder_images(root, uid)
    if len(images) == 1:
        return Resolution(path=str(images[0]))
    return Resolution(reason=_not_found_reason(uid, named, chosen, images))


def resolve_all(
    root: Path, requests: Mapping[str, str], named: Mapping[str, list[NamedImage]]
) -> dict[str, Resolution]:
    """Resolve every requested SeriesInstanceUID."""
    return {uid: resolve_series(root, uid, named.get(uid, [])) for uid in requests}


def case_csv_paths(root: Path) -> list[Path]:
    """The four case-description CSVs in ``root/csv/`` (names matched ignoring case); all are required."""
    paths = []
    for case in CASE_CSVS:
        path = find_in_folder(root / "csv", case.name)
        if path is None:
            raise FileNotFoundError(
                f"required CSV csv/{case.name} not found in {root / 'csv'} (the Kaggle JPEG layout has "
                f"csv/{DICOM_INFO} and the four {{mass,calc}}_case_description_{{train,test}}_set.csv)"
            )
        paths.append(path)
    return paths


def load_kaggle_jpeg(root: Path) -> LoadedDataset:
    """Load the Kaggle JPEG layout rooted at ``root`` (the folder holding ``csv/`` and ``jpeg/``)."""
    named = read_dicom_info(root)
    findings = [
        f
        for case, path in zip(CASE_CSVS, case_csv_paths(root), strict=True)
        for f in read_case_csv(path, root, case)
    ]
    resolutions = resolve_all(root, series_requests(findings), named)
    findings, problems = attach_images(findings, resolutions)
    return loaded(findings, problems, LAYOUT, root)
