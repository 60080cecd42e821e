"""The notebooks end to end with papermill, through the pipeline of `make reproduce`.

`make test` runs them on params/tiny.yaml: seconds of training, enough to show that every stage runs and the
stages fit together. `make test-all` also runs them on params/smoke.yaml, the run `make reproduce` makes.
Each run is made once per session and shared by the tests that inspect it; runs_dir and data_dir point
into a temporary folder.
"""

import functools
import importlib.util
import json
import os
import pty
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
import pytest

from mammogan_lib import pipeline
from mammogan_lib.core import config, files
from mammogan_lib.core.run_paths import RunPaths
from tests import browser
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.notebook
BASE = PROJECT_ROOT / "params" / "base.yaml"
SMOKE = [BASE, PROJECT_ROOT / "params" / "smoke.yaml"]
TIERS = {"tiny": [BASE, PROJECT_ROOT / "params" / "tiny.yaml"], "smoke": SMOKE}


@dataclass(frozen=True)
class PipelineRun:
    tier: str
    tmp: Path
    outcome: dict[str, str]
    log: list[str]

    def params(self, *extra: str) -> pipeline.MergedParams:
        return tier_params(self.tier, self.tmp, *extra)

    @property
    def run_dir(self) -> Path:
        return self.tmp / "runs" / self.value("exp_id")

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.run_dir)

    def value(self, key: str) -> Any:
        """A parameter of this run: its params files' value, else the notebooks' default."""
        values = self.params().values
        if key in values:
            return values[key]
        return next(
            pipeline.notebook_parameters(s)[key]
            for s in pipeline.STAGES
            if key in pipeline.notebook_parameters(s)
        )


def tier_params(tier: str, tmp: Path, *extra: str) -> pipeline.MergedParams:
    return pipeline.load_params(TIERS[tier], [f"runs_dir={tmp / 'runs'}", f"data_dir={tmp / 'data'}", *extra])


@pytest.fixture(scope="session", params=["tiny", pytest.param("smoke", marks=pytest.mark.slow)])
def run(request, tmp_path_factory) -> PipelineRun:
    tmp = tmp_path_factory.mktemp(request.param)
    log: list[str] = []
    outcome = pipeline.run_pipeline(tier_params(request.param, tmp), cwd=PROJECT_ROOT, log=log.append)
    return PipelineRun(request.param, tmp, outcome, log)


def test_every_stage_ran_and_left_notebook_report_and_provenance(run):
    paths = run.paths
    assert run.outcome == dict.fromkeys(pipeline.STAGES, "ran")
    for stage in pipeline.STAGES:
        assert paths.executed_notebook(stage).is_file()
        html = paths.report(stage).read_text()
        assert "data:image/png;base64" in html  # figures embedded, the report stands alone
        record = files.read_json(paths.stage_record(stage))
        assert record["params"]["exp_id"] == run.value("exp_id")
        # the notebook's own wall time lies within the pipeline's, which adds the kernel start and the export
        assert 0 < record["wall_s"] <= files.read_json(paths.done_marker(stage))["wall_s"] + 0.1
        assert record["packages"]["papermill"] and record["hardware"]["cpu_count"]
    provenance = files.read_json(paths.provenance)
    assert set(provenance["stages"]) == set(pipeline.STAGES)
    index = (paths.index).read_text()
    for stage in pipeline.STAGES:
        assert f'<a href="reports/{stage}.html">' in index
    inception = files.read_json(paths.metrics).get("inception")
    random_weights = inception is not None and not inception["pretrained"]
    assert ("random-weight InceptionV3" in index) == ("fid_random_inception" in index) == random_weights
    # offline numbers lead: EfficientNet-Lite0's FD, then FRD, each with what a reader must know
    lead = index.index("FD, effnet_lite0 features (05)")
    assert lead < index.index("FRD v1, radiomic features (05)") and "not InceptionV3" in index
    if "FID (05)" in index:
        assert lead < index.index("FID (05)")
    assert index.count("data:image/png;base64") >= 5  # headline figures embedded


