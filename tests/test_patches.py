"""The lesion-patch mode of 02: patch geometry, finding locations per layout, the patch cache, the split."""

import plistlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mammogan_lib.core import config
from mammogan_lib.data import imaging, patches, preprocess
from mammogan_lib.data.datasets import load_dataset
from mammogan_lib.data.datasets.locations import (
    FindingLocation,
    box_of_mask,
    cbis_mask_locations,
    finding_locations,
    mias_locations,
    read_mask_box,
    vindr_locations,
)
from mammogan_lib.data.phantom import PhantomSpec, write_phantom
from tests.public_layouts import write_inbreast, write_mini_mias, write_vindr_mammo

GEOMETRY = patches.PatchGeometry(resolution=32, scale=2.0, min_side=16, at_border="shift")


def centre(box):
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def parse_box(text: str) -> tuple[int, int, int, int]:
    return tuple(int(v) for v in text.split())


# ------------------------------------------------------------------------------------------------ geometry


def test_a_patch_is_centred_on_the_finding_with_a_side_of_scale_times_its_extent():
    box = (100, 200, 120, 230)  # 20 x 30 pixels
    window = patches.patch_window(box, (1000, 800), GEOMETRY)
    assert window[2] - window[0] == window[3] - window[1] == 60  # 2 x the longer side
    assert centre(window) == centre(box)


def test_a_small_finding_gets_the_minimum_side_and_a_huge_one_is_clipped_to_the_image():
    geometry = patches.PatchGeometry(resolution=32, scale=2.0, min_side=50)
    small = patches.patch_window((300, 300, 304, 302), (1000, 800), geometry)
    assert small[2] - small[0] == 50 and abs(centre(small)[0] - 302) <= 0.5
    huge = patches.patch_window((100, 100, 700, 700), (1000, 800), geometry)
    assert huge[2] - huge[0] == 800 and huge[1] == 0 and huge[3] == 800  # the image's shorter side


def test_at_the_border_a_patch_is_shifted_inside_keeping_the_finding_or_skipped():
    box = (10, 390, 30, 400)  # top right corner of a 500 x 400 image
    shifted = patches.patch_window(box, (500, 400), GEOMETRY)
    assert shifted == (0, 360, 40, 400)
    assert shifted[0] <= box[0] and shifted[1] <= box[1] and box[2] <= shifted[2] and box[3] <= shifted[3]
    skip = patches.PatchGeometry(resolution=32, scale=2.0, min_side=16, at_border="skip")
    assert patches.patch_window(box, (500, 400), skip) is None
    assert patches.patch_window((200, 200, 220, 220), (500, 400), skip) == (190, 190, 230, 230)


def test_a_box_is_clipped_to_the_image_and_one_outside_is_none():
    assert patches.clip_box((-5, -5, 10, 10), (100, 100)) == (0, 0, 10, 10)
    assert patches.clip_box((120, 0, 130, 10), (100, 100)) is None


def test_background_windows_are_breast_and_never_overlap_a_finding():
    mask = np.zeros((200, 200), bool)
    mask[:, :150] = True
    avoid = [(40, 40, 90, 90), (120, 20, 160, 70)]
    rng = np.random.default_rng(0)
    for _ in range(50):
        window = patches.background_window(30, mask, avoid, rng, min_breast=0.5)
        assert window is not None and window[2] - window[0] == 30
        assert not any(patches.overlaps(window, box) for box in avoid)
        assert patches.breast_fraction(mask, window) >= 0.5
    assert all(
        patches.breast_fraction(mask, patches.background_window(30, mask, avoid, rng))
        >= patches.BREAST_FRACTION
        for _ in range(20)
    )
    assert patches.background_window(30, mask, [(0, 0, 200, 200)], rng) is None


