"""The notebooks end to end with papermill on the smoke parameters, through the pipeline `make reproduce` uses.

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


def test_unchanged_stages_are_skipped_and_a_changed_one_reruns(smoke_run):
    tmp, _, _, _ = smoke_run
    log: list[str] = []
    again = pipeline.run_pipeline(smoke_params(tmp), cwd=PROJECT_ROOT, log=log.append)
    assert again == dict.fromkeys(pipeline.STAGES, "skipped")
    changed = pipeline.run_pipeline(smoke_params(tmp, "resize_mode=stretch"), cwd=PROJECT_ROOT, log=log.append)
    assert changed == {"01_filter": "skipped", "02_preprocess": "ran"}
