"""The public datasets' layouts (mini-MIAS, INbreast, VinDr-Mammo, RSNA screening, pre-cut crops) -> the
standard catalogue, and what 01, 02 and 06 do with pre-cut crops.

Fixtures are written by code in each dataset's documented layout (tests/public_layouts.py)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mammogan_lib.data import datasets, filtering, imaging, preprocess
from mammogan_lib.data.datasets import (
    CATALOGUE_COLUMNS,
    PROBLEM_COLUMNS,
    BadLabelsError,
    detect_layout,
    load_dataset,
    rsna,
)
from mammogan_lib.data.datasets.label_basis import AS_LABELLED, BIRADS_ONLY, MIAS_SEVERITY, RSNA_CANCER
from mammogan_lib.evaluate import classify
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

    from mammogan_lib.core import config
    from mammogan_lib.data.datasets import LAYOUTS

    (field,) = [f for f in dataclasses.fields(config.FilterConfig) if f.name == "dataset_layout"]
    assert field.metadata["choices"] == ("auto", *LAYOUTS)


# ------------------------------------------------------------------------------------------ roi_patches
def roi_root(tmp_path: Path, extra_patients: int = 0) -> Path:
    return public_layouts.write_roi_patches(tmp_path / "cbis_ddsm_roi", extra_patients)


def test_roi_patches_detected_by_the_kind_column_and_loaded_one_row_per_crop(tmp_path: Path) -> None:
    root = roi_root(tmp_path)
    assert detect_layout(root) == "roi_patches"
    loaded = load_dataset(root)
    images = check_standard(loaded, "roi_patches")
    assert len(images) == len(public_layouts.ROI_ROWS) == 12 and loaded.problems.empty
    lesions = images[images.index.str.startswith("lesion/")]
    healthy = images[images.index.str.startswith("healthy/")]
    assert (lesions["abnormality"] == "mass").all() and (lesions["n_findings"] == 1).all()
    assert set(lesions["pathology"]) == {"MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK"}
    assert (healthy["pathology"] == "NORMAL").all() and (healthy["abnormality"] == "none").all()
    assert (images["label_basis"] == AS_LABELLED).all()
    # patient_id from its column: the CC and MLO crops of one mass are one woman's
    crops = images.loc[
        ["lesion/P_00001_LEFT_CC_abn1_MALIGNANT.png", "lesion/P_00001_LEFT_MLO_abn1_MALIGNANT.png"]
    ]
    assert crops["patient_id"].tolist() == ["P_00001", "P_00001"] and crops["view"].tolist() == ["CC", "MLO"]
    assert datasets.patient_note(loaded.images) == ""
    # named explicitly as an image folder, the same files load with `kind` ignored
    assert (
        load_dataset(root, "image_folder").images["patient_id"].tolist()
        == loaded.images["patient_id"].tolist()
    )


def test_roi_patches_bad_values_are_reported_at_once_with_file_row_column_and_what_is_accepted(
    tmp_path: Path,
) -> None:
    root = roi_root(tmp_path)
    table = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    table.loc[0, "kind"] = "tumour"  # row 2
    table.loc[1, "kind"] = "lesion"  # row 3: a NORMAL crop called a lesion
    table.loc[2, "kind"] = "healthy"  # row 4: a MALIGNANT crop called healthy
    table.loc[4, "pathology"] = "cancer"  # row 6
    table.loc[5, "view"] = "ML"  # row 7
    table.to_csv(root / "labels.csv", index=False)
    assert detect_layout(root) == "roi_patches"
    with pytest.raises(BadLabelsError) as error:
        load_dataset(root)
    lines = str(error.value).splitlines()
    assert lines[:6] == [
        "labels.csv has 5 bad values in 5 rows; nothing was loaded (fix them all, then run again):",
        "- column 'kind', row 2: 'tumour' is not a known kind",
        "- column 'kind', row 3: 'lesion' contradicts pathology NORMAL",
        "- column 'kind', row 4: 'healthy' contradicts pathology MALIGNANT",
        "- column 'pathology', row 6: 'cancer' is not a known pathology",
        "- column 'view', row 7: 'ML' is not a known view",
    ]
    assert any("'lesion' (a crop around a finding) or 'healthy'" in line for line in lines[6:])
    assert any("dataset_layout: image_folder" in line for line in lines[6:])


def test_roi_patches_without_patient_id_make_each_crop_its_own_patient_and_say_so(tmp_path: Path) -> None:
    root = roi_root(tmp_path)
    table = pd.read_csv(root / "labels.csv", dtype=str, keep_default_na=False)
    table.drop(columns="patient_id").to_csv(root / "labels.csv", index=False)
    images = load_dataset(root).images
    assert (images["patient_id"] == "").all()
    assert datasets.patient_note(images).startswith("12 of 12 images have no patient_id: each is its own")
    index = pd.DataFrame({"image_id": images["image_id"], "array_row": range(len(images))})
    split = preprocess.split_table(index, images.set_index("image_id")["patient_id"], 0.5)
    assert split["patient_id"].nunique() == len(images)


def test_the_held_out_split_keeps_a_patients_crops_on_one_side(tmp_path: Path) -> None:
    images = load_dataset(roi_root(tmp_path, extra_patients=6)).images
    patients = images.set_index("image_id")["patient_id"]
    index = pd.DataFrame({"image_id": images["image_id"], "array_row": range(len(images))})
    for fraction in (0.2, 0.5, 0.8):
        split = preprocess.split_table(index, patients, fraction)
        assert (split.groupby("patient_id")["split"].nunique() == 1).all()
        assert 0 < (split["split"] == "heldout").sum() < len(split)
    # a manifest read back by pandas turns numeric ids into numbers: they are still one patient each
    numeric = preprocess.split_table(index.head(2), pd.Series([7, 7], index=index["image_id"].head(2)), 0.5)
    assert numeric["patient_id"].tolist() == ["7", "7"]


def test_01_keeps_every_selected_crop_with_its_shape_recorded_as_not_applicable(tmp_path: Path) -> None:
    loaded = load_dataset(roi_root(tmp_path))
    assert not filtering.scores_shape(loaded.layout)
    for pathology, kept in (("any", 6), ("MALIGNANT", 3)):
        selection = filtering.Selection(pathology, ("mass",))
        selected = filtering.selection_mask(loaded.images, selection)
        tasks = filtering.scoring_tasks(loaded.images, selected, 256)
        scores = [filtering.scorer(loaded.layout)(task) for task in tasks]
        manifest = filtering.build_manifest(
            loaded.images, selected, scores, 0.75, selection, shape_scored=False
        )
        rows = manifest.set_index("image_id")
        kept_rows = rows[rows["kept"]]
        assert len(kept_rows) == kept and kept_rows.index.str.startswith("lesion/").all()
        assert (kept_rows["shape_scoring"] == filtering.SHAPE_NOT_APPLICABLE).all()
        assert kept_rows["shape_confidence"].isna().all()
        assert (
            kept_rows["reason"]
            == "kept without a shape score: shape confidence not applicable (pre-cut crops)"
        ).all()
        healthy = rows.loc["healthy/P_00002_RIGHT_CC_abn1_healthy.png"]
        assert (healthy["reason_code"], healthy["reason"]) == (
            "not_selected",
            "no finding (pathology NORMAL)",
        )
        assert healthy["shape_scoring"] == ""
        counts = filtering.step_counts(manifest)
        assert counts["kept"] == counts["kept_shape_not_applicable"] == kept == counts["readable"]
        assert counts["images_in_dataset"] == 12 == counts["selected"] + counts["rejected_not_selected"]
    benign = rows.loc["lesion/P_00002_RIGHT_CC_abn1_BENIGN.png"]
    assert (benign["reason_code"], benign["reason"]) == (
        "not_selected",
        "no MALIGNANT finding; findings: BENIGN mass",
    )
    # an unreadable crop is recorded as such, not kept
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert "truncated PNG" in filtering.check_readable(("broken", str(broken), 256)).error


def test_02_writes_crops_as_stored_mapped_to_minus_one_one_and_area_resized(tmp_path: Path) -> None:
    root = roi_root(tmp_path)
    images = load_dataset(root).images
    lesions = images[images["pathology"] != "NORMAL"]
    assert preprocess.preparation("roi_patches", "full") == preprocess.CROPS
    assert preprocess.preparation("kaggle_jpeg", "lesion_patches") == preprocess.BREAST
    with pytest.raises(
        ValueError, match=r"'training_images' is 'lesion_patches'.*'dataset_layout'.*roi_patches"
    ):
        preprocess.preparation("roi_patches", "lesion_patches")
    tasks = [(row.image_id, row.image_path, 64, "pad") for row in lesions.itertuples()]
    cache_dir = preprocess.ensure_cache(tasks, tmp_path / "cache", 1, preparation=preprocess.CROPS)
    assert cache_dir.name == preprocess.cache_key(tasks, preprocess.CROPS) != preprocess.cache_key(tasks)
    arrays, index = preprocess.load_cache(cache_dir)
    summary = json.loads((cache_dir / "summary.json").read_text())
    assert summary["breast_extraction"] == "not applicable (pre-cut crops)" and summary["written"] == 6
    assert arrays.shape == (6, 64, 64) and not index["flipped"].any() and (index["bit_depth"] == 8).all()
    for row in index.itertuples():
        stored = cv2.imread(str(root / row.image_id), cv2.IMREAD_UNCHANGED)
        expected = cv2.resize(stored.astype(np.float32) / 255, (64, 64), interpolation=cv2.INTER_AREA) * 2 - 1
        np.testing.assert_allclose(arrays[row.array_row], expected, atol=1e-6)


def test_a_non_square_crop_is_padded_centred_on_black_or_stretched() -> None:
    crop = np.full((40, 20), 0.5, np.float32)
    padded = preprocess.crop_to_training_array(crop, 8, "pad")
    assert padded.shape == (8, 8) and (padded[:, :2] == -1).all() and (padded[:, 6:] == -1).all()
    np.testing.assert_allclose(padded[:, 2:6], 0.0, atol=1e-6)
    np.testing.assert_allclose(preprocess.crop_to_training_array(crop, 8, "stretch"), 0.0, atol=1e-6)


def test_06_takes_the_healthy_crops_as_the_same_source_set_split_by_patient(tmp_path: Path) -> None:
    root = roi_root(tmp_path)
    other, same = classify.non_tumour_sources("", "", root)
    assert other.root is None and other.note.startswith("not run: non_tumour_root is ''")
    assert same.root == root and "the 6 crops of kind healthy" in same.note
    files = classify.image_files(root)
    assert len(files) == 6 and all(path.parent.name == "healthy" for path in files)
    with pytest.raises(FileNotFoundError, match="non_tumour_root"):  # full mammograms still need one
        classify.non_tumour_sources("", "", tmp_path / "cbis")
    ids = [path.relative_to(root).as_posix() for path in files]
    split = pd.DataFrame(
        {"patient_id": ["P_00001", "P_00002", "P_00004"], "split": ["heldout", "train", "heldout"]}
    )
    heldout, noted = classify.heldout_non_tumours(same, ids, split)
    assert [i for i, h in zip(ids, heldout, strict=True) if h] == [
        "healthy/P_00001_LEFT_CC_abn1_healthy.png",
        "healthy/P_00001_LEFT_MLO_abn1_healthy.png",
        "healthy/P_00004_RIGHT_CC_abn1_healthy.png",
        "healthy/P_00004_RIGHT_CC_abn2_healthy.png",
    ]
    assert "the 4 crops of held-out patients are the only test non-tumours, the other 2 train" in noted.note
    assert classify.heldout_non_tumours(other, ids, split) == (None, other)
    # crops with no held-out patient (e.g. labels.csv without patient_id): drawn from all, and said so
    nobody, unsplit = classify.heldout_non_tumours(same, ids, split.assign(split="train"))
    assert nobody is None and "drawn from all of them" in unsplit.note
    # the study draws its test non-tumours from the held-out patients' crops only, and never trains on them
    rng = np.random.default_rng(0)
    non_tumour = np.where(heldout[:, None], 100.0, -100.0) + rng.normal(size=(6, 3))
    pools = classify.split_pools(
        rng.normal(size=(4, 3)) + 5,
        rng.normal(size=(6, 3)) + 5,
        rng.normal(size=(4, 3)) + 5,
        non_tumour,
        heldout,
    )
    assert (pools.non_tumour_test[:, 0] > 50).all() and (pools.non_tumour[:, 0] < -50).all()
    results = classify.run_study(pools, classify.thesis_designs(2, 1), test_per_class=3, repeats=2)
    assert (results["test_images"] == 6).all()
    with pytest.raises(ValueError, match=r"svm_test_per_class needs 5 held-out patients' non-tumour images"):
        classify.run_study(pools, classify.thesis_designs(2, 1), test_per_class=5, repeats=1)
