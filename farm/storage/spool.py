"""The spool: where the workers on the store's node leave their observations for the store actor to take in bulk.

A Ray call to the store actor costs it about 0.4 ms of CPU whatever it carries (docs/performance.md): with a
call per worker send, the calls and not DuckDB were the store's limit (1,000,000 samples: 4 s of calls, 1.8 s
of writing). A worker on the store's node instead writes each send as a file here (its own CPUs pay for it), and
the store actor takes every file present when it flushes: a file read and an unpickle, a fifth of a call. Workers
on other nodes have no shared directory and still send with a call (StoreActor.observe).

The spool sits beside the store file, by default in the workdir, which the sandbox hides from agents and keeps
read-only for phases (farm/node/sandbox.py). In /dev/shm a file would cost a fifth (about 0.08 ms to create
and remove against 0.15-0.4 ms on this VM's ext4), but a phase's sandbox binds /dev writable: a benchmark could
forge samples there.

Semantics are those of the call it replaces: a file is complete or absent (written aside, then renamed), taken
in the order it was written, and removed when read, so a crash of the store actor loses what it had read and not
written, as before. A worker waits for nothing: its file is in place before its experiment's result reaches the
coordinator, whose next store call flushes it first.

So only farm processes write here; the files are read with an unpickler that builds nothing but the
observations' own records all the same.
"""
from __future__ import annotations

import io
import itertools
import os
import pathlib
import pickle
import time

from farm.records import SAMPLE_COLUMNS, Block, Observations

SUFFIX = ".observations"


def spool_directory(store_path: str | os.PathLike, campaign: str) -> pathlib.Path:
    """The campaign's spool, beside its store file."""
    store_path = pathlib.Path(store_path)
    return store_path.with_name(store_path.name + ".spool") / campaign


class _RecordsOnly(pickle.Unpickler):
    """Builds the observations' records and plain values, nothing else (a file that names any other class is
    refused, not run)."""

    ALLOWED = {("farm.records", "Observations"): Observations, ("farm.records", "Block"): Block}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not an observation record")
        return self.ALLOWED[(module, name)]


def _whole(observations) -> bool:
    """Observations whose columns and blocks agree (Observations.extend would take anything else half)."""
    return (isinstance(observations, Observations) and list(observations.samples) == list(SAMPLE_COLUMNS)
            and len({len(column) for column in observations.samples.values()}) == 1
            and len(observations.blocks) == len(observations.sample_counts)
            and sum(observations.sample_counts) == observations.sample_count)


class Spool:
    def __init__(self, directory: str | os.PathLike):
        self.directory = pathlib.Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._sequence = itertools.count()

    def put(self, observations: Observations, sender: str) -> None:
        """Leave `observations` for the store actor (complete or not at all)."""
        # Named by the time written, so the store actor takes them in order; the sender, its pid and a sequence
        # number keep the names of one nanosecond apart.
        name = f"{time.time_ns():020d}-{sender}-{os.getpid()}-{next(self._sequence)}"
        partial = self.directory / f".{name}.partial"
        try:
            with open(partial, "wb") as file:
                pickle.dump(observations, file, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(partial, self.directory / (name + SUFFIX))
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def take(self) -> tuple[Observations, list[str]]:
        """Everything left here, oldest first, removed from the spool; and a line for each file that could not be
        read (left out and removed, so that it does not fail every later take)."""
        taken, unreadable = Observations(), []
        for name in sorted(entry.name for entry in os.scandir(self.directory) if entry.name.endswith(SUFFIX)):
            path = os.path.join(self.directory, name)
            try:
                with open(path, "rb") as file:
                    observations = _RecordsOnly(io.BytesIO(file.read())).load()
                if not _whole(observations):
                    raise pickle.UnpicklingError("it holds no whole observations")
                taken.extend(observations)
            except Exception as error:  # noqa: BLE001 -- whatever is wrong with one file, the others are taken
                unreadable.append(f"spool file {name} not stored, it could not be read: {error}")
            os.unlink(path)
        return taken, unreadable

    def clear(self) -> None:
        """Remove what an earlier run of the campaign left (a fresh start reuses its experiment ids)."""
        for path in self.directory.iterdir():
            path.unlink(missing_ok=True)

    def remove_if_empty(self) -> None:
        """Remove the spool, and the store's directory of spools, when nothing is left in them (the campaign's
        store is closed)."""
        for directory in (self.directory, self.directory.parent):
            try:
                directory.rmdir()
            except OSError:
                return  # something is left (a worker's last send after the close; another campaign's spool)
