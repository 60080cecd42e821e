"""One writer per run folder: a lock on ``runs/<exp_id>/writer.lock`` (``RunPaths.writer_lock``) that a
second run is refused by.

The pipeline takes it for the stages it runs (:func:`hold`), and a notebook run cell by cell in Jupyter
takes it in its first cell for the kernel's life (:func:`hold_while_running`); a notebook the pipeline
executes finds its folder in :data:`HELD_VARIABLE`, which the kernels it starts inherit, and goes on. The
lock is ``flock`` on an open file, so the operating system releases it when its process ends, however it
ends: a killed run never leaves a stale lock. The file names the holder (PID, host, start, command) for
the refusal's message. Reading a run folder takes no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from mammogan_lib.core.run_paths import RunPaths

HELD_VARIABLE = "MAMMOGAN_RUN_FOLDERS_HELD"
"""The run folders a parent process holds (os.pathsep-separated); its kernels and children write there."""

_held_for_process: dict[Path, IO[str]] = {}


class RunFolderBusy(RuntimeError):
    """Another process writes into this run folder."""

    def __init__(self, run_dir: Path, holder: dict[str, Any]) -> None:
        self.run_dir, self.holder = run_dir, holder
        since = holder.get("started")
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "an unknown time"
        who = f"PID {holder.get('pid', '?')} on {holder.get('host', '?')}, started {started}"
        command = f" ({holder['command']})" if holder.get("command") else ""
        super().__init__(
            f"run folder {run_dir} is in use by another run: {who}{command}. Two runs writing one folder "
            "corrupt each other; wait for it to end, stop it, or give this run another exp_id"
        )


def _already_held(run_dir: Path) -> bool:
    """Whether this process (:func:`hold_while_running`) or a parent (:func:`hold`, inherited) holds it."""
    return run_dir in _held_for_process or str(run_dir) in os.environ.get(HELD_VARIABLE, "").split(os.pathsep)


def _take(run_dir: Path) -> IO[str]:
    """Lock ``run_dir`` for this process and write who holds it; raise :class:`RunFolderBusy` if taken."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(RunPaths(run_dir).writer_lock, "a+", encoding="utf-8")  # noqa: SIM115 (held open while locked)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        try:
            holder = json.loads(handle.read() or "{}")
        except json.JSONDecodeError:
            holder = {}
        handle.close()
        raise RunFolderBusy(run_dir, holder) from None
    handle.seek(0)
    handle.truncate()
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "command": " ".join(sys.argv)[:300],
    }
    handle.write(json.dumps(holder))
    handle.flush()
    return handle


@contextlib.contextmanager
def hold(run_dir: Path | str) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the ``with`` block (nothing to take where a parent process holds it);
    processes started inside it inherit that it is held."""
    run_dir = Path(run_dir).resolve()
    if _already_held(run_dir):
        yield
        return
    handle = _take(run_dir)
    before = os.environ.get(HELD_VARIABLE)
    os.environ[HELD_VARIABLE] = os.pathsep.join(filter(None, [before, str(run_dir)]))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(HELD_VARIABLE, None)
        else:
            os.environ[HELD_VARIABLE] = before
        handle.close()  # closing releases the lock


def hold_while_running(run_dir: Path | str) -> None:
    """Hold ``run_dir``'s lock until this process ends (a notebook's kernel); nothing to take where a parent
    process (the pipeline) holds it or this process already does."""
    run_dir = Path(run_dir).resolve()
    if _already_held(run_dir):
        return
    _held_for_process[run_dir] = _take(run_dir)
