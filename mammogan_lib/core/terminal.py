"""The pipeline's terminal: one live line per running stage, the kernel's own messages filtered, plain lines
in a log.

- **Progress.** While a stage runs, its notebook's tqdm bars write their state to a progress file
  (:mod:`mammogan_lib.core.progress`); :meth:`Terminal.watching` reads it twice a second and shows it: on a
  terminal as one line redrawn in place (stage k of n, elapsed, the bar's count, ETA and losses), in a log
  (stdout not a terminal: CI) as a plain line when a bar starts or ends and every ``plain_interval_s``.
- **Quiet.** The kernel's standard error goes through :class:`KernelOutput`: framework start-up noise
  (TensorFlow's C++ info lines, CUDA probes on a machine without a GPU, absl's preamble) is kept out of the
  terminal, everything else is shown, and every line, noise included, is kept in the stage's log file under
  ``runs/<exp_id>/logs/``. ``verbose`` shows everything. TensorFlow prints these lines before its logging
  is set up, so ``TF_CPP_MIN_LOG_LEVEL`` does not silence them (measured with TensorFlow 2.21): a filter
  is the only way that keeps the run's own warnings. The kernel's transport is encrypted where the kernel
  supports it, so Jupyter has no warning to print about it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TextIO

from mammogan_lib.core import failures
from mammogan_lib.core.progress import PROGRESS_FILE_VARIABLE, read_progress

POLL_S = 0.5
CAPTURE_NOTHING_NATIVE = "--IPKernelApp.capture_fd_output=False"
WARNINGS_AS_LINES = (  # leaves no name behind in the notebook's namespace
    "--IPKernelApp.exec_lines=__import__('mammogan_lib.core.progress', fromlist=['_']).warnings_as_lines()"
)
PLAIN_INTERVAL_S = 30.0
# Lines a kernel prints at start-up that say nothing about the run (each kept in the stage's log file).
STARTUP_NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
        r"^[IW]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] ",  # TensorFlow/XLA C++ info and warning lines
        r"^E\d{4} [\d:.]+\s+\d+ (cuda_\w+|computation_placer)\.cc:\d+\] ",  # CUDA probes and plugin setup
        r"^E\d{4} [\d:.]+\s+\d+ meta_optimizer\.cc:\d+\] remapper failed",  # a graph optimisation skipped
        # an int64 op (seen with DiffAugment on) runs on Eigen instead of oneDNN: slower at most, never wrong
        r"^E\d{4} [\d:.]+\s+\d+ util\.cc:\d+\] oneDNN supports DT_INT64 only on platforms with AVX-512",
        r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags",
        r"^\[IPKernelApp\] WARNING \| Kernel is running over TCP without encryption",
        r"^\[IPKernelApp\] ERROR \| KeyboardInterrupt caught in kernel\.$",  # the kernel's shutdown
    )
)


def is_startup_noise(line: str) -> bool:
    return any(pattern.search(line) for pattern in STARTUP_NOISE)


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def describe_bar(bar: dict[str, Any]) -> str:
    """A bar's state as the terminal shows it: ``training smoke 340/1,200 epoch · ETA 4:10 · d_loss=1.37``."""
    count = f"{bar['n']:,}/{bar['total']:,}" if bar.get("total") else f"{bar['n']:,}"
    parts = [f"{bar['desc']} {count} {bar['unit']}".strip()]
    rate, total = bar.get("rate"), bar.get("total")
    if rate and total and not bar.get("closed"):
        parts.append(f"ETA {_clock((total - bar['n']) / rate)}")
    if bar.get("postfix"):
        parts.append(str(bar["postfix"]))
    return " · ".join(parts)


