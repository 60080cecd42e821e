"""params/exp6_patches.yaml end to end with papermill: the lesion-patch cache of 02, 03-04 trained on it, and
06's tumour vs non-tumour study on patches.

`make test` runs it on params/tiny.yaml without 05 (its metrics code is the same on any array cache, and
the tiny run of tests/test_notebooks.py covers it); `make test-all` runs every stage on params/smoke.yaml.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mammogan_lib import pipeline
from mammogan_lib.core import files
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.data import patches
from tests.conftest import PROJECT_ROOT

# the pipeline once more in another mode, after the six notebooks' own run in make test: make test-slow
pytestmark = [pytest.mark.notebook, pytest.mark.slow]
PARAMS = PROJECT_ROOT / "params"
TIERS = {
    # the tiny phantom is 256 rows tall: a 256-pixel minimum side would be the whole breast
    "tiny": (
        [PARAMS / "base.yaml", PARAMS / "exp6_patches.yaml", PARAMS / "tiny.yaml"],
        ["patch_min_side=64"],
    ),
    "smoke": ([PARAMS / "base.yaml", PARAMS / "exp6_patches.yaml", PARAMS / "smoke.yaml"], []),
}
STAGES_RUN = {"tiny": [s for s in pipeline.STAGES if s != "05_metrics"], "smoke": list(pipeline.STAGES)}


@pytest.fixture(scope="session", params=["tiny", pytest.param("smoke", marks=pytest.mark.slow)])
def patch_run(request, tmp_path_factory) -> tuple[str, RunPaths, dict[str, str]]:
    tmp = tmp_path_factory.mktemp(f"patches_{request.param}")
    files_, extra = TIERS[request.param]
    overrides = [f"runs_dir={tmp / 'runs'}", f"data_dir={tmp / 'data'}", "exp_id=exp6_patches", *extra]
    merged = pipeline.load_params(files_, overrides)
    outcome = pipeline.run_pipeline(
        merged, stages=STAGES_RUN[request.param], cwd=PROJECT_ROOT, log=lambda _: None
    )
    return request.param, RunPaths(tmp / "runs" / "exp6_patches"), outcome


def test_every_stage_ran_on_the_patch_cache(patch_run):
    tier, _, outcome = patch_run
    assert outcome == {stage: "ran" for stage in STAGES_RUN[tier]}


def test_02_writes_one_patch_or_skipped_row_per_selected_finding_in_the_array_format(patch_run):
    _, paths, _ = patch_run
    record = files.read_json(paths.preprocess_record)
    assert record["training_images"] == "lesion_patches"
    images = np.load(Path(record["cache_dir"]) / "images.npy")
    index = patches.load_patch_index(Path(record["cache_dir"]))
    assert images.shape == (record["written"], record["resolution"], record["resolution"])
    assert record["regions"] == len(index) == record["written"] + record["skipped"]
    assert sum(record["skipped_by_reason"].values()) == record["skipped"]
    manifest = pd.read_csv(paths.manifest, keep_default_na=False, dtype={"image_id": str})
    kept = manifest[manifest["reason_code"] == "kept"]
    assert set(index["source_image_id"]) == set(kept["image_id"])  # every kept image has a selected finding
    assert images.min() >= -1.0 and images.max() <= 1.0 and record["written"] >= 0.8 * record["regions"]


def test_a_patients_patches_are_never_on_both_sides_and_03_trained_on_the_train_side(patch_run):
    _, paths, _ = patch_run
    split = pd.read_csv(paths.split, keep_default_na=False, dtype=str)
    assert (split.groupby("patient_id")["split"].nunique() == 1).all()
    assert 0 < (split["split"] == "heldout").sum() < len(split)
    assert files.read_json(paths.train_summary)["n_images"] == int((split["split"] == "train").sum())
    generated = files.read_json(paths.generate_record)
    assert generated  # 04 generated from the checkpoint trained on patches


def test_06_runs_the_study_on_patches_with_same_image_non_tumours(patch_run):
    _, paths, _ = patch_run
    svm = files.read_json(paths.svm)
    sources = {source["name"]: source for source in svm["non_tumour_sources"]}
    record = files.read_json(paths.preprocess_record)
    assert sources["same_image"]["images"] == record["background_written"] > 0
    assert sources["other_source"]["images"] > 0
    summary = next(value for key, value in svm.items() if key.startswith("summary"))
    assert {row["non_tumour_source"] for row in summary} == set(sources)
    assert {row["design"] for row in summary} == {"real_only", "generated_enhanced", "synthetic_only"}
