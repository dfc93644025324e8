"""The hypotheses still to screen, in order, and which have a final outcome.

A hypothesis with `after` waits until that one is settled (its outcome final and, if kept, landed or
refused), so that its patch applies. Hypotheses a planner proposes are added while the campaign runs. Plain
data: stored with the campaign's state (planned hypotheses whole) and restored on resume.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

from farm.records import Hypothesis


class HypothesisQueue:
    def __init__(self, hypotheses: list[Hypothesis], max_screens: int | None = None):
        self.by_id = {h.id: h for h in hypotheses}
        self.pending: list[str] = [h.id for h in hypotheses]
        self.settled: set[str] = set()
        self.again_ids: list[str] = []  # voided verdicts to measure again: first, and outside the budget
        self.started = 0  # screens started (not counting again_ids), for --max-experiments
        self.max_screens = max_screens
        self.planned: list[Hypothesis] = []  # added by planners, not in the campaign file
        self.digests = {h.id: _digest(h) for h in hypotheses}  # of the campaign file's: checked on resume

    def add(self, hypotheses: list[Hypothesis]) -> None:
        """Planned hypotheses, interleaved with those pending (one after each), so that a long list of other
        strategies' hypotheses does not starve the planner's strategy."""
        for hypothesis in hypotheses:
            self.by_id[hypothesis.id] = hypothesis
            self.planned.append(hypothesis)
        others, new = list(self.pending), [h.id for h in hypotheses]
        self.pending = [i for pair in zip(new, others) for i in pair] + new[len(others):] + others[len(new):]

    def budget_spent(self) -> bool:
        return self.max_screens is not None and self.started >= self.max_screens

    def waiting_in(self, strategy: str) -> bool:
        """Whether a hypothesis of `strategy` still waits to run."""
        return any(self.by_id[h].strategy == strategy for h in self.again_ids + self.pending)

    def next(self, strategy: str | None = None) -> Hypothesis | None:
        """A hypothesis to measure again, else the first pending one (of `strategy`, if given) whose
        predecessor is settled, or None."""
        if self.again_ids:
            return self.by_id[self.again_ids.pop(0)]
        for hypothesis_id in self._ready():
            if strategy is None or self.by_id[hypothesis_id].strategy == strategy:
                self.pending.remove(hypothesis_id)
                self.started += 1
                return self.by_id[hypothesis_id]
        return None

    def _ready(self) -> list[str]:
        """Pending hypotheses that may start now: their predecessor settled, the budget not spent."""
        if self.budget_spent():
            return []
        return [h for h in self.pending if self.by_id[h].after is None or self.by_id[h].after in self.settled]

    def ready_strategies(self) -> set[str]:
        """Strategies with a hypothesis that may start now."""
        return {self.by_id[h].strategy for h in self._ready()}

    def skip(self, predicate) -> list[Hypothesis]:
        """The pending hypotheses `predicate` picks are not run: settled, returned."""
        skipped = [self.by_id[h] for h in self.pending if predicate(self.by_id[h])]
        for hypothesis in skipped:
            self.pending.remove(hypothesis.id)
            self.settled.add(hypothesis.id)
        return skipped

    def drop(self, strategy: str) -> list[str]:
        """A strategy's pending hypotheses are not run: settled, returned."""
        dropped = [h for h in self.pending if self.by_id[h].strategy == strategy]
        self.pending = [h for h in self.pending if h not in dropped]
        self.settled.update(dropped)
        return dropped

    def settle(self, hypothesis_id: str) -> None:
        self.settled.add(hypothesis_id)

    def again(self, hypothesis_id: str) -> None:
        """Screen a hypothesis once more, before the others (its verdict was voided), whatever the budget: a
        started hypothesis ends with a verdict."""
        self.settled.discard(hypothesis_id)
        self.again_ids.append(hypothesis_id)

    def waiting(self) -> list[str]:
        """Hypotheses that would still run (pending ones not once the --max-experiments budget is spent)."""
        if self.budget_spent():
            return list(self.again_ids)
        return self.again_ids + self.pending

    def to_dict(self) -> dict:
        return {"all": list(self.digests), "digests": self.digests, "pending": self.pending, "again": self.again_ids,
                "settled": sorted(self.settled), "started": self.started,
                "planned": [dataclasses.asdict(h) for h in self.planned]}

    def restore(self, data: dict) -> None:
        """The stored queue; the config must list the same hypotheses the campaign started with."""
        stored, configured = set(data["all"]), set(self.by_id)
        if stored != configured:
            raise ValueError(f"the campaign file's hypotheses changed since the campaign started (missing now: "
                             f"{sorted(stored - configured)}, new: {sorted(configured - stored)}); put them back, "
                             f"or run the new ones as a new campaign")
        changed = sorted(i for i, digest in data.get("digests", {}).items() if digest != self.digests[i])
        if changed:
            raise ValueError(f"hypotheses {changed} are not what they were when the campaign started (their text, "
                             f"patch, knob setting or commit changed); put them back, or start a new campaign")
        self.add([Hypothesis(**{**h, "rework": tuple(h["rework"]), "knobs": tuple(map(tuple, h["knobs"]))})
                  for h in data.get("planned", [])])
        self.pending = list(data["pending"])
        self.again_ids = list(data["again"])
        self.settled = set(data["settled"])
        self.started = data["started"]


def _digest(hypothesis: Hypothesis) -> str:
    """What a hypothesis does (not how it is shown): a resumed campaign must run what it started with."""
    fields = dataclasses.asdict(hypothesis)
    del fields["source"]
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
