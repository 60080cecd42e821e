"""01_filter's library: selection over aligned findings, scoring errors as data, a reason for every image."""

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mammogan_lib.core import config
from mammogan_lib.data import filtering
from mammogan_lib.data.datasets import CATALOGUE_COLUMNS, load_dataset


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
    selected = filtering.selection_mask(images, filtering.Selection("MALIGNANT", ("mass", "calcification")))
    assert dict(zip(images["image_id"], selected, strict=True)) == {
        "whole": True,
        "cut": True,
        "benign": False,
        "mixed": True,
        "missing": True,
        "zero_bytes": True,
        "all_black": True,
    }
    masses_only = filtering.selection_mask(images, filtering.Selection("MALIGNANT", ("mass",)))
    assert not masses_only[images["image_id"] == "mixed"].item()  # its malignant finding is a calcification


def test_manifest_gives_every_image_a_reason_and_the_counts_add_up(images):
    selected = filtering.selection_mask(images, filtering.Selection("MALIGNANT", ("mass", "calcification")))
    tasks = filtering.scoring_tasks(images, selected, score_height=256)
    assert [task[0] for task in tasks] == ["whole", "cut", "mixed", "zero_bytes", "all_black"]
    scores = [filtering.score_image(task) for task in tasks]
    manifest = filtering.build_manifest(
        images, selected, scores, 0.75, filtering.Selection("MALIGNANT", ("mass", "calcification"))
    )
    codes = dict(zip(manifest["image_id"], manifest["reason_code"], strict=True))
    assert codes == {
        "whole": "kept",
        "mixed": "kept",
        "cut": "low_shape_confidence",
        "benign": "not_selected",
        "missing": "image_not_found",
        "zero_bytes": "empty_file",  # found empty on reading, where the loader only looked for the file
        "all_black": "unreadable",
    }
    reasons = manifest.set_index("image_id")["reason"]
    assert reasons["benign"] == "no MALIGNANT finding; findings: BENIGN mass"
    assert "zero.png" in reasons["zero_bytes"] and "black.png" in reasons["all_black"]
    assert "< 0.75" in reasons["cut"]
    counts = filtering.step_counts(manifest)
    assert counts == {
        "images_in_dataset": 7,
        "image_file_found": 6,
        "image_file_usable": 5,
        "selected": 4,
        "readable": 3,
        "kept": 2,
        "kept_shape_not_applicable": 0,
        "rejected_image_not_found": 1,
        "rejected_empty_file": 1,
        "rejected_not_an_image": 0,
        "rejected_not_selected": 1,
        "rejected_unreadable": 1,
        "rejected_low_shape_confidence": 1,
    }


def test_an_empty_selection_is_an_error_that_says_what_the_dataset_holds(images, tmp_path):
    selected = filtering.selection_mask(images, filtering.Selection("BENIGN_WITHOUT_CALLBACK", ("mass",)))
    with pytest.raises(
        ValueError, match=r"no image in .* has a BENIGN_WITHOUT_CALLBACK mass finding \(7 images"
    ):
        filtering.require_selection(selected, images, "BENIGN_WITHOUT_CALLBACK mass", tmp_path)


def folder_with_other_findings(root: Path) -> Path:
    """An image folder whose findings go beyond mass and calcification, one image file missing."""
    rows = [
        ("mass_and_distortion.png", "MALIGNANT", "Mass"),
        ("mass_and_distortion.png", "MALIGNANT", "Architectural distortion"),
        ("distortion.png", "MALIGNANT", "architectural_distortion"),
        ("asymmetry.png", "MALIGNANT", "Focal asymmetry"),
        ("benign_calc.png", "BENIGN", "calcs"),
        ("normal.png", "NORMAL", "No finding"),
        ("untyped.png", "MALIGNANT", ""),
        ("missing.png", "MALIGNANT", "asymmetry"),
    ]
    for name in {row[0] for row in rows} - {"missing.png"}:
        breast_image(root / name)
    lines = ["file,pathology,abnormality,laterality,view", *(f"{f},{p},{a},L,CC" for f, p, a in rows)]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def manifest_of(root: Path, abnormalities: list[str]) -> pd.DataFrame:
    """01's selection and manifest of the folder at ``root``, every scored image at confidence 0.9."""
    images = load_dataset(root).images
    selection = filtering.Selection("MALIGNANT", tuple(abnormalities))
    selected = filtering.selection_mask(images, selection)
    tasks = filtering.scoring_tasks(images, selected, score_height=256)
    scores = [filtering.ImageScore(image_id, shape_confidence=0.9) for image_id, _, _ in tasks]
    return filtering.build_manifest(images, selected, scores, 0.75, selection)


