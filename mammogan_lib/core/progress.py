"""What a running stage tells the terminal that started it: its progress bar and its warnings.

The notebooks draw their bars with :class:`tqdm` from here: tqdm's own text bar in a notebook run by hand;
when the pipeline runs the notebook, the bar's state goes to a small JSON file the pipeline names in
``$MAMMOGAN_PROGRESS_FILE`` and watches (:mod:`mammogan_lib.core.terminal`), so the terminal shows the very
figures a notebook would — epochs, losses, time left — without a second implementation of anything. The
executed notebook is a report, so there the bar leaves one line when it closes (what it counted, in how
long, its last figures) instead of one line per redraw.
:func:`warn` puts a warning in the notebook's output and, the same way, in the terminal while the stage
runs (random weights, a skipped input, a stop at the time budget).

The file is rewritten whole (it is small) at most once a second, and atomically, so a reader never sees
half of it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from tqdm.std import tqdm as _text_tqdm  # tqdm.auto wants ipywidgets, which the project does not install

PROGRESS_FILE_VARIABLE = "MAMMOGAN_PROGRESS_FILE"
WRITE_INTERVAL_S = 1.0  # a bar updating faster than this is written at this rate


class _Channel:
    """The state of one stage's progress file: the bar drawn last, and every warning so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state: dict[str, Any] = {"bar": None, "warnings": []}
        self.written_at = 0.0

    def bar(self, bar: dict[str, Any], closed: bool) -> None:
        self.state["bar"] = {**bar, "closed": closed}
        self.write(force=closed)

    def warn(self, message: str) -> None:
        self.state["warnings"].append(message)
        self.write(force=True)

    def write(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self.written_at < WRITE_INTERVAL_S:
            return
        self.written_at = now
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        try:
            temporary.write_text(json.dumps({**self.state, "updated": time.time()}))
            os.replace(temporary, self.path)
        except OSError:  # the terminal's view is a courtesy: never stop a stage over it
            pass


_channels: dict[str, _Channel] = {}


def _channel() -> _Channel | None:
    """This process's channel, if the pipeline asked for one (the notebook run by hand has none)."""
    path = os.environ.get(PROGRESS_FILE_VARIABLE)
    if not path:
        return None
    if path not in _channels:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _channels[path] = _Channel(Path(path))
    return _channels[path]


def bar_state(format_dict: dict[str, Any]) -> dict[str, Any]:
    """The figures of a tqdm bar that the terminal shows: description, count, total, unit, postfix (the
    losses), elapsed seconds and the rate, from which it estimates the time left."""
    n, initial, elapsed = format_dict["n"], format_dict.get("initial") or 0, format_dict["elapsed"]
    rate = format_dict.get("rate") or ((n - initial) / elapsed if elapsed > 0 and n > initial else None)
    return {
        "desc": format_dict.get("prefix") or "",
        "n": n,
        "total": format_dict.get("total"),
        "unit": format_dict.get("unit") or "it",
        "postfix": format_dict.get("postfix") or "",
        "elapsed": elapsed,
        "rate": rate,
    }


class tqdm(_text_tqdm):  # noqa: N801 - a drop-in for tqdm.tqdm, under its name
    """tqdm's bar, whose every redraw goes to the pipeline's progress file when the pipeline runs the
    notebook; the notebook then gets one line, :meth:`summary`, when the bar closes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._to_pipeline = _channel() is not None and "file" not in kwargs
        if self._to_pipeline:  # the terminal draws the redraws from the progress file
            self._discard = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (closed in close())
            kwargs["file"] = self._discard
        super().__init__(*args, **kwargs)

    def display(self, *args: Any, **kwargs: Any) -> Any:
        shown = super().display(*args, **kwargs)
        channel = _channel()
        if channel is not None and not self.disable:
            channel.bar(bar_state(self.format_dict), closed=False)
        return shown

    def summary(self) -> str:
        """The bar in one line: 'training exp3: 1,443 of 1,000,000 epoch in 20:00 · D=1.368, G=0.745'."""
        state = bar_state(self.format_dict)
        total = f" of {state['total']:,}" if state["total"] else ""
        desc = f"{state['desc']}: " if state["desc"] else ""
        line = f"{desc}{state['n']:,}{total} {state['unit']} in {self.format_interval(state['elapsed'])}"
        return f"{line} · {state['postfix']}" if state["postfix"] else line

    def close(self) -> None:
        was_open = not self.disable
        state = bar_state(self.format_dict) if was_open else None
        line = self.summary() if was_open and self._to_pipeline else ""
        super().close()
        channel = _channel()
        if channel is not None and state is not None:
            channel.bar(state, closed=True)
        if self._to_pipeline:
            self._discard.close()
        if line:
            print(line, flush=True)


_warned: set[str] = set()


def forget_warnings() -> None:
    """Let every warning be given again (a new stage in the same process; tests)."""
    _warned.clear()


def warn(message: str) -> None:
    """A warning that matters while the stage runs: in the notebook's output (standard output, so that a
    report shows it as text, not as an error box) and, under the pipeline, in the terminal; once per process
    (a network loaded three times warns once)."""
    if message in _warned:
        return
    _warned.add(message)
    print(f"warning: {message}", flush=True)
    channel = _channel()
    if channel is not None:
        channel.warn(message)


def read_progress(path: Path) -> dict[str, Any] | None:
    """The progress file's state (``bar``, ``warnings``, ``updated``), or None before the stage wrote one."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def warnings_as_lines() -> None:
    """From now on in this process, show each Python warning (a library's ``warnings.warn``) once, as one
    plain line on standard output — what the pipeline's kernels do, so that an executed notebook carries
    them as text a reader takes in, not as error boxes."""
    import warnings

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None):
        text = f"{category.__name__}: {str(message).strip()}"
        if text not in _warned:
            _warned.add(text)
            print(f"warning ({Path(filename).name}:{lineno}) {text}", flush=True)

    warnings.showwarning = show
