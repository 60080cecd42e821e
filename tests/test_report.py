"""mammogan_lib.pipeline.report: the run's index page shows what the run folder holds, and only that."""

import json

from mammogan_lib import pipeline
from mammogan_lib.core import files
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.pipeline import report
from tests.test_metrics import offline_results, results_from_small_inputs


def test_index_of_a_run_that_has_not_got_far_lists_stages_as_not_run(tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "01_filter.html").write_text("<html></html>")
    path = report.write_index(tmp_path, ["01_filter", "02_preprocess"])
    page = path.read_text()
    assert path == tmp_path / "index.html"
    assert '<a href="reports/01_filter.html">01_filter</a>' in page
    assert "<td>02_preprocess</td>" in page and "not run" in page
    assert "Metrics" not in page and "warning" not in page.split("</style>")[1]


def test_index_warns_when_metrics_used_random_weights(tmp_path):
    files.write_json(RunPaths(tmp_path).metrics, results_from_small_inputs(pretrained=False))  # 05's layout
    page = report.write_index(tmp_path, ["05_metrics"]).read_text()
    box = page.split('<details class="warning">')[1].split("</details>")[0]  # one box, every warning named
    alerts = [item.split("</li>")[0] for item in box.split("<li>")[1:]]
    assert any(
        "random-weight InceptionV3" in alert and "<code>_random_inception</code>" in alert for alert in alerts
    )
    assert any("dinov2 features used random weights" in alert for alert in alerts)
    assert "Metrics (05, epoch 8)" in page and "<th>generated vs heldout</th>" in page
    # the headline: each network's distance with its interval and the N behind it, in key/value rows
    assert "<td>fid_random_inception 12.5 [10, 16]</td>" in page and "N = 3 generated vs" in page
    assert "<td>FID (05)</td>" in page and "<td>fd_random_dinov2 300</td>" in page
    # a row per metric, a column per comparison, each value with its interval
    assert "<td>fid_random_inception</td>" in page and "<td>12.5 [10, 16]</td>" in page
    assert "<td>fd_random_dinov2</td>" in page
    # the computed trust warnings, grouped, each with the comparisons it applies to, under one summary line
    assert "<b>3 trust warnings</b>" in page
    assert "<li>FID: N=3 &lt; feature dimension 2048 <i>(generated vs train, inception)</i></li>" in page
    assert '3 trust warnings on 05\'s numbers: <a href="#metrics">' in page
    assert "Distances at equal N" in page and "<td>fid_random_inception_equal_n</td>" in page
    assert "<td>n_heldout</td>" in page


def test_an_offline_run_opens_with_effnet_and_frd_and_says_what_was_left_out(tmp_path):
    files.write_json(RunPaths(tmp_path).metrics, offline_results())
    overview = report.run_overview(tmp_path, ["05_metrics"])
    labels = [line.label for line in overview.headline]
    assert labels == ["FD, effnet_lite0 features (05)", "FRD v1, radiomic features (05)"]
    effnet, frd = overview.headline
    assert "not InceptionV3: not comparable with published FIDs" in effnet.detail
    assert "against the held-out images 80, real floor 40 (floor / fd_effnet_lite0 0.5)" in effnet.detail
    assert frd.value.startswith("frd_equal_n 3 against the held-out images, real floor 1.75 (gap 1.25)")
    assert "a gap of 1 is e ≈ 2.7× the squared distance" in frd.detail
    assert len(overview.alerts) == 1 and "inception was left out of 05" in overview.alerts[0]
    page = report.write_index(tmp_path, ["05_metrics"]).read_text()
    assert "<h3>radiomics features</h3>" in page and "<td>frd</td>" in page


def test_a_metrics_file_from_before_several_networks_still_warns_of_random_inception(tmp_path):
    results = results_from_small_inputs(pretrained=False)
    del results["features"]  # the layout of metrics.json before DINOv2 joined InceptionV3
    files.write_json(RunPaths(tmp_path).metrics, results)
    alerts = report.run_overview(tmp_path, ["05_metrics"]).alerts
    assert any("random-weight InceptionV3" in alert for alert in alerts)


def test_index_of_pretrained_metrics_has_no_warning_and_plain_keys(tmp_path):
    files.write_json(RunPaths(tmp_path).metrics, results_from_small_inputs(pretrained=True))
    page = report.write_index(tmp_path, ["05_metrics"]).read_text()
    assert "random-weight" not in page and "<td>fid</td>" in page and "<td>fid 12.5 [10, 16]</td>" in page


def table_widths(page: str) -> list[int]:
    """The number of columns of every table of a page, from its header row (or first row)."""
    widths = []
    for table in page.split("<table")[1:]:
        first_row = table.split("<tr")[1].split("</tr>")[0]
        widths.append(first_row.count("<th") + first_row.count("<td"))
    return widths


