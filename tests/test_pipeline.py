"""The pipeline's failure report: one readable message for an exception, a dead kernel, and on the command
line, instead of papermill's traceback. The stage runner executes small notebooks in a real kernel."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mammogan_lib import pipeline
from mammogan_lib.core import failures
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.core.vocabulary import FINDING_TYPE_EXPECTED
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.notebook


@pytest.fixture
def stage_notebooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A notebooks folder the pipeline runs from, filled by :func:`write_stage`."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.setenv(pipeline.NOTEBOOKS_DIR_VARIABLE, str(folder))
    monkeypatch.setenv(pipeline.KERNEL_VARIABLE, "mammogan")
    return folder


def write_stage(folder: Path, stage: str, code: str) -> None:
    """A stage notebook: a ``parameters`` cell, then ``code``."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "mammogan", "language": "python", "display_name": "mammogan"}
    parameters = nbformat.v4.new_code_cell("seed = 0")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell(code)]
    nbformat.write(notebook, folder / f"{stage}.ipynb")


def write_checkpoint(run_dir: Path, epoch: int) -> Path:
    folder = RunPaths(run_dir).checkpoints / f"epoch_{epoch:06d}"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"epoch": epoch, "step": 10 * epoch}))
    return folder


def test_an_exception_in_a_cell_is_reported_with_its_message_and_traceback_file(stage_notebooks, tmp_path):
    write_stage(stage_notebooks, "01_filter", 'raise ValueError("labels.csv has 2 bad values\\n- column x")')
    run_dir = tmp_path / "runs" / "exp"
    with pytest.raises(failures.StageFailed) as failure:
        pipeline.execute_stage("01_filter", {"seed": 1}, run_dir, tmp_path)
    executed = RunPaths(run_dir).executed_notebook("01_filter")
    assert failure.value.stage == "01_filter"
    assert str(failure.value).splitlines() == [
        "[01_filter] failed: ValueError: labels.csv has 2 bad values",
        "- column x",
        "fix the cause, then the same command resumes: the stages that finished are skipped",
        "traceback: runs/exp/notebooks/01_filter.ipynb",
    ]
    outputs = nbformat.read(executed, as_version=4).cells[-1].outputs
    assert [(o.output_type, o.ename) for o in outputs] == [("error", "ValueError")]


def test_a_killed_kernel_is_reported_with_the_signal_the_last_checkpoint_and_how_to_resume(
    stage_notebooks, tmp_path
):
    write_stage(stage_notebooks, "03_train_gan", "import os\nos.kill(os.getpid(), 9)")
    run_dir = tmp_path / "runs" / "exp"
    write_checkpoint(run_dir, 4)
    newest = write_checkpoint(run_dir, 12)
    (RunPaths(run_dir).checkpoints / "epoch_000016.tmp-99").mkdir()  # half-written: not a checkpoint
    with pytest.raises(failures.StageFailed) as failure:
        pipeline.execute_stage("03_train_gan", {"seed": 1}, run_dir, tmp_path)
    assert str(failure.value).splitlines() == [
        "[03_train_gan] failed: the notebook's kernel died: it was killed (SIGKILL), most often by the "
        "system's out-of-memory killer: the stage needed more memory than was free (fewer workers, a smaller "
        "batch_size or resolution need less)",
        f"last checkpoint: {newest.relative_to(tmp_path)} (epoch 12)",
        "the same command resumes: the stages that finished are skipped, and training continues from the "
        "last checkpoint",
        "executed notebook, up to the cell that was running: runs/exp/notebooks/03_train_gan.ipynb",
    ]


def test_a_kernel_that_exits_is_reported_with_its_status(stage_notebooks, tmp_path):
    write_stage(stage_notebooks, "02_preprocess", "import os\nos._exit(3)")
    with pytest.raises(failures.StageFailed) as failure:
        pipeline.execute_stage("02_preprocess", {}, tmp_path / "run", tmp_path)
    assert str(failure.value).splitlines()[:2] == [
        "[02_preprocess] failed: the notebook's kernel died: its process exited with status 3 before the "
        "notebook finished",
        "the same command resumes: the stages that finished are skipped",
    ]


def test_a_stage_that_succeeds_returns_its_executed_notebook(stage_notebooks, tmp_path):
    write_stage(stage_notebooks, "04_generate", "print(seed * 7)")
    executed = pipeline.execute_stage("04_generate", {"seed": 6}, tmp_path / "run", tmp_path)
    assert nbformat.read(executed, as_version=4).cells[-1].outputs[0].text == "42\n"


def test_a_kernel_that_cannot_start_is_reported_too(stage_notebooks, tmp_path, monkeypatch):
    write_stage(stage_notebooks, "05_metrics", "print(seed)")
    monkeypatch.setenv(pipeline.KERNEL_VARIABLE, "no-such-kernel")
    with pytest.raises(failures.StageFailed) as failure:
        pipeline.execute_stage("05_metrics", {}, tmp_path / "run", tmp_path)
    assert str(failure.value).splitlines()[0] == (
        "[05_metrics] failed: NoSuchKernel: No such kernel named no-such-kernel"
    )


