"""01_filter: select the malignant mass/calcification full mammograms and keep well-captured breasts.

Every image of the dataset ends up in ``manifest.csv`` with ``kept`` and a ``reason``; ``reason_code`` is
one of :data:`REASON_CODES`, so the counts at each step add up to the number of images read. Images whose
findings are of other types (architectural distortion, asymmetry, ...) stay in the manifest as
``not_selected``, their reason naming the type, unless ``abnormalities`` names it.

Where a dataset's labels are BI-RADS assessments only (``label_basis`` 'BI-RADS, not pathology': VinDr-Mammo,
INbreast) there is no pathology to select on: a finding is selected by its BI-RADS category
(``birads_min``) instead, and the selection's description says so in every reason and table.

Pre-cut crops (layout ``roi_patches``) have no breast outline: their shape is not scored. Each selected crop
is read (an unreadable one is recorded as such) and kept with ``shape_scoring`` :data:`SHAPE_NOT_APPLICABLE`
and no shape confidence, never as having passed the threshold; ``step_counts`` counts them
(``kept_shape_not_applicable``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mammogan_lib.core.vocabulary import ANY_FINDING_TYPE, ANY_PATHOLOGY, NOT_GIVEN
from mammogan_lib.data import breast, imaging
from mammogan_lib.data.conditioning import SELECTED_TYPES_COLUMN, join_types
from mammogan_lib.data.datasets import folder, roi
from mammogan_lib.data.datasets.catalogue import FILE_PROBLEM_CODES, file_problems, types_label
from mammogan_lib.data.datasets.label_basis import BIRADS_ONLY

REASON_CODES = (
    "kept",
    *FILE_PROBLEM_CODES,  # image_not_found, empty_file, not_an_image: found by the dataset's loader
    "not_selected",
    "unreadable",
    "low_shape_confidence",
)
SCORE_COLUMNS = ("shape_confidence", "closure", "solidity", "dominance", "area", "chest_wall_side")
SCORED = "scored"
SHAPE_NOT_APPLICABLE = "not applicable (pre-cut crops)"
UNSCORED_LAYOUTS: tuple[str, ...] = (roi.LAYOUT,)  # no breast outline to score


@dataclass(frozen=True)
class ImageScore:
    """Shape confidence of one image, or the reason it could not be scored."""

    image_id: str
    shape_confidence: float = float("nan")
    closure: float = float("nan")
    solidity: float = float("nan")
    dominance: float = float("nan")
    area: float = float("nan")
    chest_wall_side: str = ""
    error: str = ""
    error_code: str = ""  # 'unreadable', or the file's problem (empty_file, not_an_image, image_not_found)


def read_failure(image_id: str, path: Path, error: Exception) -> ImageScore:
    """The score of an image that could not be read: the error, coded by what is wrong with the file."""
    code, _ = folder.file_problem(path)
    return ImageScore(image_id, error=str(error), error_code=code or "unreadable")


def scores_shape(layout: str) -> bool:
    """Whether 01 scores the breast shape of a layout's images (pre-cut crops have no outline)."""
    return layout not in UNSCORED_LAYOUTS


def scorer(layout: str) -> Callable[[tuple[str, str, int]], ImageScore]:
    """What 01 runs on each selected image of a layout: :func:`score_image`, or :func:`check_readable`."""
    return score_image if scores_shape(layout) else check_readable


def check_readable(task: tuple[str, str, int]) -> ImageScore:
    """Read ``(image_id, path, score_height)`` without scoring it: no score, or the read error."""
    image_id, path, score_height = task
    try:
        imaging.read_grayscale(Path(path), max_height=score_height)
    except imaging.ImageReadError as error:
        return read_failure(image_id, Path(path), error)
    return ImageScore(image_id)


def score_image(task: tuple[str, str, int]) -> ImageScore:
    """Score ``(image_id, path, score_height)``; a read error is returned, not raised (see parallel.py)."""
    image_id, path, score_height = task
    try:
        loaded = imaging.read_grayscale(Path(path), max_height=score_height)
    except imaging.ImageReadError as error:
        return read_failure(image_id, Path(path), error)
    segmentation = breast.segment_breast(loaded.pixels)
    shape = breast.shape_confidence(segmentation)
    return ImageScore(
        image_id,
        shape_confidence=shape.score,
        closure=shape.closure,
        solidity=shape.solidity,
        dominance=shape.dominance,
        area=shape.area,
        chest_wall_side=segmentation.chest_wall_side,
    )


@dataclass(frozen=True)
class Finding:
    """One finding of a catalogue row: its type, pathology and BI-RADS category ('' where not given)."""

    type: str
    pathology: str
    birads: str


