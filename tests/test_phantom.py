"""mammogan_lib.data.phantom: the synthetic CBIS-DDSM-layout dataset.

One small phantom (40 images at 512 rows) is written once per module and inspected the way downstream code
will: through the CSVs, dicom_info.csv and the JPEG folders, never through the generator's internals
(except ``phantom_truth.csv``, the ground truth it writes for tests).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mammogan_lib.data import phantom
from mammogan_lib.data.phantom import FindingSpec, PhantomSpec, render_mammogram, write_phantom
from tests.cbis_columns import CALC_COLUMNS, MASS_COLUMNS

SPEC = PhantomSpec(n_images=40, height=512, seed=3, n_healthy=6, n_healthy_other_source=6)
DICOM_INFO_COLUMNS = [
    "file_path",
    "image_path",
    "AccessionNumber",
    "BitsAllocated",
    "BitsStored",
    "BodyPartExamined",
    "Columns",
    "ContentDate",
    "ContentTime",
    "ConversionType",
    "HighBit",
    "InstanceNumber",
    "LargestImagePixelValue",
    "Laterality",
    "Modality",
    "PatientBirthDate",
    "PatientID",
    "PatientName",
    "PatientOrientation",
    "PatientSex",
    "PhotometricInterpretation",
    "PixelRepresentation",
    "ReferringPhysicianName",
    "Rows",
    "SOPClassUID",
    "SOPInstanceUID",
    "SamplesPerPixel",
    "SeriesDescription",
    "SeriesInstanceUID",
    "SmallestImagePixelValue",
    "StudyDate",
    "StudyID",
    "StudyInstanceUID",
    "StudyTime",
]
META_COLUMNS = [
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "Modality",
    "SeriesDescription",
    "BodyPartExamined",
    "SeriesNumber",
    "Collection",
    "Visibility",
    "ImageCount",
]
CASE_CSVS = {
    "mass_case_description_train_set.csv": MASS_COLUMNS,
    "mass_case_description_test_set.csv": MASS_COLUMNS,
    "calc_case_description_train_set.csv": CALC_COLUMNS,
    "calc_case_description_test_set.csv": CALC_COLUMNS,
}
UID = re.compile(r"^1\.3\.6\.1\.4\.1\.9590\.100\.1\.2\.\d{20,}$")
CASE_PATH = re.compile(
    r"^(Mass|Calc)-(Training|Test)_P_\d{5}_(LEFT|RIGHT)_(CC|MLO)(_\d+)?/[\d.]+/[\d.]+/00000[01]\.dcm\n?$"
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("phantom") / "cbis"
    summary = write_phantom(path, SPEC, workers=1)
    assert summary.n_full_images == SPEC.n_images and summary.root == path
    return path


def header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def cases(root: Path) -> pd.DataFrame:
    frames = [read(root / "csv" / name).assign(csv=name) for name in CASE_CSVS]
    return pd.concat(frames, ignore_index=True)


def series_of(listed: str) -> str:
    return listed.strip().split("/")[-2]


def dicom_info(root: Path) -> pd.DataFrame:
    return read(root / "csv" / "dicom_info.csv")


def image_of_series(root: Path, info: pd.DataFrame, uid: str) -> np.ndarray:
    """The JPEG of series ``uid``, found the way a loader finds it: dicom_info's image_path."""
    (listed,) = info.loc[info["SeriesInstanceUID"] == uid, "image_path"]
    image = cv2.imread(str(root / listed.removeprefix("CBIS-DDSM/")), cv2.IMREAD_UNCHANGED)
    assert image is not None, listed
    return image


# ---------------------------------------------------------------------------------------------------- layout


