"""mammogan_lib.core.run_paths: the run folder is named in one place, and the notebooks use that place."""

import json
import re

import pytest

from mammogan_lib import pipeline
from mammogan_lib.core.run_paths import FIGURES, RunPaths
from mammogan_lib.pipeline import report
from tests.conftest import PROJECT_ROOT


def notebook_code(stage: str) -> str:
    notebook = json.loads((PROJECT_ROOT / "notebooks" / f"{stage}.ipynb").read_text())
    return "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")


def test_every_figure_is_written_by_the_stage_its_file_name_says_and_the_report_shows_known_ones():
    written = {}
    for stage in pipeline.STAGES:
        code = notebook_code(stage)
        names = re.findall(r'paths\.figure\("(\w+)"\)', code)
        names += [
            f"{column}_distribution"
            for column in ("psnr", "ssim")
            if 'paths.figure(f"{column}_distribution")' in code
        ]
        written.update(dict.fromkeys(names, stage))
    assert set(written) == set(FIGURES)
    assert all(FIGURES[name].startswith(stage[:3]) for name, stage in written.items())
    assert {name for name, _ in report.HEADLINE_FIGURES} <= set(FIGURES)


def test_no_notebook_names_a_run_file_itself():
    for stage in pipeline.STAGES:
        code = notebook_code(stage)
        assert not re.search(r'run_dir / "|figures / "', code), stage
        assert not re.search(r'"\w+\.(json|csv|png)"', code.replace('"summary.json"', "")), stage


def test_paths_are_inside_the_run_folder_and_unknown_figures_are_named(tmp_path):
    paths = RunPaths(tmp_path / "exp")
    assert paths.manifest == tmp_path / "exp" / "manifest.csv"
    assert paths.executed_notebook("03_train_gan") == tmp_path / "exp" / "notebooks" / "03_train_gan.ipynb"
    assert paths.figure("training_losses") == tmp_path / "exp" / "figures" / "03_losses.png"
    with pytest.raises(KeyError, match="unknown figure 'loss'.*training_losses"):
        paths.figure("loss")
