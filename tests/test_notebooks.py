"""The notebooks end to end with papermill on the smoke parameters, through the pipeline of `make reproduce`.

One smoke run is shared by the tests of this module (it is the slow part of the suite); runs_dir and
data_dir point into a temporary folder.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mammogan_lib import pipeline
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.notebook
SMOKE = [PROJECT_ROOT / "params" / "base.yaml", PROJECT_ROOT / "params" / "smoke.yaml"]


def smoke_params(tmp: Path, *extra: str) -> pipeline.MergedParams:
    return pipeline.load_params(SMOKE, [f"runs_dir={tmp / 'runs'}", f"data_dir={tmp / 'data'}", *extra])


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("smoke")
    log: list[str] = []
    outcome = pipeline.run_pipeline(smoke_params(tmp), cwd=PROJECT_ROOT, log=log.append)
    return tmp, tmp / "runs" / "smoke", outcome, log


def test_every_stage_ran_and_left_notebook_report_and_provenance(smoke_run):
    _, run_dir, outcome, _ = smoke_run
    assert outcome == dict.fromkeys(pipeline.STAGES, "ran")
    for stage in pipeline.STAGES:
        assert (run_dir / "notebooks" / f"{stage}.ipynb").is_file()
        html = (run_dir / "reports" / f"{stage}.html").read_text()
        assert "data:image/png;base64" in html  # figures embedded, the report stands alone
        record = json.loads((run_dir / "provenance" / f"{stage}.json").read_text())
        assert record["params"]["exp_id"] == "smoke" and record["wall_s"] > 0
        assert record["packages"]["papermill"] and record["hardware"]["cpu_count"]
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert set(provenance["stages"]) == set(pipeline.STAGES)


def test_filter_lists_every_phantom_image_with_a_reason_and_keeps_whole_breasts(smoke_run):
    tmp, run_dir, _, _ = smoke_run
    manifest = pd.read_csv(run_dir / "manifest.csv", keep_default_na=False)
    phantom_root = Path(json.loads((run_dir / "filter_summary.json").read_text())["dataset_root"])
    truth = pd.read_csv(phantom_root / "phantom_truth.csv", keep_default_na=False)
    full_images = truth.drop_duplicates("SeriesInstanceUID")
    assert len(manifest) == len(full_images) == manifest["image_id"].nunique()
    assert (manifest["reason"] != "").all()
    counts = json.loads((run_dir / "filter_summary.json").read_text())["counts"]
    rejected = sum(value for key, value in counts.items() if key.startswith("rejected_"))
    assert counts["kept"] + rejected == counts["images_in_dataset"] == len(manifest)
    # the shape filter separates the phantom's whole breasts from those cut by the image edge
    scored = manifest[manifest["reason_code"].isin(["kept", "low_shape_confidence"])]
    cut = scored["image_id"].map(full_images.set_index("SeriesInstanceUID")["cut_contour"]).astype(bool)
    kept = scored["reason_code"] == "kept"
    assert cut.any() and (~cut).any()
    assert (kept & ~cut).sum() / (~cut).sum() >= 0.9  # whole breasts kept
    assert (~kept & cut).sum() / cut.sum() >= 0.9  # cut breasts rejected
    assert (run_dir / "figures" / "01_phantom_preview.png").is_file()


def test_preprocess_writes_the_array_cache_the_training_stage_reads(smoke_run):
    _, run_dir, _, _ = smoke_run
    record = json.loads((run_dir / "preprocess.json").read_text())
    images = np.load(Path(record["cache_dir"]) / "images.npy")
    manifest = pd.read_csv(run_dir / "manifest.csv", keep_default_na=False)
    assert record["inputs"] == int((manifest["reason_code"] == "kept").sum())
    assert record["written"] + record["skipped"] == record["inputs"] == len(images) + record["skipped"]
    assert images.shape[1:] == (64, 64) and images.dtype == np.float32
    assert images.min() == -1.0 and images.max() <= 1.0
    tissue_by_column = (images > -1).sum(axis=(0, 1))
    assert tissue_by_column[:8].sum() > 2 * tissue_by_column[-8:].sum()  # all face the same way


def test_training_logs_every_step_checkpoints_and_samples(smoke_run):
    _, run_dir, _, _ = smoke_run
    defaults = pipeline.notebook_parameters("03_train_gan")
    summary = json.loads((run_dir / "train_summary.json").read_text())
    assert summary["epoch"] == defaults["epochs"]
    assert summary["step"] == defaults["epochs"] * summary["steps_per_epoch"]
    assert summary["steps_per_epoch"] == summary["n_images"] // defaults["batch_size"]
    assert summary["dtype_policy"] == "mixed_bfloat16"  # precision 'mixed' on a CPU
    losses = pd.read_csv(run_dir / "losses.csv")
    assert losses["step"].tolist() == list(range(1, summary["step"] + 1))
    assert np.isfinite(losses[["d_loss", "g_loss", "d_real", "d_fake"]].to_numpy()).all()
    assert summary["checkpoints"][-1] == f"epoch_{defaults['epochs']:06d}"
    grids = sorted((run_dir / "samples").glob("epoch_*.png"))
    assert len(grids) == defaults["epochs"] // defaults["sample_every"]
    assert summary["this_session"]["median_ms_per_step"] > 0
    for name in ("03_losses.png", "03_samples_progression.png"):
        assert (run_dir / "figures" / name).is_file()


def test_generate_writes_the_images_the_metrics_stage_reads(smoke_run):
    _, run_dir, _, _ = smoke_run
    defaults = pipeline.notebook_parameters("04_generate")
    record = json.loads((run_dir / "generate.json").read_text())
    newest = json.loads((run_dir / "train_summary.json").read_text())["checkpoints"][-1]
    folder = run_dir / "generated" / newest
    images = np.load(folder / "images.npy")
    assert images.shape == (defaults["generate_count"], 64, 64)
    assert images.min() >= -1 and images.max() <= 1
    assert len(list(folder.glob("*.png"))) == defaults["generate_count"]
    assert record["grid_epochs"] == [int(name.split("_")[1]) for name in sorted(
        p.name for p in (run_dir / "checkpoints").iterdir())]
    for name in ("04_generated.png", "04_grid_across_epochs.png", "04_interpolation.png"):
        assert (run_dir / "figures" / name).is_file()


def test_unchanged_stages_are_skipped_and_more_epochs_resume_training(smoke_run):
    tmp, run_dir, _, _ = smoke_run
    log: list[str] = []
    again = pipeline.run_pipeline(smoke_params(tmp), cwd=PROJECT_ROOT, log=log.append)
    assert again == dict.fromkeys(pipeline.STAGES, "skipped")
    before = pd.read_csv(run_dir / "losses.csv")
    epochs = pipeline.notebook_parameters("03_train_gan")["epochs"]
    longer_params = smoke_params(tmp, f"epochs={epochs + 4}")
    longer = pipeline.run_pipeline(longer_params, cwd=PROJECT_ROOT, log=log.append)
    assert longer == {"01_filter": "skipped", "02_preprocess": "skipped", "03_train_gan": "ran",
                      "04_generate": "ran"}  # fmt: skip
    after = pd.read_csv(run_dir / "losses.csv")
    summary = json.loads((run_dir / "train_summary.json").read_text())
    assert summary["epoch"] == epochs + 4 and summary["this_session"]["epochs_trained"] == 4  # resumed
    pd.testing.assert_frame_equal(after.iloc[: len(before)], before)  # the earlier steps are untouched
    assert after["step"].tolist() == list(range(1, len(after) + 1))
