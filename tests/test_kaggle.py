"""mammogan_lib.kaggle: the bundle `make kaggle` builds, checked offline (run: test_notebooks.py)."""

import json
import os
import re
import zipfile

import papermill
import pytest

from mammogan_lib import kaggle, pipeline
from tests.conftest import PROJECT_ROOT

TEMPLATE = json.loads((PROJECT_ROOT / kaggle.TEMPLATE_FILE).read_text())


def test_kernel_metadata_is_filled_per_experiment_for_the_two_t4s_with_internet_set():
    metadata = kaggle.kernel_metadata(TEMPLATE, "exp3_baseline", "someone", resume=False)
    assert metadata["id"] == "someone/mammogan-exp3-baseline"
    assert metadata["title"] == "mammogan exp3-baseline" and metadata["code_file"] == "exp3_baseline.ipynb"
    assert metadata["machine_shape"] == "NvidiaTeslaT4" and metadata["enable_gpu"] is True
    assert metadata["enable_internet"] is True  # explicit, not left to Kaggle's default
    assert kaggle.CBIS_DATASET in metadata["dataset_sources"]
    assert "someone/mammogan-lib" in metadata["dataset_sources"]
    assert metadata["kernel_sources"] == []
    assert not re.search(r"\{[a-z_]+\}", json.dumps(metadata))  # every placeholder filled
    other = kaggle.kernel_metadata(TEMPLATE, "exp1_deep", "someone", resume=False)
    assert other["id"] != metadata["id"] and other["title"] != metadata["title"]


def test_resume_attaches_the_kernels_own_previous_output():
    metadata = kaggle.kernel_metadata(TEMPLATE, "exp3_baseline", "someone", resume=True)
    assert metadata["kernel_sources"] == ["someone/mammogan-exp3-baseline"]


def test_a_template_without_a_required_field_is_refused():
    broken = {key: value for key, value in TEMPLATE.items() if key != "machine_shape"}
    with pytest.raises(ValueError, match="machine_shape"):
        kaggle.kernel_metadata(broken, "x", "someone", resume=False)


