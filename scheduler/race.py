"""Which strategy an idle worker serves, and when a strategy loses its workers: successive halving.

The rule (README: Racing strategies):
- Workers are shared equally between the racing strategies: an idle worker takes the next hypothesis of the
  racing strategy that has started the fewest screens (ties: the order of the campaign file).
- A rung is passed when every racing strategy has finished `rung` more screens and none has a merge waiting or
  running. Then the strategies not dropped are ranked by their landed gain (the product of the re-measured
  ratios landed on their lineage, or on the integration branch in shared mode); racing ones below the
  better half (the ceil(n/2)-th best) are dropped: they start no more screens and their workers go to the
  others (a strategy is dropped only if a racing one is above it: the last strategy with work keeps it). Ties
  stay: with no difference in gain (e.g. nothing landed yet) nobody is dropped. A rung is a meeting point: a
  strategy that has started its screens of the next rung starts no more until the rung is passed, so that
  the ranking compares equal numbers of screens.
- A strategy whose last `memory.stuck_after` screens were all not kept is stuck: it is dropped at once, as
  long as another racing strategy is not stuck.
- A screen whose verdict was voided (a suspect baseline, scheduler/campaign.py) counts nowhere: not as
  finished, kept, missed or gained; its re-measurement counts once it ends.
- A strategy with nothing left to run is finished: its workers go to the others.
Every change is returned with its reason; the campaign writes it as `allocations` and `events` rows.

Plain data: stored with the campaign's state and restored on resume.
"""
from __future__ import annotations

import math
from collections.abc import Callable

RACING, DROPPED, FINISHED, WINNER = "racing", "dropped", "finished", "winner"


