"""Tiny copies of the public datasets in their exact documented layouts, written by code (64 x 48 images),
the way the phantom mirrors CBIS-DDSM. Each builder returns the root and documents what it holds."""

from __future__ import annotations

import csv
import plistlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLosslessSV1

from tests.dicom_files import mammogram_pixels, write_dicom


def write_rows(path: Path, columns: Sequence[str], rows: Sequence[dict[str, object]], delimiter=",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), delimiter=delimiter)
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row.get(column, "") for column in columns})
    return path


# ------------------------------------------------------------------------------------------- mini-MIAS
MIAS_INFO = """\
MIAS database reference number, character of background tissue, class of abnormality,
severity, x,y image-coordinates of centre of abnormality, approximate radius (pixels).

mdb001 G CIRC B 535 425 197
mdb002 G CIRC B 522 280 69
mdb003 D NORM
mdb005 F CIRC B 477 133 30
mdb005 F CIRC B 500 168 26
mdb023 G SPIC M 538 681 29
mdb030 G MISC B 322 676 43
mdb059 F CIRC B
mdb104 D ASYM B 357 365 50
mdb115 D ARCH M 461 532 117
mdb209 G CALC M 647 503 87
mdb219 G CALC B
"""
MIAS_LISTED = (
    "mdb001",
    "mdb002",
    "mdb003",
    "mdb005",
    "mdb023",
    "mdb030",
    "mdb059",
    "mdb104",
    "mdb115",
    "mdb209",
    "mdb219",
)


def write_mini_mias(root: Path) -> Path:
    """Info.txt (title lines, 12 data lines, 11 images); each listed PGM but mdb104's; mdb322.pgm unlisted."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Info.txt").write_text(MIAS_INFO)
    for number, reference in enumerate((*[r for r in MIAS_LISTED if r != "mdb104"], "mdb322")):
        pixels = (mammogram_pixels(seed=number, top=255)).astype(np.uint8)
        assert cv2.imwrite(str(root / f"{reference}.pgm"), pixels)
    return root


# ----------------------------------------------------------------------------------------- VinDr-Mammo
VINDR_IMAGE_COLUMNS = [
    "study_id",
    "series_id",
    "image_id",
    "laterality",
    "view_position",
    "height",
    "width",
    "breast_birads",
    "breast_density",
    "split",
]
VINDR_FINDING_COLUMNS = [
    "image_id",
    "study_id",
    "series_id",
    "laterality",
    "view_position",
    "height",
    "width",
    "breast_birads",
    "breast_density",
    "finding_categories",
    "finding_birads",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "split",
]


def vindr_image(study: str, image: str, side: str, view: str, birads: int, split: str = "training") -> dict:
    return {
        "study_id": study,
        "series_id": f"s{study}",
        "image_id": image,
        "laterality": side,
        "view_position": view,
        "height": 64,
        "width": 48,
        "breast_birads": f"BI-RADS {birads}",
        "breast_density": "DENSITY C",
        "split": split,
    }


def write_vindr_mammo(root: Path) -> Path:
    """Study st1 (4 images): i1 a BI-RADS 5 box 'Mass'+'Suspicious Calcification' and a BI-RADS 3 'Focal
    Asymmetry'; i2 'Architectural Distortion' BI-RADS 4; i3, i4 'No Finding'. Study st2 (test): i5 'No
    Finding' whose file is missing; i6 only in breast-level_annotations.csv."""
    images = [
        vindr_image("st1", "i1", "L", "CC", 5),
        vindr_image("st1", "i2", "L", "MLO", 4),
        vindr_image("st1", "i3", "R", "CC", 1),
        vindr_image("st1", "i4", "R", "MLO", 1),
        vindr_image("st2", "i5", "L", "CC", 2, "test"),
        vindr_image("st2", "i6", "L", "MLO", 2, "test"),
    ]
    by_id = {row["image_id"]: row for row in images}

    def finding(image: str, categories: str, birads: str = "", box=(1, 2, 10, 20)) -> dict:
        return {
            **by_id[image],
            "finding_categories": categories,
            "finding_birads": birads,
            **dict(zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True)),
        }

    findings = [
        finding("i1", "['Mass', 'Suspicious Calcification']", "BI-RADS 5"),
        finding("i1", "['Focal Asymmetry']", "BI-RADS 3"),
        finding("i2", "['Architectural Distortion']", "BI-RADS 4"),
        finding("i3", "['No Finding']", box=("", "", "", "")),
        finding("i4", "['No Finding']", box=("", "", "", "")),
        finding("i5", "['No Finding']", box=("", "", "", "")),
    ]
    write_rows(root / "breast-level_annotations.csv", VINDR_IMAGE_COLUMNS, images)
    write_rows(root / "finding_annotations.csv", VINDR_FINDING_COLUMNS, findings)
    for number, row in enumerate(images):
        if row["image_id"] != "i5":
            path = root / "images" / row["study_id"] / f"{row['image_id']}.dicom"
            write_dicom(
                path,
                mammogram_pixels(seed=number),
                12,
                ExplicitVRLittleEndian,
                photometric="MONOCHROME1",
                header={"WindowCenter": 2048, "WindowWidth": 4096},
            )
    return root