def test_executed_notebooks_read_as_reports_without_log_walls_or_stray_values(run):
    native_log = re.compile(r"^[IWE]\d{4} [\d:.]+\s+\d+ |oneDNN|cuInit|TqdmWarning|IProgress", re.MULTILINE)
    for stage in pipeline.STAGES:
        notebook = nbformat.read(run.paths.executed_notebook(stage), as_version=4)
        outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
        streams = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
        assert not native_log.search(streams), (stage, native_log.search(streams).group(0))
        assert "\r" not in streams  # no progress bar redraws: a bar leaves one line when it closes
        values = [o for o in outputs if o.output_type == "execute_result" and "text/html" not in o.data]
        assert not [o.data["text/plain"] for o in values if "PosixPath" in o.data.get("text/plain", "")]
        injected = [cell for cell in notebook.cells if "injected-parameters" in cell.metadata.get("tags", [])]
        defaults = pipeline.notebook_parameters(stage)
        for cell in injected:  # only what differs from the notebook's defaults cell, each once
            names = re.findall(r"^(\w+) = ", cell.source, re.MULTILINE)
            assert names and all(run.value(name) != defaults[name] for name in names), (stage, names)
    training = nbformat.read(run.paths.executed_notebook("03_train_gan"), as_version=4)
    text = "".join(o.get("text", "") for c in training.cells if c.cell_type == "code" for o in c.outputs)
    epochs = run.value("epochs")
    assert re.search(rf"^training \S+: {epochs} of {epochs} epoch in \d+:\d+ · ", text, re.MULTILINE), text[
        -2000:
    ]
    index = run.paths.index.read_text()
    assert index.index("Real images of held-out patients (top)") < index.index("<h2>Headline</h2>")
    assert "At equal N (" in index and "times the" in index


@pytest.mark.skipif(browser.CHROMIUM is None, reason="no Chromium here (Debian: apt-get install chromium)")
def test_the_index_and_the_reports_fit_a_laptop_and_a_phone_in_a_real_browser(run):
    pages = [run.paths.index, run.paths.report("03_train_gan"), run.paths.report("05_metrics")]
    screenshots = run.paths.root / "screenshots"  # for people to look at
    for page in pages:
        for width in (1400, 390):
            seen = browser.render(page, width, screenshots)
            assert not seen.overflows, (page.name, width, seen.page_width)
            assert seen.images and seen.broken_images == 0, (page.name, width)
            assert seen.stderr_blocks == 0, (page.name, seen.stderr_blocks)
            assert seen.screenshot.stat().st_size > 0


def test_filter_lists_every_phantom_image_with_a_reason_and_keeps_whole_breasts(run):
    paths = run.paths
    manifest = pd.read_csv(paths.manifest, keep_default_na=False)
    phantom_root = Path(files.read_json(paths.filter_summary)["dataset_root"])
    truth = pd.read_csv(phantom_root / "phantom_truth.csv", keep_default_na=False)
    full_images = truth.drop_duplicates("SeriesInstanceUID")
    assert len(manifest) == len(full_images) == manifest["image_id"].nunique()
    assert (manifest["reason"] != "").all()
    counts = files.read_json(paths.filter_summary)["counts"]
    rejected = sum(value for key, value in counts.items() if key.startswith("rejected_"))
    assert counts["kept"] + rejected == counts["images_in_dataset"] == len(manifest)
    # the shape filter separates the phantom's whole breasts from those cut by the image edge
    scored = manifest[manifest["reason_code"].isin(["kept", "low_shape_confidence"])]
    cut = scored["image_id"].map(full_images.set_index("SeriesInstanceUID")["cut_contour"]).astype(bool)
    kept = scored["reason_code"] == "kept"
    assert cut.any() and (~cut).any()
    minimum = 0.9 if run.tier == "smoke" else 0.75  # the tiny phantom has only a handful of cut breasts
    assert (kept & ~cut).sum() / (~cut).sum() >= minimum  # whole breasts kept
    assert (~kept & cut).sum() / cut.sum() >= minimum  # cut breasts rejected
    assert paths.figure("phantom_preview").is_file()


