"""The measurement lock of one node: its workers measure one at a time.

A file lock (flock) on a file the workers of a node share (they share the
workdir). A measurement block holds it exclusively; builds and guards hold it
shared, so no build runs on the node while another worker measures: a build
on the next core spoils a measurement through the shared caches, memory
bandwidth and clock, even with disjoint CPU sets. The kernel drops the lock
of a process that dies, so a killed worker never leaves the node locked.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Callable, Iterator

from worktrees.file_lock import file_lock


class MeasurementLock:
    """`path`: the lock file (created if missing); None for parallel measurement, where holding it is free.

    Holds must not nest within one process: flock locks belong to the open file, so a second hold would wait
    for the first one forever.
    """

    def __init__(self, path: str | os.PathLike | None):
        self.path = pathlib.Path(path) if path is not None else None

    def exclusive(self, on_wait: Callable[[], None] = lambda: None) -> contextlib.AbstractContextManager[float]:
        """Hold the lock alone (a measurement block). Yields the seconds spent waiting for it; `on_wait` is
        called first when it has to wait."""
        return self._hold(False, on_wait)

    def shared(self, on_wait: Callable[[], None] = lambda: None) -> contextlib.AbstractContextManager[float]:
        """Hold the lock beside other shared holders (a build, a guard). Yields the seconds spent waiting;
        `on_wait` is called first when it has to wait."""
        return self._hold(True, on_wait)

    @contextlib.contextmanager
    def _hold(self, shared: bool, on_wait: Callable[[], None]) -> Iterator[float]:
        if self.path is None:
            yield 0.0
            return
        with file_lock(self.path, shared=shared, on_wait=on_wait) as (_, waited):
            yield waited
