"""What a running stage tells the terminal that started it: its progress bar and its warnings.

The notebooks draw their bars with :class:`tqdm` from here: tqdm's own bar (in the notebook, as before)
that, when the pipeline runs the notebook, also writes its state to a small JSON file the pipeline names in
``$MAMMOGAN_PROGRESS_FILE`` and watches (:mod:`mammogan_lib.core.terminal`). So the terminal shows the very
figures the notebook shows — epochs, losses, time left — without a second implementation of anything.
:func:`warn` puts a warning in the notebook's output and, the same way, in the terminal while the stage
runs (random weights, a skipped input, a stop at the time budget).

The file is rewritten whole (it is small) at most once a second, and atomically, so a reader never sees
half of it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm as _auto_tqdm

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


class tqdm(_auto_tqdm):  # noqa: N801 - a drop-in for tqdm.auto.tqdm, under its name
    """``tqdm.auto.tqdm`` whose every redraw is also written to the pipeline's progress file."""

    def display(self, *args: Any, **kwargs: Any) -> Any:
        shown = super().display(*args, **kwargs)
        channel = _channel()
        if channel is not None and not self.disable:
            channel.bar(bar_state(self.format_dict), closed=False)
        return shown

    def close(self) -> None:
        was_open = not self.disable
        state = bar_state(self.format_dict) if was_open else None
        super().close()
        channel = _channel()
        if channel is not None and state is not None:
            channel.bar(state, closed=True)


def warn(message: str) -> None:
    """A warning that matters while the stage runs: in the notebook's output and, under the pipeline, in
    the terminal."""
    print(f"warning: {message}", file=sys.stderr)
    channel = _channel()
    if channel is not None:
        channel.warn(message)


def read_progress(path: Path) -> dict[str, Any] | None:
    """The progress file's state (``bar``, ``warnings``, ``updated``), or None before the stage wrote one."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
