"""Faults around a run, reproduced on tiny parameters the way they happen to users, and what the run does.

Probes held elsewhere: two runs on one run folder (tests/test_run_lock.py); truncated, garbled and
bit-changed checkpoint files, one by one, and the exact resume from the checkpoint before
(tests/test_checkpoint.py); YAML syntax errors in parameter files and --set (tests/test_pipeline.py); empty
files, text files named like images and files no label row names (tests/test_datasets.py); a killed kernel
with and without memory pressure (tests/test_pipeline.py). Here: the disk filling up, in a stage and in a
whole run, and a damaged newest checkpoint under the pipeline.

A full disk is a small tmpfs mounted for the test, which needs root (and a system that lets it mount); the
tests are skipped otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mammogan_lib import pipeline
from mammogan_lib.core import failures
from mammogan_lib.core.run_paths import RunPaths
from tests.conftest import PROJECT_ROOT, write_stage

pytestmark = pytest.mark.notebook


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """``folder`` as a tmpfs of ``size`` (e.g. '4m') for the duration; skips the test where it cannot."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a small disk is a tmpfs mount, which needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_disk_that_fills_up_in_a_stage_leaves_no_half_notebook_and_says_where_and_how_much(
    stage_notebooks, tmp_path
):
    fill = (
        "n = 0\n"
        "try:\n"
        "    with open('filler', 'wb') as handle:\n"
        "        while True:\n"
        "            handle.write(bytes(1 << 16)); handle.flush(); n += 1\n"
        "except OSError:\n"
        "    pass\n"
        "print('x' * 200_000)  # more output than the full disk can take in the executed notebook\n"
    )
    write_stage(stage_notebooks, "04_generate", fill)
    with small_disk(tmp_path / "disk", "3m") as disk:
        run_dir = disk / "runs" / "exp"
        (run_dir / "notebooks").mkdir(parents=True)
        params = {"seed": 0, "generate_count": 16, "curve_count": 0, "resolution": 64, "data_dir": str(disk)}
        with pytest.raises(failures.StageFailed) as failure:
            pipeline.execute_stage("04_generate", params, run_dir, disk)
        lines = str(failure.value).splitlines()
        # papermill's own write of the executed notebook is what meets the full disk
        assert lines[0] == "[04_generate] failed: OSError: [Errno 28] No space left on device"
        assert lines[1].startswith(f"no space left on device: {run_dir}: ")
        assert "04_generate needs about" in lines[1]
        assert lines[-1] == (
            "no executed notebook: it could not be written whole (runs/exp/notebooks/04_generate.ipynb)"
        )
        assert list((run_dir / "notebooks").iterdir()) == []  # nor a half-written one under another name


def run_command(*arguments: str, timeout: float = 900) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mammogan_lib.pipeline", str(PROJECT_ROOT / "params" / "tiny.yaml")]
    return subprocess.run(
        [*command, *arguments], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_a_run_on_a_full_disk_stops_in_a_few_lines_and_finishes_once_there_is_room(tmp_path):
    with small_disk(tmp_path / "disk", "40m") as disk:
        settings = ["--set", f"runs_dir={disk}", "--set", f"data_dir={tmp_path / 'data'}"]
        first = run_command(*settings)
        assert first.returncode == 1, first.stderr[-3000:]
        assert "Traceback" not in first.stderr
        failed = [
            line for line in first.stderr.splitlines() if "] failed:" in line or "] not started:" in line
        ]
        assert len(failed) == 1 and (
            "not enough free disk space" in failed[0] or "No space left on device" in failed[0]
        ), first.stderr[-3000:]
        assert str(disk / "tiny") in first.stderr
        notebooks = RunPaths(disk / "tiny").root / "notebooks"
        for notebook in notebooks.glob("*.ipynb"):
            json.loads(notebook.read_text())  # whole, or not there at all
        assert not list(notebooks.glob("*.running.ipynb"))

        subprocess.run(["mount", "-o", "remount,size=2g", str(disk)], check=True)
        second = run_command(*settings)
        assert second.returncode == 0, second.stderr[-3000:]
        steps = [
            int(line.split(",")[0]) for line in (disk / "tiny" / "losses.csv").read_text().splitlines()[1:]
        ]
        assert steps == list(range(1, len(steps) + 1))  # every step once, in order


@pytest.mark.slow
def test_a_damaged_newest_checkpoint_is_set_aside_and_the_pipeline_trains_on_from_the_one_before(tmp_path):
    settings = ["--set", f"runs_dir={tmp_path / 'runs'}", "--set", f"data_dir={tmp_path / 'data'}"]
    assert run_command(*settings, "--stages", "01_filter,02_preprocess,03_train_gan").returncode == 0
    run_dir = tmp_path / "runs" / "tiny"
    losses = (run_dir / "losses.csv").read_text()
    newest = RunPaths(run_dir).checkpoints / "epoch_000008"
    weights = newest / "generator.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = os.urandom(4096)  # same size, other bytes
    weights.write_bytes(bytes(data))
    again = run_command(*settings, "--stages", "03_train_gan", "--force")
    assert again.returncode == 0, again.stderr[-3000:]
    said = [line for line in again.stdout.splitlines() if "set aside as" in line]  # the terminal's warning
    assert len(said) == 1 and "epoch_000008" in said[0] and "generator.weights.h5" in said[0], again.stdout
    assert (run_dir / "losses.csv").read_text() == losses  # epochs 5-8 trained again, bit for bit
    (aside,) = RunPaths(run_dir).checkpoints.glob("epoch_000008.damaged-*")
    assert (aside / "generator.weights.h5").read_bytes() == bytes(data)  # kept as found
