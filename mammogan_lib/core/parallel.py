"""An ordered parallel map over processes, for per-image work (decode, segment, resize).

The caller wraps the returned iterator in a progress bar; this module never prints.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Below this many items a pool costs more (process start, imports) than it saves.
MIN_ITEMS_FOR_POOL = 48


def _single_threaded_worker() -> None:
    """Each worker process uses one OpenCV thread, so N workers use N cores, not N x cores."""
    import cv2

    cv2.setNumThreads(1)


def parallel_map(
    function: Callable[[Item], Result], items: Iterable[Item], workers: int, chunksize: int = 4
) -> Iterator[Result]:
    """Yield ``function(item)`` for each item, in input order, using ``workers`` processes.

    ``function`` must be importable (a module-level function) and should catch its own per-item errors
    and return them as data, so that one bad image does not stop the run.
    """
    items = list(items)
    if workers <= 1 or len(items) < MIN_ITEMS_FOR_POOL:
        yield from map(function, items)
        return
    # forkserver: workers do not inherit the parent's threads or framework state (fork + threads can hang).
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_single_threaded_worker) as pool:
        yield from pool.map(function, items, chunksize=chunksize)