def test_a_patch_array_is_in_minus_one_one_and_mirrored_when_asked():
    pixels = np.zeros((40, 40), np.float32)
    pixels[10:30, 10:20] = 0.5  # breast on the left half of the window
    normal = patches.patch_array(pixels, (10, 10, 30, 30), False, 0.5, 8)
    mirrored = patches.patch_array(pixels, (10, 10, 30, 30), True, 0.5, 8)
    assert normal.shape == (8, 8) and normal.dtype == np.float32
    assert normal[:, 0].min() == 1.0 and normal[:, -1].max() == -1.0
    np.testing.assert_array_equal(mirrored, normal[:, ::-1])


# ------------------------------------------------------------------------------------------ one image


def write_breast(path: Path, lesion_centre: tuple[int, int], shape=(400, 300), chest_wall="left") -> Path:
    """A breast (a half ellipse on the chest-wall side) with a bright disc lesion at ``lesion_centre``."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    columns = xx if chest_wall == "left" else shape[1] - 1 - xx
    inside = ((yy - shape[0] / 2) / (0.45 * shape[0])) ** 2 + (columns / (0.8 * shape[1])) ** 2 < 1
    image = np.where(inside, 110.0, 5.0) + np.random.default_rng(0).normal(0, 3, shape)
    lesion = (yy - lesion_centre[0]) ** 2 + (xx - lesion_centre[1]) ** 2 < 8**2
    image[lesion & inside] = 230
    assert cv2.imwrite(str(path), np.clip(image, 0, 255).astype(np.uint8))
    return path


def lesion_task(path: Path, selected, others=(), geometry=GEOMETRY) -> patches.PatchTask:
    return patches.PatchTask("img", str(path), tuple(selected), tuple(others), geometry)


@pytest.mark.parametrize("chest_wall", ["left", "right"])
def test_the_lesion_is_at_the_centre_of_its_patch_and_the_chest_wall_on_the_left(tmp_path, chest_wall):
    centre_rc = (150, 90) if chest_wall == "left" else (150, 210)
    path = write_breast(tmp_path / "a.png", centre_rc, chest_wall=chest_wall)
    box = (centre_rc[0] - 8, centre_rc[1] - 8, centre_rc[0] + 9, centre_rc[1] + 9)
    records = patches.cut_patches(lesion_task(path, [FindingLocation("img", "mass", "1", box=box)]))
    lesion = next(r for r in records if r.kind == "lesion")
    assert lesion.array is not None and lesion.flipped == (chest_wall == "right")
    window_centre = centre(parse_box(lesion.window))
    assert all(
        abs(w - b) <= 0.5 for w, b in zip(window_centre, centre(box), strict=True)
    )  # odd box, even side
    assert lesion.centre_offset <= 0.71
    middle = lesion.array[12:20, 12:20]
    corners = lesion.array[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert middle.min() > corners.max()  # the bright disc is in the middle
    background = next(r for r in records if r.kind == "background")
    assert background.array is not None
    assert not patches.overlaps(parse_box(background.window), box)


def test_every_selected_finding_is_a_patch_or_skipped_with_its_reason_and_counts_add_up(tmp_path):
    path = write_breast(tmp_path / "a.png", (150, 90))
    skip = patches.PatchGeometry(resolution=32, scale=2.0, min_side=16, at_border="skip")
    selected = [
        FindingLocation("img", "mass", "1", box=(142, 82, 159, 99)),
        FindingLocation("img", "mass", "1", part=1, box=(145, 85, 150, 90)),  # inside the first one's patch
        FindingLocation("img", "mass", "2", box=(0, 290, 10, 300)),  # at the corner: the patch crosses it
        FindingLocation("img", "calcification", "1", box=(500, 0, 510, 10)),  # below the 400-row image
        FindingLocation("img", "calcification", "2", reason="no centre given"),
    ]
    others = [FindingLocation("img", "mass", "3", box=(250, 40, 270, 60))]
    task = lesion_task(path, selected, others, skip)
    folder = patches.ensure_patch_cache([task], tmp_path / "cache", workers=1)
    summary = preprocess.files.read_json(folder / "summary.json")
    index = patches.load_patch_index(folder)
    assert list(index["reason_code"]) == [
        "",
        "inside_other_patch",
        "crosses_border",
        "outside_image",
        "no_location",
    ]
    assert index.loc[4, "error"] == "no centre given"
    assert summary["regions"] == len(selected) == summary["written"] + summary["skipped"]
    assert summary["written"] == 1 and sum(summary["skipped_by_reason"].values()) == summary["skipped"] == 4
    assert summary["findings"] == 4  # mass 1 (two regions), mass 2, calcifications 1 and 2
    images, cached_index = preprocess.load_cache(folder)
    assert images.shape == (1, 32, 32) and (cached_index["array_row"] >= 0).sum() == 1
    background, background_index = patches.load_background(folder)
    assert len(background) == 0 and list(background_index["reason_code"]) == [
        "no_free_area"
    ]  # calc 2's place


def test_an_image_with_a_finding_of_unknown_place_gives_no_non_tumour_patch(tmp_path):
    path = write_breast(tmp_path / "a.png", (150, 90))
    selected = [FindingLocation("img", "mass", "1", box=(142, 82, 159, 99))]
    others = [FindingLocation("img", "calcification", "1", reason="no centre given")]
    records = patches.cut_patches(lesion_task(path, selected, others))
    background = [r for r in records if r.kind == "background"]
    assert [r.reason_code for r in background] == ["no_free_area"] and background[0].array is None
    assert "calcification 1 is unknown" in background[0].error


def test_an_unreadable_image_skips_its_findings_with_the_reason(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    records = patches.cut_patches(
        lesion_task(tmp_path / "broken.png", [FindingLocation("img", "mass", "1", box=(0, 0, 5, 5))])
    )
    assert [(r.reason_code, r.kind) for r in records] == [("unreadable_image", "lesion")]


# ------------------------------------------------------------------------------------- the held-out split


def test_a_patients_patches_are_all_on_one_side_of_the_held_out_split():
    manifest = pd.DataFrame(
        {"image_id": [f"im{i}" for i in range(40)], "patient_id": [f"p{i // 4}" for i in range(40)]}
    )
    rows = [
        {"image_id": f"im{i}:mass:{f}:0", "source_image_id": f"im{i}", "array_row": 3 * i + f}
        for i in range(40)
        for f in range(3)
    ]
    index = pd.DataFrame(rows)
    split = preprocess.split_table(index, patches.patch_patients(index, manifest), 0.3)
    assert split["patient_id"].str.startswith("p").all()
    assert (split.groupby("patient_id")["split"].nunique() == 1).all()
    assert 0 < (split["split"] == "heldout").sum() < len(split)
    whole_images = preprocess.split_table(
        pd.DataFrame({"image_id": manifest["image_id"], "array_row": range(40)}),
        manifest.set_index("image_id")["patient_id"],
        0.3,
    )
    heldout_patients = set(whole_images.loc[whole_images["split"] == "heldout", "patient_id"])
    assert heldout_patients == set(split.loc[split["split"] == "heldout", "patient_id"])  # as for full images


def test_each_patch_is_labelled_with_its_own_finding_type_for_conditional_training():
    from mammogan_lib.data import conditioning

    index = pd.DataFrame(
        {
            "image_id": ["im0:mass:1:0", "im0:calcification:2:0", "im1:mass:1:0"],
            "source_image_id": ["im0", "im0", "im1"],
            "finding_type": ["mass", "calcification", "mass"],
            "array_row": [0, 1, 2],
        }
    )
    manifest = pd.DataFrame({"image_id": ["im0", "im1"], "patient_id": ["p0", "p1"]})
    split = preprocess.split_table(index, patches.patch_patients(index, manifest), 0.5)
    labelled, record = conditioning.label_split(split, patches.finding_types(index))
    by_patch = dict(zip(labelled["image_id"], labelled["finding_class"], strict=True))
    assert by_patch == {
        "im0:mass:1:0": "mass",
        "im0:calcification:2:0": "calcification",
        "im1:mass:1:0": "mass",
    }
    assert record["per_class"] == {"mass": 2, "calcification": 1} and record["unlabelled"] == 0


# ------------------------------------------------------------------------- locations of the public layouts


def test_mini_mias_centres_and_radii_become_boxes_with_rows_from_the_top(tmp_path):
    locations = {(loc.image_id, loc.finding_id): loc for loc in mias_locations(write_mini_mias(tmp_path))}
    first = locations[("mdb001", "1")]
    assert first.box == (1024 - 425 - 197, 535 - 197, 1024 - 425 + 197 + 1, 535 + 197 + 1)
    assert centre(first.box) == (1024 - 425 + 0.5, 535 + 0.5) and first.frame == (1024, 1024)
    assert locations[("mdb005", "2")].box[1] == 500 - 26  # the second line of one image is its finding 2
    assert (
        locations[("mdb059", "1")].box is None and "no centre and radius" in locations[("mdb059", "1")].reason
    )
    assert ("mdb003", "") not in locations  # NORM lines are no finding


def test_vindr_boxes_are_read_for_every_type_a_row_lists(tmp_path):
    locations = vindr_locations(write_vindr_mammo(tmp_path))
    first = [loc for loc in locations if loc.image_id == "i1" and loc.finding_id == "1"]
    assert {loc.finding_type for loc in first} == {"mass", "calcification"}
    assert {loc.box for loc in first} == {(2, 1, 20, 10)}  # ymin, xmin, ymax, xmax
    assert all(loc.image_id in {"i1", "i2"} for loc in locations)  # 'No Finding' rows have none


def test_inbreast_roi_outlines_are_the_regions_of_their_finding(tmp_path):
    root = write_inbreast(tmp_path)
    assert all(loc.box is None and "Point_px" in loc.reason for loc in finding_locations(root, "inbreast"))
    rois = [
        {"Name": "Mass", "Point_px": ["(10.5, 20.0)", "(30.0, 25.2)", "(18.0, 40.9)"]},
        {"Name": "Cluster", "Point_px": ["(5, 5)"]},
        {"Name": "Mass", "Point_px": ["(40, 50)", "(44, 52)"]},
    ]
    (root / "AllXML" / "22678622.xml").write_bytes(plistlib.dumps({"Images": [{"ROIs": rois}]}))
    located = [
        (loc.finding_type, loc.finding_id, loc.part, loc.box) for loc in finding_locations(root, "inbreast")
    ]
    assert located == [
        ("mass", "1", 0, (20, 10, 41, 31)),
        ("calcification", "2", 0, (5, 5, 6, 6)),
        ("mass", "1", 1, (50, 40, 53, 45)),
    ]


def test_layouts_without_locations_give_none(tmp_path):
    assert finding_locations(tmp_path, "image_folder") == []


def test_a_mask_is_told_from_a_crop_by_being_binary():
    mask = np.zeros((50, 40), np.float32)
    mask[10:20, 5:15] = 1.0
    assert box_of_mask(mask) == (10, 5, 20, 15)
    crop = np.random.default_rng(0).uniform(0, 1, (50, 40))
    assert box_of_mask(crop) is None and box_of_mask(np.zeros((5, 5))) is None


# ------------------------------------------------------------------------------- the phantom (CBIS layout)


@pytest.fixture(scope="module")
def phantom_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("phantom")
    write_phantom(
        root, PhantomSpec(n_images=16, height=256, seed=5, n_healthy=4, n_healthy_other_source=4), 1
    )
    return root


def phantom_manifest(root: Path) -> pd.DataFrame:
    images = load_dataset(root).images.copy()
    images["kept"] = images["image_path"] != ""
    return images


def test_phantom_patches_from_the_roi_masks_are_centred_on_the_true_lesions(phantom_root, tmp_path):
    manifest = phantom_manifest(phantom_root)
    summary = {
        "dataset_root": str(phantom_root),
        "layout": "kaggle_jpeg",
        "selection_parameters": {
            "pathology": "MALIGNANT",
            "abnormalities": ["mass", "calcification"],
            "birads_min": 4,
        },
    }
    geometry = patches.PatchGeometry(resolution=32, scale=2.0, min_side=24, at_border="skip")
    tasks = patches.patch_tasks(manifest, summary, geometry)
    assert all(loc.mask_paths for task in tasks for loc in task.selected)
    folder = patches.ensure_patch_cache(tasks, tmp_path / "cache", workers=1)
    index = patches.load_patch_index(folder)
    truth = pd.read_csv(phantom_root / "phantom_truth.csv", dtype={"abnormality_id": str})
    malignant = truth[truth["pathology"] == "MALIGNANT"]
    assert len(index) == len(malignant)  # one region per malignant finding (benign ones only avoided)
    made = index[index["array_row"] >= 0]
    assert len(made) >= 0.8 * len(index) and set(index.loc[index["array_row"] < 0, "reason_code"]) <= {
        "crosses_border"
    }
    for row in made.itertuples():
        lesion = truth[
            (truth["SeriesInstanceUID"] == row.source_image_id)
            & (truth["abnormality_type"] == row.finding_type)
            & (truth["abnormality_id"] == str(row.finding_id))
        ].iloc[0]
        window_centre = centre(parse_box(row.window))
        assert (
            abs(window_centre[0] - lesion["center_y"]) <= 2
            and abs(window_centre[1] - lesion["center_x"]) <= 2
        )
    background = pd.read_csv(folder / patches.BACKGROUND_INDEX, keep_default_na=False)
    for row in background[background["array_row"] >= 0].itertuples():
        window = parse_box(row.window)
        for lesion in truth[truth["SeriesInstanceUID"] == row.source_image_id].itertuples():
            lesion_box = (
                lesion.center_y - lesion.radius,
                lesion.center_x - lesion.radius,
                lesion.center_y + lesion.radius,
                lesion.center_x + lesion.radius,
            )
            assert not patches.overlaps(window, lesion_box), (row.image_id, lesion.abnormality_type)


def test_phantom_mask_candidates_hold_both_series_with_the_mask_first(phantom_root):
    locations = cbis_mask_locations(phantom_root)
    truth = pd.read_csv(phantom_root / "phantom_truth.csv")
    assert len(locations) == len(truth)
    for location in locations[:5]:
        mask, crop = (imaging.read_grayscale(Path(p)).pixels for p in location.mask_paths)
        assert box_of_mask(mask) is not None and box_of_mask(crop) is None  # dicom_info's description first


def test_healthy_patches_are_cut_at_the_lesion_sides_in_turn(phantom_root, tmp_path):
    healthy = sorted((phantom_root / "healthy" / "images").iterdir())
    folder = patches.ensure_healthy_patch_cache(
        [(p.name, str(p)) for p in healthy], [40, 60], 32, tmp_path / "cache", workers=1
    )
    images, index = preprocess.load_cache(folder)
    assert images.shape == (len(healthy), 32, 32) and images.min() >= -1 and images.max() <= 1
    assert list(index["side"]) == [40, 60, 40, 60][: len(healthy)]


# ----------------------------------------------------------------------------------------------- params


def test_patch_parameters_are_validated_by_name():
    with pytest.raises(config.ParameterError, match="training_images"):
        config.PreprocessConfig(training_images="patches")
    with pytest.raises(config.ParameterError, match="patch_at_border"):
        config.PreprocessConfig(patch_at_border="pad")
    geometry = patches.PatchGeometry.of(config.PreprocessConfig(resolution=64, patch_min_side=100))
    assert geometry == patches.PatchGeometry(64, 2.0, 100, "shift", 1)


def test_patch_tasks_need_the_selection_01_recorded(phantom_root):
    with pytest.raises(ValueError, match="re-run 01_filter"):
        patches.patch_tasks(
            phantom_manifest(phantom_root), {"layout": "kaggle_jpeg", "dataset_root": "x"}, GEOMETRY, []
        )


def test_the_model_card_says_the_generator_was_trained_on_lesion_patches(tmp_path):
    from mammogan_lib.core import files
    from mammogan_lib.core.run_paths import RunPaths
    from mammogan_lib.gan import model_card

    assert model_card.training_data(tmp_path, 5)["training_images"] == "whole breasts"
    record = {"training_images": "lesion_patches", "geometry": {"scale": 2.0, "min_side": 256}}
    files.write_json(RunPaths(tmp_path).preprocess_record, record)
    assert model_card.training_data(tmp_path, 5)["training_images"].startswith(
        "lesion-centred patches (side 2.0"
    )


def test_mini_mias_patches_are_centred_on_the_listed_centres_scaled_to_the_image(tmp_path):
    root = write_mini_mias(tmp_path / "mias")
    manifest = load_dataset(root).images.copy()
    manifest["kept"] = manifest["image_path"] != ""
    summary = {
        "dataset_root": str(root),
        "layout": "mini_mias",
        "selection_parameters": {"pathology": "MALIGNANT", "abnormalities": ["mass"], "birads_min": 4},
    }
    folder = patches.ensure_patch_cache(patches.patch_tasks(manifest, summary, GEOMETRY), tmp_path / "c", 1)
    index = patches.load_patch_index(folder).set_index("image_id")
    assert list(index.index) == ["mdb023:mass:1:0"]  # the one malignant mass (SPIC M 538 681 29)
    height, width = 64, 48  # the fixture's PGMs, smaller than MIAS's 1024 x 1024 frame
    expected = ((1024 - 681) * height / 1024, 538 * width / 1024)
    window_centre = centre(parse_box(index.loc["mdb023:mass:1:0", "window"]))
    assert all(abs(w - e) <= 1 for w, e in zip(window_centre, expected, strict=True))


def test_tcia_masks_are_found_by_header_and_told_from_the_crop_in_the_same_series(tmp_path):
    import csv

    from tests.cbis_columns import MASS_COLUMNS
    from tests.dicom_files import mammogram_pixels, write_dicom

    root = tmp_path / "tcia"
    case = "Mass-Training_P_00001_LEFT_CC"
    study = root / "CBIS-DDSM" / case / "07-20-2016-DDSM-1"
    full = mammogram_pixels((128, 96), seed=1)
    write_dicom(
        study / "1.000000-full mammogram images-1" / "1-1.dcm", full, header={"SeriesInstanceUID": "1.2.1"}
    )
    mask = np.zeros((128, 96), np.uint16)
    mask[40:60, 20:36] = 4095
    roi_folder = root / "CBIS-DDSM" / f"{case}_1" / "07-21-2016-DDSM-2" / "1.000000-ROI mask images-2"
    roi_header = {"SeriesInstanceUID": "1.2.9", "SeriesDescription": "cropped images"}
    write_dicom(roi_folder / "1-1.dcm", full[30:70, 10:46].copy(), header=roi_header)  # the crop first
    write_dicom(roi_folder / "1-2.dcm", mask, header={**roi_header, "SeriesDescription": "ROI mask images"})
    row = {column: "" for column in MASS_COLUMNS}
    row |= {
        "patient_id": "P_00001",
        "breast_density": "2",
        "left or right breast": "LEFT",
        "image view": "CC",
        "abnormality id": "1",
        "abnormality type": "mass",
        "assessment": "4",
        "pathology": "MALIGNANT",
        "subtlety": "3",
        "image file path": f"{case}/1.3.6/1.2.1/000000.dcm",
        "cropped image file path": f"{case}_1/1.3.7/1.2.9/000000.dcm",
        "ROI mask file path": f"{case}_1/1.3.7/1.2.9/000001.dcm",
    }
    csv_path = root / "mass_case_description_train_set.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MASS_COLUMNS)
        writer.writeheader()
        writer.writerow(row)
    (location,) = finding_locations(root, "tcia_dicom")
    assert (location.image_id, location.finding_type, location.finding_id) == ("1.2.1", "mass", "1")
    assert Path(location.mask_paths[0]).name == "1-2.dcm"  # described as the ROI mask: tried first
    box, frame, reason = read_mask_box(location, (128, 96))
    assert (box, frame, reason) == ((40, 20, 60, 36), (128, 96), "")
    crop_first = FindingLocation("1.2.1", "mass", "1", mask_paths=tuple(reversed(location.mask_paths)))
    assert read_mask_box(crop_first, (128, 96))[0] == (40, 20, 60, 36)  # the crop is not taken for the mask