def test_index_tables_stay_narrow_enough_for_a_laptop_and_wrap(tmp_path):
    paths = RunPaths(tmp_path)
    files.write_json(paths.metrics, results_from_small_inputs(pretrained=False))
    files.write_json(paths.svm, svm_results())
    page = report.write_index(tmp_path, list(pipeline.STAGES)).read_text()
    widths = table_widths(page)
    assert len(widths) >= 6 and max(widths) <= report.MAX_TABLE_COLUMNS, widths
    assert "word-break: keep-all" in page and "overflow-x: auto" in page and "width=device-width" in page
    headline = (
        "<td>accuracy_random_resnet50: real_only 0.7 [0.6, 0.8] · generated_enhanced 0.7 [0.6, 0.8]</td>"
    )
    assert headline in page  # one line per non-tumour source, each design with its CI


def test_index_says_how_far_training_got_and_in_which_precision_and_why(tmp_path):
    precision = {
        "requested": "auto",
        "policy": "float32",
        "device": "CPU (no native bfloat16 flag)",
        "reason": "this CPU has no native bfloat16 (no avx512_bf16, amx_bf16 or bf16 flag)",
        "calibration_ms_per_step": None,
    }
    summary = {
        "epoch": 600,
        "step": 1200,
        "n_images": 71,
        "dtype_policy": "float32",
        "precision": precision,
        "this_session": {"median_ms_per_step": 36.27},
    }
    (tmp_path / "train_summary.json").write_text(json.dumps(summary))
    page = report.write_index(tmp_path, ["03_train_gan"]).read_text()
    assert "600 epochs, 1,200 steps on 71 images; precision float32" in page
    assert "auto on CPU (no native bfloat16 flag): this CPU has no native bfloat16" in page
    assert "36.3 ms per step" in page


def test_index_of_a_run_stopped_by_its_time_budget_says_so_and_how_to_continue(tmp_path):
    summary = {
        "epoch": 5000,
        "step": 10000,
        "n_images": 71,
        "dtype_policy": "mixed_float16",
        "replicas": 2,
        "partial": {
            "reason": "time budget of 11 h reached",
            "epoch": 5000,
            "epochs": 20000,
            "checkpoint": "epoch_005000",
            "continue": "run the same command again: training resumes from this checkpoint",
        },
    }
    files.write_json(RunPaths(tmp_path).train_summary, summary)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "03_train_gan.html").write_text("<html></html>")
    files.write_json(
        RunPaths(tmp_path).done_marker("03_train_gan"), {"fingerprint": "f", "partial": summary["partial"]}
    )
    page = report.write_index(tmp_path, ["03_train_gan"]).read_text()
    banner = page.split('<details class="warning">')[1].split("</details>")[0]  # the warnings' box
    assert "Partial run" in banner and "epoch 5,000 of 20,000" in banner and "11 h" in banner
    assert "<code>epoch_005000</code>" in banner and "make kaggle-continue" in banner
    assert "stopped partway" in page and "data-parallel on 2 devices" in page


def svm_results() -> dict:
    """svm.json as 06_svm writes it, reduced to what the report reads."""
    row = {"repeats": 3, "non_tumour_source": "other_source", "accuracy": 0.7, "accuracy_ci_low": 0.6}
    row |= {"accuracy_ci_high": 0.8, "auc": 0.75, "sensitivity": 0.7, "specificity": 0.7}
    return {
        "resnet50": {"pretrained": False, "source": "offline", "key_suffix": "_random_resnet50"},
        "confidence": 0.95,
        "test_per_class": 10,
        "summary_random_resnet50": [
            {**row, "design": design} for design in ("real_only", "generated_enhanced")
        ],
    }


def test_the_svm_headline_in_effnet_features_names_them_without_the_fid_caveat(tmp_path):
    svm = svm_results()
    row = svm.pop("summary_random_resnet50")[0]
    note = "ImageNet EfficientNet-Lite0, not InceptionV3: not comparable with published FIDs"
    svm["feature_networks"] = {
        "effnet_lite0": {"pretrained": True, "source": "wheel", "key_suffix": "_effnet_lite0", "note": note}
    }
    svm["summary_effnet_lite0"] = [row]
    files.write_json(RunPaths(tmp_path).svm, svm)
    (svm_line,) = report.run_overview(tmp_path, ["06_svm"]).headline
    assert svm_line.label == "SVM accuracy (06), effnet_lite0 features, other_source"
    assert svm_line.value == "accuracy_effnet_lite0: real_only 0.7 [0.6, 0.8]"
    assert "FID" not in svm_line.detail  # an SVM accuracy has nothing to compare with published FIDs


