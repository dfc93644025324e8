"""A lock between processes on one machine: flock on a file, the one way the farm holds one.

The kernel drops it with the file descriptor, so a process that dies never leaves it held. The descriptor is
not inherited by the processes the holder starts (os.open's default), so they cannot keep it held either.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, shared: bool = False, wait: bool = True,
              on_wait: Callable[[], None] | None = None) -> Iterator[tuple[int, float]]:
    """Hold the lock of `path` (created, with its directory): exclusive, or `shared` with other shared holders.
    When it is taken: `on_wait()` is called and the lock waited for, or without `wait` BlockingIOError. Yields
    the file descriptor (the holder may write there) and the seconds waited."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        operation = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        started = time.monotonic()
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, operation)
        yield fd, time.monotonic() - started
    finally:
        os.close(fd)  # releases the lock
