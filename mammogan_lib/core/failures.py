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
same command resumes. nbclient asks it every second whether the kernel lives; each time it also notes the
kernel's peak memory and the machine's available memory, so that a SIGKILL is blamed on the out-of-memory
killer only when memory was in fact short.
"""

from __future__ import annotations

import errno
import os
import signal
from dataclasses import dataclass
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


@dataclass
class MemorySeen:
    """What the pipeline saw of memory while a kernel ran (bytes; None where the system does not say)."""

    kernel_peak: int | None = None  # the kernel's peak resident memory (VmHWM), its worker processes not
    lowest_available: int | None = None  # the machine's lowest MemAvailable
    total: int | None = None  # the machine's MemTotal

    def note(self, pid: int | None) -> None:
        meminfo = _proc_fields(Path("/proc/meminfo"))
        if "MemAvailable" in meminfo:
            available = meminfo["MemAvailable"]
            self.lowest_available = min(available, self.lowest_available or available)
            self.total = meminfo.get("MemTotal", self.total)
        if pid is not None:
            peak = _proc_fields(Path(f"/proc/{pid}/status")).get("VmHWM")
            if peak is not None:
                self.kernel_peak = max(peak, self.kernel_peak or 0)


def _proc_fields(path: Path) -> dict[str, int]:
    """The ``Name:  1234 kB`` fields of a /proc file, in bytes ({} where there is no such file)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    fields = {}
    for line in lines:
        name, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            fields[name] = int(parts[0]) * 1024
    return fields


class ExitRecordingKernelManager(AsyncKernelManager):
    """nbclient's kernel manager, noting in :attr:`last_exit_status` how a kernel it finds dead ended:
    ``-signal`` (e.g. -9 for SIGKILL) or the exit status, and in :attr:`memory` what it saw of memory while
    the kernel lived. The pipeline runs one notebook at a time and calls :meth:`reset` before each."""

    last_exit_status: ClassVar[int | None] = None
    memory: ClassVar[MemorySeen] = MemorySeen()

    @classmethod
    def reset(cls) -> None:
        ExitRecordingKernelManager.last_exit_status = None
        ExitRecordingKernelManager.memory = MemorySeen()

    async def _async_is_alive(self) -> bool:
        # nbclient's "Kernel died" comes from this check (through the kernel client), so this is where the
        # exit status can still be read, before the manager cleans the process up.
        alive = await super()._async_is_alive()
        process = getattr(self.provisioner, "process", None)
        if alive:
            ExitRecordingKernelManager.memory.note(getattr(process, "pid", None))
        if not alive and process is not None and process.returncode is not None:
            ExitRecordingKernelManager.last_exit_status = process.returncode
        return alive

    is_alive = _async_is_alive


def _gb(size: int) -> str:
    return f"{size / 1024**3:.1f} GB"


def memory_words(memory: MemorySeen | None) -> tuple[str, bool | None]:
    """What was seen of memory, in words, and whether it was short (None: nothing was seen)."""
    if memory is None or memory.lowest_available is None or not memory.total:
        return "", None
    short = memory.lowest_available < 0.05 * memory.total
    kernel = f"; the kernel itself peaked at {_gb(memory.kernel_peak)}" if memory.kernel_peak else ""
    lowest = "fell to" if short else "never fell below"
    words = f"the machine's available memory {lowest} {_gb(memory.lowest_available)} of {_gb(memory.total)}"
    return words + kernel, short


def how_the_kernel_ended(exit_status: int | None, memory: MemorySeen | None = None) -> str:
    """A dead kernel's exit status in words, with what was seen of memory: what is known of what ended it."""
    seen, short = memory_words(memory)
    if exit_status is None:
        if short is None:
            return "it was killed (by a signal or the out-of-memory killer) or crashed; exit status unknown"
        return f"it was killed or crashed (exit status unknown) after {seen}"
    if exit_status >= 0:
        return f"its process exited with status {exit_status} before the notebook finished"
    try:
        name = signal.Signals(-exit_status).name
    except ValueError:
        return f"it was ended by signal {-exit_status}"
    if name == "SIGKILL":
        if short is None:
            return (
                "it was killed (SIGKILL): by the system's out-of-memory killer if memory ran out, else "
                "from outside the pipeline (kill -9, a job scheduler's or a container's limit); this system "
                "does not say how much memory was free"
            )
        if short:
            return (
                f"it was killed (SIGKILL) after {seen}: most likely by the out-of-memory killer; fewer "
                "workers, a smaller batch_size or resolution need less"
            )
        return (
            f"it was killed (SIGKILL) while {seen}: memory was not short, so not by this machine's "
            "out-of-memory killer but from outside the pipeline (kill -9, a job scheduler's time or memory "
            "limit, a container's memory limit)"
        )
    if name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT"):
        return f"it crashed ({name}) in native code (a compiled library, not the notebook's Python)"
    if name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"):
        return f"it was stopped ({name}) from outside the pipeline"
    return f"it was ended by {name}"


def is_disk_full(error: BaseException, what: str = "") -> bool:
    """Whether a failure was the disk filling up (an OSError ENOSPC here or in the kernel's traceback)."""
    chain: BaseException | None = error
    while chain is not None:
        if isinstance(chain, OSError) and chain.errno == errno.ENOSPC:
            return True
        chain = chain.__cause__ or chain.__context__
    return "No space left on device" in what or "No space left on device" in str(error)


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
    memory: MemorySeen | None = None,
    space: str = "",
) -> str:
    """The message of :class:`StageFailed`: what happened, the newest checkpoint, how to resume, and the
    executed notebook (which holds the traceback, or the cells run until the kernel died). ``space`` says
    how much disk space there is and the stage needs, for a failure that was the disk filling up."""
    from papermill.exceptions import PapermillExecutionError

    dead = is_dead_kernel(error)
    if dead:
        what = f"the notebook's kernel died: {how_the_kernel_ended(exit_status, memory)}"
    elif isinstance(error, PapermillExecutionError):
        what = f"{error.ename}: {error.evalue}"
    else:
        what = f"{type(error).__name__}: {error}"
    lines = [f"[{stage}] failed: {what}"]
    if space and is_disk_full(error, what):
        lines.append(f"no space left on device: {space}")
    lines += checkpoint_lines(stage, run_dir, cwd, dead)
    if os.path.exists(executed):
        label = "executed notebook, up to the cell that was running" if dead else "traceback"
        lines.append(f"{label}: {shown_path(executed, cwd)}")
    else:
        lines.append(f"no executed notebook: it could not be written whole ({shown_path(executed, cwd)})")
    return "\n".join(lines)