# ------------------------------------------------------------------------------------------------ RSNA
RSNA_COLUMNS = [
    "site_id",
    "patient_id",
    "image_id",
    "laterality",
    "view",
    "age",
    "cancer",
    "biopsy",
    "invasive",
    "BIRADS",
    "implant",
    "density",
    "machine_id",
    "difficult_negative_case",
]


def rsna_row(patient: int, image: int, side: str, view: str, cancer: int, biopsy: int = 0, birads="") -> dict:
    return {
        "site_id": 2,
        "patient_id": patient,
        "image_id": image,
        "laterality": side,
        "view": view,
        "age": 61.0,
        "cancer": cancer,
        "biopsy": biopsy,
        "invasive": cancer,
        "BIRADS": birads,
        "implant": 0,
        "density": "B",
        "machine_id": 49,
        "difficult_negative_case": "False",
    }


RSNA_ROWS = [
    rsna_row(10006, 462822612, "L", "CC", 0, birads=1),
    rsna_row(10006, 1459541791, "L", "MLO", 0, birads=1),
    rsna_row(10006, 1864590858, "R", "MLO", 0, birads=1),
    rsna_row(10006, 1874946579, "R", "CC", 0, birads=1),
    rsna_row(10011, 220375232, "L", "CC", 1, 1, birads=0),
    rsna_row(10011, 270344397, "L", "MLO", 1, 1, birads=0),
    rsna_row(10011, 541126, "R", "AT", 0, 1, birads=2),  # benign biopsy, a view beyond CC/MLO
    rsna_row(10011, 999, "R", "CC", 0),  # listed, file missing
]


def write_rsna_screening(root: Path) -> Path:
    """train.csv (8 rows: 2 patients; 2 cancers, 1 benign biopsy, 5 without; one file missing), images in
    JPEG 2000 (site 1's syntax) and JPEG lossless (site 2's), MONOCHROME1 on some; test.csv (no labels)."""
    write_rows(root / "train.csv", RSNA_COLUMNS, RSNA_ROWS)
    test_columns = [
        "site_id",
        "patient_id",
        "image_id",
        "laterality",
        "view",
        "age",
        "implant",
        "machine_id",
        "prediction_id",
    ]
    write_rows(root / "test.csv", test_columns, [{"patient_id": 10008, "image_id": 736471439}])
    for number, row in enumerate(RSNA_ROWS[:-1]):
        syntax = JPEG2000Lossless if number % 2 else JPEGLosslessSV1
        path = root / "train_images" / str(row["patient_id"]) / f"{row['image_id']}.dcm"
        write_dicom(
            path,
            mammogram_pixels(seed=number),
            12,
            syntax,
            photometric="MONOCHROME1" if number % 3 == 0 else "MONOCHROME2",
        )
    return root


# -------------------------------------------------------------------------------------------- INbreast
INBREAST_COLUMNS = [
    "Patient ID",
    "Patient age",
    "Laterality",
    "View",
    "Acquisition date",
    "File Name",
    "ACR",
    "Bi-Rads",
]


def inbreast_row(name: str, side: str, view: str, birads: str, acr: str = "2") -> dict:
    return {
        "Patient ID": "removed",
        "Patient age": "removed",
        "Laterality": side,
        "View": view,
        "Acquisition date": "201001",
        "File Name": name,
        "ACR": acr,
        "Bi-Rads": birads,
    }


def write_inbreast(root: Path) -> Path:
    """INbreast.csv (';'): 22678622 BI-RADS 5 with an AllXML (Mass + Cluster), 22678646 BI-RADS 4c without
    XML (type unknown), 20586908 and 20586934 BI-RADS 1 (the second's DICOM missing)."""
    rows = [
        inbreast_row("22678622", "R", "CC", "5"),
        inbreast_row("22678646", "R", "MLO", "4c"),
        inbreast_row("20586908", "L", "CC", "1"),
        inbreast_row("20586934", "L", "MLO", "1"),
    ]
    write_rows(root / "INbreast.csv", INBREAST_COLUMNS, rows, delimiter=";")
    names = {"22678622": ("4a7b", "R_CC"), "22678646": ("4a7b", "R_ML"), "20586908": ("6c61", "L_CC")}
    for number, (name, (patient, side_view)) in enumerate(names.items()):
        write_dicom(
            root / "AllDICOMs" / f"{name}_{patient}_MG_{side_view}_ANON.dcm", mammogram_pixels(seed=number)
        )
    rois = [
        {"Name": "Mass", "NumberOfPoints": 3},
        {"Name": "Cluster", "NumberOfPoints": 9},
        {"Name": "Mass", "NumberOfPoints": 4},
    ]
    (root / "AllXML").mkdir(parents=True)
    (root / "AllXML" / "22678622.xml").write_bytes(plistlib.dumps({"Images": [{"ROIs": rois}]}))
    return root