def test_preprocess_writes_the_array_cache_the_training_stage_reads(run):
    paths, resolution = run.paths, run.value("resolution")
    record = files.read_json(paths.preprocess_record)
    images = np.load(Path(record["cache_dir"]) / "images.npy")
    manifest = pd.read_csv(paths.manifest, keep_default_na=False)
    assert record["inputs"] == int((manifest["reason_code"] == "kept").sum())
    assert record["written"] + record["skipped"] == record["inputs"] == len(images) + record["skipped"]
    assert images.shape[1:] == (resolution, resolution) and images.dtype == np.float32
    assert images.min() == -1.0 and images.max() <= 1.0
    tissue_by_column = (images > -1).sum(axis=(0, 1))
    assert tissue_by_column[:8].sum() > 2 * tissue_by_column[-8:].sum()  # all face the same way


def test_training_logs_every_step_checkpoints_and_samples(run):
    paths, epochs = run.paths, run.value("epochs")
    summary = files.read_json(paths.train_summary)
    assert summary["epoch"] == epochs
    assert summary["step"] == epochs * summary["steps_per_epoch"]
    assert summary["steps_per_epoch"] == summary["n_images"] // run.value("batch_size")
    losses = pd.read_csv(paths.losses)
    assert losses["step"].tolist() == list(range(1, summary["step"] + 1))
    assert np.isfinite(losses[["d_loss", "g_loss", "d_real", "d_fake"]].to_numpy()).all()
    # precision: auto, decided by this machine's flags (read here from the run's own provenance record)
    precision = summary["precision"]
    record = files.read_json(paths.stage_record("03_train_gan"))
    assert precision["requested"] == "auto" and precision["policy"] == summary["dtype_policy"]
    assert record["precision"] == precision and precision["reason"] in (paths.index).read_text()
    if not record["hardware"]["native_bfloat16"] and not record["hardware"]["gpus"]:
        assert precision["policy"] == "float32" and precision["calibration_ms_per_step"] is None
    elif not record["hardware"]["gpus"]:
        assert set(precision["calibration_ms_per_step"]) == {"float32", "mixed_bfloat16"}
    assert summary["checkpoints"][-1] == f"epoch_{epochs:06d}"
    grids = sorted(paths.samples.glob("epoch_*.png"))
    assert len(grids) == epochs // run.value("sample_every")
    assert summary["this_session"]["median_ms_per_step"] > 0
    for name in ("training_losses", "samples_progression"):
        assert paths.figure(name).is_file()


