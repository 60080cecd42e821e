"""Layout ``tcia_dicom``: the original CBIS-DDSM download from TCIA (DICOM files plus case CSVs).

The case-description CSVs may be anywhere under ``root`` (found by name, ignoring case and '-'/'_'/' ');
at least one is required, and each one absent is recorded as a problem. A case row's full mammogram is:

1. the ``.dcm`` file at the CSV's own path (``<case>/<StudyUID>/<SeriesUID>/000000.dcm``) below any folder
   of ``root`` -- trees whose folders are the UIDs -- without reading any header; else
2. the ``.dcm`` file whose header has the row's SeriesInstanceUID. Headers are read (no pixels) only when
   some row has no direct hit, and only for the files no direct hit used. A series with several files is
   resolved by SeriesDescription 'full mammogram images'; unreadable headers are recorded as problems.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mammogan_lib.data.datasets.catalogue import Finding, LoadedDataset, Problem, loaded
from mammogan_lib.data.datasets.cbis import (
    CASE_CSVS,
    CaseCsv,
    Resolution,
    attach_images,
    path_parts,
    read_case_csv,
    series_requests,
)
from mammogan_lib.data.datasets.tables import relative_name

LAYOUT = "tcia_dicom"
FULL_DESCRIPTION = "full mammogram images"
HEADER_TAGS: tuple[str, ...] = ("SeriesInstanceUID", "SeriesDescription")
_CASE_NAME = re.compile(r"(mass|calc)_case_description_(train|test)_set\.csv")
_SUFFIX_DEPTH = 4  # <case folder>/<StudyUID>/<SeriesUID>/<file>.dcm


@dataclass(frozen=True)
class Tree:
    """The files of a TCIA download that matter: its DICOMs and its case-description CSVs."""

    dicom_files: list[Path]
    case_csvs: dict[CaseCsv, list[Path]]


@dataclass(frozen=True)
class SeriesFile:
    """A DICOM file and what its header says."""

    path: Path
    description: str


def case_csv_of(name: str) -> CaseCsv | None:
    """The case CSV a file name denotes ('Mass-Case-Description-Train-Set.csv' too), or None."""
    match = _CASE_NAME.fullmatch(re.sub(r"[-\s]", "_", name.lower()))
    return CaseCsv(match.group(1), match.group(2)) if match else None


def is_dicom_name(name: str) -> bool:
    """True for ``*.dcm`` (any case): the only files the header scan opens."""
    return name.lower().endswith(".dcm")


def scan_tree(root: Path) -> Tree:
    """Walk ``root`` once (sorted, so results are reproducible), keeping .dcm files and case CSVs."""
    dicom_files: list[Path] = []
    case_csvs: dict[CaseCsv, list[Path]] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if is_dicom_name(name):
                dicom_files.append(Path(folder, name))
            elif (case := case_csv_of(name)) is not None:
                case_csvs.setdefault(case, []).append(Path(folder, name))
    return Tree(dicom_files, case_csvs)


def looks_like_tcia(root: Path) -> tuple[bool, bool]:
    """(has a case-description CSV, has a .dcm file) under ``root``; stops walking once both are seen."""
    has_csv = has_dicom = False
    for _, _, files in os.walk(root):
        has_csv = has_csv or any(case_csv_of(name) for name in files)
        has_dicom = has_dicom or any(is_dicom_name(name) for name in files)
        if has_csv and has_dicom:
            break
    return has_csv, has_dicom


def case_csv_paths(root: Path, tree: Tree) -> tuple[list[tuple[CaseCsv, Path]], list[Problem]]:
    """The case CSVs present, and a problem for each absent one; none present or a duplicate raises."""
    if not tree.case_csvs:
        names = ", ".join(case.name for case in CASE_CSVS)
        raise FileNotFoundError(f"no case-description CSV under {root}; expected at least one of {names}")
    found, problems = [], []
    for case in CASE_CSVS:
        paths = tree.case_csvs.get(case, [])
        if len(paths) > 1:
            listed = ", ".join(relative_name(p, root) for p in paths)
            raise ValueError(f"{case.name} appears {len(paths)} times under {root} ({listed}); keep only one")
        if paths:
            found.append((case, paths[0]))
        else:
            reason = f"{case.name} not found under {root}; its findings are not in the catalogue"
            problems.append(Problem(case.name, "", "", "", reason))
    return found, problems


def direct_hits(root: Path, files: list[Path], requests: Mapping[str, str]) -> dict[str, Resolution]:
    """Series whose CSV path exists as is below some folder of ``root`` (folders named by UID)."""
    by_suffix = {tuple(path.relative_to(root).parts[-_SUFFIX_DEPTH:]): path for path in files}
    hits = {}
    for uid, listed in requests.items():
        path = by_suffix.get(tuple(path_parts(listed)[-_SUFFIX_DEPTH:]))
        if path is not None:
            hits[uid] = Resolution(path=str(path))
    return hits


def read_header(path: Path) -> tuple[str, SeriesFile] | str:
    """``(SeriesInstanceUID, file)`` from the header alone, or why the header could not be used."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(HEADER_TAGS))
    except (InvalidDicomError, OSError, EOFError, ValueError, struct.error) as error:
        return f"could not read DICOM header: {type(error).__name__}: {error}"
    uid = str(header.get("SeriesInstanceUID", "") or "").strip()
    if not uid:
        return "DICOM header has no SeriesInstanceUID"
    return uid, SeriesFile(path, str(header.get("SeriesDescription", "") or "").strip())


