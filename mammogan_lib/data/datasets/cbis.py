"""CBIS-DDSM case-description CSVs, shared by the Kaggle JPEG and TCIA DICOM layouts.

Each row of ``{mass,calc}_case_description_{train,test}_set.csv`` is one finding; its full mammogram is the
series whose SeriesInstanceUID is the folder holding the file of ``image file path``
(``Mass-Training_P_00001_LEFT_CC/<StudyUID>/<SeriesUID>/000000.dcm``, sometimes newline-terminated). The
layouts differ only in how a SeriesInstanceUID is turned into an image file (a *resolver*).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mammogan_lib.core.vocabulary import (
    normalise_abnormality,
    normalise_laterality,
    normalise_pathology,
    normalise_view,
)
from mammogan_lib.data.datasets.catalogue import Finding, Problem
from mammogan_lib.data.datasets.tables import BadValues, Table, read_table, spreadsheet_row


@dataclass(frozen=True)
class CaseCsv:
    """One of the four case-description CSVs."""

    kind: str  # 'mass' | 'calc'
    split: str  # 'train' | 'test'

    @property
    def name(self) -> str:
        """The file name, e.g. ``mass_case_description_train_set.csv``."""
        return f"{self.kind}_case_description_{self.split}_set.csv"


CASE_CSVS: tuple[CaseCsv, ...] = tuple(CaseCsv(k, s) for k in ("mass", "calc") for s in ("train", "test"))
COMMON_COLUMNS: tuple[str, ...] = (
    "patient id",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "pathology",
    "assessment",
    "subtlety",
    "image file path",
    "breast density",
)
KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "mass": ("mass shape", "mass margins"),
    "calc": ("calc type", "calc distribution"),
}
_KIND_TYPE = {"mass": "mass", "calc": "calcification"}


@dataclass(frozen=True)
class Resolution:
    """Where a series' full mammogram is: ``path`` (absolute), or '' and the ``reason`` it was not found."""

    path: str = ""
    reason: str = ""


def path_parts(listed_path: str) -> list[str]:
    """The components of a CSV path ('\\' or '/' separated; surrounding whitespace and newline ignored)."""
    return [part for part in listed_path.strip().replace("\\", "/").split("/") if part]


def series_uid(listed_path: str) -> str:
    """The SeriesInstanceUID of ``.../<SeriesUID>/<file>.dcm`` ('' when the path does not look like that)."""
    parts = path_parts(listed_path)
    if len(parts) < 3 or not parts[-1].lower().endswith(".dcm"):
        return ""
    return parts[-2]


def _image_id(listed_path: str, table: Table, index: int) -> str:
    """The series UID, else the path itself, else '<csv> row <n>' (so a broken row is still one image)."""
    return series_uid(listed_path) or listed_path or table.where(index)


def _finding(table: Table, index: int, case: CaseCsv, bad: BadValues) -> Finding | None:
    """The finding of one row, or None when a value is bad (recorded in ``bad``)."""
    row = table.rows[index]
    listed = row["image file path"]
    types = bad.check(table, index, "abnormality type", normalise_abnormality)
    pathology = bad.check(table, index, "pathology", normalise_pathology)
    laterality = bad.check(table, index, "left or right breast", normalise_laterality)
    view = bad.check(table, index, "image view", normalise_view)
    if types is None or pathology is None or laterality is None or view is None:
        return None
    finding_type = types[0] if len(types) == 1 and types[0] else _KIND_TYPE[case.kind]
    return Finding(
        image_id=_image_id(listed, table, index),
        source=table.source,
        row=spreadsheet_row(index),
        listed_path=listed,
        pathology=pathology,
        finding_type=finding_type,
        patient_id=row["patient id"],
        laterality=laterality,
        view=view,
        split=case.split,
        finding_id=row["abnormality id"],
        assessment=row["assessment"],
        subtlety=row["subtlety"],
        breast_density=row["breast density"],
        mass_shape=row.get("mass shape", ""),
        mass_margins=row.get("mass margins", ""),
        calc_type=row.get("calc type", ""),
        calc_distribution=row.get("calc distribution", ""),
    )


def read_case_csv(path: Path, root: Path, case: CaseCsv) -> list[Finding]:
    """The findings of one case-description CSV (image paths not yet resolved); its bad values raise one
    :class:`~.tables.BadLabelsError` listing them all."""
    table = read_table(path, root, (*COMMON_COLUMNS, *KIND_COLUMNS[case.kind]))
    bad = BadValues()
    findings = [_finding(table, index, case, bad) for index in range(len(table.rows))]
    bad.raise_if_any()
    return [finding for finding in findings if finding is not None]


def series_requests(findings: list[Finding]) -> dict[str, str]:
    """SeriesInstanceUID -> the first CSV path naming it, for the findings whose path holds a UID."""
    requests: dict[str, str] = {}
    for finding in findings:
        uid = series_uid(finding.listed_path)
        if uid:
            requests.setdefault(uid, finding.listed_path)
    return requests


def attach_images(
    findings: list[Finding], resolutions: Mapping[str, Resolution]
) -> tuple[list[Finding], list[Problem]]:
    """Give each finding its image path; each finding whose image was not found also yields a problem."""
    attached, problems = [], []
    for finding in findings:
        resolution = resolutions.get(finding.image_id) if series_uid(finding.listed_path) else None
        if resolution is not None and resolution.path:
            attached.append(dataclasses.replace(finding, image_path=resolution.path))
            continue
        attached.append(finding)
        reason = (
            resolution.reason
            if resolution is not None
            else (f"image file path {finding.listed_path!r} does not end in <SeriesInstanceUID>/<file>.dcm")
        )
        problems.append(Problem(finding.source, finding.row, finding.image_id, finding.listed_path, reason))
    return attached, problems
