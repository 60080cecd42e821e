"""Parameter files, notebook parameters and config objects agree, and bad parameters are rejected early."""

import dataclasses
import re
import shutil
from pathlib import Path

import pytest
import yaml

from mammogan_lib import pipeline
from mammogan_lib.core import config
from tests.conftest import PROJECT_ROOT

PARAMS = PROJECT_ROOT / "params"
STAGE_CONFIG = {c.notebook: c for c in config.STAGE_CONFIGS}


@pytest.mark.parametrize("stage", pipeline.STAGES)
def test_notebook_parameters_are_exactly_its_config_fields(stage):
    assert sorted(pipeline.notebook_parameters(stage)) == sorted(STAGE_CONFIG[stage].field_names())


@pytest.mark.parametrize("stage", pipeline.STAGES)
def test_notebook_defaults_are_base_plus_smoke_and_valid(stage):
    merged = pipeline.load_params([PARAMS / "base.yaml", PARAMS / "smoke.yaml"]).values
    defaults = pipeline.notebook_parameters(stage)
    assert defaults == {name: merged[name] for name in defaults}
    STAGE_CONFIG[stage](**defaults)  # validates


def test_base_yaml_names_every_declared_parameter_with_a_comment():
    declared = set().union(*(pipeline.notebook_parameters(stage) for stage in pipeline.STAGES))
    base = yaml.safe_load((PARAMS / "base.yaml").read_text())
    assert set(base) == declared
    for line in (PARAMS / "base.yaml").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            assert "#" in line, f"base.yaml: {line.split(':')[0]!r} has no comment"


@pytest.mark.parametrize("stage", pipeline.STAGES)
def test_config_defaults_are_base_yaml(stage):
    """A parameter lives in base.yaml, its notebook's parameters cell and one config class; the tests above
    and this one fail when the three disagree."""
    base = yaml.safe_load((PARAMS / "base.yaml").read_text())
    defaults = dataclasses.asdict(STAGE_CONFIG[stage]())
    assert defaults == {name: base[name] for name in defaults}


@pytest.mark.parametrize("path", sorted(PARAMS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_params_file_validates_on_top_of_base(path):
    pipeline.check_params(pipeline.load_params([PARAMS / "base.yaml", path]))


def write_yaml(tmp_path: Path, name: str, payload: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(payload))
    return path


def test_unknown_key_is_rejected_naming_the_key_and_the_file(tmp_path):
    bad = write_yaml(tmp_path, "exp_typo.yaml", {"shape_treshold": 0.8})
    with pytest.raises(
        config.ParameterError, match=r"unknown parameter 'shape_treshold' \(set in .*exp_typo.yaml\)"
    ):
        pipeline.check_params(pipeline.load_params([PARAMS / "base.yaml", bad]))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("shape_threshold", "high", r"'shape_threshold' \(set in .*bad.yaml\): expected float, got str"),
        ("resolution", 96, r"'resolution' \(set in .*bad.yaml\): 96 is not one of \[64, 128, 256\]"),
        ("shape_threshold", 1.5, r"'shape_threshold' \(set in .*bad.yaml\): 1.5 is above the maximum 1.0"),
        ("workers", -1, r"'workers' \(set in .*bad.yaml\): -1 is below the minimum 0"),
        ("phantom_images", True, r"'phantom_images' \(set in .*bad.yaml\): expected int, got bool"),
        ("abnormalities", "mass", r"'abnormalities' \(set in .*bad.yaml\): expected a list"),
        (
            "abnormalities",
            ["mass", "mass?", "none"],
            r"^parameter 'abnormalities': 'mass\?' is not a finding type \(only letters.*; "
            r"'none' means no finding, which cannot be selected; expected a list of finding types in words, "
            r"e\.g\. \[mass, calcification\], \[architectural_distortion\] or \[any\] "
            r"\(set in .*bad\.yaml\)$",
        ),
        ("abnormalities", [], r"'abnormalities': \[\] selects nothing; .* \(set in .*bad\.yaml\)$"),
    ],
)
def test_wrong_type_or_range_is_rejected_naming_key_and_file(tmp_path, key, value, message):
    bad = write_yaml(tmp_path, "bad.yaml", {key: value})
    with pytest.raises(config.ParameterError, match=message):
        pipeline.check_params(pipeline.load_params([PARAMS / "base.yaml", bad]))


