"""mammogan_lib.evaluate.classify: the SVM study on constructed features."""

import numpy as np
import pytest
from scipy import stats

from mammogan_lib.evaluate import classify


def separable_pools(rng, dim=6, gap=4.0, n=60):
    tumour = rng.normal(size=(3 * n, dim)) + gap
    return classify.Pools(
        tumour_train=tumour[:n],
        tumour_test=tumour[n : 2 * n],
        generated=tumour[2 * n :],
        non_tumour=rng.normal(size=(2 * n, dim)),
    )


def test_the_svm_separates_separable_features():
    rng = np.random.default_rng(0)
    pools = separable_pools(rng)
    x = np.concatenate([pools.tumour_train, pools.non_tumour[:60]])
    y = np.r_[np.ones(60, int), np.zeros(60, int)]
    test_x = np.concatenate([pools.tumour_test, pools.non_tumour[60:]])
    scores = classify.evaluate_svm(x, y, test_x, y)
    assert scores["accuracy"] == 1.0 and scores["auc"] == 1.0
    assert (scores["tn"], scores["fp"], scores["fn"], scores["tp"]) == (60, 0, 0, 60)


def test_a_one_class_training_set_is_refused_with_a_clear_message():
    x = np.random.default_rng(1).normal(size=(10, 3))
    with pytest.raises(ValueError, match=r"training set holds only class \[1\].*needs both classes"):
        classify.evaluate_svm(x, np.ones(10, int), x, np.r_[np.ones(5, int), np.zeros(5, int)])


def test_chance_features_score_near_chance():
    rng = np.random.default_rng(2)
    pools = separable_pools(rng, gap=0.0, n=80)
    results = classify.run_study(pools, classify.thesis_designs(60, 15), test_per_class=20, repeats=8)
    summary = classify.summarise(results).set_index("design")
    assert summary.loc["real_only", "accuracy_ci_low"] < 0.5 + 0.1
    assert abs(summary.loc["real_only", "auc"] - 0.5) < 0.15


def test_the_study_shares_test_sets_and_counts_add_up():
    pools = separable_pools(np.random.default_rng(3))
    designs = classify.thesis_designs(40, 10)
    assert [(d.real_tumour, d.generated_tumour, d.non_tumour) for d in designs] == [
        (40, 0, 40),
        (30, 10, 40),
        (0, 40, 40),
    ]
    results = classify.run_study(pools, designs, test_per_class=15, repeats=3, seed=5)
    assert len(results) == 9 and set(results["test_images"]) == {30} and set(results["train_images"]) == {80}
    assert (results[list(classify.CONFUSION)].sum(axis=1) == 30).all()
    summary = classify.summarise(results)
    assert summary["repeats"].tolist() == [3, 3, 3]
    assert (summary[list(classify.CONFUSION)].sum(axis=1) == 90).all()
    again = classify.run_study(pools, designs, test_per_class=15, repeats=3, seed=5)
    assert again.equals(results)


def test_too_few_images_name_the_parameter_and_the_counts():
    pools = separable_pools(np.random.default_rng(4), n=20)
    with pytest.raises(ValueError, match=r"svm_test_per_class needs 30 held-out tumour images.*only 20"):
        classify.run_study(pools, classify.thesis_designs(10, 2), test_per_class=30, repeats=1)
    with pytest.raises(ValueError, match="svm_generated"):
        classify.thesis_designs(10, 11)


def test_intervals_match_scipy_references():
    low, high = classify.wilson_interval(99, 100)
    reference = stats.binomtest(99, 100).proportion_ci(confidence_level=0.95, method="wilson")
    assert (low, high) == pytest.approx((reference.low, reference.high), rel=1e-9)
    values = np.array([0.9, 0.95, 0.92, 0.97])
    mean, low, high = classify.mean_interval(values)
    half = stats.t.ppf(0.975, 3) * values.std(ddof=1) / 2
    assert (mean, low, high) == pytest.approx((values.mean(), values.mean() - half, values.mean() + half))
    assert classify.mean_interval(np.array([0.5, 0.5])) == (0.5, 0.5, 0.5)


def test_proportions_intervals_over_repeats_are_scipys_percentile_bootstrap_and_stay_inside_0_1():
    values = np.array([0.25, 0.25, 1.0, 0.5])  # a t interval here reaches past 1: [-0.12, 1.12]
    assert classify.mean_interval(values)[2] > 1
    mean, low, high = classify.proportion_interval(values)
    reference = stats.bootstrap(
        (values,), np.mean, confidence_level=0.95, method="percentile", n_resamples=9_999, rng=0
    ).confidence_interval
    assert (mean, low, high) == pytest.approx((0.5, reference.low, reference.high))
    assert 0.25 <= low < mean < high <= 1.0
    assert classify.proportion_interval(np.array([0.5, 0.5])) == (0.5, 0.5, 0.5)
    assert classify.proportion_interval(np.array([0.7])) == (0.7, 0.7, 0.7)


