"""01_filter: select the malignant mass/calcification full mammograms and keep well-captured breasts.

Every image of the dataset ends up in ``manifest.csv`` with ``kept`` and a ``reason``; ``reason_code`` is
one of :data:`REASON_CODES`, so the counts at each step add up to the number of images read. Images whose
findings are of other types (architectural distortion, asymmetry, ...) stay in the manifest as
``not_selected``, their reason naming the type, unless ``abnormalities`` names it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mammogan_lib import breast, imaging
from mammogan_lib.datasets.catalogue import types_label
from mammogan_lib.datasets.values import NOT_GIVEN

REASON_CODES = ("kept", "image_not_found", "not_selected", "unreadable", "low_shape_confidence")
SCORE_COLUMNS = ("shape_confidence", "closure", "solidity", "dominance", "area", "chest_wall_side")


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


def score_image(task: tuple[str, str, int]) -> ImageScore:
    """Score ``(image_id, path, score_height)``; a read error is returned, not raised (see parallel.py)."""
    image_id, path, score_height = task
    try:
        loaded = imaging.read_grayscale(Path(path), max_height=score_height)
    except imaging.ImageReadError as error:
        return ImageScore(image_id, error=str(error))
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


def describe_selection(pathology: str, abnormalities: list[str]) -> str:
    """'MALIGNANT mass/calcification'."""
    return f"{pathology} {'/'.join(abnormalities)}"


def image_findings(row: pd.Series) -> list[tuple[str, str]]:
    """(type, pathology) of each finding of a catalogue row, from its aligned ';'-joined columns."""
    types = str(row["finding_types"]).split(";")
    pathologies = str(row["finding_pathologies"]).split(";")
    return [(t, p) for t, p in zip(types, pathologies, strict=False) if p]


def selection_mask(images: pd.DataFrame, pathology: str, abnormalities: list[str]) -> pd.Series:
    """True for images with at least one finding of ``pathology`` among ``abnormalities``.

    Uses the aligned ';'-joined ``finding_types`` / ``finding_pathologies`` columns, so an image with a
    benign mass and a malignant calcification is selected for ``['calcification']`` but not ``['mass']``.
    """

    def has_wanted_finding(row: pd.Series) -> bool:
        return any(t in abnormalities and p == pathology for t, p in image_findings(row))

    if images.empty:
        return pd.Series([], dtype=bool)
    return images.apply(has_wanted_finding, axis=1).astype(bool)


def require_selection(selected: pd.Series, images: pd.DataFrame, describe_selection: str, root: Path) -> None:
    """An empty selection is an error: say what was looked for and what the dataset holds."""
    if not selected.any():
        held = images.groupby(["pathology", "abnormality"]).size().to_dict() if len(images) else {}
        raise ValueError(
            f"no image in {root} has a {describe_selection} finding ({len(images)} images read; "
            f"by pathology and abnormality: {held}). Check `pathology`, `abnormalities` and `dataset_root`."
        )


def missing_types(images: pd.DataFrame, abnormalities: list[str]) -> list[str]:
    """The types of ``abnormalities`` that no finding of ``images`` has (a misspelt parameter, or a
    dataset without them)."""
    present = {t for types in images["finding_types"] for t in str(types).split(";")}
    return [t for t in abnormalities if t not in present]


def not_selected_reason(row: pd.Series, pathology: str, abnormalities: list[str]) -> str:
    """Why a catalogue row was not selected: 'no finding (pathology NORMAL)', 'no MALIGNANT finding;
    findings: BENIGN mass', or 'abnormality architectural_distortion not selected (abnormalities: mass,
    calcification); findings: MALIGNANT architectural_distortion'."""
    findings = image_findings(row)
    if not findings:
        return f"no finding (pathology {row['pathology']})"
    listed = ", ".join(f"{p} {t or '(type not given)'}" for t, p in findings)
    other_types = [t for t, p in findings if p == pathology and t not in abnormalities]
    if not other_types:
        return f"no {pathology} finding; findings: {listed}"
    label = types_label(other_types)
    if NOT_GIVEN in other_types:
        label = "+".join(filter(None, [label, "(type not given)"]))
    return f"abnormality {label} not selected (abnormalities: {', '.join(abnormalities)}); findings: {listed}"


def build_manifest(
    images: pd.DataFrame,
    selected: pd.Series,
    scores: list[ImageScore],
    threshold: float,
    pathology: str,
    abnormalities: list[str],
) -> pd.DataFrame:
    """One row per catalogue image: its catalogue columns, shape scores, ``kept``, ``reason_code``,
    ``reason`` (``selected`` is :func:`selection_mask` of ``pathology`` and ``abnormalities``)."""
    score_table = pd.DataFrame(
        [dataclasses.asdict(s) for s in scores], columns=["image_id", *SCORE_COLUMNS, "error"]
    )
    manifest = images.merge(score_table, on="image_id", how="left")
    manifest["chest_wall_side"] = manifest["chest_wall_side"].fillna("")
    manifest["error"] = manifest["error"].fillna("")
    manifest["selected"] = selected.to_numpy()
    decisions = [_reason(row, threshold, pathology, abnormalities) for _, row in manifest.iterrows()]
    manifest["reason_code"] = [code for code, _ in decisions]
    manifest["reason"] = [reason for _, reason in decisions]
    manifest["kept"] = manifest["reason_code"] == "kept"
    return manifest.drop(columns=["error"])


def _reason(row: pd.Series, threshold: float, pathology: str, abnormalities: list[str]) -> tuple[str, str]:
    if not row["image_path"]:
        return "image_not_found", "no image file found for this image (see problems.csv)"
    if not row["selected"]:
        return "not_selected", not_selected_reason(row, pathology, abnormalities)
    if row["error"]:
        return "unreadable", row["error"]
    score = row["shape_confidence"]
    if not score >= threshold:
        return "low_shape_confidence", f"shape confidence {score:.3f} < {threshold}"
    return "kept", f"shape confidence {score:.3f} >= {threshold}"


def step_counts(manifest: pd.DataFrame) -> dict[str, int]:
    """Images remaining after each step (like the thesis's 1,570 -> 500), plus the rejections by reason."""
    codes = manifest["reason_code"].value_counts()
    total = len(manifest)
    found = total - int(codes.get("image_not_found", 0))
    selected = found - int(codes.get("not_selected", 0))
    readable = selected - int(codes.get("unreadable", 0))
    counts = {
        "images_in_dataset": total,
        "image_file_found": found,
        "selected": selected,
        "readable": readable,
        "kept": int(codes.get("kept", 0)),
    }
    counts.update({f"rejected_{code}": int(codes.get(code, 0)) for code in REASON_CODES if code != "kept"})
    return counts


def scoring_tasks(images: pd.DataFrame, selected: pd.Series, score_height: int) -> list[tuple[str, str, int]]:
    """The images worth scoring: selected ones whose file exists."""
    wanted = images[selected.to_numpy() & (images["image_path"] != "")]
    return [(row.image_id, row.image_path, score_height) for row in wanted.itertuples()]