def test_abnormalities_accept_any_finding_type_and_keep_its_canonical_name(tmp_path):
    spelt = write_yaml(
        tmp_path, "types.yaml", {"abnormalities": ["Architectural distortion", "calcs", "Skin lesion"]}
    )
    merged = pipeline.load_params([PARAMS / "base.yaml", spelt])
    pipeline.check_params(merged)
    chosen = config.FilterConfig(**pipeline.stage_params("01_filter", merged)).abnormalities
    assert chosen == ["architectural_distortion", "calcification", "skin_lesion"]


def test_every_problem_is_named_at_once_each_with_its_file(tmp_path):
    bad = write_yaml(
        tmp_path, "bad.yaml", {"shape_treshold": 0.8, "resolution": 96, "workers": -1, "lr_d_typo": 1e-4}
    )
    with pytest.raises(config.ParameterError) as caught:
        pipeline.check_params(pipeline.load_params([PARAMS / "base.yaml", bad], ["seed=-2"]))
    message = str(caught.value)
    assert message.startswith("5 parameter problems:")
    for expected in (
        r"unknown parameter 'lr_d_typo' \(set in .*bad.yaml\)",
        r"unknown parameter 'shape_treshold' \(set in .*bad.yaml\)",
        r"'resolution' \(set in .*bad.yaml\): 96 is not one of",
        r"'workers' \(set in .*bad.yaml\)",
        r"'seed' \(set in --set\): -2 is below the minimum 0",
    ):
        assert re.search(expected, message), expected
    assert message.count("'resolution'") == 1  # declared by two stages, reported once


def test_int_is_accepted_where_a_float_is_declared():
    config.validate_params({"shape_threshold": 1})


def test_files_merge_in_order_shallowly_and_set_overrides_win(tmp_path):
    first = write_yaml(tmp_path, "a.yaml", {"seed": 1, "abnormalities": ["mass", "calcification"]})
    second = write_yaml(tmp_path, "b.yaml", {"abnormalities": ["mass"]})
    merged = pipeline.load_params([first, second], ["seed=7", "dataset_root=/data/cbis"])
    assert merged.values == {"seed": 7, "abnormalities": ["mass"], "dataset_root": "/data/cbis"}
    assert merged.origins == {"seed": "--set", "abnormalities": str(second), "dataset_root": "--set"}


def test_bad_parameter_files_and_overrides_are_named(tmp_path):
    with pytest.raises(config.ParameterError, match="missing.yaml does not exist"):
        pipeline.load_params([tmp_path / "missing.yaml"])
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(config.ParameterError, match="list.yaml: expected a mapping"):
        pipeline.load_params([listing])
    with pytest.raises(config.ParameterError, match="expected key=value"):
        pipeline.load_params([], ["seed"])


def test_from_namespace_takes_only_the_stage_fields_and_reports_missing_ones():
    merged = pipeline.load_params([PARAMS / "base.yaml", PARAMS / "smoke.yaml"]).values
    namespace = {**merged, "unrelated_global": object()}
    cfg = config.PreprocessConfig.from_namespace(namespace)
    assert dataclasses.asdict(cfg) == {k: merged[k] for k in config.PreprocessConfig.field_names()}
    namespace.pop("resolution")
    with pytest.raises(config.ParameterError, match=r"02_preprocess: parameters \['resolution'\]"):
        config.PreprocessConfig.from_namespace(namespace)


def test_exp_id_must_be_usable_as_a_folder_name():
    merged = pipeline.load_params([PARAMS / "base.yaml", PARAMS / "smoke.yaml"]).values
    with pytest.raises(config.ParameterError, match="exp_id"):
        config.PreprocessConfig(
            **{**{k: merged[k] for k in config.PreprocessConfig.field_names()}, "exp_id": "../x"}
        )