class Terminal:
    """Where the pipeline writes: ``line`` for its messages, ``watching`` for a running stage's progress."""

    def __init__(
        self,
        stream: TextIO | None = None,
        live: bool | None = None,
        verbose: bool = False,
        plain_interval_s: float = PLAIN_INTERVAL_S,
    ) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.verbose = verbose
        self.plain_interval_s = plain_interval_s
        self._lock = threading.Lock()
        self._shown = ""  # the live line on screen, to be cleared before any other output

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[2K")
            self._shown = ""

    def line(self, text: str) -> None:
        """A message on a line of its own (above the live line, which the next update redraws)."""
        with self._lock:
            self._clear()
            self.stream.write(text + "\n")
            self.stream.flush()

    def show(self, text: str) -> None:
        """The live line: redrawn in place on a terminal, cut to its width."""
        with self._lock:
            width = shutil.get_terminal_size((120, 24)).columns - 1
            self._clear()
            self._shown = text[:width]
            self.stream.write(self._shown)
            self.stream.flush()

    def kernel_line(self, stage: str, text: str) -> None:
        """A line the kernel wrote to its standard error that is not start-up noise."""
        self.line(f"[{stage}] {text}" if not text.startswith(f"[{stage}]") else text)

    @contextlib.contextmanager
    def watching(self, stage: str, position: int, count: int, progress_file: Path) -> Iterator[None]:
        """Show ``progress_file``'s bar and warnings until the block ends."""
        stop = threading.Event()
        watcher = threading.Thread(
            target=self._watch, args=(stage, position, count, Path(progress_file), stop), daemon=True
        )
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()
            with self._lock:
                self._clear()
                self.stream.flush()

    def _watch(self, stage: str, position: int, count: int, path: Path, stop: threading.Event) -> None:
        started, warned, last_plain, last_shown = time.monotonic(), 0, 0.0, None
        while True:
            finished = stop.wait(POLL_S)
            state = read_progress(path) or {}
            for message in state.get("warnings", [])[warned:]:
                self.line(f"[{stage}] warning: {message}")
                warned += 1
            if finished:  # the warnings of the stage's last moments are shown; its bar is done
                return
            bar, now = state.get("bar"), time.monotonic()
            text = f"[{stage}] {position}/{count} · {_clock(now - started)}"
            if bar:
                text += f" · {describe_bar(bar)}"
            if self.live:
                self.show(text)
                continue
            # a log gets a line when a bar starts or ends, and every plain_interval_s in between
            shown = (bar["desc"], bar.get("closed")) if bar else None
            if bar and (shown != last_shown or now - last_plain >= self.plain_interval_s):
                self.line(text)
                last_plain, last_shown = now, shown


class KernelOutput:
    """The kernel's standard error, read line by line from a pipe: every line to the stage's log file, the
    lines that are not start-up noise (all, when verbose) to ``show``."""

    def __init__(self, log_file: Path, show: Callable[[str], None], verbose: bool) -> None:
        self.log_file, self.show, self.verbose = Path(log_file), show, verbose
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.read_end, self.write_end = os.pipe()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with open(self.read_end, encoding="utf-8", errors="replace") as pipe, self.log_file.open("w") as log:
            for raw in pipe:
                line = raw.rstrip("\n")
                log.write(raw)
                log.flush()
                if line.strip() and (self.verbose or not is_startup_noise(line)):
                    self.show(line)

    def close(self) -> None:
        """Close our copy of the write end; the reader ends once the kernel's copy closes too."""
        with contextlib.suppress(OSError):
            os.close(self.write_end)
        self.reader.join(timeout=10)


class StageKernelManager(failures.ExitRecordingKernelManager):
    """The kernel manager the pipeline gives papermill: encrypted transport where the kernel supports it,
    standard error into :attr:`output`, the progress file in the kernel's environment.

    papermill builds the manager from its class, so the stage's settings are class attributes, set by the
    pipeline before each stage (it runs one notebook at a time)."""

    output: ClassVar[KernelOutput | None] = None
    environment: ClassVar[dict[str, str]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self._kernel_supports_curve_encryption():
            with contextlib.suppress(Exception):  # no CurveZMQ in this pyzmq: plain local TCP, as before
                self.transport_encryption = "auto"

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        kw["env"] = {**kw.get("env", os.environ), **StageKernelManager.environment}
        if any("ipykernel" in part for part in kernel_cmd):
            # what native libraries write straight to the process's stderr (TensorFlow's C++ log, oneDNN's
            # notices) goes to the stage's log, not into the executed notebook's cells; Python warnings
            # become one plain line each
            kernel_cmd = [*kernel_cmd, CAPTURE_NOTHING_NATIVE, WARNINGS_AS_LINES]
        if StageKernelManager.output is not None:
            kw["stderr"] = StageKernelManager.output.write_end
        await super()._async_launch_kernel(kernel_cmd, **kw)


@contextlib.contextmanager
def stage_kernel(
    terminal: Terminal | None,
    stage: str,
    log_file: Path,
    progress_file: Path,
    environment: dict[str, str] | None = None,
) -> Iterator[None]:
    """Set up :class:`StageKernelManager` for one stage: its progress file, its other ``environment``
    variables, and (with a terminal) its filtered standard error."""
    StageKernelManager.environment = {PROGRESS_FILE_VARIABLE: str(progress_file), **(environment or {})}
    Path(progress_file).unlink(missing_ok=True)
    output = None
    if terminal is not None:
        output = KernelOutput(log_file, functools.partial(terminal.kernel_line, stage), terminal.verbose)
    StageKernelManager.output = output
    try:
        yield
    finally:
        StageKernelManager.output, StageKernelManager.environment = None, {}
        if output is not None:
            output.close()
