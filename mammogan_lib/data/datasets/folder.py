"""Layout ``image_folder``: any folder of images described by ``root/labels.csv``.

``labels.csv`` needs the columns ``file`` (path relative to ``root``), ``pathology``, ``abnormality``,
``laterality`` and ``view`` (values may be empty except ``file`` and ``pathology``); an optional
``patient_id`` column says which images are one woman's, so that 02's held-out split keeps them on one side
(absent or empty: each image is its own patient). Other columns are ignored. A row is one finding; several
rows naming the same file are several findings of one image.
Values are normalised (see :mod:`mammogan_lib.core.vocabulary`): ``abnormality`` takes any finding type
written as words ('Architectural distortion', 'calcs', 'mass+calc'), each kept as a type of its own; an
empty ``abnormality`` means 'none' for a NORMAL row and "type not given" ('') otherwise. Images may be any
format OpenCV reads (PNG, JPEG, PGM, TIFF, ...) or ``.dcm``. A file that does not exist, is empty or is no
image OpenCV can read gives a catalogue row with ``image_path`` '' and a problem coded ``image_not_found``,
``empty_file`` or ``not_an_image``; an image file in the folder that no row names is a problem
``unlisted_file``. Bad values (unknown pathology, a
type that is not words, NORMAL with a finding, ...) raise one :class:`~.tables.BadLabelsError` listing all
of them, after the whole file has been read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from mammogan_lib.core.vocabulary import (
    NO_FINDING,
    NOT_GIVEN,
    BadValueError,
    normalise_abnormality,
    normalise_laterality,
    normalise_pathology,
    normalise_view,
)
from mammogan_lib.data.datasets.catalogue import (
    EMPTY_FILE,
    IMAGE_NOT_FOUND,
    NOT_AN_IMAGE,
    UNLISTED_FILE,
    Finding,
    LoadedDataset,
    Problem,
    loaded,
)
from mammogan_lib.data.datasets.label_basis import AS_LABELLED
from mammogan_lib.data.datasets.tables import BadValues, Table, find_in_folder, read_table, spreadsheet_row

LAYOUT = "image_folder"
LABELS = "labels.csv"
LABEL_COLUMNS: tuple[str, ...] = ("file", "pathology", "abnormality", "laterality", "view")
PATIENT_COLUMN = "patient id"  # optional; ``patient_id`` as written (see tables.normalise_column)
DICOM_SUFFIX = ".dcm"
# what a dataset folder's image files are named (for the files no label row names)
IMAGE_SUFFIXES = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jp2",
        ".tif",
        ".tiff",
        ".bmp",
        ".dib",
        ".pgm",
        ".pbm",
        ".ppm",
        ".pnm",
        ".webp",
        ".exr",
        ".hdr",
        ".pic",
        ".sr",
        ".ras",
        DICOM_SUFFIX,
    }
)


def image_id_of(listed: str) -> str:
    """The image id: the file's path relative to root, in POSIX form ('./a\\b.png' -> 'a/b.png')."""
    return PurePosixPath(listed.replace("\\", "/")).as_posix()


def file_problem(path: Path) -> tuple[str, str]:
    """``('', '')`` when ``path`` is a file OpenCV (or pydicom, for .dcm) can read, else its problem code
    (:data:`~.catalogue.FILE_PROBLEM_CODES`) and why."""
    if not path.exists():
        return IMAGE_NOT_FOUND, f"file {path} does not exist"
    if not path.is_file():
        return IMAGE_NOT_FOUND, f"{path} is not a file"
    if path.stat().st_size == 0:
        return EMPTY_FILE, f"{path} is empty (0 bytes)"
    if path.suffix.lower() == DICOM_SUFFIX:
        return "", ""
    import cv2

    if not cv2.haveImageReader(str(path)):
        return NOT_AN_IMAGE, (
            f"{path.name} is not an image OpenCV can read (its first bytes are no image format's signature; "
            "expected an image format OpenCV reads, or a .dcm file)"
        )
    return "", ""


def unlisted_files(root: Path, listed: Iterable[str], labels: str = "labels.csv") -> list[Problem]:
    """A problem for each image file under ``root`` that no label row names (they are not in the
    catalogue): files with an image suffix OpenCV or pydicom reads, hidden folders left out."""
    named = {image_id_of(name) for name in listed}
    found = [
        path
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    ]
    return [
        Problem(
            relative,
            "",
            "",
            str(path),
            f"{relative} is in the dataset folder but no row of {labels} names it: not in the catalogue",
            UNLISTED_FILE,
        )
        for path in found
        if (relative := path.relative_to(root).as_posix()) not in named
    ]


