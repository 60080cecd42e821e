"""mammogan_lib.metrics against reference implementations kept here (scipy sqrtm, skimage.metrics)."""

import numpy as np
import pytest
from scipy import linalg
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mammogan_lib import metrics
from mammogan_lib.phantom import power_law_noise
from mammogan_lib.runs import RunPaths


def reference_fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """The textbook formula with scipy's matrix square root (as in pytorch-fid)."""
    mu_a, mu_b = features_a.mean(0), features_b.mean(0)
    sigma_a, sigma_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    root = linalg.sqrtm(sigma_a @ sigma_b)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a + sigma_b - 2 * root.real))


def test_fid_matches_the_scipy_sqrtm_reference():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 16))
    b = rng.normal(loc=0.3, scale=1.4, size=(250, 16)) @ rng.normal(size=(16, 16)) * 0.5
    assert metrics.frechet_distance(a, b) == pytest.approx(reference_fid(a, b), rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    a = np.random.default_rng(1).normal(size=(200, 8))
    assert abs(metrics.frechet_distance(a, a)) < 1e-6
    assert metrics.frechet_distance(a, a + 1.0) == pytest.approx(8.0, rel=1e-6)  # ||mu shift||^2 = 8


def test_kid_is_unbiased_on_two_samples_of_one_distribution():
    rng = np.random.default_rng(2)
    pairs = [(rng.normal(size=(60, 16)), rng.normal(size=(60, 16))) for _ in range(40)]
    kids = np.array([metrics.kernel_distance(a, b, subsets=1, subset_size=60).mean for a, b in pairs])
    fids = np.array([metrics.frechet_distance(a, b) for a, b in pairs])
    # independent pairs: KID's mean is within 3 standard errors of 0, while FID at this N is clearly biased
    assert abs(kids.mean()) < 3 * kids.std(ddof=1) / np.sqrt(len(kids))
    assert fids.mean() > 10 * fids.std(ddof=1) / np.sqrt(len(fids))
    a, b = pairs[0]
    assert metrics.kernel_distance(a, b + 0.5, subsets=1, subset_size=60).mean > 10 * kids.std(ddof=1)


def test_kid_subset_size_is_clipped_to_the_smaller_set_and_seeded():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(40, 4)), rng.normal(size=(30, 4))
    first = metrics.kernel_distance(a, b, subsets=10, subset_size=1000, seed=7)
    assert first.subset_size == 30
    assert first == metrics.kernel_distance(a, b, subsets=10, subset_size=1000, seed=7)


def test_metrics_refuse_mismatched_or_too_small_sets():
    with pytest.raises(ValueError, match="one D"):
        metrics.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        metrics.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