def test_other_finding_types_stay_in_the_manifest_with_their_reason(tmp_path):
    manifest = manifest_of(folder_with_other_findings(tmp_path), ["mass", "calcification"])
    decisions = manifest.set_index("image_id")[["reason_code", "reason"]].to_dict("index")
    assert decisions == {
        "asymmetry.png": {
            "reason_code": "not_selected",
            "reason": "abnormality focal_asymmetry not selected (abnormalities: mass, calcification); "
            "findings: MALIGNANT focal_asymmetry",
        },
        "benign_calc.png": {
            "reason_code": "not_selected",
            "reason": "no MALIGNANT finding; findings: BENIGN calcification",
        },
        "distortion.png": {
            "reason_code": "not_selected",
            "reason": "abnormality architectural_distortion not selected "
            "(abnormalities: mass, calcification); findings: MALIGNANT architectural_distortion",
        },
        "mass_and_distortion.png": {"reason_code": "kept", "reason": "shape confidence 0.900 >= 0.75"},
        "missing.png": {
            "reason_code": "image_not_found",
            "reason": "no image file found for this image (see problems.csv)",
        },
        "normal.png": {"reason_code": "not_selected", "reason": "no finding (pathology NORMAL)"},
        "untyped.png": {
            "reason_code": "not_selected",
            "reason": "abnormality (type not given) not selected (abnormalities: mass, calcification); "
            "findings: MALIGNANT (type not given)",
        },
    }
    assert manifest.set_index("image_id").loc["mass_and_distortion.png", "abnormality"] == (
        "mass+architectural_distortion"
    )
    counts = filtering.step_counts(manifest)
    assert counts["images_in_dataset"] == len(manifest) == 7
    assert counts["kept"] + sum(v for k, v in counts.items() if k.startswith("rejected_")) == 7
    assert (counts["rejected_not_selected"], counts["rejected_image_not_found"]) == (5, 1)


def test_abnormalities_may_name_any_type_in_any_spelling(tmp_path):
    root = folder_with_other_findings(tmp_path)
    wanted = config.FilterConfig(
        abnormalities=["Architectural Distortion", "focal asymmetries"]
    ).abnormalities
    assert wanted == ["architectural_distortion", "focal_asymmetry"]
    manifest = manifest_of(root, wanted)
    kept = manifest.loc[manifest["kept"], "image_id"]
    assert sorted(kept) == ["asymmetry.png", "distortion.png", "mass_and_distortion.png"]
    images = load_dataset(root).images
    assert filtering.missing_types(images, ["mass", "asymmetry", "lymph_node"]) == ["lymph_node"]


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
    selected = filtering.selection_mask(
        images, filtering.Selection("MALIGNANT", ("mass", "calcification"), birads_min=4)
    )
    assert selected.tolist() == [True, False, False, False]
    assert filtering.selection_mask(
        images, filtering.Selection("MALIGNANT", ("mass",), birads_min=3)
    ).tolist() == [
        True,
        True,
        False,
        False,
    ]
    wanted = filtering.Selection("MALIGNANT", ("mass",), 4).describe(images["label_basis"])
    assert wanted == "BI-RADS >= 4 mass (BI-RADS, not pathology)"
    manifest = filtering.build_manifest(
        images, selected, [], 0.75, filtering.Selection("MALIGNANT", ("mass", "calcification"))
    )
    assert manifest.loc[1, "reason"] == "no BI-RADS >= 4 finding; findings: BI-RADS 3 mass"
    assert manifest.loc[2, "reason"] == (
        "abnormality focal_asymmetry not selected (abnormalities: mass, calcification); "
        "findings: BI-RADS 5 focal_asymmetry, BI-RADS 2 mass"
    )
    assert (manifest["label_basis"] == "BI-RADS, not pathology").all()


def test_pathology_datasets_ignore_birads_min_and_keep_their_description() -> None:
    images = pd.DataFrame([catalogue_row("a", "/a.png", "mass;calcification", "BENIGN;MALIGNANT")])
    images["label_basis"], images["assessments"] = "biopsy-confirmed pathology", "1;1"
    for birads_min in (0, 6):
        wanted = filtering.Selection("MALIGNANT", ("calcification",), birads_min)
        assert filtering.selection_mask(images, wanted).tolist() == [True]
    assert filtering.Selection("MALIGNANT", ("mass", "calcification"), 4).describe(images["label_basis"]) == (
        "MALIGNANT mass/calcification"
    )


def test_any_selects_findings_whose_type_is_not_given() -> None:
    images = pd.DataFrame(
        [catalogue_row("cancer", "/c.dcm", "", "MALIGNANT"), catalogue_row("normal", "/n.dcm", "", "")]
    )
    typed = filtering.Selection("MALIGNANT", ("mass", "calcification"))
    assert filtering.selection_mask(images, typed).tolist() == [False, False]
    assert filtering.selection_mask(images, filtering.Selection("MALIGNANT", ("any",))).tolist() == [
        True,
        False,
    ]


def test_pathology_any_selects_every_pathology_but_normal() -> None:
    images = pd.DataFrame(
        [
            catalogue_row("malignant", "/m.png", "mass", "MALIGNANT"),
            catalogue_row("benign", "/b.png", "mass", "BENIGN"),
            catalogue_row("callback", "/c.png", "calcification", "BENIGN_WITHOUT_CALLBACK"),
            {**catalogue_row("normal", "/n.png", "", ""), "n_findings": 0, "pathology": "NORMAL"},
        ]
    )
    images["label_basis"] = "pathology as labelled (labels.csv)"
    selection = filtering.Selection("any", ("mass",))
    assert filtering.selection_mask(images, selection).tolist() == [True, True, False, False]
    assert selection.describe(images["label_basis"]) == "any-pathology mass"
    assert filtering.Selection("any", ("any",)).describe(images["label_basis"]) == "any-pathology any"
    assert config.FilterConfig(pathology="any").pathology == "any"
    with pytest.raises(config.ParameterError, match=r"'pathology'.*'NORMAL' is not one of .*'any'"):
        config.FilterConfig(pathology="NORMAL")
