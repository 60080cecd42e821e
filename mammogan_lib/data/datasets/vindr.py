"""Layout ``vindr_mammo``: VinDr-Mammo (5,000 four-view full-field digital exams, PhysioNet 1.0.0).

As documented by its authors (Nguyen et al., "VinDr-Mammo: A large-scale benchmark dataset for
computer-aided diagnosis in full-field digital mammography", Scientific Data 10, 277 (2023),
https://www.nature.com/articles/s41597-023-02100-7; https://physionet.org/content/vindr-mammo/1.0.0/)::

    breast-level_annotations.csv   one row per image: study_id, series_id, image_id, laterality (L/R),
                                   view_position (CC/MLO), height, width, breast_birads ('BI-RADS 1'..'5'),
                                   breast_density ('DENSITY A'..'D'), split (training/test)
    finding_annotations.csv        one row per marked finding (and one 'No Finding' row per image without
                                   any): the image columns above plus finding_categories (a list string,
                                   e.g. "['Mass', 'Suspicious Calcification']"), finding_birads ('BI-RADS 3',
                                   empty for 'No Finding'), xmin, ymin, xmax, ymax
    images/<study_id>/<image_id>.dicom

Licence: PhysioNet Restricted Health Data License 1.5.0 (credentialed access; no re-identification, no
sharing of the data).

**No pathology.** VinDr-Mammo's labels are radiologists' BI-RADS assessments, not biopsy results: every
catalogue row has ``pathology`` '' and ``label_basis`` 'BI-RADS, not pathology'; a finding's BI-RADS is its
``assessments`` entry, the breast's is ``birads``. 01 selects such findings by ``birads_min``.

One finding per (row, category): a box marked "['Mass', 'Suspicious Calcification']" gives a mass and a
calcification with the same finding id (the box's number in the image). Categories become the catalogue's
finding types through the shared vocabulary (:func:`~mammogan_lib.core.vocabulary.normalise_finding_type`:
'Suspicious Calcification' -> calcification, 'Focal Asymmetry' -> focal_asymmetry, 'No Finding' -> none; a
category it does not list becomes a type of its own); every bad value is reported at once.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from mammogan_lib.core.vocabulary import (
    NO_FINDING,
    normalise_finding_type,
    normalise_laterality,
    normalise_view,
)
from mammogan_lib.data.datasets.catalogue import Finding, LoadedDataset, Problem, loaded
from mammogan_lib.data.datasets.label_basis import BIRADS_ONLY, birads_category
from mammogan_lib.data.datasets.tables import Table, find_in_folder, read_table, spreadsheet_row

LAYOUT = "vindr_mammo"
BREAST_LEVEL = "breast-level_annotations.csv"
FINDINGS = "finding_annotations.csv"
IMAGE_COLUMNS: tuple[str, ...] = (
    "study id",
    "image id",
    "laterality",
    "view position",
    "breast birads",
    "breast density",
    "split",
)
FINDING_COLUMNS: tuple[str, ...] = (*IMAGE_COLUMNS, "finding categories", "finding birads")
SPLITS: dict[str, str] = {"training": "train", "test": "test"}


def looks_like_vindr(root: Path) -> bool:
    """Both annotation CSVs in ``root``."""
    return find_in_folder(root, BREAST_LEVEL) is not None and find_in_folder(root, FINDINGS) is not None


def categories_of(text: str, where: str) -> list[str]:
    """ "['Mass', 'Suspicious Calcification']" -> ['mass', 'calcification'] (``ValueError`` names where)."""
    try:
        listed = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        listed = None
    if not isinstance(listed, list | tuple) or not listed or not all(isinstance(c, str) for c in listed):
        raise ValueError(f"{where}: {text!r} is not a list of categories like \"['Mass']\"")
    return [normalise_finding_type(category, where) for category in listed]


def _image_fields(table: Table, index: int, errors: list[str]) -> dict[str, str]:
    """The image-level values of one row of either CSV (bad ones appended to ``errors``)."""
    row = table.rows[index]
    fields = {"patient_id": row["study id"]}
    checks = (
        ("laterality", "laterality", normalise_laterality),
        ("view", "view position", normalise_view),
        ("birads", "breast birads", birads_category),
    )
    for name, column, normalise in checks:
        try:
            fields[name] = normalise(row[column], table.where(index, column))
        except ValueError as error:
            errors.append(str(error))
            fields[name] = ""
    split = row["split"].lower()
    if split not in SPLITS:
        errors.append(f"{table.where(index, 'split')}: {row['split']!r} is not 'training' or 'test'")
    fields["split"] = SPLITS.get(split, "")
    fields["breast_density"] = row["breast density"].upper().removeprefix("DENSITY").strip()
    return fields


def _listed_path(row: dict[str, str]) -> str:
    return f"images/{row['study id']}/{row['image id']}.dicom"


def read_findings(root: Path) -> tuple[list[Finding], list[Problem]]:
    """The findings of both CSVs; every image of either CSV is in the result, each with its file."""
    images = read_table(find_in_folder(root, BREAST_LEVEL) or root / BREAST_LEVEL, root, IMAGE_COLUMNS)
    marked = read_table(find_in_folder(root, FINDINGS) or root / FINDINGS, root, FINDING_COLUMNS)
    errors: list[str] = []
    findings: list[Finding] = []
    boxes: dict[str, int] = {}
    for index, row in enumerate(marked.rows):
        fields = _image_fields(marked, index, errors)
        try:
            types = categories_of(row["finding categories"], marked.where(index, "finding categories"))
            assessment = birads_category(row["finding birads"], marked.where(index, "finding birads"))
        except ValueError as error:
            errors.append(str(error))
            continue
        real = [t for t in types if t != NO_FINDING]
        if real:
            boxes[row["image id"]] = boxes.get(row["image id"], 0) + 1
        for finding_type in real or [NO_FINDING]:
            findings.append(
                Finding(
                    image_id=row["image id"],
                    source=marked.source,
                    row=spreadsheet_row(index),
                    listed_path=_listed_path(row),
                    pathology="",
                    finding_type=finding_type,
                    finding_id=str(boxes[row["image id"]]) if real else "",
                    assessment=assessment if real else "",
                    **fields,
                )
            )
    described = {f.image_id for f in findings}
    for index, row in enumerate(images.rows):
        fields = _image_fields(images, index, errors)
        if row["image id"] not in described:  # an image no finding row names: read as having none
            findings.append(
                Finding(
                    image_id=row["image id"],
                    source=images.source,
                    row=spreadsheet_row(index),
                    listed_path=_listed_path(row),
                    pathology="",
                    finding_type=NO_FINDING,
                    **fields,
                )
            )
    if errors:
        shown = "\n".join(f"- {error}" for error in errors[:50])
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        raise ValueError(f"{len(errors)} bad values in {BREAST_LEVEL} / {FINDINGS}:\n{shown}{more}")
    return attach_files(root, findings)


def attach_files(root: Path, findings: list[Finding]) -> tuple[list[Finding], list[Problem]]:
    """Each finding with its image's path; one problem per image whose ``.dicom`` file is missing."""
    attached, problems, reported = [], [], set()
    for finding in findings:
        path = root / finding.listed_path
        if path.is_file():
            attached.append(dataclasses.replace(finding, image_path=str(path)))
            continue
        attached.append(finding)
        if finding.image_id not in reported:
            reported.add(finding.image_id)
            reason = f"{finding.listed_path} not found"
            problems.append(
                Problem(finding.source, finding.row, finding.image_id, finding.listed_path, reason)
            )
    return attached, problems


def load_vindr_mammo(root: Path) -> LoadedDataset:
    """Load the VinDr-Mammo layout rooted at ``root`` (the folder holding the two annotation CSVs)."""
    findings, problems = read_findings(root)
    return loaded(findings, problems, LAYOUT, root, BIRADS_ONLY)
