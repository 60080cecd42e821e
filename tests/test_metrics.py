"""mammogan_lib.evaluate.metrics against reference implementations kept here (scipy sqrtm, skimage.metrics,
prdc)
and constructed cases."""

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import linalg
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mammogan_lib.core import files
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.data.phantom import power_law_noise
from mammogan_lib.evaluate import metrics


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


@pytest.mark.parametrize(("n_a", "n_b", "dim"), [(40, 30, 64), (30, 200, 16), (120, 90, 200)])
def test_fid_matches_scipy_and_torchmetrics_with_fewer_or_more_images_than_dimensions(n_a, n_b, dim):
    from torchmetrics.image.fid import FrechetInceptionDistance

    rng = np.random.default_rng(n_a)
    a = rng.normal(size=(n_a, dim))
    b = rng.normal(0.2, 1.3, size=(n_b, dim))
    torchmetrics_fid = FrechetInceptionDistance(feature=metrics._precomputed(dim)).double()
    torchmetrics_fid.update(metrics._as_tensor(a), real=True)
    torchmetrics_fid.update(metrics._as_tensor(b), real=False)
    assert metrics.frechet_distance(a, b) == pytest.approx(reference_fid(a, b), rel=1e-6)
    assert metrics.frechet_distance(a, b) == pytest.approx(float(torchmetrics_fid.compute()), rel=1e-6)


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
    # one pair at a time (how many fit in memory at 128 px and up) gives the same numbers
    one_by_one = metrics.psnr_ssim(noisy, images, chunk_bytes=1)
    np.testing.assert_array_equal(one_by_one[0], psnr)
    np.testing.assert_array_equal(one_by_one[1], ssim)


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
    from mammogan_lib.evaluate.features import FeatureNetwork

    inception = FeatureNetwork("inception", pretrained, "weights.pth" if pretrained else "offline", None)
    tag = inception.tag
    set_table = pd.DataFrame(
        [
            {
                "features": "inception",
                "comparison": "generated vs train",
                f"fid{tag}": 12.5,
                f"fid{tag}_low": 10.0,
                f"fid{tag}_high": 16.0,
                f"kid{tag}_mean": 0.25,
                f"coverage{tag}": 0.5,
                "warnings": "FID: N=3 < feature dimension 2048 | KID: subset size clipped",
            },
            {
                "features": "inception",
                "comparison": "generated vs heldout",
                f"fid{tag}": 15.0,
                f"kid{tag}_mean": float("nan"),
                "warnings": "",
            },
            {
                "features": "inception",
                "comparison": "train vs heldout",
                f"fid{tag}": 11.0,
                f"kid{tag}_mean": 0.125,
                "warnings": "",
            },
        ]
    )
    equal_n = pd.DataFrame(
        {"n_candidates": [2, 2], f"fid{tag}_equal_n": [14.0, 12.0]}, index=["generated", "train"]
    )
    dinov2 = FeatureNetwork("dinov2", pretrained, "hub" if pretrained else "offline", None)
    fd = f"fd{dinov2.tag}"
    set_table = pd.concat(
        [
            set_table,
            pd.DataFrame(
                [
                    {"features": "dinov2", "comparison": comparison, fd: value, "warnings": ""}
                    for comparison, value in (
                        ("generated vs train", 300.0),
                        ("generated vs heldout", 320.0),
                        ("train vs heldout", 280.0),
                    )
                ]
            ),
        ],
        ignore_index=True,
    )
    dinov2_equal_n = pd.DataFrame(
        {"n_candidates": [2, 2], f"{fd}_equal_n": [310.0, 290.0]}, index=["generated", "train"]
    )
    generated = pd.DataFrame({"psnr": [18.0, 20.0, 22.0], "ssim": [0.5, 0.6, 0.9], "nearest_real": [0, 1, 0]})
    heldout = pd.DataFrame({"psnr": [19.0, 21.0], "ssim": [0.55, 0.65], "nearest_real": [1, 0]})
    audit = metrics.memorisation_audit(np.array([0.1, 0.3, 0.02]), np.array([0.2, 0.25]), 0.05)
    texture = pd.DataFrame({"generated": {"beta median": 3.1}, "train": {"beta median": 3.3}})
    tail = pd.Series({"d_loss": 1.38, "g_loss": 0.7, "d_real": 0.5, "d_fake": 0.5})
    curve = pd.DataFrame([{"epoch": 4, "n_generated": 3, f"fid{tag}_vs_train": 20.0}])
    real = {"train": np.zeros((4, 2, 2)), "heldout": np.ones((2, 2, 2))}
    return metrics.build_results(
        "exp",
        8,
        [inception, dinov2],
        set_table,
        generated,
        heldout,
        generated.head(1),
        audit,
        texture,
        tail,
        curve,
        equal_n={"inception": equal_n, "dinov2": dinov2_equal_n},
        floor_notes={"inception": ["not distinguishable"], "dinov2": []},
        real_images=real,
        settings={"prdc_k": 5, "bootstrap_repeats": 3, "feature_seed": 0},
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
    # N beside the numbers, intervals where computed, FID at equal N, and every warning with its comparison
    assert (headline["n_train"], headline["n_heldout"], headline["n_equal"]) == (4, 2, 2)
    assert (headline["fid_random_inception_low"], headline["fid_random_inception_high"]) == (10.0, 16.0)
    assert headline["coverage_random_inception"] == 0.5
    assert headline["fid_random_inception_equal_n"] == 14.0
    assert headline["fid_random_inception_real_floor_equal_n"] == 12.0
    assert results["warnings"] == [
        {"comparison": "generated vs train, inception", "warning": "FID: N=3 < feature dimension 2048"},
        {"comparison": "generated vs train, inception", "warning": "KID: subset size clipped"},
        {
            "comparison": "generated and train vs heldout at equal N, inception",
            "warning": "not distinguishable",
        },
    ]
    # the second feature network: its own keys, named after it, labelled random like Inception's
    assert headline["fd_random_dinov2"] == 300.0 and headline["fd_random_dinov2_real_floor_equal_n"] == 290.0
    assert results["features"]["dinov2"]["key_suffix"] == "_random_dinov2"
    pretrained_headline = results_from_small_inputs(pretrained=True)["headline"]
    assert pretrained_headline["fd_dinov2"] == 300.0 and pretrained_headline["fid"] == 12.5
    assert results["real_sets"]["train"]["n"] == 4 and len(results["real_sets"]["heldout"]["sha256"]) == 64


def offline_results() -> dict:
    """metrics.json of an offline run: EfficientNet-Lite0 leads, FRD beside it, InceptionV3 left out."""
    from mammogan_lib.evaluate.features import FeatureNetwork, LeftOut

    effnet = FeatureNetwork("effnet_lite0", True, "efficientnet-lite0-57934424.pth", None)
    rows = []
    for comparison, fd, frd in (
        ("generated vs train", 60.0, 2.0),
        ("generated vs heldout", 70.0, 2.5),
        ("train vs heldout", 30.0, 1.5),
    ):
        rows += [
            {"features": "effnet_lite0", "comparison": comparison, "fd_effnet_lite0": fd, "warnings": ""},
            {"features": metrics.RADIOMICS, "comparison": comparison, "frd": frd, "warnings": ""},
        ]
    rows[3] |= {"frd_low": 2.25, "frd_high": 2.75}
    equal_n = {
        "effnet_lite0": pd.DataFrame(
            {"n_candidates": [2, 2], "fd_effnet_lite0_equal_n": [80.0, 40.0]}, index=["generated", "train"]
        ),
        metrics.RADIOMICS: pd.DataFrame(
            {"n_candidates": [2, 2], "frd_equal_n": [3.0, 1.75]}, index=["generated", "train"]
        ),
    }
    generated = pd.DataFrame({"psnr": [18.0, 20.0], "ssim": [0.5, 0.6], "nearest_real": [0, 1]})
    return metrics.build_results(
        "exp",
        8,
        [effnet],
        pd.DataFrame(rows),
        generated,
        generated,
        generated.head(1),
        metrics.memorisation_audit(np.array([0.1, 0.3]), np.array([0.2, 0.25]), 0.05),
        pd.DataFrame({"generated": {"beta median": 3.1}, "train": {"beta median": 3.3}}),
        pd.Series({"d_loss": 1.38}),
        pd.DataFrame(),
        equal_n=equal_n,
        floor_notes={"effnet_lite0": [], metrics.RADIOMICS: []},
        real_images={"train": np.zeros((4, 2, 2)), "heldout": np.ones((2, 2, 2))},
        settings={"prdc_k": 5, "bootstrap_repeats": 3, "feature_seed": 0},
        radiomics={"pretrained": True, "source": "radiomic features", "key_suffix": "", "frd_version": "v1"},
        left_out=[LeftOut("inception", "no weights in the hub cache")],
    )


def test_an_offline_run_leads_with_effnet_then_frd_with_floor_ratio_and_gap():
    results = offline_results()
    headline = results["headline"]
    assert list(results["features"]) == ["effnet_lite0", "radiomics"] and "inception" not in results
    assert results["left_out_networks"] == [{"name": "inception", "reason": "no weights in the hub cache"}]
    assert results["features"]["effnet_lite0"]["note"].startswith(
        "ImageNet EfficientNet-Lite0, not InceptionV3"
    )
    # floor / FD at equal N against the held-out images (medigan's ratio); FRD's gap in its log units
    assert headline["fd_effnet_lite0_floor_ratio"] == 0.5 and headline["fd_effnet_lite0_heldout"] == 70.0
    assert (headline["frd"], headline["frd_heldout"], headline["frd_real_floor"]) == (2.0, 2.5, 1.5)
    assert (headline["frd_heldout_low"], headline["frd_heldout_high"]) == (2.25, 2.75)
    assert headline["frd_equal_n"] == 3.0 and headline["frd_real_floor_equal_n"] == 1.75
    assert headline["frd_gap_to_floor"] == 1.25 and headline["n_equal"] == 2


def test_runs_compare_in_the_networks_they_share(tmp_path):
    write_run(tmp_path, "this", offline_results())
    write_run(tmp_path, "same", offline_results())
    online = copy.deepcopy(offline_results())  # a machine that also had InceptionV3's weights
    online["features"]["inception"] = {"pretrained": True, "source": "hub", "key_suffix": ""}
    write_run(tmp_path, "online", online)
    write_run(tmp_path, "inception_only", results_from_small_inputs(pretrained=True))
    table = metrics.compare_runs(tmp_path, ["same", "online", "inception_only", "this"], reference_run="this")
    status = table.set_index("run")["status"]
    assert status["same"] == status["online"] == status["this"] == "evaluated"
    assert status["inception_only"] == "not compared: it shares no feature network with this run"


def test_the_comparison_shows_evaluated_runs_in_a_few_columns_and_names_the_ones_left_out(tmp_path):
    write_run(tmp_path, "this", offline_results())
    write_run(tmp_path, "inception_only", results_from_small_inputs(pretrained=True))
    table = metrics.compare_runs(tmp_path, ["never_ran", "inception_only", "this"], reference_run="this")
    view, left_out = metrics.comparison_view(table, "effnet_lite0")
    assert view["run"].tolist() == ["this"]
    assert list(view.columns)[:3] == ["run", "architecture", "augment"] and len(view.columns) <= 13
    assert "fd_effnet_lite0_equal_n" in view.columns and "frd_equal_n" in view.columns
    assert left_out == [
        "never_ran (not evaluated (no metrics.json))",
        "inception_only (not compared: it shares no feature network with this run)",
    ]


def test_floor_ratio_is_one_at_the_floor_and_none_without_numbers():
    assert metrics.floor_ratio(25.0, 25.0) == 1.0 and metrics.floor_ratio(25.0, 50.0) == 0.5
    assert metrics.floor_ratio(None, 50.0) is None and metrics.floor_ratio(25.0, float("nan")) is None


def test_frd_at_equal_n_puts_the_held_out_set_first():
    rng = np.random.default_rng(4)
    heldout = rng.normal(size=(30, 5))
    sets = {"generated": rng.normal(1.0, 2.0, size=(50, 5)), "train": rng.normal(size=(30, 5))}
    table = metrics.equal_n_tables({metrics.RADIOMICS: sets | {"heldout": heldout}}, [], 5, 0)[
        metrics.RADIOMICS
    ]
    assert metrics.equal_n_key(table) == "frd"
    assert table.loc["train", "frd_equal_n"] == pytest.approx(
        metrics.frechet_radiomic_distance(heldout, sets["train"])
    )
    assert table.loc["generated", "frd_equal_n"] > table.loc["train", "frd_equal_n"]


def write_run(runs: Path, run_id: str, results: dict) -> None:
    paths = RunPaths(runs / run_id)
    paths.root.mkdir(parents=True)
    summary = {"epoch": 8, "step": 16, "params": {"architecture": "baseline", "d_dropout": 0.2}}
    files.write_json(paths.train_summary, summary)
    files.write_json(paths.metrics, results)


def test_runs_compare_only_with_the_same_real_sets_and_feature_network(tmp_path):
    results = results_from_small_inputs(pretrained=False)
    write_run(tmp_path, "this", results)
    write_run(tmp_path, "same", results | {"exp_id": "same"})
    other_data = copy.deepcopy(results)
    other_data["real_sets"]["heldout"]["sha256"] = "0" * 64
    write_run(tmp_path, "other_data", other_data)
    write_run(tmp_path, "other_features", results_from_small_inputs(pretrained=True))
    old = {key: value for key, value in results.items() if key != "real_sets"}
    write_run(tmp_path, "old", old)
    table = metrics.compare_runs(
        tmp_path, ["same", "other_data", "other_features", "old", "this"], reference_run="this"
    ).set_index("run")
    assert table.loc["same", "status"] == "evaluated" and table.loc["this", "status"] == "evaluated"
    assert table.loc["same", "coverage_random_inception"] == 0.5
    assert "real train/held-out images differ" in table.loc["other_data", "status"]
    assert "feature network differs" in table.loc["other_features", "status"]
    assert "predates" in table.loc["old", "status"]
    assert pd.isna(table.loc["other_data", "fid_random_inception"])  # refused: no numbers shown
    with pytest.raises(ValueError, match="reference run 'missing'"):
        metrics.compare_runs(tmp_path, ["same"], reference_run="missing")


# --- precision, recall, density, coverage; bootstrap; equal N; trust warnings ------------------------------


def manifold_metrics(candidates: np.ndarray, references: np.ndarray, k: int = 5) -> dict[str, float]:
    return metrics.precision_recall_density_coverage(
        metrics.ManifoldDistances.between(candidates, references), k
    )


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_recall_density_coverage_match_the_prdc_package(k, capsys):
    from prdc import compute_prdc

    rng = np.random.default_rng(10)
    references = rng.normal(size=(120, 12))
    candidates = np.concatenate([rng.normal(0.4, 1.2, size=(70, 12)), rng.normal(6, 1, size=(10, 12))])
    expected = compute_prdc(real_features=references, fake_features=candidates, nearest_k=k)
    measured = manifold_metrics(candidates, references, k)
    assert measured == pytest.approx({key: float(value) for key, value in expected.items()}, rel=1e-12)
    assert 0 < measured["precision"] < 1 and 0 < measured["coverage"] < 1  # a case that tells them apart


def test_precision_and_recall_are_one_on_identical_sets():
    features = np.random.default_rng(11).normal(size=(60, 8))
    result = manifold_metrics(features, features.copy())
    assert result["precision"] == 1.0 and result["recall"] == 1.0 and result["coverage"] == 1.0
    # each image lies in its own ball and in those of the references it is among the k nearest of
    assert result["density"] >= 1.0


def test_coverage_and_recall_fall_when_a_mode_is_dropped():
    rng = np.random.default_rng(12)
    modes = [rng.normal(loc=10.0 * m, size=(50, 6)) for m in range(4)]
    references = np.concatenate(modes)
    all_modes = np.concatenate([rng.normal(loc=10.0 * m, size=(50, 6)) for m in range(4)])
    three_modes = all_modes[:150]  # the fourth mode is never generated
    full, dropped = manifold_metrics(all_modes, references), manifold_metrics(three_modes, references)
    assert full["coverage"] > 0.85 and dropped["coverage"] < 0.8 * full["coverage"]
    assert dropped["coverage"] <= 0.76 and dropped["recall"] < full["recall"]
    assert dropped["precision"] > 0.85  # what is generated is still realistic: precision cannot see the loss


def test_density_exceeds_one_when_candidates_crowd_into_the_dense_region():
    rng = np.random.default_rng(13)
    references = rng.normal(size=(200, 4))
    concentrated = rng.normal(scale=0.2, size=(100, 4))  # all near the references' dense centre
    matching = manifold_metrics(rng.normal(size=(100, 4)), references)
    result = manifold_metrics(concentrated, references)
    assert 0.9 < matching["density"] < 1.1  # a sample of the same distribution: about 1
    assert result["density"] > 1.15 and result["precision"] == 1.0
    assert result["coverage"] < 0.5 and result["recall"] < 0.1  # crowded in the centre: tails uncovered


def test_copies_in_a_bootstrap_sample_are_not_each_others_neighbours(capsys):
    from prdc import compute_prdc

    rng = np.random.default_rng(14)
    candidates, references = rng.normal(size=(40, 5)), rng.normal(size=(40, 5))
    distances = metrics.ManifoldDistances.between(candidates, references)
    doubled = np.repeat(np.arange(40), 2)  # every image drawn twice
    full = metrics.precision_recall_density_coverage(distances, 1)
    resampled = metrics.precision_recall_density_coverage(distances.resampled(doubled, doubled), 1)
    # k=1: an image's nearest *other* image is the same with every image doubled; each ball now counts twice
    assert resampled == pytest.approx(full | {"density": 2 * full["density"]})
    assert 0.3 < full["precision"] < 1
    # counted as neighbours, the copies would shrink every ball to a point: nothing inside any manifold
    naive = compute_prdc(references[doubled], candidates[doubled], nearest_k=1)
    assert naive["precision"] == 0 and naive["coverage"] == 0
    with pytest.raises(ValueError, match="prdc_k"):
        metrics.precision_recall_density_coverage(distances.resampled(np.arange(5), np.arange(40)), 5)


def test_bootstrap_interval_covers_the_full_sample_value_and_narrows_with_n():
    rng = np.random.default_rng(15)

    def widths(n: int) -> tuple[float, float, float]:
        a, b = rng.normal(size=(n, 4)), rng.normal(0.5, 1, size=(n, 4))
        full = float(np.linalg.norm(a.mean(0) - b.mean(0)))
        low, high = metrics.bootstrap_intervals(
            lambda ra, rb: {"shift": float(np.linalg.norm(a[ra].mean(0) - b[rb].mean(0)))},
            {"shift": full},
            n,
            n,
            200,
            seed=0,
        )["shift"]
        return low, full, high

    low, full, high = widths(50)
    assert low < full < high
    low_large, full_large, high_large = widths(800)
    assert low_large < full_large < high_large and high_large - low_large < (high - low) / 2
    assert metrics.bootstrap_intervals(lambda ra, rb: {"x": 0.0}, {"x": 0.0}, 5, 5, repeats=0, seed=0) == {}


def test_bootstrap_intervals_of_a_biased_statistic_are_centred_on_the_full_sample_value():
    rng = np.random.default_rng(19)
    a, b = rng.normal(size=(60, 8)), rng.normal(size=(60, 8))
    full = {"fid": metrics.frechet_distance(a, b)}

    def fid(rows_a, rows_b):
        return {"fid": metrics.frechet_distance(a[rows_a], b[rows_b])}

    resampled = [fid(*np.random.default_rng(s).integers(0, 60, (2, 60)))["fid"] for s in range(10)]
    assert min(resampled) > full["fid"]  # copies raise FID's small-N bias: every resample lies above
    low, high = metrics.bootstrap_intervals(fid, full, 60, 60, 30, 0, {"fid": (0, np.inf)})["fid"]
    assert 0 <= low < full["fid"] < high
    share_low, share_high = metrics.bootstrap_intervals(
        lambda ra, rb: {"p": 1.0 - 0.01 * len(np.unique(ra)) / 60}, {"p": 1.0}, 60, 60, 20, 0, {"p": (0, 1)}
    )["p"]
    assert share_low < share_high == 1.0  # clipped to the range of a share


class Network:  # what set_comparisons reads of a features.FeatureNetwork
    def __init__(self, pretrained: bool) -> None:
        self.name, self.pretrained = "inception", pretrained
        self.tag = "" if pretrained else "_random_inception"
        self.distance_names = ("fid", "kid")


def test_set_comparisons_give_every_metric_an_interval_covering_it_and_n_and_warnings():
    rng = np.random.default_rng(16)
    sets = {"generated": rng.normal(0.3, 1, size=(60, 8)), "train": rng.normal(size=(80, 8))}
    table = metrics.set_comparisons(
        sets, [("generated", "train")], Network(False), 20, 1000, 0, prdc_k=5, bootstrap_repeats=30
    )
    row = table.iloc[0]
    assert (row["n_a"], row["n_b"], row["kid_subset_size"]) == (60, 80, 60)
    for key in ("fid", "kid", "precision", "recall", "density", "coverage"):
        value = f"{key}_random_inception" + ("_mean" if key == "kid" else "")
        assert row[f"{value}_low"] <= row[value] <= row[f"{value}_high"], key
    assert row["fid_random_inception"] == pytest.approx(metrics.frechet_distance(*sets.values()))
    assert row["precision_random_inception"] == manifold_metrics(*sets.values())["precision"]
    warnings = row["warnings"].split(metrics.WARNING_SEPARATOR)
    assert any(w.startswith("random-weight inception") for w in warnings)
    assert not any("feature dimension" in w for w in warnings)  # N > D = 8
    assert any("clipped from 1000 to 60" in w for w in warnings)


def test_trust_warnings_are_computed_from_n_and_the_features():
    assert metrics.trust_warnings(3000, 3000, 2048, True, "inception", 1000, 1000) == []
    small = metrics.trust_warnings(100, 500, 2048, True, "inception", 1000, 100)
    assert len(small) == 2 and "N=100 < feature dimension 2048" in small[0] and "clipped" in small[1]
    assert "random-weight" in metrics.trust_warnings(3000, 3000, 2048, False, "inception", 1000, 1000)[0]


def test_small_sets_get_a_note_instead_of_manifold_metrics():
    rng = np.random.default_rng(17)
    sets = {"a": rng.normal(size=(4, 3)), "b": rng.normal(size=(30, 3))}
    row = metrics.set_comparisons(sets, [("a", "b")], Network(True), 5, 10, 0, prdc_k=5).iloc[0]
    assert "precision" not in row.index and "prdc_k=5" in row["warnings"] and row["fid"] > 0


def test_a_set_barely_above_prdc_k_gets_values_but_no_interval_and_says_why():
    rng = np.random.default_rng(20)
    sets = {"a": rng.normal(size=(6, 3)), "b": rng.normal(size=(30, 3))}
    row = metrics.set_comparisons(sets, [("a", "b")], Network(True), 5, 10, 0, 5, bootstrap_repeats=5).iloc[0]
    assert 0 <= row["precision"] <= 1 and "precision_low" not in row.index and row["fid_low"] < row["fid"]
    assert "no interval, resamples of N=6 hold no more than prdc_k=5 distinct images" in row["warnings"]


def test_fid_at_equal_n_and_the_floor_warnings():
    rng = np.random.default_rng(18)
    heldout = rng.normal(size=(40, 4))
    same = {"generated": rng.normal(size=(300, 4)), "train": rng.normal(size=(60, 4))}
    table = metrics.equal_n_distance(same, heldout, repeats=20, seed=0, distance_key="fid")
    assert table["n_candidates"].tolist() == [60, 60] and table["n_reference"].tolist() == [40, 40]
    generated = table.loc["generated"]
    assert generated["fid_equal_n_low"] < generated["fid_equal_n"] < generated["fid_equal_n_high"]
    assert pd.isna(table.loc["train", "fid_equal_n_low"])  # used whole: one FID, no interval
    assert table.loc["train", "fid_equal_n"] == pytest.approx(
        metrics.frechet_distance(same["train"], heldout)
    )
    # the generator draws from the real distribution: not distinguishable (or even below the floor)
    assert metrics.floor_warnings(table, "generated", "train", "fid")
    shifted = {"generated": same["generated"] + 2.0, "train": same["train"]}
    assert (
        metrics.floor_warnings(
            metrics.equal_n_distance(shifted, heldout, 20, 0, "fid"), "generated", "train", "fid"
        )
        == []
    )
    floor_worse = pd.DataFrame(
        {
            "n_candidates": [60, 60],
            "fid_equal_n": [1.0, 2.0],
            "fid_equal_n_low": [0.5, 1.5],
            "fid_equal_n_high": [1.5, 2.5],
        },
        index=["generated", "train"],
    )
    assert "worse than the generator" in metrics.floor_warnings(floor_worse, "generated", "train", "fid")[0]


def test_the_checkpoint_curve_has_both_distances_in_every_feature_network():
    from mammogan_lib.evaluate.features import FeatureNetwork

    rng = np.random.default_rng(5)
    inception = FeatureNetwork("inception", False, "offline", None)
    dinov2 = FeatureNetwork("dinov2", True, "hub", None)
    curve_images = {900: rng.normal(size=(12, 6)), 300: rng.normal(0.5, 1.0, size=(12, 6))}
    train = {"inception": rng.normal(size=(20, 6)), "dinov2": rng.normal(size=(20, 3))}

    def extract(images, network):  # each network sees the images differently
        return images if network.name == "inception" else images[:, :3] * 2

    curve = metrics.checkpoint_curve(curve_images, train, [inception, dinov2], extract, 4, 10, seed=1)
    assert curve["epoch"].tolist() == [300, 900] and curve["n_generated"].tolist() == [12, 12]
    assert metrics.curve_columns([inception, dinov2]) == [
        "fid_random_inception_vs_train",
        "kid_random_inception_vs_train",
        "fd_dinov2_vs_train",
        "kd_dinov2_vs_train",
    ]
    first = curve.iloc[0]
    assert first["fid_random_inception_vs_train"] == pytest.approx(
        reference_fid(curve_images[300], train["inception"]), rel=1e-6
    )
    assert first["fd_dinov2_vs_train"] == pytest.approx(
        reference_fid(curve_images[300][:, :3] * 2, train["dinov2"]), rel=1e-6
    )
    kid = metrics.kernel_distance(curve_images[300][:, :3] * 2, train["dinov2"], 4, 10, seed=1)
    assert (first["kd_dinov2_vs_train"], first["kd_dinov2_std"]) == (kid.mean, kid.std)
    empty = metrics.checkpoint_curve({}, train, [inception, dinov2], extract, 4, 10, seed=1)
    assert empty.empty
