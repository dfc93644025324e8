"""A send packed as columns: the form in which a worker's observations travel to the store actor and are written.

A worker's Observations hold a Python object per sample value. Unpickling, gathering and converting a million of
them was most of the store actor's time (about 4 of 6 s on this VM), on the one process every worker waits for. So
the worker packs each send on its own CPU: the samples' float columns as float64 bytes, every other sample column
as its distinct values and each row's uint32 index into them. The store actor then unpickles a few bytes objects
and short lists per send and joins many sends' columns with a handful of NumPy calls (farm/storage/store.py).

Only plain values are pickled here (bytes, lists, tuples, str, numbers, None): the spool reads a Packed with an
unpickler that builds no other class (farm/storage/spool.py).
"""
from __future__ import annotations

import array
import operator
from dataclasses import dataclass, field

from farm.records import BLOCK_COLUMNS, SAMPLE_COLUMNS, Block, Observations

FLOAT_COLUMNS = ("value", "started_at", "finished_at")  # float64 bytes when every value is a number


@dataclass
class Packed:
    """One send as columns: its blocks' fields a list each, its samples' columns packed."""

    blocks: dict[str, list] = field(default_factory=lambda: {name: [] for name in BLOCK_COLUMNS})
    sample_counts: list[int] = field(default_factory=list)  # each block's samples, in order
    floats: dict[str, bytes] = field(default_factory=dict)  # the FLOAT_COLUMNS of only numbers, float64 each
    # every other sample column: (its distinct values, each sample's uint32 index into them)
    coded: dict[str, tuple[list, bytes]] = field(default_factory=lambda: {name: ([], b"") for name in SAMPLE_COLUMNS})
    events: list[tuple] = field(default_factory=list)
    phases: list[tuple] = field(default_factory=list)

    @property
    def sample_count(self) -> int:
        return sum(self.sample_counts)

    def check(self) -> None:
        """ValueError unless its columns agree (a record read from the spool is checked before it is taken in;
        the indices are checked when many are joined, in one pass: farm/storage/store.py)."""
        rows = self.sample_count
        blocks = {len(column) for column in self.blocks.values()}
        if (list(self.blocks) != list(BLOCK_COLUMNS) or blocks != {len(self.sample_counts)}
                or set(self.floats) & set(self.coded) or set(self.floats) | set(self.coded) != set(SAMPLE_COLUMNS)
                or any(not isinstance(column, bytes) or len(column) != 8 * rows for column in self.floats.values())
                or any(not isinstance(values, list) or not isinstance(indices, bytes) or len(indices) != 4 * rows
                       for values, indices in self.coded.values())
                or any(not isinstance(row, tuple) or len(row) != 5 for row in self.events + self.phases)):
            raise ValueError("its columns do not agree")

    def column(self, name: str) -> list:
        """A sample column as Python values (ValueError if an index points past its values)."""
        if name in self.floats:
            return array.array("d", self.floats[name]).tolist()
        values, indices = self.coded[name]
        indices = array.array("I", indices)
        if indices and max(indices) >= len(values):
            raise ValueError(f"its {name} column points past its values")
        return [values[i] for i in indices]

    def unpack(self) -> Observations:
        """The same observations as records and lists (exact: what pack was given)."""
        return Observations([Block(*fields) for fields in zip(*self.blocks.values())], list(self.sample_counts),
                            {name: self.column(name) for name in SAMPLE_COLUMNS}, list(self.events),
                            list(self.phases))


def pack(observations: Observations) -> Packed:
    """`observations` packed (a worker packs each send; the store packs what it is given as records)."""
    blocks = observations.blocks
    packed = Packed({name: [getattr(block, name) for block in blocks] for name in BLOCK_COLUMNS},
                    list(observations.sample_counts), coded={}, events=list(observations.events),
                    phases=list(observations.phases))
    for name, column in observations.samples.items():
        if name in FLOAT_COLUMNS:
            try:
                packed.floats[name] = array.array("d", column).tobytes()
                continue
            except TypeError:
                pass  # a value that is no number (None): coded, and the store refuses it
        try:
            index = {value: i for i, value in enumerate(dict.fromkeys(column))}  # C loops, not a Python one a value
            indices = operator.itemgetter(*column)(index) if len(column) > 1 else [index[v] for v in column]
            packed.coded[name] = (list(index), array.array("I", indices).tobytes())
        except TypeError:  # a value that cannot be a key (a list): each its own
            packed.coded[name] = (list(column), array.array("I", range(len(column))).tobytes())
    return packed


assert array.array("d").itemsize == 8 and array.array("I").itemsize == 4  # float64, uint32: as the store reads them
