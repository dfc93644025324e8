"""The spool: where the workers on the store's node leave their observations for the store actor to take in bulk.

A Ray call to the store actor costs it about 0.4 ms of CPU whatever it carries (docs/performance.md): with a
call per worker send, the calls and not DuckDB were the store's limit. A worker on the store's node instead
appends each send to a log of its own here (SpoolWriter), and the store actor reads what every log gained when it
flushes (Spool). Workers on other nodes have no shared directory and still send with a call (StoreActor.observe).

A log per worker rather than a file per send: on this VM's ext4, creating and renaming a file costs 0.5-1 ms
(and removing it more), an append to an open file 5-10 us.

- **A log** is `<time>-<sender>-<pid>-<n>.log`, made under a hidden name and renamed once it is locked: its
  writer holds an exclusive flock on it as long as it lives, and the kernel drops the lock when the process
  ends, however it ends. A log the store actor can lock has no writer any more: once read to its end, and the
  store has committed what it read, it is removed.
- **A send** is one record, written with one write: an 8-byte length and the pickled Packed send
  (farm/storage/packed.py). A record is taken only when whole; a partial one at the end of a log with no
  writer is reported and dropped.
- **Exactly once:** how far each log has been read is written in the same transaction as what was read
  (the store's spool_positions table), so a store actor that dies between two flushes, and the --resume after
  it, neither loses nor repeats a send.

The spool sits beside the store file, by default in the workdir, which the sandbox hides from agents and keeps
read-only for phases (farm/node/sandbox.py). Only farm processes write here; the store actor still reads with an
unpickler that builds nothing but a Packed send.
"""
from __future__ import annotations

import fcntl
import io
import itertools
import os
import pathlib
import pickle
import struct
import time

from farm.storage.packed import Packed

SUFFIX = ".log"
LENGTH = struct.Struct("<Q")  # each record's length, before it
_logs_made = itertools.count()  # keeps the names of two logs made in one process and one nanosecond apart


def spool_directory(store_path: str | os.PathLike, campaign: str) -> pathlib.Path:
    """The campaign's spool, beside its store file."""
    store_path = pathlib.Path(store_path)
    return store_path.with_name(store_path.name + ".spool") / campaign


class SpoolWriter:
    """One process's log in the spool (made at its first send)."""

    def __init__(self, directory: str | os.PathLike, sender: str):
        self.directory = pathlib.Path(directory)
        self.sender = sender
        self._fd: int | None = None
        self._size = 0  # the end of the last whole record

    def put(self, send: Packed) -> None:
        """Append `send` to this process's log, whole or not at all (OSError: nothing was left)."""
        record = pickle.dumps(send, protocol=pickle.HIGHEST_PROTOCOL)
        record = LENGTH.pack(len(record)) + record
        if self._fd is None:
            self._fd = self._open()
        try:
            written = 0
            while written < len(record):
                written += os.write(self._fd, record[written:])
        except OSError:
            self._undo()
            raise
        self._size += len(record)

    def _open(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{self.sender}-{os.getpid()}-{next(_logs_made)}{SUFFIX}"
        hidden = self.directory / f".{name}"
        fd = os.open(hidden, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # before it has its name: the store actor never sees it unlocked
            os.rename(hidden, self.directory / name)
        except BaseException:
            os.close(fd)
            hidden.unlink(missing_ok=True)
            raise
        self._size = 0
        return fd

    def _undo(self) -> None:
        """After a failed write: cut the partial record off, or, if that fails too, leave the log (its partial
        record is reported when the store actor finds the log without its writer) and start a new one."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _PackedOnly(pickle.Unpickler):
    """Builds a Packed send and plain values, nothing else (a record that names any other class is refused, not
    run)."""

    def find_class(self, module: str, name: str):
        if (module, name) != (Packed.__module__, Packed.__name__):
            raise pickle.UnpicklingError(f"{module}.{name} is not a packed send")
        return Packed


def _writer_gone(file) -> bool:
    """Nobody holds the log's lock: its writer has ended, and nothing more will be appended."""
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class Spool:
    """The store actor's side: what the logs gained since the last take."""

    def __init__(self, directory: str | os.PathLike, positions: dict[str, int] | None = None):
        """`positions`: how far each log was read by what the store holds (its spool_positions, on --resume)."""
        self.directory = pathlib.Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        present = set(self.logs())
        # log -> the bytes read of it, as of the last take; and as of the last commit
        self.positions = {name: at for name, at in (positions or {}).items() if name in present}
        self.saved = dict(self.positions)
        self._ended: set[str] = set()  # logs read to their end whose writer is gone

    def logs(self) -> list[str]:
        return sorted(name for name in os.listdir(self.directory) if name.endswith(SUFFIX))

    def take(self) -> tuple[list[Packed], list[str]]:
        """Every whole record the logs gained, each log's in order, oldest log first; and a line for each record
        that could not be read (left out, so that it does not fail every later take). The positions move on;
        `committed` once the store holds what was taken."""
        taken, unreadable = [], []
        for name in self.logs():
            start = self.positions.get(name, 0)
            with open(self.directory / name, "rb") as file:
                ended = _writer_gone(file)  # locked before reading: then everything is in
                file.seek(start)
                data = file.read()
            used = 0
            while len(data) - used >= LENGTH.size:
                (length,) = LENGTH.unpack_from(data, used)
                end = used + LENGTH.size + length
                if end > len(data):
                    break  # being written
                try:
                    send = _PackedOnly(io.BytesIO(data[used + LENGTH.size:end])).load()
                    if not isinstance(send, Packed):
                        raise pickle.UnpicklingError("it holds no packed send")
                    send.check()
                    taken.append(send)
                except Exception as error:  # noqa: BLE001 -- whatever is wrong with one record, the others are taken
                    unreadable.append(f"a send in spool log {name} not stored, it could not be read: {error}")
                used = end
            if ended:
                if used < len(data):
                    unreadable.append(f"the last {len(data) - used} bytes of spool log {name} not stored: its "
                                      f"writer ended in the middle of a send")
                    used = len(data)
                self._ended.add(name)
            self.positions[name] = start + used
        return taken, unreadable

    def unsaved(self) -> dict[str, int] | None:
        """The positions, if they moved since the last commit: to be written with what was taken."""
        return dict(self.positions) if self.positions != self.saved else None

    def committed(self) -> None:
        """The store holds what was taken and the positions: logs whose writer is gone are removed."""
        self.saved = dict(self.positions)
        for name in self._ended:
            os.unlink(self.directory / name)
            del self.positions[name]
        self._ended.clear()

    def clear(self) -> None:
        """Remove what an earlier run of the campaign left (a fresh start reuses its experiment ids)."""
        for path in self.directory.iterdir():
            path.unlink(missing_ok=True)
        self.positions, self.saved = {}, {}

    def remove_if_empty(self) -> None:
        """Remove the spool, and the store's directory of spools, when nothing is left in them (the campaign's
        store is closed)."""
        for directory in (self.directory, self.directory.parent):
            try:
                directory.rmdir()
            except OSError:
                return  # something is left (a worker alive after the close; another campaign's spool)
