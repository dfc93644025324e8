"""Kept experiments waiting to land on a lineage branch (the integration branch, or in race mode a strategy's
own), one at a time.

The largest effect lands first (the smallest ratio: ratios are cand/ref in every benchmark's own
direction, see stats/decision.py). At most one re-measurement against the tip is in flight, so each lands
on exactly the commit it was measured against. Plain data: stored and restored on resume.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Kept:
    """A kept screening experiment: what the merge needs of it."""

    experiment_id: str
    hypothesis_id: str
    effect: float | None
    commit: str
    parent_commit: str


class MergeQueue:
    def __init__(self):
        self.waiting: list[Kept] = []
        self.by_id: dict[str, Kept] = {}  # every kept experiment, waiting, landing or done
        self.in_flight: str | None = None  # the screened experiment being re-measured on the tip

    def add(self, kept: Kept) -> None:
        self.by_id[kept.experiment_id] = kept
        self.waiting.append(kept)

    def next(self) -> Kept | None:
        """The largest win waiting, unless a merge is in flight."""
        if self.in_flight is not None or not self.waiting:
            return None
        self.waiting.sort(key=lambda kept: kept.effect or 1.0)
        return self.waiting.pop(0)

    def start(self, kept: Kept) -> None:
        """`kept` is being re-measured on the tip (taken by next())."""
        self.in_flight = kept.experiment_id

    def finish(self, experiment_id: str) -> Kept:
        """The re-measurement of `experiment_id` (the one in flight) ended: its Kept."""
        self.in_flight = None
        return self.by_id[experiment_id]

    def requeue(self, experiment_id: str) -> None:
        """The re-measurement of `experiment_id` was voided: it waits again."""
        self.add(self.finish(experiment_id))

    def pending(self) -> list[Kept]:
        """What waits to land or is landing."""
        return self.waiting + ([self.by_id[self.in_flight]] if self.in_flight else [])

    def is_waiting(self, experiment_id: str) -> bool:
        return any(k.experiment_id == experiment_id for k in self.waiting)

    def withdraw(self, experiment_id: str) -> None:
        self.waiting = [k for k in self.waiting if k.experiment_id != experiment_id]

    def to_dict(self) -> dict:
        return {"waiting": [k.experiment_id for k in self.waiting], "in_flight": self.in_flight,
                "kept": [asdict(k) for k in self.by_id.values()]}

    def restore(self, data: dict) -> None:
        self.by_id = {k["experiment_id"]: Kept(**k) for k in data["kept"]}
        self.waiting = [self.by_id[e] for e in data["waiting"]]
        self.in_flight = data["in_flight"]


@dataclass
class Lineage:
    """A branch experiments land on: its tip, what landed (each as Kept of the landed commit, its parent the tip
    before it, its effect the re-measured one) and its merge queue."""

    name: str
    tip: str
    landed: list[Kept] = field(default_factory=list)
    merges: MergeQueue = field(default_factory=MergeQueue)

    def idle(self) -> bool:
        return not self.merges.waiting and self.merges.in_flight is None

    def to_dict(self) -> dict:
        return {"tip": self.tip, "landed": [asdict(k) for k in self.landed], "merges": self.merges.to_dict()}

    @classmethod
    def from_dict(cls, name: str, data: dict) -> Lineage:
        lineage = cls(name, data["tip"], [Kept(**k) for k in data["landed"]])
        lineage.merges.restore(data["merges"])
        return lineage