def test_confusion_table_uses_the_thesis_layout():
    table = classify.confusion_table({"tn": 99, "fp": 1, "fn": 0, "tp": 100})
    assert table.loc["Actual non-tumour", "Predicted tumour"] == 1
    assert table.loc["Actual tumour", "Predicted tumour"] == 100


def test_the_results_file_keeps_designs_sources_skips_and_labelled_summaries(tmp_path):
    from mammogan_lib.evaluate.features import FeatureNetwork

    pools = separable_pools(np.random.default_rng(4))
    designs = classify.thesis_designs(20, 5)
    study = classify.run_study(pools, designs, test_per_class=10, repeats=2, seed=1)
    summary = classify.summarise(study).assign(non_tumour_source="other_source")
    sources = [
        classify.NonTumourSource("other_source", tmp_path, ""),
        classify.NonTumourSource("same_source", None, "no folder given: not run"),
    ]
    skipped = [{"source": "other_source", "image": "x.png", "reason": "unreadable"}]
    resnet = FeatureNetwork("resnet50", False, "offline", None)
    effnet = FeatureNetwork("effnet_lite0", True, "efficientnet-lite0-57934424.pth", None)
    results = classify.build_results(
        "exp",
        8,
        [effnet, resnet],
        designs,
        10,
        2,
        sources,
        {"other_source": pools.non_tumour},
        skipped,
        {"effnet_lite0": summary, "resnet50": summary},
        {"effnet_lite0": {"other_source": study}, "resnet50": {"other_source": study}},
        "BI-RADS >= 4 mass (BI-RADS, not pathology)",
    )
    assert results["resnet50"]["key_suffix"] == "_random_resnet50" and results["confidence"] == 0.95
    assert list(results["feature_networks"]) == ["effnet_lite0", "resnet50"]
    assert len(results["summary_effnet_lite0"]) == 3 and results["left_out_networks"] == []
    assert results["tumour_selection"] == "BI-RADS >= 4 mass (BI-RADS, not pathology)"
    assert [d["name"] for d in results["designs"]] == ["real_only", "generated_enhanced", "synthetic_only"]
    assert results["non_tumour_sources"] == [
        {"name": "other_source", "root": str(tmp_path), "note": "", "images": len(pools.non_tumour)},
        {"name": "same_source", "root": None, "note": "no folder given: not run", "images": 0},
    ]
    assert results["skipped_non_tumour_images"] == skipped
    assert len(results["summary_random_resnet50"]) == 3 and "summary" not in results
    assert len(results["repeats_random_resnet50"]["other_source"]) == 6


def test_an_rsna_screening_root_gives_its_cancer_free_images_as_non_tumours(tmp_path):
    from tests import public_layouts

    root = public_layouts.write_rsna_screening(tmp_path / "rsna-breast-cancer-detection")
    other, same = classify.non_tumour_sources(str(root), "", tmp_path / "cbis")
    assert other.root == root and same.root is None
    assert other.note == (
        f"non_tumour_root: {root}; RSNA screening layout (train.csv): 5 images with cancer == 0 of 8 listed "
        "(2 with cancer == 1 left out, 1 with cancer == 0 not found)"
    )
    files = classify.image_files(root)
    listed = {(r["patient_id"], r["image_id"]): r["cancer"] for r in public_layouts.RSNA_ROWS}
    assert len(files) == 5
    assert all(listed[(int(f.parent.name), int(f.stem))] == 0 for f in files)


def test_the_studies_of_one_network_run_every_non_tumour_source_and_keep_held_out_rows_for_testing():
    pools = separable_pools(np.random.default_rng(7))
    features = {
        "tumour_train": pools.tumour_train,
        "tumour_heldout": pools.tumour_test,
        "generated": pools.generated,
        "non_tumour_other_source": pools.non_tumour,
        "non_tumour_same_source": pools.non_tumour,
    }
    heldout = np.zeros(len(pools.non_tumour), dtype=bool)
    heldout[:15] = True
    designs = classify.thesis_designs(20, 5)
    studies, summary = classify.run_studies(features, {"same_source": heldout}, designs, 10, 2, 1.0, 0)
    assert list(studies) == ["other_source", "same_source"]
    assert summary.groupby("non_tumour_source").size().to_dict() == {"other_source": 3, "same_source": 3}
