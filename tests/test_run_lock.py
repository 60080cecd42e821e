"""One writer per run folder: a second run is refused at once, naming the holder; a killed holder leaves no
lock behind; the pipeline's own kernels write on under its lock."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from mammogan_lib import pipeline
from mammogan_lib.core import run_lock
from mammogan_lib.core.run_paths import RunPaths
from tests.conftest import PROJECT_ROOT

TAKE = textwrap.dedent(
    """
    import sys
    from mammogan_lib.core import run_lock
    try:
        run_lock.hold_while_running(sys.argv[1])
    except run_lock.RunFolderBusy as busy:
        print(busy)
        sys.exit(3)
    print("held", flush=True)
    if len(sys.argv) > 2:
        import time
        time.sleep(float(sys.argv[2]))
    """
)


def take_in_another_process(run_dir, env=None) -> subprocess.CompletedProcess:
    """Try the lock from a fresh process (by default one that did not inherit this one's held folders)."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != run_lock.HELD_VARIABLE}
    return subprocess.run(
        [sys.executable, "-c", TAKE, str(run_dir)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=60,
    )


def holder_process(run_dir) -> subprocess.Popen:
    """A process that takes the lock and keeps it for a minute; returns once it holds it."""
    process = subprocess.Popen(
        [sys.executable, "-c", TAKE, str(run_dir), "60"], stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_writer_is_refused_naming_the_holder_and_the_folder_frees_when_the_first_ends(tmp_path):
    run_dir = tmp_path / "runs" / "exp"
    with run_lock.hold(run_dir):
        refused = take_in_another_process(run_dir)
        assert refused.returncode == 3
        message = refused.stdout.strip()
        assert f"run folder {run_dir.resolve()} is in use by another run" in message
        assert f"PID {os.getpid()} on {socket.gethostname()}, started " in message and "exp_id" in message
        with run_lock.hold(run_dir):  # the same process again: it already writes here
            pass
    assert take_in_another_process(run_dir).returncode == 0
    assert os.environ.get(run_lock.HELD_VARIABLE) is None  # nothing left for later processes to inherit


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    holder = holder_process(tmp_path)
    with pytest.raises(run_lock.RunFolderBusy, match=f"PID {holder.pid} "):
        run_lock.hold_while_running(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with run_lock.hold(tmp_path):  # free at once: the operating system released the dead process's lock
        assert RunPaths(tmp_path).writer_lock.is_file()


def test_processes_started_under_the_lock_write_on_as_the_pipelines_kernels_do(tmp_path):
    with run_lock.hold(tmp_path):
        child = take_in_another_process(tmp_path, env=dict(os.environ))
    assert child.returncode == 0, child.stdout


def test_the_command_refuses_a_second_run_on_the_same_exp_id_before_any_stage(tmp_path, capsys):
    run_dir = tmp_path / "runs" / "tiny"
    holder = holder_process(run_dir)
    try:
        started = time.time()
        status = pipeline.main(
            [
                str(PROJECT_ROOT / "params" / "base.yaml"),
                str(PROJECT_ROOT / "params" / "tiny.yaml"),
                "--set",
                f"runs_dir={tmp_path / 'runs'}",
                "--set",
                f"data_dir={tmp_path / 'data'}",
            ]
        )
        assert time.time() - started < 30  # refused at once, not after the first stage
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert status == 2
    error = capsys.readouterr().err
    assert error.startswith(
        f"error: run folder {run_dir.resolve()} is in use by another run: PID {holder.pid} "
    )
    assert "Traceback" not in error
    assert not (run_dir / "stages").exists()  # nothing written
