"""Layout ``roi_patches``: pre-cut region-of-interest crops (around lesions, and of tissue without one) and a
``labels.csv`` saying which is which.

Many public mammography sets are shared this way, e.g. a folder ``lesion/*.png`` + ``healthy/*.png`` cut from
CBIS-DDSM. The layout is an image folder (:mod:`~mammogan_lib.data.datasets.folder`, whose checks it
reuses) whose ``labels.csv`` has one more column:

* **marker**: ``labels.csv`` with the image-folder columns ``file, pathology, abnormality, laterality,
  view`` *and* ``kind``. Its values are ``lesion`` or ``healthy`` (any case). A ``kind`` column is what tells
  this layout from an image folder; ``dataset_layout: image_folder`` reads such a folder as an image folder
  instead (``kind`` ignored).
* ``lesion`` rows are findings (pathology MALIGNANT, BENIGN, ...; ``abnormality`` their type); ``healthy``
  rows are crops without a lesion (pathology NORMAL, ``abnormality`` none or empty). A ``kind`` that
  contradicts its row's pathology is a bad value.
* ``patient_id`` (optional, as in an image folder): the crops of one woman -- the CC and MLO views of one
  mass, the healthy crops of her breasts -- stay on one side of 02's held-out split. Absent or empty, each
  file is its own patient (01 says how many are).
* Other columns (``mass_shape``, ``birads``, ``sha256``, ...) are ignored.

Bad values are reported as for an image folder: one :class:`~.tables.BadLabelsError` listing every one, with
its file, column, rows and what is accepted. A file that does not exist or cannot be read is a problem.

A crop has no breast outline, chest wall or background, so the stages treat it as it is: 01 scores no
breast shape (every selected lesion crop is kept, its shape confidence recorded as not applicable), 02
extracts no breast and flips nothing (each crop is mapped to [-1, 1] and resized), and 06 takes the healthy
crops as its same-source non-tumour set (:func:`healthy_crops`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mammogan_lib.core.vocabulary import BadValueError, normalise_pathology
from mammogan_lib.data.datasets import folder
from mammogan_lib.data.datasets.catalogue import LoadedDataset, loaded
from mammogan_lib.data.datasets.label_basis import AS_LABELLED
from mammogan_lib.data.datasets.tables import (
    BadValues,
    Table,
    find_in_folder,
    normalise_column,
    read_table,
)

LAYOUT = "roi_patches"
LABELS = folder.LABELS
KIND_COLUMN = "kind"
LESION, HEALTHY = "lesion", "healthy"
KIND_EXPECTED = (
    "'lesion' (a crop around a finding) or 'healthy' (tissue without one), any case; a 'kind' column makes "
    "labels.csv a roi_patches layout (dataset_layout: image_folder reads the folder without it)"
)


def looks_like_roi_patches(root: Path) -> bool:
    """Whether ``root`` holds a ``labels.csv`` with the image-folder columns and a ``kind`` column (its header
    is all that is read)."""
    labels = find_in_folder(Path(root), LABELS)
    if labels is None:
        return False
    try:
        header = pd.read_csv(labels, nrows=0, dtype=str, encoding="utf-8-sig").columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return False  # the image-folder loader reports what is wrong with it
    names = {normalise_column(name) for name in header}
    return {*folder.LABEL_COLUMNS, KIND_COLUMN} <= names


def normalise_kind(value: str, where: str, pathology: str) -> str:
    """'Lesion' -> 'lesion', 'HEALTHY' -> 'healthy', checked against the row's pathology ('' when that was
    bad: only the value is checked)."""
    kind = " ".join(str(value).lower().split())
    if kind not in (LESION, HEALTHY):
        problem = "is empty" if not kind else "is not a known kind"
        raise BadValueError(where, value, problem, KIND_EXPECTED)
    if pathology and (kind == HEALTHY) != (pathology == "NORMAL"):
        raise BadValueError(
            where,
            value,
            f"contradicts pathology {pathology}",
            "'healthy' when pathology is NORMAL, 'lesion' otherwise",
        )
    return kind


def _row_pathology(table: Table, index: int) -> str:
    """The row's pathology, '' when it is bad (the image-folder checks record that)."""
    try:
        return normalise_pathology(table.rows[index]["pathology"], "")
    except BadValueError:
        return ""


def load_roi_patches(root: Path) -> LoadedDataset:
    """Load the roi-patches layout rooted at ``root`` (the folder holding ``labels.csv``): one catalogue row
    per crop, lesion crops with their finding, healthy crops pathology NORMAL with none."""
    path = find_in_folder(root, LABELS) or root / LABELS
    table = read_table(path, root, (*folder.LABEL_COLUMNS, KIND_COLUMN))
    bad = BadValues()
    findings = []
    for index in range(len(table.rows)):
        row = folder.row_findings(table, index, bad)
        kind = bad.check(table, index, KIND_COLUMN, normalise_kind, _row_pathology(table, index))
        if kind is not None:
            findings += row
    bad.raise_if_any()
    findings, problems = folder.attach_files(root, folder.number_findings(findings))
    problems += folder.unlisted_files(root, [finding.listed_path for finding in findings])
    return loaded(findings, problems, LAYOUT, root, AS_LABELLED)


def healthy_crops(root: Path) -> pd.DataFrame:
    """The healthy crops of the roi-patches dataset at ``root``: ``image_id`` (the file relative to root),
    ``path`` (where it should be, found or not: 06 records an unreadable one as skipped, with its reason)
    and ``patient_id`` ('' where not given)."""
    root = Path(root)
    images = load_roi_patches(root).images
    healthy = images[images["pathology"] == "NORMAL"]
    return pd.DataFrame(
        {
            "image_id": healthy["image_id"].to_numpy(),
            "path": [str(root / image_id) for image_id in healthy["image_id"]],
            "patient_id": healthy["patient_id"].to_numpy(),
        }
    )
