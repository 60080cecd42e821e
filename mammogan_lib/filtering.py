"""01_filter: select the malignant mass/calcification full mammograms and keep well-captured breasts.

Every image of the dataset ends up in ``manifest.csv`` with ``kept`` and a ``reason``; ``reason_code`` is
one of :data:`REASON_CODES`, so the counts at each step add up to the number of images read.

Where a dataset's labels are BI-RADS assessments only (``label_basis`` 'BI-RADS, not pathology': VinDr-Mammo,
INbreast) there is no pathology to select on: a finding is selected by its BI-RADS category
(``birads_min``) instead, and the selection's description says so in every reason and table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mammogan_lib import breast, imaging
from mammogan_lib.datasets.label_basis import BIRADS_ONLY, birads_at_least

ANY_TYPE = "any"  # in ``abnormalities``: findings of every type, also those whose type is not given (RSNA)
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


def selection_mask(
    images: pd.DataFrame, pathology: str, abnormalities: list[str], birads_min: int = 4
) -> pd.Series:
    """True for images with at least one finding of ``pathology`` among ``abnormalities`` ('any': every
    type); for BI-RADS-only images, a finding of BI-RADS >= ``birads_min`` instead of ``pathology``.

    Uses the aligned ';'-joined ``finding_types`` / ``finding_pathologies`` / ``assessments`` columns, so an
    image with a benign mass and a malignant calcification is selected for ``['calcification']`` but not
    ``['mass']``.
    """

    def has_wanted_finding(row: pd.Series) -> bool:
        types = str(row["finding_types"]).split(";")
        wanted_type = [ANY_TYPE in abnormalities or t in abnormalities for t in types]
        if row.get("label_basis") == BIRADS_ONLY:
            wanted_label = birads_at_least(row["assessments"], birads_min)
        else:
            wanted_label = [p == pathology for p in str(row["finding_pathologies"]).split(";")]
        return any(t and w for t, w in zip(wanted_type, wanted_label, strict=False))

    if images.empty:
        return pd.Series([], dtype=bool)
    return images.apply(has_wanted_finding, axis=1).astype(bool)


def describe_selection(
    pathology: str, abnormalities: list[str], birads_min: int, label_bases: Iterable[str]
) -> str:
    """What 01 looks for, as its reasons and tables say it: 'MALIGNANT mass/calcification', or for
    BI-RADS-only data 'BI-RADS >= 4 mass/calcification (BI-RADS, not pathology)'."""
    types = "/".join(abnormalities)
    if BIRADS_ONLY in set(label_bases):
        return f"BI-RADS >= {birads_min} {types} ({BIRADS_ONLY})"
    return f"{pathology} {types}"


def require_selection(selected: pd.Series, images: pd.DataFrame, describe_selection: str, root: Path) -> None:
    """An empty selection is an error: say what was looked for and what the dataset holds."""
    if not selected.any():
        held = images.groupby(["pathology", "abnormality"]).size().to_dict() if len(images) else {}
        raise ValueError(
            f"no image in {root} has a {describe_selection} finding ({len(images)} images read; "
            f"by pathology and abnormality: {held}). Check `pathology` (`birads_min` for BI-RADS-only data), "
            "`abnormalities` and `dataset_root`."
        )


def build_manifest(
    images: pd.DataFrame,
    selected: pd.Series,
    scores: list[ImageScore],
    threshold: float,
    describe_selection: str,
) -> pd.DataFrame:
    """One row per catalogue image: its catalogue columns, shape scores, ``kept``, ``reason_code``,
    ``reason``."""
    score_table = pd.DataFrame(
        [dataclasses.asdict(s) for s in scores], columns=["image_id", *SCORE_COLUMNS, "error"]
    )
    manifest = images.merge(score_table, on="image_id", how="left")
    manifest["chest_wall_side"] = manifest["chest_wall_side"].fillna("")
    manifest["error"] = manifest["error"].fillna("")
    manifest["selected"] = selected.to_numpy()
    decisions = [_reason(row, threshold, describe_selection) for _, row in manifest.iterrows()]
    manifest["reason_code"] = [code for code, _ in decisions]
    manifest["reason"] = [reason for _, reason in decisions]
    manifest["kept"] = manifest["reason_code"] == "kept"
    return manifest.drop(columns=["error"])


def _reason(row: pd.Series, threshold: float, describe_selection: str) -> tuple[str, str]:
    if not row["image_path"]:
        return "image_not_found", "no image file found for this image (see problems.csv)"
    if not row["selected"]:
        if row.get("label_basis") == BIRADS_ONLY:
            return "not_selected", f"no {describe_selection} finding (finding BI-RADS: {row['assessments']})"
        return "not_selected", f"no {describe_selection} finding (findings: {row['finding_pathologies']})"
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
