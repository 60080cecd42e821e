"""mammogan_lib.report: the run's index page shows what the run folder holds, and only that."""

import json

from mammogan_lib import files, report
from mammogan_lib.runs import RunPaths
from tests.test_metrics import results_from_small_inputs


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
    assert "random-weight InceptionV3" in page and "<th>fid_random_inception</th>" in page
    assert "Metrics (05, epoch 8)" in page and "generated vs heldout" in page
    # the computed trust warnings, each with its comparison, and the equal-N table with the N beside it
    assert "<b>generated vs train, inception:</b> FID: N=3 &lt; feature dimension 2048" in page
    assert "dinov2 features used <b>random weights</b>" in page and "<th>fd_random_dinov2</th>" in page
    assert "FID at equal N" in page and "<th>fid_random_inception_equal_n</th>" in page
    assert "<th>n_heldout</th>" in page and "<th>fid_random_inception_low</th>" in page


def test_index_of_pretrained_metrics_has_no_warning_and_plain_keys(tmp_path):
    files.write_json(RunPaths(tmp_path).metrics, results_from_small_inputs(pretrained=True))
    page = report.write_index(tmp_path, ["05_metrics"]).read_text()
    assert "random-weight" not in page and "<th>fid</th>" in page


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
    assert "600 epochs, 1,200 steps on 71 images" in page and "<b>float32</b>" in page
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
    banner = page.split('<p class="warning">')[1].split("</p>")[0]
    assert "Partial run" in banner and "epoch 5,000 of 20,000" in banner and "11 h" in banner
    assert "<code>epoch_005000</code>" in banner and "make kaggle-continue" in banner
    assert "stopped partway" in page and "data-parallel on 2 devices" in page