def test_the_bundle_holds_the_wheel_the_notebooks_and_a_prepared_kernel(tmp_path):
    params = [PROJECT_ROOT / "params" / "base.yaml", PROJECT_ROOT / "params" / "exp1_deep.yaml"]
    bundle = kaggle.build_bundle(params, tmp_path, user="someone")
    assert bundle == tmp_path / "exp1_deep"
    library = bundle / "library"
    (wheel,) = library.glob("mammogan_lib-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mammogan_lib/pipeline/__init__.py" in names and "mammogan_lib/gan/models/__init__.py" in names
    assert sorted(p.stem for p in library.glob("*.ipynb")) == list(pipeline.STAGES)
    assert (library / "base.yaml").is_file() and (library / "exp1_deep.yaml").is_file()
    assert json.loads((library / "dataset-metadata.json").read_text())["id"] == "someone/mammogan-lib"
    metadata = json.loads((bundle / "kernel" / "kernel-metadata.json").read_text())
    notebook = bundle / "kernel" / metadata["code_file"]
    declared = papermill.inspect_notebook(str(notebook))
    assert set(declared) >= {"pipeline_params", "input_root", "working_root", "install_library", "stages"}
    injected = json.loads(notebook.read_text())
    source = "".join("".join(cell["source"]) for cell in injected["cells"])
    assert '"architecture": "deep"' in source and '"exp_id": "exp1_deep"' in source  # parameters baked in


def test_a_bundle_with_invalid_parameters_is_not_built(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("exp_id: bad\nepochs: many\n")
    with pytest.raises(Exception, match="epochs"):
        kaggle.build_bundle([PROJECT_ROOT / "params" / "base.yaml", bad], tmp_path / "out")
    assert not (tmp_path / "out" / "bad").exists()


def test_a_previous_output_is_restored_with_its_caches_and_never_over_a_current_run(tmp_path):
    previous = tmp_path / "input" / "mammogan-exp3-baseline"
    (previous / "runs" / "exp3_baseline" / "checkpoints" / "epoch_000500").mkdir(parents=True)
    (previous / "data" / "cache" / "preprocess" / "abc").mkdir(parents=True)
    (previous / "data" / "cache" / "preprocess" / "abc" / "images.npy").write_bytes(b"x")
    working, run = tmp_path / "working", previous / "runs" / "exp3_baseline"
    assert "starting from scratch" in kaggle.restore_previous_run(None, working, "exp1_deep")
    assert kaggle.restore_previous_run(run, working, "exp3_baseline").startswith("restored")
    assert (working / "runs" / "exp3_baseline" / "checkpoints" / "epoch_000500").is_dir()
    assert (working / "data" / "cache" / "preprocess" / "abc" / "images.npy").is_file()
    assert "continuing it" in kaggle.restore_previous_run(run, working, "exp3_baseline")


def cbis_copy(root):
    """The two things that make a folder a CBIS-DDSM Kaggle copy."""
    (root / "csv").mkdir(parents=True)
    (root / "csv" / "dicom_info.csv").write_text("file_path\n")
    (root / "jpeg").mkdir()
    return root


def previous_run(root, exp_id, epoch):
    run = root / "runs" / exp_id
    (run / "checkpoints" / f"epoch_{epoch:06d}").mkdir(parents=True)
    (run / "checkpoints" / f"epoch_{epoch:06d}" / "state.json").write_text("{}")
    return run


def wheel(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mammogan_lib-0.1.0-py3-none-any.whl").write_bytes(b"zip")
    return folder / "mammogan_lib-0.1.0-py3-none-any.whl"


def rsna_copy(root):
    (root / "train_images" / "10006").mkdir(parents=True)
    (root / "train.csv").write_text("site_id,patient_id,image_id,laterality,view,cancer\n")
    return root


@pytest.mark.parametrize("layout", ["today", "older"])
def test_inputs_are_found_by_content_under_either_mount_layout(tmp_path, layout):
    inputs = tmp_path / "input"
    if layout == "today":  # datasets/<owner>/<slug>, notebooks/<user>/<slug>, a copy nested in a folder
        library = inputs / "datasets" / "someone" / "mammogan-lib"
        dataset = inputs / "datasets" / "awsaf49" / "cbis-ddsm-breast-cancer-image-dataset" / "k" / "CBIS"
        own_output = inputs / "notebooks" / "someone" / "mammogan-exp3-baseline"
        state = inputs / "datasets" / "someone" / "mammogan-exp3-baseline-state"
        non_tumour = inputs / "datasets" / "harrisontwwhite" / "final-final-rsna-breast-cancer-dataset"
    else:
        library = inputs / "mammogan-lib"
        dataset = inputs / "cbis-ddsm-breast-cancer-image-dataset"
        own_output = inputs / "mammogan-exp3-baseline"
        state = inputs / "mammogan-exp3-baseline-state"
        non_tumour = inputs / "final-final-rsna-breast-cancer-dataset"
    found_wheel = wheel(library)
    cbis_copy(dataset)
    previous_run(own_output, "exp3_baseline", 500)
    newest = previous_run(state, "exp3_baseline", 1500)
    previous_run(state, "exp1_deep", 2000)  # another experiment's run: not ours
    rsna = rsna_copy(non_tumour / "rsna")
    located = kaggle.locate_inputs(
        inputs, "exp3_baseline", non_tumour_dataset=kaggle.THESIS_NON_TUMOUR_DATASET
    )
    assert located.wheel == found_wheel and located.dataset == dataset
    assert located.previous_run == newest  # the furthest of the two attached outputs
    assert located.non_tumour == rsna  # the RSNA layout inside the named dataset
    assert any("also attached, older" in note and "epoch 500" in note for note in located.notes)


def test_missing_or_ambiguous_inputs_say_what_was_found_and_which_parameter_to_set(tmp_path):
    inputs = tmp_path / "input"
    wheel(inputs / "datasets" / "someone" / "mammogan-lib")
    (inputs / "datasets" / "someone" / "unrelated").mkdir(parents=True)
    with pytest.raises(kaggle.InputNotFound) as missing:
        kaggle.locate_inputs(inputs, "exp3_baseline")
    message = str(missing.value)
    assert "no CBIS-DDSM copy" in message and "'dataset_path'" in message
    assert "datasets/someone/" in message and "datasets/" in message  # the listing, two levels deep
    cbis_copy(inputs / "datasets" / "a" / "cbis")
    cbis_copy(inputs / "datasets" / "b" / "cbis")
    with pytest.raises(kaggle.InputNotFound, match="2 candidates for CBIS-DDSM copy"):
        kaggle.locate_inputs(inputs, "exp3_baseline")
    located = kaggle.locate_inputs(
        inputs, "exp3_baseline", dataset_path=str(inputs / "datasets" / "a" / "cbis")
    )
    assert located.previous_run is None and located.non_tumour is None
    with pytest.raises(kaggle.InputNotFound, match="non_tumour_root"):
        kaggle.locate_inputs(inputs, "x", dataset_path=str(inputs), non_tumour_dataset="someone/absent")


def test_the_search_does_not_walk_into_image_data(tmp_path):
    dataset = cbis_copy(tmp_path / "input" / "cbis")
    for index in range(3):
        (dataset / "jpeg" / f"1.3.6.{index}").mkdir()
    wide = tmp_path / "input" / "wide"
    for index in range(kaggle.WIDE_FOLDER + 1):
        (wide / f"{index}").mkdir(parents=True)
    wheel(wide / "0")  # too deep inside image-like data to be searched
    scan = kaggle.scan_inputs(tmp_path / "input")
    assert scan.cbis_roots == [dataset] and scan.wheels == []
    assert not any(folder.is_relative_to(dataset / "jpeg") for folder in scan.folders)


def test_kernels_get_a_time_budget_and_the_thesis_non_tumour_set_unless_the_experiment_says_otherwise(
    tmp_path,
):
    base = PROJECT_ROOT / "params" / "base.yaml"
    own = tmp_path / "exp.yaml"
    own.write_text("exp_id: exp_budget\ntime_budget_hours: 5\n")
    values = kaggle.kernel_params(pipeline.load_params([base, own]), base)
    assert values["time_budget_hours"] == 5  # the experiment's own choice
    assert values["non_tumour_kaggle_dataset"] == kaggle.THESIS_NON_TUMOUR_DATASET
    local = pipeline.load_params([base]).values
    assert (
        local["time_budget_hours"] == 0 and local["non_tumour_kaggle_dataset"] == ""
    )  # local runs unchanged


def test_continuing_downloads_the_output_publishes_it_as_a_state_dataset_and_attaches_it(tmp_path):
    params = [PROJECT_ROOT / "params" / "base.yaml", PROJECT_ROOT / "params" / "exp3_baseline.yaml"]
    bundle = kaggle.build_bundle(params, tmp_path, user="someone", continued=True)
    metadata = json.loads((bundle / "kernel" / "kernel-metadata.json").read_text())
    assert "someone/mammogan-exp3-baseline-state" in metadata["dataset_sources"]
    assert kaggle.THESIS_NON_TUMOUR_DATASET in metadata["dataset_sources"]
    assert metadata["kernel_sources"] == []  # the documented way: no kernel listing its own output
    download, version, create = kaggle.continue_commands(bundle, "someone", "exp3_baseline", "m")
    state = str(bundle / "state")
    assert download == ["kaggle", "kernels", "output", "someone/mammogan-exp3-baseline", "-p", state]
    assert version == ["kaggle", "datasets", "version", "-p", state, "-m", "m", "--dir-mode", "tar"]
    assert create == ["kaggle", "datasets", "create", "-p", state, "--dir-mode", "tar"]
    injected = json.loads((bundle / "kernel" / metadata["code_file"]).read_text())
    source = "".join("".join(cell["source"]) for cell in injected["cells"])
    assert '"time_budget_hours": 11.0' in source


def test_a_malformed_non_tumour_dataset_handle_is_refused_naming_the_parameter(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("exp_id: bad\nnon_tumour_kaggle_dataset: https://kaggle.com/x\n")
    with pytest.raises(Exception, match="non_tumour_kaggle_dataset.*owner/slug"):
        kaggle.build_bundle([PROJECT_ROOT / "params" / "base.yaml", bad], tmp_path / "out")


def test_push_publishes_a_new_library_version_then_the_kernel(tmp_path):
    version, create, kernel = kaggle.push_commands(tmp_path / "exp3_baseline", "mammogan abc")
    assert version == [
        "kaggle",
        "datasets",
        "version",
        "-p",
        str(tmp_path / "exp3_baseline" / "library"),
        "-m",
        "mammogan abc",
    ]
    assert create[:3] == ["kaggle", "datasets", "create"] and kernel[:3] == ["kaggle", "kernels", "push"]
    assert kernel[-1] == str(tmp_path / "exp3_baseline" / "kernel")


FAKE_KAGGLE = """#!/usr/bin/env python3
import json, os, sys
from pathlib import Path
with open(os.environ["FAKE_KAGGLE_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if args[:2] == ["kernels", "output"]:  # the last session's /kaggle/working
    run = Path(args[args.index("-p") + 1]) / "runs" / "exp3_baseline" / "checkpoints" / "epoch_000500"
    run.mkdir(parents=True)
    (run / "state.json").write_text("{}")
if args[:2] == ["datasets", "version"] and os.environ.get("FAKE_KAGGLE_NEW_DATASET"):
    sys.exit(1)  # the state dataset does not exist yet
"""


def test_continue_runs_the_kaggle_cli_in_order_and_publishes_the_downloaded_output(tmp_path, monkeypatch):
    cli = tmp_path / "bin" / "kaggle"
    cli.parent.mkdir()
    cli.write_text(FAKE_KAGGLE)
    cli.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{cli.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_KAGGLE_LOG", str(log))
    monkeypatch.setenv("FAKE_KAGGLE_NEW_DATASET", "1")
    params = [PROJECT_ROOT / "params" / "base.yaml", PROJECT_ROOT / "params" / "exp3_baseline.yaml"]
    bundle = kaggle.build_bundle(params, tmp_path / "kaggle", user="someone", continued=True)
    kaggle.continue_run(bundle, "someone", "exp3_baseline")
    calls = [json.loads(line)[:2] for line in log.read_text().splitlines()]
    assert calls == [
        ["kernels", "output"],
        ["datasets", "version"],  # refused: the first continuation creates the state dataset
        ["datasets", "create"],
        ["datasets", "version"],  # then the library, then the kernel, as make kaggle-push does
        ["datasets", "create"],
        ["kernels", "push"],
    ]
    state = bundle / "state"
    assert (state / "runs" / "exp3_baseline" / "checkpoints" / "epoch_000500" / "state.json").is_file()
    assert (
        json.loads((state / "dataset-metadata.json").read_text())["id"]
        == "someone/mammogan-exp3-baseline-state"
    )