def finding_types(value: str, where: str, pathology: str) -> list[str]:
    """The finding types of an ``abnormality`` cell, checked against the row's pathology: a NORMAL row has
    'none' (or nothing), any other row a finding (or nothing: type not given). With ``pathology`` '' (it
    was bad) only the types are checked."""
    types = normalise_abnormality(value, where)
    if not pathology:
        return types
    if pathology == "NORMAL":
        if types not in ([NO_FINDING], [NOT_GIVEN]):
            raise BadValueError(
                where, value, "contradicts pathology NORMAL", "'none' or empty when pathology is NORMAL"
            )
        return [NO_FINDING]
    if types == [NO_FINDING]:
        raise BadValueError(
            where,
            value,
            f"contradicts pathology {pathology}",
            "a finding type (or empty: not given) when pathology is not NORMAL",
        )
    return types


def not_empty(value: str, where: str) -> str:
    """``value`` itself; an empty ``file`` cell is a bad value."""
    if not value:
        raise BadValueError(where, value, "is empty", "an image path relative to the dataset folder")
    return value


def row_findings(table: Table, index: int, bad: BadValues) -> list[Finding]:
    """The findings of one ``labels.csv`` row (image path not yet resolved, finding ids not yet numbered);
    none when a value is bad (recorded in ``bad``)."""
    listed = bad.check(table, index, "file", not_empty)
    pathology = bad.check(table, index, "pathology", normalise_pathology)
    laterality = bad.check(table, index, "laterality", normalise_laterality)
    view = bad.check(table, index, "view", normalise_view)
    types = bad.check(table, index, "abnormality", finding_types, pathology or "")
    if None in (listed, pathology, laterality, view, types):
        return []
    common = {"image_id": image_id_of(listed), "source": table.source, "row": spreadsheet_row(index)}
    return [
        Finding(
            **common,
            listed_path=listed,
            pathology=pathology,
            finding_type=finding_type,
            patient_id=table.rows[index].get(PATIENT_COLUMN, ""),
            laterality=laterality,
            view=view,
        )
        for finding_type in types
    ]


def number_findings(findings: list[Finding]) -> list[Finding]:
    """Finding ids 1, 2, ... per image in row order ('' for 'none' rows)."""
    counts: dict[str, int] = {}
    numbered = []
    for finding in findings:
        if finding.finding_type == NO_FINDING:
            numbered.append(finding)
            continue
        counts[finding.image_id] = counts.get(finding.image_id, 0) + 1
        numbered.append(dataclasses.replace(finding, finding_id=str(counts[finding.image_id])))
    return numbered


def attach_files(root: Path, findings: list[Finding]) -> tuple[list[Finding], list[Problem]]:
    """Give each finding its file's absolute path, or '' and a problem (one per row) when unusable."""
    reasons: dict[str, tuple[str, str]] = {}
    reported: set[int] = set()
    attached, problems = [], []
    for finding in findings:
        path = root / finding.listed_path
        if finding.image_id not in reasons:
            reasons[finding.image_id] = file_problem(path)
        code, reason = reasons[finding.image_id]
        if code:
            attached.append(finding)
            if finding.row not in reported:  # a 'mass+calcification' row is two findings but one problem
                reported.add(finding.row)
                problems.append(
                    Problem(finding.source, finding.row, finding.image_id, finding.listed_path, reason, code)
                )
        else:
            attached.append(dataclasses.replace(finding, image_path=str(path.absolute())))
    return attached, problems


def load_image_folder(root: Path) -> LoadedDataset:
    """Load the image-folder layout rooted at ``root`` (the folder holding ``labels.csv``)."""
    table = read_table(find_in_folder(root, LABELS) or root / LABELS, root, LABEL_COLUMNS)
    bad = BadValues()
    findings = [f for index in range(len(table.rows)) for f in row_findings(table, index, bad)]
    bad.raise_if_any()
    findings = number_findings(findings)
    findings, problems = attach_files(root, findings)
    problems += unlisted_files(root, [finding.listed_path for finding in findings])
    return loaded(findings, problems, LAYOUT, root, AS_LABELLED)