def test_csv_files_have_exactly_the_real_columns(root: Path) -> None:
    assert header(root / "csv" / "dicom_info.csv") == DICOM_INFO_COLUMNS
    assert header(root / "csv" / "meta.csv") == META_COLUMNS
    for name, columns in CASE_CSVS.items():
        assert header(root / "csv" / name) == columns, name
    # the real difference between the mass and calc CSVs
    assert "breast_density" in MASS_COLUMNS and "breast density" in CALC_COLUMNS
    assert "breast density" not in header(root / "csv" / "mass_case_description_train_set.csv")
    assert "breast_density" not in header(root / "csv" / "calc_case_description_train_set.csv")
    assert (root / "README.txt").read_text().startswith(phantom.README_MARKER)


def test_case_values_and_paths(root: Path) -> None:
    table = cases(root)
    assert len(table) >= SPEC.n_images
    assert set(table["left or right breast"]) == {"LEFT", "RIGHT"} and set(table["image view"]) == {
        "CC",
        "MLO",
    }
    assert set(table["pathology"]) <= {"MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK"}
    assert set(table["abnormality type"]) == {"mass", "calcification"}
    assert table["patient_id"].str.fullmatch(r"P_\d{5}").all()
    assert set(table["assessment"].astype(int)) <= set(range(6)) and set(
        table["subtlety"].astype(int)
    ) <= set(range(1, 6))
    for column in ("image file path", "cropped image file path", "ROI mask file path"):
        assert table[column].str.match(CASE_PATH).all(), column
        assert all(UID.match(part) for path in table[column] for part in path.strip().split("/")[1:3])
    for column in ("cropped image file path", "ROI mask file path"):
        assert table[column].str.endswith("\n").mean() > 0.6, column
    assert table["image file path"].str.endswith("\n").any()
    # every path's prefix matches its CSV; the crop folder is the case folder + _<abnormality id>
    for _, row in table.iterrows():
        prefix = (
            ("Mass" if row["csv"].startswith("mass") else "Calc")
            + "-"
            + ("Training" if "train" in row["csv"] else "Test")
        )
        folder = f"{prefix}_{row['patient_id']}_{row['left or right breast']}_{row['image view']}"
        assert row["image file path"].startswith(folder + "/")
        assert row["cropped image file path"].startswith(f"{folder}_{row['abnormality id']}/")


def test_every_full_image_has_a_jpeg_folder_and_a_dicom_info_row(root: Path) -> None:
    table, info = cases(root), dicom_info(root)
    full = table["image file path"].map(series_of).unique()
    assert len(full) == SPEC.n_images
    for uid in full:
        assert (root / "jpeg" / uid).is_dir()
        rows = info[info["SeriesInstanceUID"] == uid]
        assert len(rows) == 1
        assert re.fullmatch(rf"CBIS-DDSM/jpeg/{re.escape(uid)}/1-\d+\.jpg", rows["image_path"].iloc[0])
        image = image_of_series(root, info, uid)
        assert image.dtype == np.uint8 and image.ndim == 2 and image.shape[0] == SPEC.height
        assert 0.55 <= image.shape[1] / image.shape[0] <= 0.65
        assert (int(rows["Rows"].iloc[0]), int(rows["Columns"].iloc[0])) == image.shape
    assert len(info) == len(full) + 2 * len(table)  # one row per JPEG: full images, crops, masks
    assert set(read(root / "csv" / "meta.csv")["SeriesInstanceUID"]) == set(info["SeriesInstanceUID"])


def test_crops_and_masks_are_separate_series_told_apart_only_by_dicom_info(root: Path) -> None:
    table, info = cases(root), dicom_info(root)
    described = info.set_index("SeriesInstanceUID")["SeriesDescription"]
    crops = table["cropped image file path"].map(series_of)
    masks = table["ROI mask file path"].map(series_of)
    full = set(table["image file path"].map(series_of))
    assert not (set(crops) & set(masks)) and not ((set(crops) | set(masks)) & full)
    assert (crops.map(described) == "cropped images").all() and (
        masks.map(described) == "ROI mask images"
    ).all()
    crop_numbers = table["cropped image file path"].str.strip().str[-10:]
    assert set(crop_numbers) == {"000000.dcm", "000001.dcm"}  # file names do not tell crop from mask
    for crop_uid, mask_uid, full_path in list(zip(crops, masks, table["image file path"], strict=True))[:12]:
        full_image = image_of_series(root, info, series_of(full_path))
        mask = image_of_series(root, info, mask_uid)
        crop = image_of_series(root, info, crop_uid)
        assert mask.shape == full_image.shape and set(np.unique(mask > 127)) == {False, True}
        assert crop.shape[0] < full_image.shape[0] / 2 and crop.shape[1] < full_image.shape[1]