def scan_headers(root: Path, files: list[Path]) -> tuple[dict[str, list[SeriesFile]], list[Problem]]:
    """SeriesInstanceUID -> its files, from the headers of ``files``; unreadable ones become problems."""
    series: dict[str, list[SeriesFile]] = {}
    problems = []
    for path in files:
        result = read_header(path)
        if isinstance(result, str):
            problems.append(Problem(relative_name(path, root), "", "", str(path), result))
            continue
        uid, series_file = result
        series.setdefault(uid, []).append(series_file)
    return series, problems


def resolve_from_headers(
    root: Path, uid: str, series: Mapping[str, list[SeriesFile]], scanned: int
) -> Resolution:
    """The one file of series ``uid``, or the one described as the full mammogram when there are several."""
    files = series.get(uid, [])
    if not files:
        return Resolution(
            reason=f"image file path series {uid} matches no DICOM under the root: no file at the CSV's path "
            f"and no header with that SeriesInstanceUID among {scanned} .dcm files read"
        )
    full = [f for f in files if f.description.lower() == FULL_DESCRIPTION]
    if len(files) == 1 or len(full) == 1:
        return Resolution(path=str((full or files)[0].path))
    listed = ", ".join(
        f"{relative_name(f.path, root)} ({f.description or 'no SeriesDescription'})" for f in files
    )
    return Resolution(
        reason=f"series {uid} has {len(files)} DICOM files ({listed}) and not exactly one is "
        f"SeriesDescription {FULL_DESCRIPTION!r}"
    )


def resolve_all(
    root: Path, files: list[Path], requests: Mapping[str, str]
) -> tuple[dict[str, Resolution], list[Problem]]:
    """Resolve every requested series: direct path hits first, then (only if needed) header reads."""
    resolutions = direct_hits(root, files, requests)
    missing = [uid for uid in requests if uid not in resolutions]
    if not missing:
        return resolutions, []
    used = {Path(r.path) for r in resolutions.values()}
    remaining = [path for path in files if path not in used]
    series, problems = scan_headers(root, remaining)
    for uid in missing:
        resolutions[uid] = resolve_from_headers(root, uid, series, len(remaining))
    return resolutions, problems


def read_findings(root: Path, tree: Tree) -> tuple[list[Finding], list[Problem]]:
    """The findings of every case CSV present, and a problem for each one absent."""
    found, problems = case_csv_paths(root, tree)
    findings = [finding for case, path in found for finding in read_case_csv(path, root, case)]
    return findings, problems


def load_tcia_dicom(root: Path) -> LoadedDataset:
    """Load the TCIA DICOM layout rooted at ``root``."""
    tree = scan_tree(root)
    findings, csv_problems = read_findings(root, tree)
    resolutions, header_problems = resolve_all(root, tree.dicom_files, series_requests(findings))
    findings, image_problems = attach_images(findings, resolutions)
    return loaded(findings, [*csv_problems, *image_problems, *header_problems], LAYOUT, root)