def test_psnr_and_ssim_match_skimage_with_an_explicit_data_range():
    rng = np.random.default_rng(4)
    clean = np.clip(power_law_noise(rng, (64, 64), beta=3.0) / 3, -1, 1)
    images = np.stack([clean, clean])
    noisy = np.clip(images + rng.normal(scale=[[[0.05]], [[0.2]]], size=images.shape), -1, 1)
    psnr, ssim = metrics.psnr_ssim(noisy, images)
    for i in range(2):
        assert psnr[i] == pytest.approx(
            peak_signal_noise_ratio(images[i], noisy[i], data_range=2.0), rel=1e-6
        )
        expected = structural_similarity(
            images[i], noisy[i], data_range=2.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        assert ssim[i] == pytest.approx(expected, rel=1e-6)
    assert psnr[0] > psnr[1] and ssim[0] > ssim[1]


def test_nearest_neighbours_on_a_constructed_case():
    rng = np.random.default_rng(5)
    references = rng.uniform(-1, 1, size=(50, 8, 8))
    order = [7, 3, 49, 0]
    queries = references[order] + rng.normal(scale=0.01, size=(4, 8, 8))
    indices, distances = metrics.nearest_neighbours(queries, references, chunk=3)
    assert indices.tolist() == order
    assert np.all(distances < 0.02)
    exact, zero = metrics.nearest_neighbours(references[[10]], references)
    assert exact.tolist() == [10] and zero[0] == pytest.approx(0, abs=1e-6)


def test_memorisation_audit_flags_copies_and_expects_the_quantile_otherwise():
    rng = np.random.default_rng(6)
    train = rng.uniform(-1, 1, size=(60, 8, 8))
    heldout = rng.uniform(-1, 1, size=(40, 8, 8))
    generated = np.concatenate([train[:3] + 0.001, rng.uniform(-1, 1, size=(37, 8, 8))])
    _, generated_distances = metrics.nearest_neighbours(generated, train)
    _, heldout_distances = metrics.nearest_neighbours(heldout, train)
    audit = metrics.memorisation_audit(generated_distances, heldout_distances, quantile=0.0)
    assert audit.flagged.tolist()[:3] == [0, 1, 2] or set(audit.flagged[:3]) == {0, 1, 2}
    assert set(audit.flagged) == {0, 1, 2}
    assert audit.flagged_fraction == pytest.approx(3 / 40)
    with pytest.raises(ValueError, match="holdout_fraction"):
        metrics.memorisation_audit(generated_distances, np.zeros(0), 0.05)


@pytest.mark.parametrize("beta", [2.0, 3.0])
def test_spectral_slope_recovers_the_beta_of_power_law_noise(beta):
    rng = np.random.default_rng(7)
    fields = [power_law_noise(rng, (128, 128), beta=beta, low_cut=1.0) for _ in range(8)]
    betas = [metrics.spectral_slope(*metrics.radial_power_spectrum(field)) for field in fields]
    assert np.mean(betas) == pytest.approx(beta, abs=0.25)


def test_spectral_slopes_use_breast_patches_only():
    rng = np.random.default_rng(8)
    image = np.full((64, 64), -1.0)
    image[:, :40] = np.clip(power_law_noise(rng, (64, 40)) * 0.2, -0.8, 1)
    empty = np.full((64, 64), -1.0)
    betas = metrics.spectral_slopes(np.stack([image, empty]))
    assert np.isfinite(betas[0]) and np.isnan(betas[1])


def test_comparison_table_lists_evaluated_runs_and_names_missing_ones(tmp_path):
    import json

    run = tmp_path / "exp1_deep"
    run.mkdir()
    (run / "train_summary.json").write_text(
        json.dumps(
            {
                "epoch": 20,
                "step": 40,
                "params": {"architecture": "deep", "d_dropout": 0.3, "augment_policy": ""},
            }
        )
    )
    (RunPaths(run).metrics).write_text(json.dumps({"headline": {"fid": 80.5, "ssim_median": 0.4}}))
    table = metrics.compare_runs(tmp_path, ["exp1_deep", "exp2_stylegan", "exp1_deep"]).set_index("run")
    assert list(table.index) == ["exp1_deep", "exp2_stylegan"]
    assert table.loc["exp1_deep", "fid"] == 80.5 and table.loc["exp1_deep", "augment"] == "none"
    assert "Poor" in table.loc["exp1_deep", "thesis (Table 4.1)"]
    assert table.loc["exp2_stylegan", "status"].startswith("not evaluated")


def results_from_small_inputs(pretrained: bool = False) -> dict:
    """metrics.json as 05_metrics builds it, from small hand-made inputs (shared with test_report)."""
    import pandas as pd

    from mammogan_lib.features import FeatureNetwork

    inception = FeatureNetwork("inception", pretrained, "weights.pth" if pretrained else "offline", None)
    tag = inception.tag
    set_table = pd.DataFrame(
        [
            {"comparison": "generated vs train", f"fid{tag}": 12.5, f"kid{tag}_mean": 0.25},
            {"comparison": "generated vs heldout", f"fid{tag}": 15.0, f"kid{tag}_mean": float("nan")},
            {"comparison": "train vs heldout", f"fid{tag}": 11.0, f"kid{tag}_mean": 0.125},
        ]
    )
    generated = pd.DataFrame({"psnr": [18.0, 20.0, 22.0], "ssim": [0.5, 0.6, 0.9], "nearest_real": [0, 1, 0]})
    heldout = pd.DataFrame({"psnr": [19.0, 21.0], "ssim": [0.55, 0.65], "nearest_real": [1, 0]})
    audit = metrics.memorisation_audit(np.array([0.1, 0.3, 0.02]), np.array([0.2, 0.25]), 0.05)
    texture = pd.DataFrame({"generated": {"beta median": 3.1}, "train": {"beta median": 3.3}})
    tail = pd.Series({"d_loss": 1.38, "g_loss": 0.7, "d_real": 0.5, "d_fake": 0.5})
    curve = pd.DataFrame([{"epoch": 4, "n_generated": 3, f"fid{tag}_vs_train": 20.0}])
    return metrics.build_results(
        "exp", 8, inception, set_table, generated, heldout, generated.head(1), audit, texture, tail, curve
    )


def test_the_results_file_is_built_from_what_the_stage_computed_with_its_keys_labelled():
    results = results_from_small_inputs(pretrained=False)
    headline = results["headline"]
    assert results["inception"] == {
        "pretrained": False,
        "source": "offline",
        "key_suffix": "_random_inception",
    }
    assert headline["fid_random_inception"] == 12.5 and headline["fid_random_inception_real_floor"] == 11.0
    assert headline["fid_random_inception_heldout"] == 15.0 and "fid" not in headline
    assert headline["n_generated"] == 3 and headline["psnr_median"] == 20.0 and headline["ssim_median"] == 0.6
    # 0.02 and 0.1 are nearer than the held-out images' 5 % quantile (0.2025); closest first
    assert headline["memorised_fraction"] == 2 / 3 and results["memorisation"]["flagged"] == [2, 0]
    assert results["sets"][1]["kid_random_inception_mean"] is None  # NaN is not JSON
    assert [row["epoch"] for row in results["curve"]] == [4] and results["epoch"] == 8
    assert "fid" in results_from_small_inputs(pretrained=True)["headline"]