def test_real_data_quirks(root: Path) -> None:
    table, info = cases(root), dicom_info(root)
    full = set(table["image file path"].map(series_of))
    descriptions = info.loc[info["SeriesInstanceUID"].isin(full), "SeriesDescription"]
    assert 1 <= (descriptions == "").sum() <= 0.15 * len(full)
    assert set(descriptions) == {"", "full mammogram images"}
    per_image = table.groupby(table["image file path"].map(series_of))
    assert (per_image.size() > 1).sum() >= 3  # several findings on one image
    assert (per_image["abnormality type"].nunique() > 1).sum() >= 1  # an image in both the mass and calc CSVs
    per_patient = (
        table.assign(image=table["image file path"].map(series_of)).groupby("patient_id")["image"].nunique()
    )
    assert per_patient.between(1, 4).all()
    train = set(table.loc[table["csv"].str.contains("train"), "patient_id"])
    test = set(table.loc[table["csv"].str.contains("test"), "patient_id"])
    assert train and test and not (train & test)  # split by patient


def test_malignant_fraction_and_truth(root: Path) -> None:
    table, truth = cases(root), read(root / "phantom_truth.csv")
    malignant = table.groupby(table["image file path"].map(series_of))["pathology"].apply(
        lambda p: "MALIGNANT" in set(p)
    )
    assert malignant.sum() == round(SPEC.malignant_fraction * SPEC.n_images)
    assert len(truth) == len(table)
    per_image = truth.drop_duplicates("SeriesInstanceUID")
    assert per_image["cut_contour"].astype(int).sum() == round(SPEC.cut_contour_fraction * SPEC.n_images)
    assert set(truth["style"]) == {"film"}


def test_loaders_read_the_phantom_without_problems(root: Path) -> None:
    from mammogan_lib.data.datasets import load_dataset

    loaded = load_dataset(root)
    assert loaded.layout == "kaggle_jpeg"
    assert len(loaded.problems) == 0, loaded.problems.head().to_dict("records")
    assert len(loaded.images) == SPEC.n_images and (loaded.images["image_path"] != "").all()
    for folder in ("healthy", "healthy_other_source"):
        healthy = load_dataset(root / folder)
        assert len(healthy.problems) == 0 and len(healthy.images) == 6
        assert set(healthy.images["pathology"]) == {"NORMAL"}


# ---------------------------------------------------------------------------------------------------- images


def ring_around(mask: np.ndarray, width: int, gap: int = 2) -> np.ndarray:
    def grow(k: int) -> np.ndarray:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        return cv2.dilate(mask.astype(np.uint8), kernel) > 0

    return grow(gap + width) & ~grow(gap)


