"""Layout ``rsna_screening``: the RSNA Screening Mammography Breast Cancer Detection set (Kaggle, 2022).

As documented by RSNA (https://github.com/RSNA/AI-Challenge-Data/wiki/RSNA-Screening-Mammography-Breast-Cancer-Detection,
and the competition's data page https://www.kaggle.com/competitions/rsna-breast-cancer-detection/data)::

    train.csv                                  one row per image: site_id, patient_id, image_id, laterality
                                               (L/R), view (CC, MLO; a few ML/LM/AT/...), age, cancer (0/1),
                                               biopsy, invasive, BIRADS (0/1/2, train only), implant, density
                                               (A-D), machine_id, difficult_negative_case
    train_images/<patient_id>/<image_id>.dcm   the mammograms; many in JPEG 2000 or JPEG lossless syntax
    test.csv, test_images/                     no labels (only a few rows are public)

Licence: non-commercial research and education only, no attempt to identify or contact individuals (RSNA's
terms on the page above; Kaggle competition rules). Only ``train.csv`` has labels, so only its images are
catalogued; a ``test.csv`` present is recorded as a problem saying so.

Each image is one label: ``cancer == 1`` a MALIGNANT finding of type '' (RSNA does not say mass or
calcification: select it with ``abnormalities: [any]``); ``cancer == 0`` with ``biopsy == 1`` a BENIGN
finding of type ''; ``cancer == 0`` otherwise NORMAL, no finding. The catalogue's image id is
``<patient_id>/<image_id>``; an image whose ``.dcm`` is absent is looked for as ``.png``/``.jpg`` (converted
copies keep the folder layout), else it is a problem. :func:`non_cancer_images` gives 06 the
``cancer == 0`` images as the other-source non-tumour set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mammogan_lib.core.vocabulary import NO_FINDING, normalise_laterality
from mammogan_lib.data.datasets.catalogue import Finding, LoadedDataset, Problem, loaded
from mammogan_lib.data.datasets.label_basis import RSNA_CANCER, birads_category
from mammogan_lib.data.datasets.tables import Table, find_in_folder, read_table, spreadsheet_row

LAYOUT = "rsna_screening"
LABELS = "train.csv"
IMAGES = "train_images"
UNLABELLED = "test.csv"
REQUIRED_COLUMNS: tuple[str, ...] = ("patient id", "image id", "laterality", "view", "cancer")
IMAGE_SUFFIXES: tuple[str, ...] = (".dcm", ".png", ".jpg", ".jpeg")
NON_TUMOUR_RULE = "cancer == 0"
_FLAGS = {"0": False, "1": True, "0.0": False, "1.0": True}
# RSNA's views beyond the screening pair keep their own names (ML, LM, AT, LMO, XCCL, ...)
_VIEWS = {"cc": "CC", "mlo": "MLO"}


def looks_like_rsna(root: Path) -> bool:
    """``train.csv`` with RSNA's own columns next to ``train_images/``."""
    labels = find_in_folder(root, LABELS)
    if labels is None or not (root / IMAGES).is_dir():
        return False
    with labels.open(encoding="utf-8-sig") as handle:
        header = handle.readline().lower()
    return all(column in header for column in ("patient_id", "image_id", "cancer", "machine_id"))


def _flag(table: Table, index: int, column: str, errors: list[str]) -> bool:
    value = table.rows[index].get(column, "")
    if value == "" and column != "cancer":
        return False
    if value not in _FLAGS:
        errors.append(f"{table.where(index, column)}: {value!r} is not 0 or 1")
        return False
    return _FLAGS[value]


def image_file(root: Path, patient_id: str, image_id: str) -> Path | None:
    """``train_images/<patient_id>/<image_id>.dcm`` (or a converted .png/.jpg of it), None when absent."""
    folder = root / IMAGES / patient_id
    for suffix in IMAGE_SUFFIXES:
        path = folder / f"{image_id}{suffix}"
        if path.is_file():
            return path
    return None


def _finding(root: Path, table: Table, index: int, errors: list[str]) -> Finding:
    row = table.rows[index]
    patient, image = row["patient id"], row["image id"]
    for column, value in (("patient id", patient), ("image id", image)):
        if not value:
            errors.append(f"{table.where(index, column)} is empty; expected RSNA's numeric id")
    cancer = _flag(table, index, "cancer", errors)
    biopsy = _flag(table, index, "biopsy", errors)
    try:
        laterality = normalise_laterality(row["laterality"], table.where(index, "laterality"))
    except ValueError as error:
        errors.append(str(error))
        laterality = ""
    try:
        birads = birads_category(row.get("birads", ""), table.where(index, "BIRADS"))
    except ValueError as error:
        errors.append(str(error))
        birads = ""
    view = row["view"].strip()
    pathology = "MALIGNANT" if cancer else ("BENIGN" if biopsy else "NORMAL")
    listed = f"{IMAGES}/{patient}/{image}.dcm"
    path = image_file(root, patient, image)
    return Finding(
        image_id=f"{patient}/{image}",
        source=table.source,
        row=spreadsheet_row(index),
        listed_path=listed,
        pathology=pathology,
        finding_type="" if pathology != "NORMAL" else NO_FINDING,
        image_path=str(path) if path else "",
        patient_id=patient,
        laterality=laterality,
        view=_VIEWS.get(view.lower(), view.upper()),
        finding_id="1" if pathology != "NORMAL" else "",
        breast_density=row.get("density", ""),
        birads=birads,
    )


def read_findings(root: Path) -> tuple[list[Finding], list[Problem]]:
    """One finding per ``train.csv`` row; every bad value of the file is reported in one ``ValueError``."""
    table = read_table(find_in_folder(root, LABELS) or root / LABELS, root, REQUIRED_COLUMNS)
    errors: list[str] = []
    findings = [_finding(root, table, index, errors) for index in range(len(table.rows))]
    if errors:
        shown = "\n".join(f"- {error}" for error in errors[:50])
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        raise ValueError(f"{table.source}: {len(errors)} bad values:\n{shown}{more}")
    problems = [
        Problem(f.source, f.row, f.image_id, f.listed_path, f"{f.listed_path} not found (nor as .png/.jpg)")
        for f in findings
        if not f.image_path
    ]
    unlabelled = find_in_folder(root, UNLABELLED)
    if unlabelled is not None:
        reason = f"{unlabelled.name} has no cancer labels: its images are not in the catalogue"
        problems.append(Problem(unlabelled.name, "", "", "", reason))
    return findings, problems


def load_rsna_screening(root: Path) -> LoadedDataset:
    """Load the RSNA screening layout rooted at ``root`` (the folder holding ``train.csv``)."""
    findings, problems = read_findings(root)
    return loaded(findings, problems, LAYOUT, root, RSNA_CANCER)


@dataclass(frozen=True)
class NonTumourSelection:
    """The images of an RSNA root that 06 may use as non-tumours, and how they were chosen."""

    files: list[Path]
    note: str


def non_cancer_images(root: Path) -> NonTumourSelection:
    """The ``cancer == 0`` images of ``train.csv`` whose file exists, with a note of the counts and rule."""
    findings, _ = read_findings(root)
    chosen = [f for f in findings if f.pathology != "MALIGNANT"]
    files = [Path(f.image_path) for f in chosen if f.image_path]
    note = (
        f"RSNA screening layout ({LABELS}): {len(files)} images with {NON_TUMOUR_RULE} of {len(findings)} "
        f"listed ({len(findings) - len(chosen)} with cancer == 1 left out, {len(chosen) - len(files)} "
        "with cancer == 0 not found)"
    )
    return NonTumourSelection(files, note)
