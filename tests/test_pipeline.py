"""The pipeline's failure report: one readable message for an exception, a dead kernel, and on the command
line, instead of papermill's traceback. The stage runner executes small notebooks in a real kernel."""

import json
import os
import re
import shutil
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
from mammogan_lib.pipeline import disk_space
from tests.conftest import PROJECT_ROOT, write_stage

pytestmark = pytest.mark.notebook


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
    # alive for a few of the pipeline's once-a-second looks, which note the memory it sees
    write_stage(stage_notebooks, "03_train_gan", "import os, time\ntime.sleep(3)\nos.kill(os.getpid(), 9)")
    run_dir = tmp_path / "runs" / "exp"
    write_checkpoint(run_dir, 4)
    newest = write_checkpoint(run_dir, 12)
    (RunPaths(run_dir).checkpoints / "epoch_000016.tmp-99").mkdir()  # half-written: not a checkpoint
    with pytest.raises(failures.StageFailed) as failure:
        pipeline.execute_stage("03_train_gan", {"seed": 1}, run_dir, tmp_path)
    lines = str(failure.value).splitlines()
    assert re.fullmatch(  # this machine had memory to spare: not blamed on the out-of-memory killer
        r"\[03_train_gan\] failed: the notebook's kernel died: it was killed \(SIGKILL\) while the machine's "
        r"available memory never fell below [\d.]+ GB of [\d.]+ GB; the kernel itself peaked at [\d.]+ GB: "
        r"memory was not short, so not by this machine's out-of-memory killer but from outside the pipeline "
        r"\(kill -9, a job scheduler's time or memory limit, a container's memory limit\)",
        lines[0],
    )
    assert lines[1:] == [
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
        (None, "it was killed (by a signal or the out-of-memory killer) or crashed; exit status unknown"),
        (
            -signal.SIGKILL,
            "it was killed (SIGKILL): by the system's out-of-memory killer if memory ran out, else from "
            "outside the pipeline (kill -9, a job scheduler's or a container's limit); this system does not "
            "say how much memory was free",
        ),
    ],
)
def test_how_a_kernel_ended_in_words(exit_status, expected):
    assert failures.how_the_kernel_ended(exit_status) == expected


GB = 1024**3


@pytest.mark.parametrize(
    ("lowest_available", "expected"),
    [
        (
            0.4 * GB,
            "it was killed (SIGKILL) after the machine's available memory fell to 0.4 GB of 24.0 GB; the "
            "kernel itself peaked at 22.5 GB: most likely by the out-of-memory killer; fewer workers, a "
            "smaller batch_size or resolution need less",
        ),
        (
            12 * GB,
            "it was killed (SIGKILL) while the machine's available memory never fell below 12.0 GB of "
            "24.0 GB; the kernel itself peaked at 22.5 GB: memory was not short, so not by this machine's "
            "out-of-memory killer but from outside the pipeline (kill -9, a job scheduler's time or memory "
            "limit, a container's memory limit)",
        ),
    ],
)
def test_a_killed_kernel_is_blamed_on_memory_only_when_memory_was_short(lowest_available, expected):
    seen = failures.MemorySeen(
        kernel_peak=int(22.5 * GB), lowest_available=int(lowest_available), total=24 * GB
    )
    assert failures.how_the_kernel_ended(-signal.SIGKILL, seen) == expected


def test_memory_is_read_from_proc_for_the_machine_and_the_kernel():
    seen = failures.MemorySeen()
    seen.note(os.getpid())
    if seen.total is None:
        pytest.skip("no /proc/meminfo on this system")
    assert 0 < seen.lowest_available <= seen.total and 0 < seen.kernel_peak < seen.total


def test_the_executed_notebook_is_whole_or_absent(tmp_path):
    output = tmp_path / "03_train_gan.ipynb"
    partial = pipeline.partial_notebook(output)
    assert partial.name == "03_train_gan.running.ipynb"
    partial.write_text('{"cells": [], "metadata"')  # a write the full disk cut short
    assert not pipeline.publish_notebook(partial, output) and not partial.exists() and not output.exists()
    partial.write_text('{"cells": [], "metadata": {}}')
    assert pipeline.publish_notebook(partial, output) and not partial.exists() and output.is_file()


def test_a_full_disk_in_a_stage_names_the_folders_the_free_space_and_what_the_stage_needs(
    stage_notebooks, tmp_path
):
    write_stage(stage_notebooks, "04_generate", 'raise OSError(28, "No space left on device", "x.npy")')
    run_dir = tmp_path / "runs" / "exp"
    params = {"seed": 0, "generate_count": 100, "curve_count": 0, "resolution": 64, "data_dir": str(tmp_path)}
    with pytest.raises(failures.StageFailed) as failure:
        pipeline.execute_stage("04_generate", params, run_dir, tmp_path)
    lines = str(failure.value).splitlines()
    assert lines[0] == "[04_generate] failed: OSError: [Errno 28] No space left on device: 'x.npy'"
    assert re.fullmatch(
        rf"no space left on device: {re.escape(str(run_dir))}: [\d.,]+ [kMG]?B free now, 04_generate needs "
        r"about [\d.,]+ MB",
        lines[1],
    )
    assert lines[-1] == "traceback: runs/exp/notebooks/04_generate.ipynb"
    assert not list((run_dir / "notebooks").glob("*.running.ipynb"))


