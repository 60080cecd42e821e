"""Why a stage failed, in a few plain lines, instead of papermill's traceback.

The pipeline raises :class:`StageFailed`, whose message reads::

    [01_filter] failed: BadLabelsError: labels.csv has 2 bad values in 3 rows; nothing was loaded ...
    - column 'abnormality', row 4: 'mass?' is not a finding type (...)
    ...
    fix the cause, then run the same command again: it resumes, skipping the stages that finished
    traceback: runs/smoke/notebooks/01_filter.ipynb

A kernel that dies (killed, e.g. by the system's out-of-memory killer, or crashed in native code) leaves no
traceback, and nbclient says only "Kernel died". :class:`ExitRecordingKernelManager`, the kernel manager
the pipeline gives papermill, notes the kernel's exit status when it finds the kernel dead, so the message
can say what ended it (SIGKILL, SIGSEGV, an exit status), besides the run's newest checkpoint and that the
same command resumes.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import ClassVar

from jupyter_client.manager import AsyncKernelManager

from mammogan_lib.core import run_paths

TRAINING_STAGE = "03_train_gan"  # the stage that resumes from the run's newest checkpoint


class StageFailed(RuntimeError):
    """A stage's notebook did not finish; the message says why, where its traceback is, and how to go on."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


class ExitRecordingKernelManager(AsyncKernelManager):
    """nbclient's kernel manager, noting in :attr:`last_exit_status` how a kernel it finds dead ended:
    ``-signal`` (e.g. -9 for SIGKILL) or the exit status. The pipeline runs one notebook at a time and
    resets it before each."""

    last_exit_status: ClassVar[int | None] = None

    async def _async_is_alive(self) -> bool:
        # nbclient's "Kernel died" comes from this check (through the kernel client), so this is where the
        # exit status can still be read, before the manager cleans the process up.
        alive = await super()._async_is_alive()
        process = getattr(self.provisioner, "process", None)
        if not alive and process is not None and process.returncode is not None:
            ExitRecordingKernelManager.last_exit_status = process.returncode
        return alive

    is_alive = _async_is_alive


def how_the_kernel_ended(exit_status: int | None) -> str:
    """A dead kernel's exit status in words: what most likely ended it."""
    if exit_status is None:
        return (
            "it was killed (most often by the system's out-of-memory killer, when memory runs out) or crashed"
        )
    if exit_status >= 0:
        return f"its process exited with status {exit_status} before the notebook finished"
    try:
        name = signal.Signals(-exit_status).name
    except ValueError:
        return f"it was ended by signal {-exit_status}"
    if name == "SIGKILL":
        return (
            "it was killed (SIGKILL), most often by the system's out-of-memory killer: the stage needed "
            "more memory than was free (fewer workers, a smaller batch_size or resolution need less)"
        )
    if name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT"):
        return f"it crashed ({name}) in native code (a compiled library, not the notebook's Python)"
    if name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"):
        return f"it was stopped ({name}) from outside the pipeline"
    return f"it was ended by {name}"


def shown_path(path: Path, cwd: Path) -> str:
    """``path`` relative to ``cwd`` when inside it (shorter to read), else absolute."""
    try:
        return str(Path(path).resolve().relative_to(Path(cwd).resolve()))
    except ValueError:
        return str(path)


def checkpoint_lines(stage: str, run_dir: Path, cwd: Path, dead_kernel: bool) -> list[str]:
    """The run's newest checkpoint, if any, and what running the same command again does."""
    newest = run_paths.latest_checkpoint(run_dir)
    lines = []
    if newest is not None:
        lines.append(
            f"last checkpoint: {shown_path(newest, cwd)} (epoch {run_paths.checkpoint_epoch(newest)})"
        )
    resumes = "the same command resumes" if dead_kernel else "fix the cause, then the same command resumes"
    resumes += ": the stages that finished are skipped"
    if stage == TRAINING_STAGE:
        resumes += (
            ", and training continues from the last checkpoint"
            if newest is not None
            else ", and training starts again (no checkpoint was written yet)"
        )
    return [*lines, resumes]


def is_dead_kernel(error: BaseException) -> bool:
    """nbclient's DeadKernelError, or a kernel that died before it answered (a RuntimeError)."""
    from nbclient.exceptions import DeadKernelError

    return isinstance(error, DeadKernelError) or "Kernel died" in str(error)


def describe_failure(
    stage: str,
    error: BaseException,
    run_dir: Path,
    executed: Path,
    cwd: Path,
    exit_status: int | None = None,
) -> str:
    """The message of :class:`StageFailed`: what happened, the newest checkpoint, how to resume, and the
    executed notebook (which holds the traceback, or the cells run until the kernel died)."""
    from papermill.exceptions import PapermillExecutionError

    dead = is_dead_kernel(error)
    if dead:
        what = f"the notebook's kernel died: {how_the_kernel_ended(exit_status)}"
    elif isinstance(error, PapermillExecutionError):
        what = f"{error.ename}: {error.evalue}"
    else:
        what = f"{type(error).__name__}: {error}"
    lines = [f"[{stage}] failed: {what}", *checkpoint_lines(stage, run_dir, cwd, dead)]
    if os.path.exists(executed):
        label = "executed notebook, up to the cell that was running" if dead else "traceback"
        lines.append(f"{label}: {shown_path(executed, cwd)}")
    return "\n".join(lines)