def test_relative_paths_resolve_against_the_project_root_from_the_notebooks_folder():
    assert config.resolve_path("runs", PROJECT_ROOT / "notebooks") == PROJECT_ROOT / "runs"
    assert config.resolve_path("/abs/runs", PROJECT_ROOT) == Path("/abs/runs")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("keep_epochs", [5], r"'keep_epochs': expected \[\] or \[start, end\].* \(set in .*bad.yaml\)"),
        ("keep_epochs", [9, 5], r"'keep_epochs': expected .*got \[9, 5\] \(set in .*bad.yaml\)"),
        ("augment_policy", "flip", r"'augment_policy': unknown DiffAugment policy 'flip'.*bad.yaml"),
        ("svm_generated", 500, r"'svm_generated': 500 generated tumours cannot replace .*400.*bad.yaml"),
        (
            "feature_networks",
            ["dinov2", "dinov2"],
            r"'feature_networks': \['dinov2', 'dinov2'\] must name each network once.*bad.yaml",
        ),
        (
            "feature_networks",
            ["inception", "clip"],
            r"'feature_networks': 'clip' is not one of .'effnet_lite0', 'inception', 'dinov2'.*"
            r"feature_network_path.*bad",
        ),
        (
            "svm_feature_networks",
            ["effnet_lite0", "clip"],
            r"'svm_feature_networks': \['effnet_lite0', 'clip'\] must name each of "
            r"\['effnet_lite0', 'resnet50'\] at most once, and at least one \(\['clip'\] are not.*bad.yaml",
        ),
        (
            "feature_networks",
            ["inception", "random_net", "Other"],
            r"'random_net' is not one of .*'Other' is not one of .*all stand for the one network.*bad.yaml",
        ),
        (
            "feature_network_path",
            "/models/radimagenet.pt",
            r"'feature_networks': feature_network_path is set \(/models/radimagenet.pt\) but no name",
        ),
        ("prdc_k", 0, r"'prdc_k' \(set in .*bad.yaml\): 0 is below the minimum 1"),
        ("bootstrap_repeats", -1, r"'bootstrap_repeats' \(set in .*bad.yaml\): -1 is below the minimum 0"),
    ],
)
def test_config_checks_run_before_anything_executes(tmp_path, key, value, message):
    bad = write_yaml(tmp_path, "bad.yaml", {key: value})
    with pytest.raises(config.ParameterError, match=message):
        pipeline.check_params(pipeline.load_params([PARAMS / "base.yaml", bad]))


def test_a_feature_network_not_built_in_is_the_file_of_feature_network_path(tmp_path):
    named = write_yaml(
        tmp_path,
        "named.yaml",
        {"feature_networks": ["inception", "radimagenet"], "feature_network_path": "/models/rad.pt"},
    )
    merged = pipeline.load_params([PARAMS / "base.yaml", named])
    settings = config.MetricsConfig(**pipeline.stage_params("05_metrics", merged))
    assert settings.torchscript_networks == ["radimagenet"]
    assert [settings.weights_path(name) for name in settings.feature_networks] == ["", "/models/rad.pt"]


def test_base_yaml_and_the_notebooks_parameters_cells_are_written_from_the_config_classes():
    from mammogan_lib.pipeline import parameters

    assert parameters.stale_files() == [], "run make params"


def test_make_params_finds_every_file_out_of_date_and_rewrites_it(tmp_path):
    from mammogan_lib.pipeline import parameters

    for folder in ("params", "notebooks"):
        shutil.copytree(PROJECT_ROOT / folder, tmp_path / folder)
    base = tmp_path / "params" / "base.yaml"
    base.write_text(base.read_text().replace("# Adam learning rate, discriminator", "# stale words"))
    smoke = tmp_path / "params" / "smoke.yaml"
    smoke.write_text(smoke.read_text() + "lr_d: 0.003\n")
    assert parameters.stale_files(tmp_path) == [base, tmp_path / "notebooks" / "03_train_gan.ipynb"]
    for path, text in parameters.expected_files(tmp_path).items():
        path.write_text(text)
    assert parameters.stale_files(tmp_path) == []
    assert "# Adam learning rate, discriminator" in base.read_text()
    notebook = (tmp_path / "notebooks" / "03_train_gan.ipynb").read_text()
    assert '"lr_d = 0.003  # Adam learning rate, discriminator\\n"' in notebook