def test_a_stage_that_would_not_fit_on_the_disk_is_not_started(tmp_path, monkeypatch):
    run_dir = tmp_path / "runs" / "exp"
    params = {"resolution": 128, "width": 1.0, "keep_last": 3, "data_dir": str(tmp_path)}
    assert disk_space.shortfall("03_train_gan", params, run_dir) == ""  # this disk has room
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(disk_space.shutil, "disk_usage", lambda _: usage._replace(free=100 * 1024**2))
    assert disk_space.shortfall("03_train_gan", params, run_dir) == (
        f"{run_dir} needs about 286 MB (executed notebook, report and figures 30 MB; 4 checkpoints of "
        "64 MB (estimated from width and resolution) 256 MB), and only 100 MB is free there"
    )
    write_checkpoint(run_dir, 1)
    (RunPaths(run_dir).checkpoints / "epoch_000001" / "generator.weights.h5").write_bytes(bytes(10 * 1024**2))
    size = sum(f.stat().st_size for f in (RunPaths(run_dir).checkpoints / "epoch_000001").iterdir())
    assert ("4 checkpoints of 10 MB (as epoch_000001)", 4 * size) in disk_space.estimate(
        "03_train_gan", params, run_dir
    ).parts[run_dir]  # the newest checkpoint's own size, when there is one
    merged = pipeline.load_params(
        [PROJECT_ROOT / "params" / "tiny.yaml"], [f"runs_dir={tmp_path / 'runs'}", "exp_id=exp"]
    )
    monkeypatch.setattr(disk_space.shutil, "disk_usage", lambda _: usage._replace(free=20 * 1024**2))
    with pytest.raises(failures.StageFailed) as refused:
        pipeline.run_pipeline(merged, ["03_train_gan"], cwd=tmp_path, log=lambda line: None)
    assert str(refused.value).startswith("[03_train_gan] not started: not enough free disk space: ")
    assert not (run_dir / "notebooks" / "03_train_gan.ipynb").exists()


def test_an_unwritable_run_folder_is_a_parameter_error_naming_it(tmp_path, capsys):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the runs folder should be")
    status = pipeline.main(
        [str(PROJECT_ROOT / "params" / "tiny.yaml"), "--set", f"runs_dir={blocked}", "--stages", "01_filter"]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(error) == 1
    assert error[0].startswith(f"error: the run folder {blocked / 'tiny'} cannot be written (")
    assert "check runs_dir (set in --set)" in error[0]


def test_a_failing_html_export_is_the_stages_failure_in_a_few_lines(stage_notebooks, tmp_path, monkeypatch):
    write_stage(stage_notebooks, "06_svm", "print(seed)")
    run_dir = tmp_path / "runs" / "exp"
    executed = pipeline.execute_stage("06_svm", {"seed": 1}, run_dir, tmp_path)

    def disk_full(notebook_path, html_path):
        raise OSError(28, "No space left on device", str(html_path))

    monkeypatch.setattr(pipeline, "export_html", disk_full)
    with pytest.raises(failures.StageFailed) as failure:
        pipeline.report_stage("06_svm", executed, run_dir / "reports" / "06_svm.html", {}, run_dir, tmp_path)
    lines = str(failure.value).splitlines()
    assert lines[0].startswith("[06_svm] failed: its HTML report could not be written: OSError: [Errno 28]")
    assert lines[1].startswith("no space left on device: ") and "06_svm needs about" in lines[1]
    assert lines[2:] == [
        "the executed notebook is whole: runs/exp/notebooks/06_svm.ipynb",
        "fix the cause, then run the same command again: it runs this stage again",
    ]


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


def test_a_closing_summary_that_cannot_be_written_is_one_line_and_status_1(monkeypatch, capsys):
    def ran(merged, stages, force, shown, record):
        record.outcome["01_filter"] = "ran"

    def disk_full(run_dir, record, shown, failed):
        raise OSError(28, "No space left on device", str(run_dir / "index.html"))

    monkeypatch.setattr(pipeline, "run_pipeline", ran)
    monkeypatch.setattr(pipeline, "show_summary", disk_full)
    assert pipeline.main([str(PROJECT_ROOT / "params" / "tiny.yaml")]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(
        "[summary] failed: the closing summary could not be written: OSError: [Errno 28] No space left on "
        "device: "
    )
    assert error[0].endswith("runs/tiny")


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
