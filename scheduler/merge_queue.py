"""Kept experiments waiting to land on the integration branch, one at a time.

The largest effect lands first (the smallest ratio: ratios are cand/ref in every benchmark's own
direction, see stats/decision.py). At most one re-measurement against the tip is in flight, so each lands
on exactly the commit it was measured against. Plain data: stored and restored on resume.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


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
