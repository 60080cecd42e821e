"""01_filter's library: selection over aligned findings, scoring errors as data, a reason for every image."""

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mammogan_lib import filtering
from mammogan_lib.datasets import CATALOGUE_COLUMNS


def catalogue_row(image_id: str, image_path: str, types: str, pathologies: str, view: str = "CC") -> dict:
    row = dict.fromkeys(CATALOGUE_COLUMNS, "")
    row.update(
        image_id=image_id,
        image_path=image_path,
        finding_types=types,
        finding_pathologies=pathologies,
        view=view,
        laterality="LEFT",
        n_findings=len(types.split(";")),
    )
    return row


def breast_image(path: Path, cut: bool = False) -> str:
    """A bright half-ellipse on the left edge; with ``cut`` it runs off the top and bottom edges."""
    image = np.zeros((400, 260), np.uint8)
    axes = (150, 330) if cut else (150, 160)
    cv2.ellipse(image, (0, 200), axes, 0, -90, 90, 180, thickness=-1)
    cv2.imwrite(str(path), image)
    return str(path)


@pytest.fixture
def images(tmp_path: Path) -> pd.DataFrame:
    (tmp_path / "zero.png").write_bytes(b"")
    black = tmp_path / "black.png"
    cv2.imwrite(str(black), np.zeros((64, 48), np.uint8))
    rows = [
        catalogue_row("whole", breast_image(tmp_path / "whole.png"), "mass", "MALIGNANT"),
        catalogue_row("cut", breast_image(tmp_path / "cut.png", cut=True), "calcification", "MALIGNANT"),
        catalogue_row("benign", breast_image(tmp_path / "benign.png"), "mass", "BENIGN"),
        catalogue_row(
            "mixed", breast_image(tmp_path / "mixed.png"), "mass;calcification", "BENIGN;MALIGNANT"
        ),
        catalogue_row("missing", "", "mass", "MALIGNANT"),
        catalogue_row("zero_bytes", str(tmp_path / "zero.png"), "mass", "MALIGNANT"),
        catalogue_row("all_black", str(black), "calcification", "MALIGNANT"),
    ]
    return pd.DataFrame(rows, columns=CATALOGUE_COLUMNS)


def test_selection_pairs_each_finding_type_with_its_own_pathology(images):
    selected = filtering.selection_mask(images, "MALIGNANT", ["mass", "calcification"])
    assert dict(zip(images["image_id"], selected, strict=True)) == {
        "whole": True,
        "cut": True,
        "benign": False,
        "mixed": True,
        "missing": True,
        "zero_bytes": True,
        "all_black": True,
    }
    masses_only = filtering.selection_mask(images, "MALIGNANT", ["mass"])
    assert not masses_only[images["image_id"] == "mixed"].item()  # its malignant finding is a calcification


def test_manifest_gives_every_image_a_reason_and_the_counts_add_up(images):
    selected = filtering.selection_mask(images, "MALIGNANT", ["mass", "calcification"])
    tasks = filtering.scoring_tasks(images, selected, score_height=256)
    assert [task[0] for task in tasks] == ["whole", "cut", "mixed", "zero_bytes", "all_black"]
    scores = [filtering.score_image(task) for task in tasks]
    manifest = filtering.build_manifest(images, selected, scores, 0.75, "MALIGNANT mass/calcification")
    codes = dict(zip(manifest["image_id"], manifest["reason_code"], strict=True))
    assert codes == {
        "whole": "kept",
        "mixed": "kept",
        "cut": "low_shape_confidence",
        "benign": "not_selected",
        "missing": "image_not_found",
        "zero_bytes": "unreadable",
        "all_black": "unreadable",
    }
    reasons = manifest.set_index("image_id")["reason"]
    assert "zero.png" in reasons["zero_bytes"] and "black.png" in reasons["all_black"]
    assert "< 0.75" in reasons["cut"]
    counts = filtering.step_counts(manifest)
    assert counts == {
        "images_in_dataset": 7,
        "image_file_found": 6,
        "selected": 5,
        "readable": 3,
        "kept": 2,
        "rejected_image_not_found": 1,
        "rejected_not_selected": 1,
        "rejected_unreadable": 2,
        "rejected_low_shape_confidence": 1,
    }


def test_an_empty_selection_is_an_error_that_says_what_the_dataset_holds(images, tmp_path):
    selected = filtering.selection_mask(images, "BENIGN_WITHOUT_CALLBACK", ["mass"])
    with pytest.raises(
        ValueError, match=r"no image in .* has a BENIGN_WITHOUT_CALLBACK mass finding \(7 images"
    ):
        filtering.require_selection(selected, images, "BENIGN_WITHOUT_CALLBACK mass", tmp_path)


# ---------------------------------------------------------------------------- BI-RADS-only data, 'any'
def birads_row(image_id: str, types: str, assessments: str) -> dict:
    row = catalogue_row(image_id, f"/x/{image_id}.dicom", types, ";".join("" for _ in types.split(";")))
    return {**row, "assessments": assessments, "label_basis": "BI-RADS, not pathology", "pathology": ""}


def test_bi_rads_only_images_are_selected_by_their_findings_bi_rads() -> None:
    images = pd.DataFrame(
        [
            birads_row("suspicious_mass", "mass;focal_asymmetry", "4;3"),
            birads_row("probably_benign_mass", "mass", "3"),
            birads_row("suspicious_asymmetry_only", "focal_asymmetry;mass", "5;2"),
            birads_row("no_finding", "", ""),
        ]
    )
    selected = filtering.selection_mask(images, "MALIGNANT", ["mass", "calcification"], birads_min=4)
    assert selected.tolist() == [True, False, False, False]
    assert filtering.selection_mask(images, "MALIGNANT", ["mass"], birads_min=3).tolist() == [
        True,
        True,
        False,
        False,
    ]
    wanted = filtering.describe_selection("MALIGNANT", ["mass"], 4, images["label_basis"])
    assert wanted == "BI-RADS >= 4 mass (BI-RADS, not pathology)"
    manifest = filtering.build_manifest(images, selected, [], 0.75, wanted)
    assert (
        manifest.loc[1, "reason"]
        == "no BI-RADS >= 4 mass (BI-RADS, not pathology) finding (finding BI-RADS: 3)"
    )
    assert (manifest["label_basis"] == "BI-RADS, not pathology").all()


def test_pathology_datasets_ignore_birads_min_and_keep_their_description() -> None:
    images = pd.DataFrame([catalogue_row("a", "/a.png", "mass;calcification", "BENIGN;MALIGNANT")])
    images["label_basis"], images["assessments"] = "biopsy-confirmed pathology", "1;1"
    for birads_min in (0, 6):
        assert filtering.selection_mask(images, "MALIGNANT", ["calcification"], birads_min).tolist() == [True]
    assert filtering.describe_selection("MALIGNANT", ["mass", "calcification"], 4, images["label_basis"]) == (
        "MALIGNANT mass/calcification"
    )


def test_any_selects_findings_whose_type_is_not_given() -> None:
    images = pd.DataFrame(
        [catalogue_row("cancer", "/c.dcm", "", "MALIGNANT"), catalogue_row("normal", "/n.dcm", "", "")]
    )
    assert filtering.selection_mask(images, "MALIGNANT", ["mass", "calcification"]).tolist() == [False, False]
    assert filtering.selection_mask(images, "MALIGNANT", ["any"]).tolist() == [True, False]
