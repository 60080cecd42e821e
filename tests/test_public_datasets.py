"""The public datasets' layouts (mini-MIAS, INbreast, VinDr-Mammo, RSNA screening) -> the standard catalogue.

Fixtures are written by code in each dataset's documented layout (tests/public_layouts.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mammogan_lib import imaging
from mammogan_lib.datasets import CATALOGUE_COLUMNS, PROBLEM_COLUMNS, detect_layout, load_dataset, rsna
from mammogan_lib.datasets.label_basis import BIRADS_ONLY, MIAS_SEVERITY, RSNA_CANCER
from tests import public_layouts


def check_standard(loaded, layout: str) -> pd.DataFrame:
    assert loaded.layout == layout
    assert list(loaded.images.columns) == list(CATALOGUE_COLUMNS)
    assert list(loaded.problems.columns) == list(PROBLEM_COLUMNS)
    assert loaded.images["image_id"].is_unique
    return loaded.images.set_index("image_id")


# ------------------------------------------------------------------------------------------- mini-MIAS
def test_mini_mias_as_distributed(tmp_path: Path) -> None:
    root = public_layouts.write_mini_mias(tmp_path / "all-mias")
    assert detect_layout(root) == "mini_mias"
    loaded = load_dataset(root)
    images = check_standard(loaded, "mini_mias")
    assert set(images.index) == set(public_layouts.MIAS_LISTED) and images["n_findings"].sum() == 11
    assert (images["view"] == "MLO").all() and (images["label_basis"] == MIAS_SEVERITY).all()
    # laterality from the number: even left, odd right; a pair of films is one patient
    assert images.loc[["mdb001", "mdb002"], "laterality"].tolist() == ["RIGHT", "LEFT"]
    assert (
        images.loc["mdb001", "patient_id"]
        == images.loc["mdb002", "patient_id"]
        != images.loc["mdb003", "patient_id"]
    )
    mdb005 = images.loc["mdb005"]  # two lines, two masses
    assert (mdb005["n_findings"], mdb005["finding_ids"], mdb005["mass_margins"]) == (
        2,
        "1;2",
        "CIRCUMSCRIBED;CIRCUMSCRIBED",
    )
    assert (images.loc["mdb003", "pathology"], images.loc["mdb003", "abnormality"]) == ("NORMAL", "none")
    assert images.loc["mdb023", ["pathology", "finding_types", "mass_margins"]].tolist() == [
        "MALIGNANT",
        "mass",
        "SPICULATED",
    ]
    assert images.loc["mdb030", "mass_margins"] == "ILL_DEFINED"
    assert images.loc["mdb115", ["finding_types", "pathology"]].tolist() == [
        "architectural_distortion",
        "MALIGNANT",
    ]
    assert images.loc["mdb104", "finding_types"] == "asymmetry"
    assert images.loc["mdb209", "malignant_abnormalities"] == "calcification"
    assert images.loc["mdb219", "finding_pathologies"] == "BENIGN"  # no centre: spread calcifications
    assert images.loc["mdb059", "finding_types"] == "mass"  # severity without coordinates
    assert images.loc["mdb003", "breast_density"] == "dense-glandular"
    problems = loaded.problems.set_index("image_id")
    assert (
        images.loc["mdb104", "image_path"] == ""
        and "mdb104.pgm not found" in problems.loc["mdb104", "reason"]
    )
    assert "mdb322.pgm is not listed in Info.txt" in problems.loc["mdb322", "reason"]
    assert imaging.read_grayscale(Path(images.loc["mdb001", "image_path"])).source_format == "pgm"


def test_mini_mias_reports_every_bad_line_at_once(tmp_path: Path) -> None:
    root = public_layouts.write_mini_mias(tmp_path / "mias")
    text = public_layouts.MIAS_INFO.replace("mdb002 G CIRC B", "mdb002 X CIRC B").replace(
        "mdb209 G CALC M", "mdb209 G CALC Q"
    )
    (root / "Info.txt").write_text(text + "mdb030 G MISC B 1 2\n")
    with pytest.raises(ValueError) as caught:
        load_dataset(root)
    message = str(caught.value)
    assert message.startswith("Info.txt: 3 lines cannot be read")
    assert "line 5 (mdb002 X CIRC B 522 280 69): background tissue 'X'" in message
    assert "severity 'Q' (expected B or M for class CALC)" in message
    assert "line 16: 6 fields" in message


# ----------------------------------------------------------------------------------------- VinDr-Mammo
def test_vindr_mammo_findings_are_bi_rads_not_pathology(tmp_path: Path) -> None:
    root = public_layouts.write_vindr_mammo(tmp_path / "vindr-mammo")
    assert detect_layout(root) == "vindr_mammo"
    loaded = load_dataset(root)
    images = check_standard(loaded, "vindr_mammo")
    assert set(images.index) == {"i1", "i2", "i3", "i4", "i5", "i6"}
    assert (images["label_basis"] == BIRADS_ONLY).all() and (images["pathology"] == "").all()
    i1 = images.loc["i1"]
    assert i1["finding_types"] == "mass;calcification;focal_asymmetry"  # one box, two categories, then a box
    assert (i1["finding_ids"], i1["assessments"], i1["birads"]) == ("1;1;2", "5;5;3", "5")
    assert (i1["patient_id"], i1["laterality"], i1["view"], i1["split"], i1["breast_density"]) == (
        "st1",
        "LEFT",
        "CC",
        "train",
        "C",
    )
    assert (i1["n_findings"], i1["n_malignant"], i1["abnormality"]) == (
        3,
        0,
        "mass+calcification+focal_asymmetry",
    )
    assert images.loc["i2", ["finding_types", "assessments"]].tolist() == ["architectural_distortion", "4"]
    for no_finding in ("i3", "i4", "i5", "i6"):
        assert (images.loc[no_finding, "abnormality"], images.loc[no_finding, "n_findings"]) == ("none", 0)
    assert images.loc["i6", "split"] == "test"  # only in breast-level_annotations.csv
    assert images.loc["i5", "image_path"] == ""
    (reason,) = loaded.problems.loc[loaded.problems["image_id"] == "i5", "reason"]
    assert reason == "images/st2/i5.dicom not found"
    pixels = imaging.read_grayscale(Path(images.loc["i1", "image_path"])).pixels  # MONOCHROME1 + window
    assert pixels.mean() > 0.5  # dark breast stored inverted: the background reads bright, as displayed


def test_vindr_mammo_bad_values_reported_at_once(tmp_path: Path) -> None:
    root = public_layouts.write_vindr_mammo(tmp_path / "vindr")
    path = root / "finding_annotations.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[0, "finding_categories"] = "['Mass', 'Cyst']"  # not in VinDr's list: kept as its own type
    table.to_csv(path, index=False)
    assert "cyst" in load_dataset(root).images.set_index("image_id").loc["i1", "finding_types"].split(";")
    table.loc[0, "finding_categories"] = "['Mass', '??']"
    table.loc[2, "finding_birads"] = "BI-RADS 9"
    table.loc[3, "laterality"] = "B"
    table.to_csv(path, index=False)
    with pytest.raises(ValueError) as caught:
        load_dataset(root)
    message = str(caught.value)
    assert message.startswith("3 bad values in breast-level_annotations.csv / finding_annotations.csv")
    assert "finding_annotations.csv row 2 column 'finding categories': '??'" in message
    assert "row 4 column 'finding birads': unknown BI-RADS value 'BI-RADS 9'" in message
    assert "row 5 column 'laterality'" in message


# ------------------------------------------------------------------------------------------------ RSNA
def test_rsna_screening_train_csv_and_compressed_dicoms(tmp_path: Path) -> None:
    root = public_layouts.write_rsna_screening(tmp_path / "rsna-breast-cancer-detection")
    assert detect_layout(root) == "rsna_screening"
    loaded = load_dataset(root)
    images = check_standard(loaded, "rsna_screening")
    assert len(images) == len(public_layouts.RSNA_ROWS) and (images["label_basis"] == RSNA_CANCER).all()
    cancer = images.loc["10011/220375232"]
    assert (cancer["pathology"], cancer["n_malignant"], cancer["finding_types"], cancer["birads"]) == (
        "MALIGNANT",
        1,
        "",
        "0",
    )
    benign = images.loc["10011/541126"]
    assert (benign["pathology"], benign["view"], benign["laterality"]) == ("BENIGN", "AT", "RIGHT")
    healthy = images.loc["10006/462822612"]
    assert (healthy["pathology"], healthy["abnormality"], healthy["breast_density"]) == (
        "NORMAL",
        "none",
        "B",
    )
    assert (images["pathology"] == "MALIGNANT").sum() == 2
    problems = loaded.problems.set_index("image_id")
    assert "train_images/10011/999.dcm not found" in problems.loc["10011/999", "reason"]
    assert "test.csv has no cancer labels" in loaded.problems["reason"].iloc[-1]
    for path in images.loc[images["image_path"] != "", "image_path"]:  # JPEG 2000 and JPEG lossless
        assert imaging.read_grayscale(Path(path)).pixels.std() > 0.1


def test_rsna_non_cancer_images_for_06(tmp_path: Path) -> None:
    root = public_layouts.write_rsna_screening(tmp_path / "rsna")
    selection = rsna.non_cancer_images(root)
    expected = {
        root / "train_images" / str(r["patient_id"]) / f"{r['image_id']}.dcm"
        for r in public_layouts.RSNA_ROWS[:-1]
        if r["cancer"] == 0
    }
    assert set(selection.files) == expected and len(selection.files) == 5
    assert selection.note == (
        "RSNA screening layout (train.csv): 5 images with cancer == 0 of 8 listed (2 with cancer == 1 left "
        "out, 1 with cancer == 0 not found)"
    )


def test_rsna_bad_flags_reported_at_once(tmp_path: Path) -> None:
    root = public_layouts.write_rsna_screening(tmp_path / "rsna")
    table = pd.read_csv(root / "train.csv", dtype=str, keep_default_na=False)
    table.loc[0, "cancer"], table.loc[1, "laterality"] = "yes", "both"
    table.to_csv(root / "train.csv", index=False)
    with pytest.raises(ValueError, match=r"train\.csv: 2 bad values") as caught:
        load_dataset(root)
    assert "row 2 column 'cancer': 'yes' is not 0 or 1" in str(caught.value)
    assert "row 3 column 'laterality'" in str(caught.value)


def test_a_train_csv_without_rsna_columns_is_not_rsna(tmp_path: Path) -> None:
    public_layouts.write_rows(tmp_path / "train.csv", ["file", "label"], [{"file": "a.png"}])
    (tmp_path / "train_images").mkdir()
    with pytest.raises(ValueError, match="cannot tell the layout"):
        detect_layout(tmp_path)


# -------------------------------------------------------------------------------------------- INbreast
def test_inbreast_semicolon_csv_dicoms_and_xml(tmp_path: Path) -> None:
    root = public_layouts.write_inbreast(tmp_path / "INbreast Release 1.0")
    assert detect_layout(root) == "inbreast"
    loaded = load_dataset(root)
    images = check_standard(loaded, "inbreast")
    assert (images["label_basis"] == BIRADS_ONLY).all() and (images["pathology"] == "").all()
    with_xml = images.loc["22678622"]
    assert (with_xml["finding_types"], with_xml["assessments"], with_xml["birads"]) == (
        "mass;calcification",
        "5;5",
        "5",
    )
    assert (with_xml["laterality"], with_xml["view"], with_xml["patient_id"]) == ("RIGHT", "CC", "4a7b")
    unknown_type = images.loc["22678646"]
    assert (unknown_type["view"], unknown_type["birads"], unknown_type["n_findings"]) == ("MLO", "4", 1)
    assert unknown_type["finding_types"] == "" and unknown_type["assessments"] == "4"
    assert images.loc["20586908", "abnormality"] == "none"
    problems = loaded.problems.set_index("image_id")
    assert "no AllXML/22678646.xml" in problems.loc["22678646", "reason"]
    assert "AllDICOMs/20586934_*.dcm not found" in problems.loc["20586934", "reason"]
    assert np.isfinite(imaging.read_grayscale(Path(with_xml["image_path"])).pixels).all()


def test_inbreast_xls_only_says_how_to_read_it(tmp_path: Path) -> None:
    root = public_layouts.write_inbreast(tmp_path / "inbreast")
    (root / "INbreast.csv").rename(root / "INbreast.xls")
    assert detect_layout(root) == "inbreast"
    with pytest.raises(FileNotFoundError, match="xlrd.*save the sheet as INbreast.csv"):
        load_dataset(root)


def test_every_layout_is_a_dataset_layout_choice() -> None:
    import dataclasses

    from mammogan_lib import config
    from mammogan_lib.datasets import LAYOUTS

    (field,) = [f for f in dataclasses.fields(config.FilterConfig) if f.name == "dataset_layout"]
    assert field.metadata["choices"] == ("auto", *LAYOUTS)
