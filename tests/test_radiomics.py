"""mammogan_lib.evaluate.radiomics and metrics' FRD against frd-score's own command (the reference
implementation),
on textures built here."""

import re
import subprocess
import sys

import cv2
import matplotlib
import numpy as np
import pytest

from mammogan_lib.data.imaging import to_uint8
from mammogan_lib.evaluate import metrics, radiomics


def textures(count: int, blur: float, seed: int, size: int = 48) -> np.ndarray:
    """Smoothed noise in [-1, 1]: ``blur`` sets the grain, so two blurs are two texture distributions."""
    rng = np.random.default_rng(seed)
    images = [cv2.GaussianBlur(rng.normal(size=(size, size)), (0, 0), blur) for _ in range(count)]
    return np.stack([np.tanh(image / image.std()) for image in images]).astype(np.float32)


@pytest.fixture(scope="module")
def two_sets():
    return {"fine": textures(12, 1.0, 0), "coarse": textures(12, 2.5, 1)}


@pytest.fixture(scope="module")
def radiomic_sets(two_sets):
    return {name: radiomics.extract_radiomic_features(images, 2) for name, images in two_sets.items()}


def reference_frd(first: np.ndarray, second: np.ndarray, folder) -> float:
    """``python -m frd_score first/ second/`` on the images as 8-bit PNGs: frd-score's own FRD v1."""
    for name, images in (("first", first), ("second", second)):
        (folder / name).mkdir()
        for index, image in enumerate(to_uint8(images)):
            cv2.imwrite(str(folder / name / f"{index:03d}.png"), image)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "frd_score",
            str(folder / "first"),
            str(folder / "second"),
            "--num_workers",
            "2",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(re.search(r"FRD \(v1\): (\S+)", done.stdout + done.stderr).group(1))


def test_frd_equals_frd_scores_own_command_on_the_same_images(two_sets, radiomic_sets, tmp_path):
    ours = metrics.frechet_radiomic_distance(radiomic_sets["fine"].values, radiomic_sets["coarse"].values)
    expected = reference_frd(two_sets["fine"], two_sets["coarse"], tmp_path)
    assert ours == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_the_first_set_sets_the_units_and_comparisons_put_the_real_set_first(radiomic_sets):
    fine, coarse = radiomic_sets["fine"].values, radiomic_sets["coarse"].values
    forward, backward = (metrics.frechet_radiomic_distance(a, b) for a, b in ((fine, coarse), (coarse, fine)))
    assert abs(forward - backward) > 0.1  # z-scored on the first set: not symmetric
    within = metrics.frechet_radiomic_distance(fine[:6], fine[6:])
    assert within < forward
    # in a (candidates, reference) pair the reference goes first inside FRD, with an interval around it
    table = metrics.frd_comparisons({"generated": coarse, "heldout": fine}, [("generated", "heldout")], 20, 0)
    row = table.iloc[0]
    assert row["frd"] == pytest.approx(forward) and row["features"] == metrics.RADIOMICS
    assert row["frd_low"] <= row["frd"] <= row["frd_high"] and (row["n_a"], row["n_b"]) == (12, 12)
    assert "FRD: N=12 <" in row["warnings"]
    assert metrics.frd_to_reference(coarse, fine) == pytest.approx(forward)


def test_frd_prepares_features_as_frd_score_does():
    reference = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, np.nan], [2.0, 5.0, 4.0], [4.0, 5.0, 6.0]])
    other = np.array([[2.0, 6.0, 1.0], [0.0, 4.0, 3.0], [1.0, 5.0, 2.0]])
    first, second = metrics.normalised_pair(reference, other)
    # the image with a NaN feature is dropped; the feature constant in the reference (std 0) is dropped
    assert first.shape == (3, 2) and second.shape == (3, 2) and first.dtype == np.float32
    kept = reference[[0, 2, 3]][:, [0, 2]]
    np.testing.assert_allclose(first, (kept - kept.mean(0)) / kept.std(0), rtol=1e-6)


def test_features_are_cached_by_content_and_frd_leaves_matplotlibs_backend(two_sets, tmp_path, monkeypatch):
    backend = matplotlib.get_backend()
    first = radiomics.extract_radiomic_features(two_sets["fine"][:3], 1, cache_dir=tmp_path)
    assert matplotlib.get_backend() == backend and len(first) == 3 and len(first.names) > 300
    assert len(list(tmp_path.glob("*.npz"))) == 1

    def no_extraction(*args, **kwargs):
        raise AssertionError("the cached features should have been read")

    monkeypatch.setattr(radiomics, "parallel_map", no_extraction)
    again = radiomics.extract_radiomic_features(two_sets["fine"][:3], 1, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.values, first.values)
    assert again.names == first.names
    assert radiomics.record()["frd_version"] == "v1" and "frd-score" in radiomics.record()["source"]


def test_a_set_whose_every_image_has_no_features_gives_nan_rows_and_a_nan_frd_not_an_error(radiomic_sets):
    flat = np.zeros((3, 48, 48), np.float32)  # no texture: PyRadiomics fails on each
    features = radiomics.extract_radiomic_features(flat, 1)
    assert features.values.shape == (3, len(radiomic_sets["fine"].names))
    assert np.isnan(features.values).all() and [index for index, _ in features.failures] == [0, 1, 2]
    assert features.names == radiomic_sets["fine"].names
    assert np.isnan(metrics.frechet_radiomic_distance(radiomic_sets["fine"].values, features.values))
    assert any(
        "3 of the 3 images" in note
        for note in metrics.frd_warnings(features.values, radiomic_sets["fine"].values)
    )
