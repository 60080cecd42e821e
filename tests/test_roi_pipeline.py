"""A set of pre-cut crops (layout ``roi_patches``) through the pipeline with papermill, on params/tiny.yaml.

`make test` runs 01 -> 02 (seconds of work): 01 keeps every lesion crop without a shape score, 02 writes the
crops as stored into the array cache, split by patient. `make test-all` also runs 03 -> 06 on that cache:
06's same-source non-tumours are the dataset's healthy crops, its other-source study is reported as not run.
"""

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mammogan_lib import pipeline
from mammogan_lib.core import files
from mammogan_lib.core.run_paths import RunPaths
from tests import public_layouts
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.notebook
PARAMS = [PROJECT_ROOT / "params" / "base.yaml", PROJECT_ROOT / "params" / "tiny.yaml"]
EXTRA_PATIENTS = 12  # 16 patients, 30 lesion and 30 healthy crops: 3 patients held out
FIRST, LATER = ["01_filter", "02_preprocess"], ["03_train_gan", "04_generate", "05_metrics", "06_svm"]


def roi_params(tmp: Path, root: Path) -> pipeline.MergedParams:
    overrides = [f"runs_dir={tmp / 'runs'}", f"data_dir={tmp / 'data'}", "exp_id=roi", f"dataset_root={root}"]
    return pipeline.load_params(PARAMS, [*overrides, "pathology=any"])


@pytest.fixture(scope="module")
def crop_run(tmp_path_factory) -> tuple[Path, Path, RunPaths, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("roi")
    root = public_layouts.write_roi_patches(tmp / "cbis_ddsm_roi", EXTRA_PATIENTS)
    outcome = pipeline.run_pipeline(roi_params(tmp, root), stages=FIRST, cwd=PROJECT_ROOT, log=lambda _: None)
    return tmp, root, RunPaths(tmp / "runs" / "roi"), outcome


def test_01_keeps_every_lesion_crop_with_its_shape_not_applicable(crop_run):
    _, _, paths, outcome = crop_run
    assert outcome == dict.fromkeys(FIRST, "ran")
    summary = files.read_json(paths.filter_summary)
    assert summary["layout"] == "roi_patches" and summary["selection"] == "any-pathology mass/calcification"
    assert summary["shape_scoring"] == "not applicable (pre-cut crops)" and summary["threshold"] is None
    counts = summary["counts"]
    assert (counts["images_in_dataset"], counts["kept"], counts["kept_shape_not_applicable"]) == (60, 30, 30)
    assert counts["rejected_not_selected"] == 30 and summary["patients_note"] == ""
    manifest = pd.read_csv(paths.manifest, keep_default_na=False, dtype=str)
    kept = manifest[manifest["kept"] == "True"]
    assert kept["image_id"].str.startswith("lesion/").all() and (kept["shape_confidence"] == "").all()
    assert set(manifest.loc[manifest["kept"] != "True", "reason"]) == {"no finding (pathology NORMAL)"}
    assert paths.figure("filter_examples").is_file() and not paths.figure("shape_confidence").exists()


def test_02_caches_the_crops_as_stored_split_by_patient(crop_run):
    _, root, paths, _ = crop_run
    record = files.read_json(paths.preprocess_record)
    assert (
        record["breast_extraction"] == "not applicable (pre-cut crops)" and record["preparation"] == "crops"
    )
    images = np.load(Path(record["cache_dir"]) / "images.npy")
    assert images.shape == (30, 64, 64) and record["written"] == 30
    split = pd.read_csv(paths.split, keep_default_na=False, dtype=str)
    assert (split.groupby("patient_id")["split"].nunique() == 1).all()
    assert split["patient_id"].nunique() == 16 and 0 < (split["split"] == "heldout").sum() < 30
    row = split.iloc[0]
    stored = cv2.imread(str(root / row["image_id"]), cv2.IMREAD_UNCHANGED).astype(np.float32)
    expected = cv2.resize(stored / 255, (64, 64), interpolation=cv2.INTER_AREA) * 2 - 1
    np.testing.assert_allclose(images[int(row["array_row"])], expected, atol=1e-6)
    assert "Top: crops as stored" in paths.executed_notebook("02_preprocess").read_text()
    assert paths.figure("before_after").is_file()


@pytest.mark.slow
def test_03_to_06_run_on_the_crops_with_the_healthy_crops_as_the_same_source_set(crop_run):
    tmp, root, paths, _ = crop_run
    outcome = pipeline.run_pipeline(roi_params(tmp, root), cwd=PROJECT_ROOT, log=lambda _: None)
    assert outcome == {**dict.fromkeys(FIRST, "skipped"), **dict.fromkeys(LATER, "ran")}
    svm = files.read_json(paths.svm)
    sources = {source["name"]: source for source in svm["non_tumour_sources"]}
    assert sources["other_source"]["images"] == 0 and sources["other_source"]["note"].startswith("not run")
    assert (
        sources["same_source"]["images"] == 30
        and "follows 02's patient split" in sources["same_source"]["note"]
    )
    summary = next(value for key, value in svm.items() if key.startswith("summary"))
    assert {row["non_tumour_source"] for row in summary} == {"same_source"}
