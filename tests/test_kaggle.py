"""mammogan_lib.kaggle: the bundle `make kaggle` builds, checked offline (run: test_notebooks.py)."""

import json
import re
import zipfile

import papermill
import pytest

from mammogan_lib import kaggle, pipeline
from tests.conftest import PROJECT_ROOT

TEMPLATE = json.loads((PROJECT_ROOT / kaggle.TEMPLATE_FILE).read_text())


def test_kernel_metadata_is_filled_per_experiment_for_a_t4_with_internet_set():
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
    assert "mammogan_lib/pipeline.py" in names and "mammogan_lib/models/__init__.py" in names
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
    working = tmp_path / "working"
    assert "starting from scratch" in kaggle.restore_previous_run(tmp_path / "input", working, "exp1_deep")
    message = kaggle.restore_previous_run(tmp_path / "input", working, "exp3_baseline")
    assert message.startswith("restored")
    assert (working / "runs" / "exp3_baseline" / "checkpoints" / "epoch_000500").is_dir()
    assert (working / "data" / "cache" / "preprocess" / "abc" / "images.npy").is_file()
    assert "continuing it" in kaggle.restore_previous_run(tmp_path / "input", working, "exp3_baseline")


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