class Race:
    def __init__(self, strategies: list[str], rung: int, stuck_after: int):
        self.order = list(strategies)
        self.rung = rung
        self.stuck_after = stuck_after
        self.rungs_passed = 0
        self.ended = False
        # "missed": the screens not kept since its last keep, by experiment id (a voided one is taken back).
        self.strategies = {s: {"status": RACING, "started": 0, "finished": 0, "kept": 0, "missed": [], "gain": 0.0,
                               "landed": 0, "reason": "start: the workers are shared equally"} for s in strategies}

    def racing(self) -> list[str]:
        return [s for s in self.order if self.strategies[s]["status"] == RACING]

    def pick(self, ready: set[str]) -> str | None:
        """The racing strategy with a hypothesis ready that has started the fewest screens; one that has started
        its screens of the next rung waits there for the others (None: nobody may start now)."""
        racing = self.racing()
        target = (self.rungs_passed + 1) * self.rung if self.rung and len(racing) > 1 else math.inf
        candidates = [s for s in racing if s in ready and self.strategies[s]["started"] < target]
        return min(candidates, key=lambda s: self.strategies[s]["started"], default=None)

    def started(self, strategy: str) -> None:
        self.strategies[strategy]["started"] += 1

    def screened(self, strategy: str, experiment_id: str, kept: bool, effect: float | None, lands: bool) -> None:
        """A screen's verdict. Without landing (merge disabled, or screen-only), a keep's screening effect is
        the strategy's gain."""
        state = self.strategies[strategy]
        state["finished"] += 1
        state["kept"] += kept
        state["missed"] = [] if kept else state["missed"] + [experiment_id]
        if kept and not lands and effect:
            state["gain"] += -math.log(effect)

    def voided(self, strategy: str, experiment_id: str, kept: bool, effect: float | None, lands: bool) -> None:
        """Take back a screen's verdict (`screened` with the same arguments) that an artifact voided. The misses
        a voided keep had ended stay ended: they are no longer named, and a strategy is rather not dropped."""
        state = self.strategies[strategy]
        state["finished"] -= 1
        state["kept"] -= kept
        state["missed"] = [missed for missed in state["missed"] if missed != experiment_id]
        if kept and not lands and effect:
            state["gain"] -= -math.log(effect)

    def landed(self, strategy: str, effect: float | None) -> None:
        state = self.strategies[strategy]
        state["landed"] += 1
        state["gain"] += -math.log(effect) if effect else 0.0

    def ratio(self, strategy: str) -> float:
        """The strategy's landed gain as a ratio (< 1 is faster)."""
        return math.exp(-self.strategies[strategy]["gain"])

    def step(self, has_work: Callable[[str], bool], running: Callable[[str], bool],
             merging: Callable[[str], bool]) -> list[tuple[str, str, str]]:
        """Apply the rule once: (strategy, new status, reason) for every change. `has_work`: hypotheses left to
        run (or a planner that may propose some); `running`: a screen in flight; `merging`: a kept screen
        waiting to land or landing."""
        changes = []
        for s in self.racing():
            if not has_work(s) and not running(s) and not merging(s):
                changes.append(self._set(s, FINISHED, f"{s} has nothing left to run"))
        for s in self.racing():
            misses = len(self.strategies[s]["missed"])
            if misses >= self.stuck_after and any(len(self.strategies[o]["missed"]) < self.stuck_after
                                                  for o in self.racing() if o != s):
                changes.append(self._set(s, DROPPED, f"{s} is stuck: its last {misses} screens were not kept"))
        racing = self.racing()
        # Finished strategies still set the bar (their workers are gone already); dropped ones are out.
        ranked = sorted([s for s in self.order if self.strategies[s]["status"] in (RACING, FINISHED)],
                        key=lambda s: -self.strategies[s]["gain"])
        target = (self.rungs_passed + 1) * self.rung
        if not self.rung or not racing or len(ranked) < 2 or \
                not all(self.strategies[s]["finished"] >= target and not merging(s) for s in racing):
            return changes
        self.rungs_passed += 1
        bar = self.strategies[ranked[math.ceil(len(ranked) / 2) - 1]]["gain"]
        rung = f"rung {self.rungs_passed} ({target} screens each; landed " + \
            ", ".join(f"{s} {self.ratio(s):.3f}x" for s in ranked) + ")"
        # Dropped only if workers go to a racing strategy above it: a strategy that is the last with work keeps it.
        dropped = [self._set(s, DROPPED, f"{rung}: {s} is below the better half")
                   for s in racing if self.strategies[s]["gain"] < bar
                   and any(self.strategies[o]["gain"] >= bar for o in racing)]
        if dropped:
            return changes + dropped
        why = ("no difference" if len({self.strategies[s]["gain"] for s in ranked}) == 1
               else "none above the bar has anything left to run")
        for s in racing:
            self.strategies[s]["reason"] = f"{rung}: {why}, every strategy keeps racing"
        return changes + [("", RACING, self.strategies[racing[0]]["reason"])]

    def explain(self, strategy: str, reason: str) -> str:
        """`reason` is now the strategy's last change's reason (in its allocations rows); returned."""
        self.strategies[strategy]["reason"] = reason
        return reason

    def _set(self, strategy: str, status: str, reason: str) -> tuple[str, str, str]:
        self.strategies[strategy].update(status=status, reason=reason)
        return strategy, status, reason

    def end(self) -> str | None:
        """Once nothing is left to run: the strategy with the largest landed gain wins (None: nothing landed)."""
        self.ended = True
        best = max(self.order, key=lambda s: self.strategies[s]["gain"])
        if self.strategies[best]["gain"] <= 0:
            return None
        self._set(best, WINNER, f"race over: {best} wins with the largest landed gain")
        return best

    def workers(self, strategy: str, total: int) -> float:
        """The strategy's share of the workers now."""
        racing = self.racing()
        return total / len(racing) if strategy in racing else 0.0

    def to_dict(self) -> dict:
        return {"rungs_passed": self.rungs_passed, "ended": self.ended, "strategies": self.strategies}

    def restore(self, data: dict) -> None:
        self.rungs_passed, self.ended = data["rungs_passed"], data["ended"]
        for strategy, stored in data["strategies"].items():
            if strategy in self.strategies:
                state = dict(stored)
                # A state saved before the misses were named had their count: unnamed, they cannot be taken back.
                state.setdefault("missed", [None] * state.pop("misses", 0))
                self.strategies[strategy] = state