def test_the_closing_summary_shows_what_the_index_opens_with(tmp_path):
    paths = RunPaths(tmp_path)
    files.write_json(paths.metrics, results_from_small_inputs(pretrained=False))
    files.write_json(paths.svm, svm_results())
    files.write_json(
        paths.filter_summary, {"counts": {"kept": 26, "images_in_dataset": 64}, "selection": "x"}
    )
    for stage in ("01_filter", "02_preprocess"):
        paths.report(stage).parent.mkdir(exist_ok=True)
        paths.report(stage).write_text("<html></html>")
    overview = report.run_overview(tmp_path, pipeline.STAGES)
    lines = report.summary_lines(
        overview,
        {"01_filter": "skipped", "02_preprocess": "ran", "03_train_gan": "failed"},
        {"02_preprocess": 3.4, "03_train_gan": 12.0},
        failed="03_train_gan",
    )
    text = "\n".join(lines)
    assert lines[0].startswith("── mammogan run") and "stopped: 03_train_gan failed" in lines[0]
    assert "01_filter      skipped: unchanged since its last run" in text
    assert "02_preprocess  ran in 3 s" in text and "03_train_gan   FAILED after 12 s" in text
    assert "04_generate    not run" in text
    assert "images kept (01)" in text and "26 of 64" in text
    assert "fid_random_inception 12.5 [10, 16]" in text and "N = 3 generated" in text
    assert (
        "SVM accuracy (06), resnet50 features, other_source" in text
        and "real_only 0.7 [0.6, 0.8] · generated" in text
    )
    assert "! FID/KID were computed with a random-weight InceptionV3" in text
    assert "! 3 trust warnings on 05's numbers (3 distinct)" in text
    assert lines[-1] == f"  report: {paths.index}"
    # every headline line of the summary is a row of the page
    page = report.write_index(tmp_path, pipeline.STAGES).read_text()
    for item in overview.headline:
        assert f"<td>{item.label}</td>" in page


def test_the_headline_of_pre_cut_crops_says_their_shape_was_not_scored(tmp_path):
    summary = {"counts": {"kept": 3, "images_in_dataset": 6}, "selection": "any-pathology mass"}
    files.write_json(
        RunPaths(tmp_path).filter_summary,
        summary
        | {"threshold": None, "shape_scoring": "not applicable (pre-cut crops)", "layout": "roi_patches"},
    )
    (line,) = report.run_overview(tmp_path, ["01_filter"]).headline
    assert (
        line.value == "3 of 6" and "shape not applicable (pre-cut crops), roi_patches layout" in line.detail
    )


def test_numbers_are_written_for_readers():
    cases = [(None, "—"), (float("nan"), "—"), (71, "71"), (71.0, "71"), (1.0, "1"), (23330.4, "23,330")]
    cases += [(231.63, "232"), (17.684, "17.7"), (0.43052, "0.431"), (3.2e-5, "3.2e-05"), (2.5, "2.5")]
    cases += [(-3.189e8, "-318,900,000")]
    assert [report._number(value) for value, _ in cases] == [written for _, written in cases]


def test_the_index_opens_with_real_beside_generated_and_the_headline_in_words(tmp_path):
    import numpy as np

    from mammogan_lib.core import plots

    paths = RunPaths(tmp_path)
    files.write_json(paths.metrics, offline_results())
    images = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32))
    plots.save_figure(plots.real_beside_generated(images, images[::-1]), paths.figure("real_vs_generated"))
    page = report.write_index(tmp_path, ["05_metrics"]).read_text()
    body = page.split("<body>")[1]
    assert (
        body.index("Real images of held-out patients (top)") < body.index("At equal N") < body.index("<h2>")
    )
    words = report.headline_in_words(offline_results())
    assert (
        words.startswith("At equal N (")
        and "from the held-out real images in effnet_lite0 features: 2.0 times" in words
    )
    assert '<details class="warning"><summary><b>1 warning</b>' in body


def test_a_negative_kernel_distance_is_explained_where_it_occurs(tmp_path):
    results = offline_results()
    assert not report.negative_kernel_distances(results)
    row = results["sets"][0]
    row["kd_effnet_lite0_mean"], row["kd_effnet_lite0_mean_low"] = -0.0002, -0.001  # only the mean counts
    assert report.negative_kernel_distances(results) == [f"{row['comparison']} ({row['features']})"]
    files.write_json(RunPaths(tmp_path).metrics, results)
    page = report.write_index(tmp_path, ["05_metrics"]).read_text()
    assert "A negative KID or KD is not an error" in page