@dataclass(frozen=True)
class Selection:
    """What 01 selects: findings of ``pathology`` (or, on BI-RADS-only data, of BI-RADS >= ``birads_min``)
    whose type is among ``abnormalities`` (:data:`ANY_FINDING_TYPE`: every type)."""

    pathology: str
    abnormalities: tuple[str, ...]
    birads_min: int = 4

    def wants_type(self, finding_type: str) -> bool:
        return ANY_FINDING_TYPE in self.abnormalities or finding_type in self.abnormalities

    def wants_label(self, finding: Finding, label_basis: str) -> bool:
        if label_basis == BIRADS_ONLY:
            return finding.birads.isdigit() and int(finding.birads) >= self.birads_min
        if self.pathology == ANY_PATHOLOGY:
            return finding.pathology not in ("", "NORMAL")
        return finding.pathology == self.pathology

    def label(self, label_basis: str) -> str:
        """'MALIGNANT', 'any-pathology', or 'BI-RADS >= 4' on BI-RADS-only data."""
        if label_basis == BIRADS_ONLY:
            return f"BI-RADS >= {self.birads_min}"
        return "any-pathology" if self.pathology == ANY_PATHOLOGY else self.pathology

    def describe(self, label_bases: Iterable[str]) -> str:
        """What 01 looks for, as its reasons and tables say it: 'MALIGNANT mass/calcification', 'any-pathology
        mass' (every pathology but NORMAL), or for BI-RADS-only data 'BI-RADS >= 4 mass/calcification
        (BI-RADS, not pathology)'."""
        types = "/".join(self.abnormalities)
        if BIRADS_ONLY in set(label_bases):
            return f"BI-RADS >= {self.birads_min} {types} ({BIRADS_ONLY})"
        return f"{self.label('')} {types}"


def image_findings(row: pd.Series) -> list[Finding]:
    """The findings of a catalogue row, from its aligned ';'-joined columns."""
    count = int(row["n_findings"])
    if not count:
        return []

    def entries(column: str) -> list[str]:  # a column left empty stands for '' for every finding
        values = str(row[column]).split(";") if row[column] else []
        return [*values, *[""] * (count - len(values))][:count]

    columns = ("finding_types", "finding_pathologies", "assessments")
    return [Finding(*values) for values in zip(*(entries(c) for c in columns), strict=True)]


def wanted_types(row: pd.Series, selection: Selection) -> list[str]:
    """The types of the findings of a catalogue row that ``selection`` wants (one per type)."""
    basis = row.get("label_basis", "")
    wanted = [
        f.type
        for f in image_findings(row)
        if selection.wants_type(f.type) and selection.wants_label(f, basis)
    ]
    return list(dict.fromkeys(wanted))


def selection_mask(images: pd.DataFrame, selection: Selection) -> pd.Series:
    """True for images with at least one finding ``selection`` wants.

    Uses the aligned ';'-joined finding columns, so an image with a benign mass and a malignant
    calcification is selected for ``['calcification']`` but not ``['mass']``.
    """

    def has_wanted_finding(row: pd.Series) -> bool:
        return bool(wanted_types(row, selection))

    if images.empty:
        return pd.Series([], dtype=bool)
    return images.apply(has_wanted_finding, axis=1).astype(bool)


def require_selection(selected: pd.Series, images: pd.DataFrame, describe_selection: str, root: Path) -> None:
    """An empty selection is an error: say what was looked for and what the dataset holds."""
    if not selected.any():
        held = images.groupby(["pathology", "abnormality"]).size().to_dict() if len(images) else {}
        raise ValueError(
            f"no image in {root} has a {describe_selection} finding ({len(images)} images read; "
            f"by pathology and abnormality: {held}). Check `pathology` (`birads_min` for BI-RADS-only data), "
            "`abnormalities` and `dataset_root`."
        )


def missing_types(images: pd.DataFrame, abnormalities: Iterable[str]) -> list[str]:
    """The types of ``abnormalities`` that no finding of ``images`` has (a misspelt parameter, or a
    dataset without them)."""
    present = {t for types in images["finding_types"] for t in str(types).split(";")}
    return [t for t in abnormalities if t not in present and t != ANY_FINDING_TYPE]


def not_selected_reason(row: pd.Series, selection: Selection) -> str:
    """Why a catalogue row was not selected: 'no finding (pathology NORMAL)', 'no MALIGNANT finding;
    findings: BENIGN mass', 'no BI-RADS >= 4 finding; findings: BI-RADS 3 mass', or 'abnormality
    architectural_distortion not selected (abnormalities: mass, calcification); findings: MALIGNANT
    architectural_distortion'."""
    findings = image_findings(row)
    if not findings:
        return f"no finding (pathology {row['pathology'] or 'not given'})"
    basis = row.get("label_basis", "")
    birads_only = basis == BIRADS_ONLY

    def shown(f: Finding) -> str:
        label = f"BI-RADS {f.birads or '?'}" if birads_only else f.pathology or "(pathology not given)"
        return f"{label} {f.type or '(type not given)'}"

    listed = ", ".join(shown(f) for f in findings)
    other_types = [
        f.type for f in findings if selection.wants_label(f, basis) and not selection.wants_type(f.type)
    ]
    if not other_types:
        return f"no {selection.label(basis)} finding; findings: {listed}"
    label = types_label(other_types)
    if NOT_GIVEN in other_types:
        label = "+".join(filter(None, [label, "(type not given)"]))
    wanted = ", ".join(selection.abnormalities)
    return f"abnormality {label} not selected (abnormalities: {wanted}); findings: {listed}"