def test_lesions_are_where_the_csv_says_and_brighter_than_around(root: Path) -> None:
    table, info = cases(root), dicom_info(root)
    lesion_masks: dict[str, list[np.ndarray]] = {}
    for _, row in table.iterrows():
        mask = image_of_series(root, info, series_of(row["ROI mask file path"])) > 127
        lesion_masks.setdefault(series_of(row["image file path"]), []).append(mask)
    checked = {"mass": 0, "calcification": 0}
    for _, row in table.iterrows():
        uid = series_of(row["image file path"])
        full = image_of_series(root, info, uid).astype(np.float32)
        mask = image_of_series(root, info, series_of(row["ROI mask file path"])) > 127
        assert mask.sum() > 10
        others = np.zeros_like(mask)
        for other in lesion_masks[uid]:
            others |= other
        ring = ring_around(mask, max(4, int(np.sqrt(mask.sum() / np.pi)))) & ~others & (full > 25)
        inside, around = full[mask], full[ring]
        if row["abnormality type"] == "mass":
            assert inside.mean() > around.mean() + 5, (row["pathology"], inside.mean(), around.mean())
        else:  # a cluster of specks: its brightest pixels stand out
            assert np.sort(inside)[-5:].mean() > np.median(around) + 20
        assert full[mask].mean() > 40  # on the breast, not on the film background
        checked[row["abnormality type"]] += 1
    assert checked["mass"] >= 5 and checked["calcification"] >= 5


def test_truth_centres_lie_in_the_roi_masks(root: Path) -> None:
    info, truth = dicom_info(root), read(root / "phantom_truth.csv")
    for _, row in truth.iterrows():
        mask = image_of_series(root, info, row["roi_series_uid"]) > 127
        ys, xs = np.nonzero(mask)
        x, y, radius = float(row["center_x"]), float(row["center_y"]), float(row["radius"])
        assert xs.min() <= x <= xs.max() and ys.min() <= y <= ys.max()
        assert 0.5 * np.sqrt(mask.sum() / np.pi) <= radius <= 2 * np.sqrt(mask.sum() / np.pi)


def full_images(root: Path) -> list[tuple[pd.Series, np.ndarray]]:
    truth = read(root / "phantom_truth.csv").drop_duplicates("SeriesInstanceUID")
    return [
        (row, cv2.imread(str(root / row["image_path"]), cv2.IMREAD_GRAYSCALE)) for _, row in truth.iterrows()
    ]


def test_laterality_puts_the_breast_on_the_chest_wall_side(root: Path) -> None:
    for row, image in full_images(root):
        breast = image > 25  # breast versus film background
        half = image.shape[1] // 2
        left, right = breast[:, :half].sum(), breast[:, half:].sum()
        assert (left > right) if row["laterality"] == "LEFT" else (right > left), row["SeriesInstanceUID"]


