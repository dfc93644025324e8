"""One `farm run` per campaign workdir at a time: a file lock held for the whole run.

It tells a second `farm run` (or `--resume`) apart from the leftovers of a driver that died: the kernel drops
the lock with the process that held it (the file descriptor is not inherited by anything it starts), so a
free lock means every process still tagged with the campaign is an orphan, safe to kill.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Iterator

from farm.errors import FarmError
from worktrees.file_lock import file_lock


@contextlib.contextmanager
def campaign_lock(workdir: pathlib.Path) -> Iterator[None]:
    """Hold the workdir's lock (`.<workdir name>.farm-lock` beside it, so that --fresh can delete the workdir);
    FarmError with the holder's pid when another run holds it."""
    path = workdir.parent / f".{workdir.name}.farm-lock"
    try:
        with file_lock(path, wait=False) as (fd, _):
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            yield
    except BlockingIOError:
        holder = path.read_text().strip() or "unknown"
        raise FarmError(f"{workdir} is in use by a running `farm run` (pid {holder}); wait for it to end or "
                        f"stop it (Ctrl-C in its terminal, or kill -TERM {holder})") from None