def build_manifest(
    images: pd.DataFrame,
    selected: pd.Series,
    scores: list[ImageScore],
    threshold: float,
    selection: Selection,
    shape_scored: bool = True,
    problems: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per catalogue image: its catalogue columns, shape scores, ``shape_scoring`` (:data:`SCORED`,
    :data:`SHAPE_NOT_APPLICABLE` for the read crops of a layout whose shape is not scored, '' where no image
    was read), ``selected_types`` (the types of the findings it was selected for, '+'-joined; '' if not
    selected), ``kept``, ``reason_code``, ``reason`` (``selected`` is :func:`selection_mask` of
    ``selection``; ``shape_scored`` is :func:`scores_shape` of the layout)."""
    score_table = pd.DataFrame(
        [dataclasses.asdict(s) for s in scores], columns=["image_id", *SCORE_COLUMNS, "error", "error_code"]
    )
    manifest = images.merge(score_table, on="image_id", how="left")
    manifest["chest_wall_side"] = manifest["chest_wall_side"].fillna("")
    manifest["error"] = manifest["error"].fillna("")
    manifest["error_code"] = manifest["error_code"].fillna("")
    manifest["selected"] = selected.to_numpy()
    # what conditional training labels each image with (mammogan_lib.data.conditioning)
    manifest[SELECTED_TYPES_COLUMN] = [
        join_types(wanted_types(row, selection)) if row["selected"] else "" for _, row in manifest.iterrows()
    ]
    unusable = file_problems(problems) if problems is not None else {}
    decisions = [_reason(row, threshold, selection, shape_scored, unusable) for _, row in manifest.iterrows()]
    manifest["reason_code"] = [code for code, _ in decisions]
    manifest["reason"] = [reason for _, reason in decisions]
    manifest["kept"] = manifest["reason_code"] == "kept"
    read = manifest["reason_code"].isin(["kept", "low_shape_confidence"])
    manifest["shape_scoring"] = np.where(read, SCORED if shape_scored else SHAPE_NOT_APPLICABLE, "")
    return manifest.drop(columns=["error", "error_code"])


def _reason(
    row: pd.Series,
    threshold: float,
    selection: Selection,
    shape_scored: bool,
    unusable: dict[str, tuple[str, str]],
) -> tuple[str, str]:
    if not row["image_path"]:
        code, reason = unusable.get(
            row["image_id"], ("image_not_found", "no image file found for this image")
        )
        return code, f"{reason} (see problems.csv)"
    if not row["selected"]:
        return "not_selected", not_selected_reason(row, selection)
    if row["error"]:
        return row["error_code"] or "unreadable", row["error"]
    if not shape_scored:
        return "kept", f"kept without a shape score: shape confidence {SHAPE_NOT_APPLICABLE}"
    score = row["shape_confidence"]
    if not score >= threshold:
        return "low_shape_confidence", f"shape confidence {score:.3f} < {threshold}"
    return "kept", f"shape confidence {score:.3f} >= {threshold}"


def step_counts(manifest: pd.DataFrame) -> dict[str, int]:
    """Images remaining after each step (like the thesis's 1,570 -> 500), how many of the kept ones had no
    shape score to pass (pre-cut crops), and the rejections by reason."""
    codes = manifest["reason_code"].value_counts()
    total = len(manifest)
    found = total - int(codes.get("image_not_found", 0))
    usable = found - int(codes.get("empty_file", 0)) - int(codes.get("not_an_image", 0))
    selected = usable - int(codes.get("not_selected", 0))
    readable = selected - int(codes.get("unreadable", 0))
    counts = {
        "images_in_dataset": total,
        "image_file_found": found,
        "image_file_usable": usable,
        "selected": selected,
        "readable": readable,
        "kept": int(codes.get("kept", 0)),
        "kept_shape_not_applicable": int((manifest["shape_scoring"] == SHAPE_NOT_APPLICABLE).sum()),
    }
    counts.update({f"rejected_{code}": int(codes.get(code, 0)) for code in REASON_CODES if code != "kept"})
    return counts


def scoring_tasks(images: pd.DataFrame, selected: pd.Series, score_height: int) -> list[tuple[str, str, int]]:
    """The images worth scoring: selected ones whose file exists."""
    wanted = images[selected.to_numpy() & (images["image_path"] != "")]
    return [(row.image_id, row.image_path, score_height) for row in wanted.itertuples()]