def test_mlo_views_have_a_bright_pectoral_muscle_in_the_upper_chest_wall_corner(root: Path) -> None:
    count = 0
    for row, image in full_images(root):
        if row["view"] != "MLO":
            assert float(row["pectoral_width"]) == 0
            continue
        image = image if row["laterality"] == "LEFT" else image[:, ::-1]  # chest wall on the left
        h, w = image.shape
        pw, ph, bow = float(row["pectoral_width"]), float(row["pectoral_height"]), float(row["pectoral_bow"])
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        edge = pw * np.clip(1 - ys / ph, 0, 1) ** bow
        inside = cv2.erode((image > 40).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        upper = (ys < ph) & inside
        muscle = upper & (xs < 0.7 * edge)
        beside = upper & (xs > edge + 0.05 * w) & (xs < edge + 0.3 * w)
        assert pw > 0.12 * w and muscle.sum() > 0.02 * h * w and beside.sum() > 100
        assert np.median(image[muscle]) > np.median(image[beside]) + 5
        assert ph < 0.75 * h and pw < 0.6 * w  # a corner triangle, not the whole breast
        count += 1
    assert count >= 5


def breast_touches(image: np.ndarray, laterality: str) -> set[str]:
    """Which non-chest-wall edges the breast touches (film borders and labels ignored)."""
    image = image if laterality == "LEFT" else image[:, ::-1]
    h, w = image.shape
    frame = max(4, h // 64)
    inner = image[frame:-frame, : w - frame] > 40
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inner.astype(np.uint8))
    breast = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    touched = set()
    if breast[0, w // 8 :].any():
        touched.add("top")
    if breast[-1, w // 8 :].any():
        touched.add("bottom")
    if breast[:, -1].any():
        touched.add("far")
    return touched


def test_cut_contours_leave_the_image_and_the_others_are_closed(root: Path) -> None:
    for row, image in full_images(root):
        touched = breast_touches(image, row["laterality"])
        if row["cut_contour"] == "1":
            assert touched, row["SeriesInstanceUID"]
        else:
            assert not touched, (row["SeriesInstanceUID"], touched)


def test_healthy_sets(root: Path) -> None:
    for folder, dtype, count in (("healthy", np.uint8, 6), ("healthy_other_source", np.uint16, 6)):
        assert header(root / folder / "labels.csv") == [
            "file",
            "pathology",
            "abnormality",
            "laterality",
            "view",
        ]
        labels = read(root / folder / "labels.csv")
        assert (
            len(labels) == count
            and set(labels["pathology"]) == {"NORMAL"}
            and set(labels["abnormality"]) == {"none"}
        )
        assert set(labels["laterality"]) <= {"LEFT", "RIGHT"} and set(labels["view"]) <= {"CC", "MLO"}
        for _, row in labels.iterrows():
            image = cv2.imread(str(root / folder / row["file"]), cv2.IMREAD_UNCHANGED)
            assert image.dtype == dtype and image.shape[0] == SPEC.height
            if dtype == np.uint16:
                assert image.max() > 255 * 16  # really uses the 16-bit range
                assert (image == 0).mean() > 0.2  # digital: black background, no film base, no labels
            else:
                assert (image == 0).mean() < 0.2  # film: a film base with grain


def radial_slope(patch: np.ndarray, fmin: float = 0.02, fmax: float = 0.2) -> float:
    """Log-log slope of the radially averaged power spectrum of a detrended, windowed square patch."""
    n = patch.shape[0]
    yy, xx = (np.mgrid[0:n, 0:n] / n) - 0.5
    design = np.stack([np.ones_like(xx), xx, yy, xx * xx, yy * yy, xx * yy], -1).reshape(-1, 6)
    coef, *_ = np.linalg.lstsq(design, patch.reshape(-1), rcond=None)
    residual = patch - (design @ coef).reshape(n, n)
    window = np.outer(np.hanning(n), np.hanning(n))
    power = np.abs(np.fft.fft2(residual * window)) ** 2
    freq = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n)))
    edges = np.arange(1, n // 2) / n
    index = np.digitize(freq.ravel(), edges)
    sums = np.bincount(index, power.ravel(), len(edges) + 1)[1 : len(edges)]
    counts = np.bincount(index, minlength=len(edges) + 1)[1 : len(edges)]
    centres = (edges[:-1] + edges[1:]) / 2
    keep = (centres >= fmin) & (centres <= fmax) & (counts > 0)
    return float(np.polyfit(np.log(centres[keep]), np.log(sums[keep] / counts[keep]), 1)[0])


def test_texture_has_a_power_law_spectrum_with_beta_near_3() -> None:
    noise = phantom.power_law_noise(np.random.default_rng(0), (512, 512), beta=3.0)
    assert abs(radial_slope(noise[:256, :256].astype(np.float64), 0.01, 0.25) + 3) < 0.3
    slopes, n = [], 192
    for seed in range(40):
        density = 1 + seed % 4
        image, _ = render_mammogram(
            np.random.default_rng(seed), 1024, "CC", "LEFT", [], False, density=density
        )
        dist = cv2.distanceTransform((image > 30).astype(np.uint8), cv2.DIST_L2, 5)
        dist[:, : n // 2] = 0  # keep the patch inside the image, away from the chest-wall edge
        dist[: n // 2], dist[-n // 2 :] = 0, 0
        if dist.max() < 0.75 * n:
            continue  # a breast too small for a patch
        y, x = np.unravel_index(np.argmax(dist), dist.shape)
        patch = image[y - n // 2 : y + n // 2, x - n // 2 : x + n // 2].astype(np.float64)
        assert (patch > 30).all()  # inside the breast
        slopes.append(radial_slope(patch))
        if len(slopes) == 6:
            break
    assert len(slopes) == 6
    assert all(-3.8 < s < -2.2 for s in slopes), slopes
    assert -3.4 < np.mean(slopes) < -2.6, slopes


# ---------------------------------------------------------------------------------------------------- API


def test_same_spec_same_bytes_and_pixels_whatever_the_workers(tmp_path: Path) -> None:
    spec = PhantomSpec(
        n_images=40, height=128, seed=11, n_healthy=4, n_healthy_other_source=4
    )  # 48 tasks: a pool
    first, second = tmp_path / "a", tmp_path / "b"
    write_phantom(first, spec, workers=1)
    write_phantom(second, spec, workers=2)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for relative in files:
        if relative.suffix in (".csv", ".txt"):
            assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
        else:
            a = cv2.imread(str(first / relative), cv2.IMREAD_UNCHANGED)
            b = cv2.imread(str(second / relative), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(a, b), relative
    other = tmp_path / "c"
    write_phantom(
        other, PhantomSpec(n_images=40, height=128, seed=12, n_healthy=4, n_healthy_other_source=4), 1
    )
    assert (other / "csv" / "dicom_info.csv").read_bytes() != (first / "csv" / "dicom_info.csv").read_bytes()
    first_png = sorted((first / "healthy" / "images").iterdir())[0]
    other_png = sorted((other / "healthy" / "images").iterdir())[0]
    assert not np.array_equal(cv2.imread(str(first_png), 0), cv2.imread(str(other_png), 0))


def test_render_is_pure_and_returns_one_mask_per_finding() -> None:
    findings = [
        FindingSpec("mass", "MALIGNANT", "IRREGULAR", "SPICULATED", 4),
        FindingSpec("calcification", "BENIGN", "COARSE", "CLUSTERED", 3),
    ]
    a, masks = render_mammogram(np.random.default_rng(7), 256, "MLO", "RIGHT", findings, True, density=3)
    b, _ = render_mammogram(np.random.default_rng(7), 256, "MLO", "RIGHT", findings, True, density=3)
    assert np.array_equal(a, b) and a.dtype == np.uint8 and a.shape[0] == 256
    assert len(masks) == 2 and all(m.dtype == bool and m.shape == a.shape and m.any() for m in masks)
    digital, _ = render_mammogram(np.random.default_rng(7), 256, "CC", "LEFT", [], False, "digital")
    assert digital.dtype == np.uint16
    with pytest.raises(ValueError, match="view"):
        render_mammogram(np.random.default_rng(0), 256, "ML", "LEFT", [], False)


def test_ensure_phantom_reuses_a_matching_phantom_and_refuses_foreign_folders(tmp_path: Path) -> None:
    spec = PhantomSpec(n_images=3, height=128, n_healthy=1, n_healthy_other_source=1)
    root = phantom.ensure_phantom(tmp_path / "p", spec, workers=1)
    stamp = (root / "csv" / "dicom_info.csv").stat().st_mtime_ns
    assert phantom.ensure_phantom(root, spec, workers=1) == root
    assert (root / "csv" / "dicom_info.csv").stat().st_mtime_ns == stamp
    tiles = phantom.preview_grid_images(root, n=3)
    assert len(tiles) == 3 and {tile.shape for tile in tiles} == {(256, 166)}
    assert all(tile.dtype == np.uint8 for tile in tiles)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing"):
        write_phantom(foreign, spec, workers=1)
    assert (foreign / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_images", 0),
        ("height", 10),
        ("seed", -1),
        ("malignant_fraction", 1.5),
        ("cut_contour_fraction", -0.1),
        ("n_healthy", -1),
        ("n_healthy_other_source", 2.5),
        ("n_images", True),
    ],
)
def test_spec_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"PhantomSpec\.{field}: expected"):
        PhantomSpec(**{field: value})
