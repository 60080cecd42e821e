"""The standard catalogue every layout is turned into: one row per full mammogram, its findings as columns.

Loaders produce one :class:`Finding` per label row (a CBIS-DDSM case-description row, or a ``labels.csv``
row) with the image it belongs to already resolved; :func:`build_catalogue` groups them per image. The
per-finding ';'-joined columns ``finding_ids``, ``finding_types``, ``finding_pathologies``,
``assessments``, ``subtleties`` and ``source_csvs`` are aligned (the i-th entries describe the same
finding); ``mass_shapes``/``mass_margins`` list the mass findings and ``calc_types``/``calc_distributions``
the calcification findings, in the same order. Findings are ordered mass, calcification, then the other
types alphabetically (:func:`~.values.finding_type_order`), then by finding id; ``abnormality`` lists every
type an image has in that order (``mass+architectural_distortion``). ``birads`` is the image's (breast's)
own BI-RADS category where the dataset gives one, and ``label_basis`` what the labels rest on: a biopsy, a
BI-RADS reading, ... (:mod:`mammogan_lib.data.datasets.label_basis`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mammogan_lib.core.config import DATASET_LAYOUTS
from mammogan_lib.core.vocabulary import NO_FINDING, NOT_GIVEN, finding_type_order, most_severe
from mammogan_lib.data.datasets.label_basis import BIOPSY_PATHOLOGY

LAYOUTS: tuple[str, ...] = DATASET_LAYOUTS

CATALOGUE_COLUMNS: tuple[str, ...] = (
    "image_id",
    "image_path",
    "patient_id",
    "laterality",
    "view",
    "split",
    "pathology",
    "abnormality",
    "n_findings",
    "n_malignant",
    "malignant_abnormalities",
    "finding_ids",
    "finding_types",
    "finding_pathologies",
    "assessments",
    "subtleties",
    "breast_density",
    "mass_shapes",
    "mass_margins",
    "calc_types",
    "calc_distributions",
    "source_csvs",
    "birads",
    "label_basis",
)
PROBLEM_COLUMNS: tuple[str, ...] = ("source", "row", "image_id", "path", "reason", "code")
# Why an image's file cannot be used (the image stays in the catalogue with image_path ''): 01 rejects the
# image with the same code.
IMAGE_NOT_FOUND = "image_not_found"
EMPTY_FILE = "empty_file"
NOT_AN_IMAGE = "not_an_image"
FILE_PROBLEM_CODES: tuple[str, ...] = (IMAGE_NOT_FOUND, EMPTY_FILE, NOT_AN_IMAGE)
UNLISTED_FILE = "unlisted_file"  # an image file that no label row names: not in the catalogue
CONFLICTING_LABELS = "conflicting_labels"  # findings of one image disagree; the first value is kept
ROW_NOT_USED = "row_not_used"  # any other label row, table or file that could not be resolved
# Image-level values every finding repeats; findings that disagree are reported as problems.
_IMAGE_FIELDS: tuple[str, ...] = ("patient_id", "laterality", "view", "split")


@dataclass(frozen=True)
class Finding:
    """One label row: a finding (or, with ``finding_type`` 'none', the statement that there is none)."""

    image_id: str
    source: str  # the label file, relative to the dataset root
    row: int  # its row as a spreadsheet shows it (header = row 1)
    listed_path: str  # the image as the label file names it
    pathology: str  # MALIGNANT | BENIGN | BENIGN_WITHOUT_CALLBACK | NORMAL | "" (none known: BI-RADS only)
    finding_type: str  # canonical type ('mass', 'architectural_distortion', ...) | 'none' | '' (not given)
    image_path: str = ""  # absolute path of the resolved image, '' if not found
    patient_id: str = ""
    laterality: str = ""
    view: str = ""
    split: str = ""
    finding_id: str = ""
    assessment: str = ""  # the finding's BI-RADS assessment category (CBIS-DDSM, VinDr-Mammo, INbreast)
    subtlety: str = ""
    breast_density: str = ""
    mass_shape: str = ""
    mass_margins: str = ""
    calc_type: str = ""
    calc_distribution: str = ""
    birads: str = ""  # the image's (breast's) own BI-RADS category, where the dataset gives one


@dataclass(frozen=True)
class Problem:
    """A label row, image or file that could not be resolved, and why."""

    source: str
    row: int | str  # spreadsheet row of ``source``, or '' when the problem is not about one row
    image_id: str
    path: str
    reason: str
    code: str = ""  # one of FILE_PROBLEM_CODES, UNLISTED_FILE, CONFLICTING_LABELS, ROW_NOT_USED


@dataclass(frozen=True)
class LoadedDataset:
    """A dataset in the standard form, whatever its layout.

    ``images`` has one row per full mammogram (columns :data:`CATALOGUE_COLUMNS`); an image whose file was
    not found or cannot be used has ``image_path`` '' and at least one row in ``problems`` with the same
    ``image_id`` and a code of :data:`FILE_PROBLEM_CODES`. ``problems`` (columns :data:`PROBLEM_COLUMNS`)
    lists everything that could not be resolved, each with its ``code``.
    """

    images: pd.DataFrame
    problems: pd.DataFrame
    layout: str
    root: Path


def problems_frame(problems: Iterable[Problem]) -> pd.DataFrame:
    """Problems as a DataFrame with :data:`PROBLEM_COLUMNS` (``row`` is object: ints and '')."""
    records = [dataclasses.asdict(problem) for problem in problems]
    frame = pd.DataFrame(records, columns=list(PROBLEM_COLUMNS))
    return frame.astype({"row": object})


def finding_sort_key(finding: Finding) -> tuple[int, int, str, str, int]:
    """Mass, calcification, the other types alphabetically, then numeric finding id, source file and row."""
    number = int(finding.finding_id) if finding.finding_id.isdigit() else 10**9
    return (finding_type_order(finding.finding_type), number, finding.finding_id, finding.source, finding.row)


def group_findings(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    """Findings per image id, each list in :func:`finding_sort_key` order."""
    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.image_id, []).append(finding)
    return {image_id: sorted(group, key=finding_sort_key) for image_id, group in groups.items()}


def _joined(values: Iterable[str]) -> str:
    return ";".join(values)


def types_label(types: Iterable[str]) -> str:
    """Every distinct finding type, '+'-joined in :func:`finding_type_order` ('mass+calcification',
    'mass+architectural_distortion+asymmetry'); types not given ('') are left out."""
    present = {t for t in types if t != NOT_GIVEN}
    return "+".join(sorted(present, key=finding_type_order))


def _distinct(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def image_pathology(group: list[Finding]) -> str:
    """The most severe pathology of the findings that state one; '' when none does (BI-RADS-only data)."""
    known = [f.pathology for f in group if f.pathology]
    return most_severe(known) if known else ""


def image_row(group: list[Finding]) -> dict[str, object]:
    """The catalogue row of one image from its findings (sorted, all with the same ``image_id``)."""
    real = [f for f in group if f.finding_type != NO_FINDING]
    masses = [f for f in real if f.finding_type == "mass"]
    calcs = [f for f in real if f.finding_type == "calcification"]
    malignant = [f for f in real if f.pathology == "MALIGNANT"]
    abnormality = types_label(f.finding_type for f in real) if real else NO_FINDING
    row: dict[str, object] = {
        "image_id": group[0].image_id,
        "image_path": next((f.image_path for f in group if f.image_path), ""),
        **{name: next(iter(_distinct(getattr(f, name) for f in group)), "") for name in _IMAGE_FIELDS},
        "pathology": image_pathology(group),
        "abnormality": abnormality,
        "n_findings": len(real),
        "n_malignant": len(malignant),
        "malignant_abnormalities": types_label(f.finding_type for f in malignant),
        "finding_ids": _joined(f.finding_id for f in real),
        "finding_types": _joined(f.finding_type for f in real),
        "finding_pathologies": _joined(f.pathology for f in real),
        "assessments": _joined(f.assessment for f in real),
        "subtleties": _joined(f.subtlety for f in real),
        "breast_density": _joined(_distinct(f.breast_density for f in group)),
        "mass_shapes": _joined(f.mass_shape for f in masses),
        "mass_margins": _joined(f.mass_margins for f in masses),
        "calc_types": _joined(f.calc_type for f in calcs),
        "calc_distributions": _joined(f.calc_distribution for f in calcs),
        "source_csvs": _joined(Path(f.source).name for f in real),
        "birads": _joined(_distinct(f.birads for f in group)),
    }
    return row


def disagreements(group: list[Finding]) -> list[Problem]:
    """A problem for each image-level field on which the findings of one image disagree."""
    problems = []
    for name in _IMAGE_FIELDS:
        values = _distinct(getattr(f, name) for f in group)
        if len(values) > 1:
            where = "; ".join(f"{f.source} row {f.row}: {getattr(f, name)!r}" for f in group)
            problems.append(
                Problem(
                    group[0].source,
                    "",
                    group[0].image_id,
                    group[0].listed_path,
                    f"findings of this image disagree on {name} ({where}); kept {values[0]!r}",
                    CONFLICTING_LABELS,
                )
            )
    return problems


def build_catalogue(findings: Iterable[Finding]) -> tuple[pd.DataFrame, list[Problem]]:
    """Group findings per image into the catalogue (sorted by patient, laterality, view, image id)."""
    groups = group_findings(findings)
    rows = [image_row(group) for group in groups.values()]
    problems = [problem for group in groups.values() for problem in disagreements(group)]
    images = pd.DataFrame(rows, columns=list(CATALOGUE_COLUMNS))
    images = images.astype({"n_findings": "int64", "n_malignant": "int64"})
    images = images.sort_values(["patient_id", "laterality", "view", "image_id"], kind="stable")
    return images.reset_index(drop=True), problems


def loaded(
    findings: list[Finding],
    problems: list[Problem],
    layout: str,
    root: Path,
    label_basis: str = BIOPSY_PATHOLOGY,
) -> LoadedDataset:
    """Assemble a :class:`LoadedDataset`: the catalogue plus every problem met on the way; every image's
    ``label_basis`` says what its labels rest on (:mod:`~mammogan_lib.data.datasets.label_basis`).

    A problem its loader gave no code is about a file that was not found when its image has no path (the
    loaders of the distributed layouts only look for files), else :data:`ROW_NOT_USED`."""
    images, conflicts = build_catalogue(findings)
    images["label_basis"] = label_basis
    pathless = set(images.loc[images["image_path"] == "", "image_id"])
    coded = [
        problem
        if problem.code
        else dataclasses.replace(
            problem, code=IMAGE_NOT_FOUND if problem.image_id in pathless else ROW_NOT_USED
        )
        for problem in [*problems, *conflicts]
    ]
    return LoadedDataset(images=images, problems=problems_frame(coded), layout=layout, root=root)


def file_problems(problems: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """``image_id -> (code, reason)`` of the first file problem of each image whose file cannot be used."""
    files = problems[problems["code"].isin(FILE_PROBLEM_CODES) & (problems["image_id"] != "")]
    first = files.drop_duplicates("image_id")
    return dict(zip(first["image_id"], zip(first["code"], first["reason"], strict=True), strict=True))


def problems_summary(problems: pd.DataFrame, images: pd.DataFrame) -> str:
    """One line for the terminal: how many images cannot be used, by code (the counts 01's manifest rejects
    them with), unlisted files with the first names, and other problems; '' when there is none."""
    parts = []
    pathless = images[images["image_path"] == ""]
    if len(pathless):
        codes = {image_id: code for image_id, (code, _) in file_problems(problems).items()}
        by_code = pathless["image_id"].map(lambda i: codes.get(i, IMAGE_NOT_FOUND)).value_counts()
        listed = ", ".join(f"{code} {by_code[code]:,}" for code in FILE_PROBLEM_CODES if code in by_code)
        parts.append(f"{len(pathless):,} of {len(images):,} images cannot be used ({listed})")
    unlisted = problems[problems["code"] == UNLISTED_FILE]
    if len(unlisted):
        first = ", ".join(Path(path).name for path in unlisted["path"].head(3))
        more = ", ..." if len(unlisted) > 3 else ""
        parts.append(f"{len(unlisted):,} image files are listed by no label row and left out ({first}{more})")
    other = len(problems) - int(problems["code"].isin([*FILE_PROBLEM_CODES, UNLISTED_FILE]).sum())
    if other:
        parts.append(f"{other:,} other label rows or tables could not be used in full")
    return "; ".join(parts) + ("; each recorded with its reason in problems.csv" if parts else "")


def patient_note(images: pd.DataFrame) -> str:
    """What the held-out split can do for images without a patient id ('' when every image has one)."""
    missing = int((images["patient_id"].astype(str) == "").sum())
    if not missing:
        return ""
    return (
        f"{missing:,} of {len(images):,} images have no patient_id: each is its own patient, so 02's "
        "held-out split cannot keep their other views (or other crops) on the same side"
    )