@pytest.mark.parametrize(
    ("exit_status", "expected"),
    [
        (
            -signal.SIGSEGV,
            "it crashed (SIGSEGV) in native code (a compiled library, not the notebook's Python)",
        ),
        (-signal.SIGTERM, "it was stopped (SIGTERM) from outside the pipeline"),
        (1, "its process exited with status 1 before the notebook finished"),
        (
            None,
            "it was killed (most often by the system's out-of-memory killer, when memory runs out) "
            "or crashed",
        ),
    ],
)
def test_how_a_kernel_ended_in_words(exit_status, expected):
    assert failures.how_the_kernel_ended(exit_status) == expected


def test_the_command_prints_a_bad_labels_failure_without_a_traceback(tmp_path):
    """`make reproduce DATA=...` on a folder whose labels hold several bad values: exit status 1, and stderr
    ends with the stage's one message listing them all."""
    lines = ["file,pathology,abnormality,laterality,view", "a.pgm,MALIGNANT,Architectural distortion,L,CC"]
    lines += ["b.pgm,MALIGNANT,mass?,L,CC", "c.pgm,NORMAL,Mass,R,MLO", "d.pgm,cancer,mass,R,CC"]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    command = [sys.executable, "-m", "mammogan_lib.pipeline", "params/base.yaml", "params/tiny.yaml"]
    command += ["--stages", "01_filter", "--set", f"dataset_root={tmp_path}"]
    command += ["--set", f"runs_dir={tmp_path / 'runs'}", "--set", f"data_dir={tmp_path / 'data'}"]
    ours = (pipeline.NOTEBOOKS_DIR_VARIABLE, pipeline.KERNEL_VARIABLE)
    env = {key: value for key, value in os.environ.items() if key not in ours}
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    report = result.stderr[result.stderr.index("[01_filter] failed: ") :].splitlines()
    assert report[:5] == [
        "[01_filter] failed: BadLabelsError: labels.csv has 3 bad values in 3 rows; nothing was loaded "
        "(fix them all, then run again):",
        "- column 'abnormality', row 3: 'mass?' is not a finding type (only letters, digits, spaces, '-', "
        "'_' and apostrophes may be used)",
        "- column 'abnormality', row 4: 'Mass' contradicts pathology NORMAL",
        "- column 'pathology', row 5: 'cancer' is not a known pathology",
        f"column 'abnormality' accepts {FINDING_TYPE_EXPECTED}",
    ]
    assert report[-2:] == [
        "fix the cause, then the same command resumes: the stages that finished are skipped",
        f"traceback: {tmp_path / 'runs' / 'tiny' / 'notebooks' / '01_filter.ipynb'}",
    ]
    assert "Traceback (most recent call last)" not in result.stderr
    assert "[01_filter] running" in result.stdout
    # then, on stdout, the closing summary, in plain lines (a log is not a terminal)
    summary = result.stdout[result.stdout.index("── mammogan run tiny: stopped: 01_filter failed") :]
    assert "01_filter      FAILED after" in summary and "(the reason is above)" in summary
    assert "02_preprocess  not run" in summary
    assert summary.splitlines()[-1] == f"  report: {tmp_path / 'runs' / 'tiny' / 'index.html'}"
    assert "\x1b" not in result.stdout + result.stderr


def test_verbose_comes_from_the_flag_or_the_environment(monkeypatch):
    seen = []

    def remember(merged, stages, force, shown, record):
        seen.append(shown.verbose)

    monkeypatch.setattr(pipeline, "run_pipeline", remember)
    for flags, variable in (["--verbose"], None), ([], "1"), ([], "0"), ([], None):
        if variable is None:
            monkeypatch.delenv("VERBOSE", raising=False)
        else:
            monkeypatch.setenv("VERBOSE", variable)
        assert pipeline.main([str(PROJECT_ROOT / "params" / "base.yaml"), *flags]) == 0
    assert seen == [True, True, False, False]


def test_yaml_syntax_errors_in_files_and_overrides_exit_2_naming_each_file_line_and_column(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("epochs: 3\nlr_d: [0.1\nseed: 1\n")
    missing = tmp_path / "missing.yaml"
    status = pipeline.main([str(broken), str(missing), "--set", "epochs=[1", "--set", "seed", "--check"])
    assert status == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and error.startswith("error: 4 parameter problems")
    lines = error.splitlines()[1:]
    assert lines[0].startswith(f"- parameter file {broken}: not valid YAML, line 3, column 5: ")
    assert "flow sequence from line 2, column 7" in lines[0]  # where the unclosed bracket opened
    assert lines[1] == f"- parameter file {missing} does not exist"
    assert lines[2].startswith("- --set 'epochs=[1': the value is not valid YAML, line 1, column 3: ")
    assert lines[3] == "- --set 'seed': expected key=value"
