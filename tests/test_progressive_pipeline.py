"""params/exp3_progressive.yaml end to end with papermill: 02's cache at each stage's resolution, 03 growing
64 -> 128 with its stages in the checkpoints, 04 generating from either stage's checkpoint.

`make test` runs it on params/tiny.yaml (stages 01-04, 4 + 4 epochs); `make test-all` runs every stage at
smoke scale (params/smoke.yaml then params/smoke_progressive.yaml, which grows to 128 within smoke's 600
epochs).
"""

from pathlib import Path

import numpy as np
import pytest

from mammogan_lib import pipeline
from mammogan_lib.core import files
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.data import imaging
from mammogan_lib.gan import checkpoint as ckpt
from tests.conftest import PROJECT_ROOT

# the pipeline once more in another mode, after the six notebooks' own run in make test: make test-slow
pytestmark = [pytest.mark.notebook, pytest.mark.slow]
PARAMS = PROJECT_ROOT / "params"
TIERS = {
    "tiny": (
        [PARAMS / "base.yaml", PARAMS / "exp3_progressive.yaml", PARAMS / "tiny.yaml"],
        ["resolution=128", "progressive_epochs=[4, 4]"],
    ),
    "smoke": (
        [PARAMS / "base.yaml", PARAMS / "exp3_progressive.yaml", PARAMS / "smoke.yaml"]
        + [PARAMS / "smoke_progressive.yaml"],
        [],
    ),
}
STAGES_RUN = {"tiny": list(pipeline.STAGES[:4]), "smoke": list(pipeline.STAGES)}


@pytest.fixture(scope="session", params=["tiny", pytest.param("smoke", marks=pytest.mark.slow)])
def progressive_run(request, tmp_path_factory) -> tuple[str, RunPaths, dict[str, str], dict]:
    tmp = tmp_path_factory.mktemp(f"progressive_{request.param}")
    files_, extra = TIERS[request.param]
    overrides = [f"runs_dir={tmp / 'runs'}", f"data_dir={tmp / 'data'}", "exp_id=exp3_progressive", *extra]
    merged = pipeline.load_params(files_, overrides)
    outcome = pipeline.run_pipeline(
        merged, stages=STAGES_RUN[request.param], cwd=PROJECT_ROOT, log=lambda _: None
    )
    return request.param, RunPaths(tmp / "runs" / "exp3_progressive"), outcome, merged.values


def test_every_stage_ran(progressive_run):
    tier, _, outcome, _ = progressive_run
    assert outcome == {stage: "ran" for stage in STAGES_RUN[tier]}


def test_02_writes_the_cache_at_each_stage_resolution_with_the_same_rows(progressive_run):
    _, paths, _, _ = progressive_run
    record = files.read_json(paths.preprocess_record)
    assert (
        set(record["stage_caches"]) == {"64", "128"} and record["stage_caches"]["128"] == record["cache_dir"]
    )
    full = np.load(Path(record["cache_dir"]) / "images.npy", mmap_mode="r")
    low = np.load(Path(record["stage_caches"]["64"]) / "images.npy", mmap_mode="r")
    assert full.shape[1:] == (128, 128) and low.shape == (len(full), 64, 64)
    assert low.min() >= -1 and low.max() <= 1


def test_03_grows_from_64_to_128_and_its_checkpoints_record_the_stage(progressive_run):
    _, paths, _, values = progressive_run
    summary = files.read_json(paths.train_summary)
    first, second = values["progressive_epochs"]
    assert summary["epoch"] == first + second and summary["progressive"]["current_resolution"] == 128
    assert [s["resolution"] for s in summary["progressive"]["stages"]] == [64, 128]
    states = {int(p.name.split("_")[1]): ckpt.read_state(p) for p in ckpt.list_checkpoints(paths.root)}
    assert states[first + second]["stage_resolution"] == 128 and not states[first + second]["fading"]
    for epoch, state in states.items():
        assert state["stage_resolution"] == (64 if epoch <= first else 128)
    grids = sorted(paths.samples.glob("epoch_*.png"))
    sides = {int(p.stem.split("_")[1]): imaging.read_grayscale(p).pixels.shape[0] for p in grids}
    grid, gap = values["sample_grid"], 2  # the grid's tiles have 2 pixels between them
    assert {epoch: (side + gap) // grid - gap for epoch, side in sides.items()} == {
        epoch: 64 if epoch <= first else 128 for epoch in sides
    }


def test_04_generates_at_the_final_resolution_and_the_card_says_the_run_was_progressive(progressive_run):
    _, paths, _, values = progressive_run
    newest = files.read_json(paths.train_summary)["checkpoints"][-1]
    images = np.load(paths.generated / newest / "images.npy")
    assert images.shape[1:] == (128, 128)
    schedule = files.read_json(paths.model_card)["training_schedule"]
    first, second = values["progressive_epochs"]
    assert schedule.startswith("progressive") and f"{first:,} epochs at 64 x 64, then {second:,}" in schedule
    assert paths.figure("grid_across_epochs").is_file()  # 64 px checkpoints among them, upsampled


@pytest.mark.slow
@pytest.mark.parametrize("progressive_run", ["smoke"], indirect=True)  # the tiny tier stops after 04
def test_at_smoke_scale_05_and_06_measure_the_grown_generator(progressive_run):
    _, paths, _, _ = progressive_run
    results = files.read_json(paths.metrics)
    assert results["epoch"] == files.read_json(paths.train_summary)["epoch"]
    assert results["headline"]["fd_effnet_lite0"] > 0 and results["headline"]["n_generated"] > 0
    assert files.read_json(paths.svm)