def test_generate_writes_the_images_the_metrics_stage_reads(run):
    paths, count, resolution = run.paths, run.value("generate_count"), run.value("resolution")
    record = files.read_json(paths.generate_record)
    newest = files.read_json(paths.train_summary)["checkpoints"][-1]
    folder = paths.generated / newest
    images = np.load(folder / "images.npy")
    assert images.shape == (count, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    assert len(list(folder.glob("*.png"))) == count
    assert record["grid_epochs"] == [
        int(name.split("_")[1]) for name in sorted(p.name for p in paths.checkpoints.iterdir())
    ]
    for name in ("generated", "grid_across_epochs", "interpolation"):
        assert paths.figure(name).is_file()


def test_the_gan_never_trains_on_held_out_patients(run):
    paths = run.paths
    split = pd.read_csv(paths.split, keep_default_na=False, dtype=str)
    train, heldout = split[split["split"] == "train"], split[split["split"] == "heldout"]
    assert len(heldout) > 0 and not set(train["patient_id"]) & set(heldout["patient_id"])
    holdout = run.value("holdout_fraction")
    assert heldout["patient_id"].nunique() == round(holdout * split["patient_id"].nunique())
    assert files.read_json(paths.train_summary)["n_images"] == len(train)


def test_metrics_lead_with_effnet_and_frd_and_label_or_leave_out_networks_without_weights(run):
    paths = run.paths
    results = files.read_json(paths.metrics)
    headline, records = results["headline"], results["features"]
    networks, allow_random = run.value("feature_networks"), run.value("allow_random_weights")
    # EfficientNet-Lite0 has trained weights on every machine and leads; FRD (no weights) comes second
    assert list(records)[:2] == ["effnet_lite0", "radiomics"] and networks[0] == "effnet_lite0"
    assert records["effnet_lite0"]["pretrained"] and records["effnet_lite0"]["key_suffix"] == "_effnet_lite0"
    assert records["radiomics"]["frd_version"] == "v1"
    # every other network ran (pretrained, or random when allowed) or was left out, saying why
    left_out = {gone["name"]: gone["reason"] for gone in results["left_out_networks"]}
    assert set(records) - {"radiomics"} | set(left_out) == set(networks)
    assert all(not allow_random and "weights" in reason for reason in left_out.values())
    for name, record in records.items():
        if not record["pretrained"]:
            assert record["key_suffix"] == f"_random_{name}"
        elif name not in ("inception", "radiomics"):  # InceptionV3's keys (fid) and FRD's carry no suffix
            assert record["key_suffix"] == f"_{name}"
    assert ("inception" in results) == ("inception" in records)
    # held-out patients at equal N beside the real floor: FD with its ratio, FRD with its gap
    assert headline["n_equal"] == min(run.value("generate_count"), headline["n_train"])
    fd = "fd_effnet_lite0"
    assert headline[fd] > 0 and headline[f"{fd}_equal_n"] > 0 and headline[f"{fd}_real_floor_equal_n"] > 0
    assert headline[f"{fd}_floor_ratio"] == pytest.approx(
        headline[f"{fd}_real_floor_equal_n"] / headline[f"{fd}_equal_n"]
    )
    for key in ("frd", "frd_heldout", "frd_real_floor", "frd_equal_n", "frd_real_floor_equal_n"):
        assert np.isfinite(headline[key]), key
    assert headline["frd_gap_to_floor"] == pytest.approx(
        headline["frd_equal_n"] - headline["frd_real_floor_equal_n"]
    )
    assert {row["comparison"] for row in results["sets"]} == {
        "generated vs train",
        "generated vs heldout",
        "train vs heldout",
    }
    generated = run.value("generate_count")
    assert headline["n_generated"] == generated
    assert results["psnr_ssim_distribution"]["generated"]["psnr"]["count"] == generated
    assert -1 <= headline["ssim_median"] <= 1 and headline["psnr_median"] > 0  # tiny's G is untrained
    assert 0 <= results["memorisation"]["flagged_fraction"] <= 1
    checkpoints = files.read_json(paths.train_summary)["checkpoints"]
    assert [row["epoch"] for row in results["curve"]] == [int(name.split("_")[1]) for name in checkpoints]
    assert all(row[f"{fd}_vs_train"] > 0 and np.isfinite(row["frd_vs_train"]) for row in results["curve"])
    # every set-level number with its interval and both N; the N-based trust warnings computed
    assert {row["features"] for row in results["sets"]} == set(records)
    for row in results["sets"]:
        assert row["n_a"] > 0 and row["n_b"] > 0
        suffix = records[row["features"]]["key_suffix"]
        if row["features"] == "radiomics":
            keys = ["frd"]
        else:
            stem = "fid" if row["features"] == "inception" else "fd"
            keys = [f"{stem}{suffix}", f"precision{suffix}", f"coverage{suffix}", f"density{suffix}"]
        for key in keys:
            if row.get(f"{key}_low") is None:  # a set too small to resample: it must say so
                assert "no interval" in row["warnings"], (row["comparison"], key, row)
                continue
            assert row[f"{key}_low"] <= row[key] <= row[f"{key}_high"], (row["comparison"], key, row)
    assert headline["n_heldout"] == results["real_sets"]["heldout"]["n"] > 0
    warnings = [item["warning"] for item in results["warnings"]]
    assert any("< feature dimension 1280" in w for w in warnings)  # N is far below EfficientNet's 1,280
    assert any(w.startswith("FRD: N=") for w in warnings)
    random_inception = "inception" in records and not records["inception"]["pretrained"]
    assert any(w.startswith("random-weight inception") for w in warnings) == random_inception
    executed = paths.executed_notebook("05_metrics").read_text()
    assert ("RANDOM-WEIGHT INCEPTION" in executed) == random_inception
    assert ("INCEPTION LEFT OUT" in executed) == ("inception" in left_out)
    assert "Trust warnings" in executed
    for name in (
        "metric_losses",
        "memorisation_distances",
        "power_spectra",
        "metrics_vs_epoch",
        "table43_pairs",
        "psnr_distribution",
        "ssim_distribution",
    ):
        assert paths.figure(name).is_file()


def test_svm_study_runs_every_design_for_both_non_tumour_sources(run):
    paths = run.paths
    results = files.read_json(paths.svm)
    records = results["feature_networks"]
    assert list(records)[0] == "effnet_lite0" and records["effnet_lite0"]["pretrained"]
    ran = {gone["name"] for gone in results["left_out_networks"]} | set(records)
    assert ran == set(run.value("svm_feature_networks"))
    tags = [record["key_suffix"] for record in records.values()]
    assert [key for key in results if key.startswith("summary")] == [f"summary{tag}" for tag in tags]
    summary = pd.DataFrame(results["summary_effnet_lite0"])
    assert sorted(zip(summary["non_tumour_source"], summary["design"], strict=True)) == sorted(
        (source, design)
        for source in ("other_source", "same_source")
        for design in ("real_only", "generated_enhanced", "synthetic_only")
    )
    assert (summary["repeats"] == run.value("svm_repeats")).all()
    test_images = 2 * run.value("svm_test_per_class") * run.value("svm_repeats")
    assert (summary[["tn", "fp", "fn", "tp"]].sum(axis=1) == test_images).all()
    assert (summary["accuracy_ci_low"] <= summary["accuracy"]).all()
    assert (summary["accuracy"] <= summary["accuracy_ci_high"]).all()
    assert paths.figure("confusion_matrices").is_file()


def test_unchanged_stages_are_skipped_and_more_epochs_resume_training(run):
    paths, epochs = run.paths, run.value("epochs")
    log: list[str] = []
    again = pipeline.run_pipeline(run.params(), cwd=PROJECT_ROOT, log=log.append)
    assert again == dict.fromkeys(pipeline.STAGES, "skipped")
    before = pd.read_csv(paths.losses)
    longer_params = run.params(f"epochs={epochs + 4}")
    through_generate = pipeline.STAGES[:4]  # 05/06 would re-run too; they are tested above
    longer = pipeline.run_pipeline(longer_params, through_generate, cwd=PROJECT_ROOT, log=log.append)
    assert longer == {
        "01_filter": "skipped",
        "02_preprocess": "skipped",
        "03_train_gan": "ran",
        "04_generate": "ran",
    }
    after = pd.read_csv(paths.losses)
    summary = files.read_json(paths.train_summary)
    assert summary["epoch"] == epochs + 4 and summary["this_session"]["epochs_trained"] == 4  # resumed
    pd.testing.assert_frame_equal(after.iloc[: len(before)], before)  # the earlier steps are untouched
    assert after["step"].tolist() == list(range(1, len(after) + 1))


@pytest.mark.slow
@pytest.mark.parametrize("run", ["tiny"], indirect=True)  # the kernel is the same whatever the tier
@pytest.mark.parametrize("layout", ["today", "older"])
def test_the_kaggle_kernel_runs_locally_on_the_phantom_and_resumes_from_its_output(
    run, tmp_path, monkeypatch, layout
):
    """The kernel `make kaggle` builds, with /kaggle/input and /kaggle/working pointed at local folders laid
    out as Kaggle mounts them today (datasets/<owner>/<slug>, notebooks/<user>/<slug>) or did before
    (<slug>). Today's layout also runs out of time budget in its first session: 04-06 run on the
    checkpoint it stopped at, and the next session finishes training and runs them again."""
    import papermill

    from mammogan_lib import kaggle

    paths, exp_id = run.paths, run.value("exp_id")
    phantom = Path(files.read_json(paths.filter_summary)["dataset_root"])
    bundle = kaggle.build_bundle(TIERS[run.tier], tmp_path / "kaggle", user="ci")
    inputs, working = tmp_path / "input", tmp_path / "working"
    owner, slug = kaggle.CBIS_DATASET.split("/")
    mounts = {
        "today": (
            f"datasets/ci/{kaggle.LIBRARY_SLUG}",
            f"datasets/{owner}/{slug}",
            f"notebooks/ci/mammogan-{exp_id}",
        ),
        "older": (kaggle.LIBRARY_SLUG, slug, f"mammogan-{exp_id}"),
    }
    library_mount, dataset_mount, output_mount = (inputs / m for m in mounts[layout])
    for mount, target in ((library_mount, bundle / "library"), (dataset_mount, phantom)):
        mount.parent.mkdir(parents=True, exist_ok=True)
        mount.symlink_to(target)
    monkeypatch.setenv(pipeline.KERNEL_VARIABLE, "mammogan")  # the stages' kernel; Kaggle's is python3
    quick = {"epochs": 4, "checkpoint_every": 2, "sample_every": 2, "curve_count": 0, "svm_repeats": 2}
    if layout == "today":  # the session started an hour ago: a 1 h budget is spent after one epoch
        quick["time_budget_hours"] = 1.0
        monkeypatch.setenv(config.SESSION_STARTED_VARIABLE, str(time.time() - 3600))
    parameters = {
        "pipeline_params": pipeline.load_params(TIERS[run.tier]).values | quick,
        "input_root": str(inputs),
        "working_root": str(working),
        "install_library": False,
    }
    kernel_notebook = bundle / "kernel" / f"{exp_id}.ipynb"
    run_kernel = functools.partial(
        papermill.execute_notebook,
        str(kernel_notebook),
        parameters=parameters,
        kernel_name="mammogan",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    run_kernel(output_path=str(tmp_path / "first.ipynb"))
    kaggle_run = RunPaths(working / "runs" / exp_id)
    assert files.read_json(kaggle_run.filter_summary)["dataset_root"] == str(dataset_mount)
    first_epoch = 1 if layout == "today" else 4
    assert files.read_json(kaggle_run.train_summary)["epoch"] == first_epoch
    assert all(kaggle_run.report(stage).is_file() for stage in pipeline.STAGES)
    assert kaggle_run.index.is_file() and kaggle_run.svm.is_file()
    assert files.read_json(kaggle_run.metrics)["epoch"] == first_epoch  # 04-05 used that checkpoint
    assert ("Partial run" in kaggle_run.index.read_text()) == (layout == "today")
    # the next version of the kernel sees this output under /kaggle/input and resumes instead of starting over
    output_mount.parent.mkdir(parents=True, exist_ok=True)
    working.rename(output_mount)
    monkeypatch.delenv(config.SESSION_STARTED_VARIABLE, raising=False)
    run_kernel(output_path=str(tmp_path / "again.ipynb"))
    outputs = (tmp_path / "again.ipynb").read_text()
    assert "restored" in outputs
    if layout == "older":
        assert all(f"'{stage}': 'skipped'" in outputs for stage in pipeline.STAGES)
    else:  # training continues from epoch 1 to 4, and the stages after it run on the final checkpoint
        assert "'03_train_gan': 'ran'" in outputs and "'06_svm': 'ran'" in outputs
        assert "'01_filter': 'skipped'" in outputs and "'02_preprocess': 'skipped'" in outputs
        assert files.read_json(kaggle_run.train_summary)["epoch"] == 4
        assert files.read_json(kaggle_run.metrics)["epoch"] == 4
        assert "Partial run" not in kaggle_run.index.read_text()


def run_in_a_terminal(command: list[str], env: dict[str, str], timeout: float = 900) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal as its stdout and stderr (what a user's shell gives it)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave
    )
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closes with the command
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return process.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def pipeline_command(run: PipelineRun, runs_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mammogan_lib.pipeline",
        *map(str, TIERS["tiny"]),
        "--set",
        f"runs_dir={runs_dir}",
        "--set",
        f"data_dir={run.tmp / 'data'}",  # the tiny run's phantom: made once
        *extra,
    ]


def quiet_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "VERBOSE"}
    return env | {"COLUMNS": "200"}


@pytest.mark.slow
@pytest.mark.parametrize("run", ["tiny"], indirect=True)  # the terminal is the same whatever the tier
def test_in_a_terminal_the_command_shows_live_progress_no_start_up_noise_and_a_closing_summary(run, tmp_path):
    stages = "01_filter,02_preprocess,03_train_gan"
    command = pipeline_command(run, tmp_path / "runs", "--stages", stages)
    status, shown = run_in_a_terminal(command, quiet_environment())
    assert status == 0, shown
    # live: one line redrawn in place, with the stage's position, and 03's epochs and losses
    assert "\r\x1b[2K[03_train_gan] 3/6 · " in shown and "\r\x1b[2K[01_filter] 1/6 · " in shown
    assert "scoring breasts" in shown and "/8 epoch" in shown and "D=" in shown and "G=" in shown
    # quiet: none of the frameworks' start-up lines, which the stage's log keeps
    for noise in ("absl::InitializeLog", "cudart_stub", "cuInit", "IPKernelApp", "MissingIDFieldWarning"):
        assert noise not in shown, noise
    kept = (tmp_path / "runs" / "tiny" / "logs" / "03_train_gan.log").read_text()
    assert "absl::InitializeLog" in kept
    # the closing summary: the stages, the headline and where the report is
    summary = shown[shown.index("── mammogan run tiny: finished (3 of 6 stages ran)") :]
    assert "03_train_gan   ran in " in summary and "04_generate    not run" in summary
    assert "images kept (01)" in summary and "training (03)" in summary and "steps on" in summary
    assert f"report: {tmp_path / 'runs' / 'tiny' / 'index.html'}" in summary
    assert (tmp_path / "runs" / "tiny" / "index.html").is_file()


@pytest.mark.slow
def test_the_conditional_experiment_runs_at_smoke_scale_with_every_class_reported(tmp_path):
    """params/exp5_conditional.yaml at smoke scale, 01 -> 06 under papermill: labels in 02's split, class
    folders in 04, per-class metrics in 05, one generated class in 06, classes on the model card."""
    merged = pipeline.load_params(
        [BASE, PROJECT_ROOT / "params" / "exp5_conditional.yaml", PROJECT_ROOT / "params" / "smoke.yaml"],
        [
            f"runs_dir={tmp_path / 'runs'}",
            f"data_dir={tmp_path / 'data'}",
            "exp_id=exp5_conditional_smoke",
            "svm_generated_class=mass",
        ],
    )
    outcome = pipeline.run_pipeline(merged, cwd=PROJECT_ROOT, log=lambda line: None)
    assert outcome == dict.fromkeys(pipeline.STAGES, "ran")
    paths = RunPaths(tmp_path / "runs" / "exp5_conditional_smoke")
    split = pd.read_csv(paths.split, keep_default_na=False, dtype=str)
    record = files.read_json(paths.preprocess_record)["class_labels"]
    assert record["classes"] == ["mass", "calcification"]
    assert sum(record["per_class"].values()) + record["unlabelled"] == len(split) == record["images"]
    train = split[split["split"] == "train"]
    summary = files.read_json(paths.train_summary)
    assert summary["params"]["classes"] == ["mass", "calcification"]
    assert summary["n_images"] == int((train["finding_class"] != "").sum())
    folder = paths.generated / summary["checkpoints"][-1]
    image_class = files.read_json(folder / "classes.json")["image_class"]
    for name in ("mass", "calcification"):
        assert len(list((folder / name).glob("*.png"))) == image_class.count(name) > 0
    metrics_json = files.read_json(paths.metrics)
    assert set(metrics_json["per_class"]) == {"mass", "calcification"}
    for result in metrics_json["per_class"].values():
        assert set(metrics_json["headline"]) <= set(result)  # every headline metric, per class
    assert files.read_json(paths.model_card)["classes"] == ["mass", "calcification"]
    assert paths.figure("generated_per_class").is_file()
    assert files.read_json(paths.svm)  # 06 ran on the generated masses only


@pytest.mark.slow
def test_the_fastgan_experiment_runs_end_to_end_and_generates_with_its_moving_average(tmp_path):
    """params/exp7_fastgan.yaml at tiny scale, 01 -> 06: its own discriminator and losses in 03, checkpoints
    holding the generator's average, which 04 generates with and exports, and a model card that says so."""
    from mammogan_lib.gan import generate

    merged = pipeline.load_params(
        [BASE, PROJECT_ROOT / "params" / "exp7_fastgan.yaml", PROJECT_ROOT / "params" / "tiny.yaml"],
        [f"runs_dir={tmp_path / 'runs'}", f"data_dir={tmp_path / 'data'}", "exp_id=exp7_tiny"],
    )
    outcome = pipeline.run_pipeline(merged, cwd=PROJECT_ROOT, log=lambda line: None)
    assert outcome == dict.fromkeys(pipeline.STAGES, "ran")
    paths = RunPaths(tmp_path / "runs" / "exp7_tiny")
    summary = files.read_json(paths.train_summary)
    assert summary["params"]["architecture"] == "fastgan" and summary["params"]["g_ema_decay"] == 0.999
    losses = pd.read_csv(paths.losses)
    assert np.isfinite(losses[["d_loss", "g_loss"]].to_numpy()).all()
    assert (paths.checkpoints / summary["checkpoints"][-1] / "generator_ema.weights.h5").is_file()
    card = files.read_json(paths.model_card)
    assert card["architecture"] == "fastgan" and "moving average" in card["weights"]
    generator = generate.load_exported_generator(paths.exported_generator)
    assert generator.output_shape == (None, 64, 64, 1)
    assert files.read_json(paths.metrics)["headline"] and files.read_json(paths.svm)


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(
            "jax",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("jax") is None,
                reason="the jax extra is not installed: pip install -e '.[jax]'",
            ),
        ),
        "torch",
    ],
)
def test_the_tiny_pipeline_runs_on_another_keras_backend(backend, tmp_path):
    """01 -> 06 on params/tiny.yaml with 03 and 04 on ``backend`` (the stage kernels get it whatever
    KERAS_BACKEND this process has): training's record says so, and 05 evaluates what 04 wrote."""
    merged = tier_params("tiny", tmp_path, f"backend={backend}", f"exp_id=tiny_{backend}")
    outcome = pipeline.run_pipeline(merged, cwd=PROJECT_ROOT, log=lambda line: None)
    assert outcome == dict.fromkeys(pipeline.STAGES, "ran")
    paths = RunPaths(tmp_path / "runs" / f"tiny_{backend}")
    summary = files.read_json(paths.train_summary)
    assert summary["params"]["backend"] == backend
    assert (
        len(pd.read_csv(paths.losses)) == summary["params"]["epochs"] * summary["params"]["steps_per_epoch"]
    )
    assert files.read_json(paths.metrics)["headline"]
    for stage in ("03_train_gan", "04_generate"):  # papermill's injected parameters name the backend
        cells = json.loads(paths.executed_notebook(stage).read_text())["cells"]
        assert any(f'backend = "{backend}"' in "".join(cell["source"]) for cell in cells), stage