# ---------------------------------------------------------------------------- pre-cut crops (roi_patches)
# The columns of a CBIS-DDSM-derived crop set as shared (lesion/ + healthy/ + labels.csv), in its order.
ROI_COLUMNS = [
    "file",
    "pathology",
    "abnormality",
    "laterality",
    "view",
    "patient_id",
    "abnormality_id",
    "kind",
    "mass_shape",
    "mass_margins",
    "birads",
    "subtlety",
    "breast_density",
    "box_side_px",
    "tile_coverage",
    "sha256",
]
ROI_SIDE = 96  # crops larger than the tiny run's 64 px: 02 shrinks them with area interpolation


def roi_pair(
    patient: str, side: str, view: str, pathology: str, finding: int = 1, kind: str = "lesion"
) -> list:
    """A lesion crop and the healthy crop cut beside it from the same mammogram, as such sets pair them."""
    name = f"{patient}_{side}_{view}_abn{finding}"
    common = {"laterality": side, "view": view, "patient_id": patient, "abnormality_id": finding}
    lesion = {
        "file": f"lesion/{name}_{pathology}.png",
        "pathology": pathology,
        "abnormality": "mass",
        "kind": kind,
    }
    healthy = {"file": f"healthy/{name}_healthy.png", "pathology": "NORMAL", "abnormality": "none"}
    extra = {"mass_shape": "IRREGULAR", "mass_margins": "SPICULATED", "birads": 4, "subtlety": 3}
    return [{**common, **lesion, **extra}, {**common, **healthy, "kind": "healthy"}]


ROI_ROWS = [
    *roi_pair("P_00001", "LEFT", "CC", "MALIGNANT"),  # one mass seen in both views:
    *roi_pair("P_00001", "LEFT", "MLO", "MALIGNANT"),  # four crops of one woman
    *roi_pair("P_00002", "RIGHT", "CC", "BENIGN", kind="Lesion"),  # kind in any case
    *roi_pair("P_00003", "LEFT", "MLO", "BENIGN_WITHOUT_CALLBACK"),
    *roi_pair("P_00004", "RIGHT", "CC", "MALIGNANT"),
    *roi_pair("P_00004", "RIGHT", "CC", "BENIGN", finding=2),  # a second mass of the same breast
]


def roi_crop(seed: int, lesion: bool, shape: tuple[int, int] = (ROI_SIDE, ROI_SIDE)) -> np.ndarray:
    """An 8-bit crop: tissue texture (values spread over 20-230), with a bright blob in the middle for a
    lesion; never constant."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.normal(110, 40, shape).astype(np.float32), (0, 0), 2.0)
    if lesion:
        yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
        distance = np.hypot(yy - shape[0] / 2, xx - shape[1] / 2) / (0.2 * min(shape))
        texture += 90 * np.exp(-(distance**2))
    return np.clip(np.round(texture), 20, 230).astype(np.uint8)


def write_roi_patches(root: Path, extra_patients: int = 0) -> Path:
    """labels.csv with the crop set's columns (:data:`ROI_ROWS`: 4 patients, 6 lesion crops -- a CC and an
    MLO crop of one mass of P_00001 -- each with its healthy crop) and the crops as 96 x 96 8-bit PNGs.
    ``extra_patients`` adds patients P_1xxxx, each with a malignant mass in CC and MLO and their healthy crops
    (enough crops for 02's split and 06's study)."""
    rows = list(ROI_ROWS)
    for number in range(extra_patients):
        patient, side = f"P_1{number:04d}", ("LEFT", "RIGHT")[number % 2]
        rows += [*roi_pair(patient, side, "CC", "MALIGNANT"), *roi_pair(patient, side, "MLO", "MALIGNANT")]
    for number, row in enumerate(rows):
        path = root / str(row["file"])
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), roi_crop(number, str(row["kind"]).lower() == "lesion"))
    write_rows(root / "labels.csv", ROI_COLUMNS, rows)
    return root
