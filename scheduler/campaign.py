"""Everything the coordinator decides, without Ray: what each idle worker runs next, what a result means,
what a lost experiment becomes.

Screening experiments start from the current integration tip; kept ones wait in the merge queue and land
one at a time after a re-measurement against the tip (a MERGE experiment), so the integration branch only
ever moves forward by commits measured against exactly the commit they land on.

Every experiment id is used once. An attempt that did not end (its worker died, the coordinator died, the
campaign was abandoned) is `lost`: its row and partial samples stay in the store, marked by that status,
and the retry is a new experiment (`retry_of` names the lost one) whose decision sees only its own samples.

The campaign writes nothing itself: its store writes collect in `writes`, and the coordinator sends them
with `to_dict()` of the whole state, to the store in one transaction. A coordinator that dies therefore
leaves a store whose saved state matches its rows, and `restore` + `resume` continue from there.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from farm.acceptance_monitor import AcceptanceMonitor
from farm.config import CampaignConfig
from farm.planner import Plan
from farm.records import Assignment, ExperimentResult, Hypothesis, Kind, Status
from scheduler.hypothesis_queue import HypothesisQueue
from scheduler.merge_queue import Kept, MergeQueue

AA_HYPOTHESIS = Hypothesis(id="aa", strategy="farm", category="canary", agent="aa",
                           text="A/A: the parent against a second build of itself (build bias, false-positive canary)",
                           patch="")
CONFIRM_HYPOTHESIS = Hypothesis(id="confirm", strategy="farm", category="confirmation", agent="confirm",
                                text="the final integration tip against the campaign base", patch="")
MEASURED = (Status.KEEP, Status.DISCARD)
STATE_VERSION = 1


class Campaign:
    def __init__(self, config: CampaignConfig, hypotheses: list[Hypothesis], base_commit: str, workers: list[str],
                 max_experiments: int | None = None, say: Callable[[str], None] = print):
        self.config = config
        self.name = config.campaign
        self.workers = list(workers)
        self.say = say
        self.hypotheses = HypothesisQueue(hypotheses, max_experiments)
        self.merges = MergeQueue()
        self.monitor = AcceptanceMonitor(config.acceptance.alpha, config.acceptance.canary_every)
        self.base = base_commit
        self.tip = base_commit
        self.confirmation: str | None = None  # the final confirmation's experiment id, once it started
        self.landed: list[str] = []  # screened experiment ids, in landing order
        self.counter = 0  # experiment ids handed out
        self.in_flight: dict[str, tuple[str, Assignment]] = {}  # experiment id -> (worker, assignment)
        self.retry: list[Assignment] = []  # lost attempts to run again (a new id each)
        self.reserved: dict[str, Assignment] = {}  # held for a worker while it runs its canary
        self.statuses: dict[str, int] = {}
        self.categories: dict[str, list[int]] = {}  # "strategy|category" -> [discards, keeps] of its screens
        self.stopping = False
        self.writes: list[tuple[str, tuple]] = []  # store writes not yet sent
        # Per strategy with a planner: its calls, the hypotheses it proposed, failures in a row, and whether it
        # is done (proposed max_hypotheses, proposed nothing new, or failed twice in a row).
        self.planners = {s.name: {"calls": 0, "proposed": 0, "failures": 0, "done": False}
                         for s in config.strategies if s.planner}

    # -- assignment ----------------------------------------------------------

    def assign(self, worker: str, cpus: tuple[int, ...]) -> Assignment | None:
        """The next experiment for an idle worker (recorded as started), or None."""
        if self.stopping:
            return None
        assignment = self.reserved.pop(worker, None) or (self.retry.pop(0) if self.retry else self._next())
        if assignment is None:
            return None
        if assignment.kind in (Kind.SCREEN, Kind.MERGE) and self.monitor.canary_due(worker):
            self.reserved[worker] = assignment
            assignment = self._new(Kind.AA, AA_HYPOTHESIS, assignment.parent_commit)
        self.counter += 1
        experiment_id = f"{self.name}-{self.counter:04d}"
        assignment = replace(assignment, experiment_id=experiment_id, branch=f"farm/{self.name}/{experiment_id}",
                             build_bias=self.monitor.build_bias(worker),
                             rebuild_ref=self.monitor.take_rebuild(worker, assignment.parent_commit))
        self.in_flight[experiment_id] = (worker, assignment)
        if assignment.kind is Kind.CONFIRM:
            self.confirmation = experiment_id
        self._write("start_experiment", experiment_id, self.name, assignment.hypothesis, assignment.kind.value,
                    assignment.parent_commit, assignment.branch, worker, cpus, assignment.screened_experiment,
                    assignment.retry_of)
        return assignment

    def _new(self, kind: Kind, hypothesis: Hypothesis, parent: str, **fields) -> Assignment:
        return Assignment("", self.name, kind, hypothesis, parent, "", **fields)  # id and branch: at dispatch

    def exhausted(self, strategy: str) -> list[str]:
        """The strategy's categories with memory.exhausted_after discards and no keep."""
        limit = self.config.memory.exhausted_after
        return sorted(key.split("|", 1)[1] for key, (discards, keeps) in self.categories.items()
                      if key.split("|", 1)[0] == strategy and discards >= limit and not keeps)

    def _skip_exhausted(self) -> None:
        """Pending hypotheses of a command agent in an exhausted category are not assigned: settled, with an
        event row each. (A pack of patches is a fixed list: it is measured whole.)"""
        for hypothesis_id in list(self.hypotheses.pending):
            hypothesis = self.hypotheses.by_id[hypothesis_id]
            if hypothesis.agent == "command" and hypothesis.category in self.exhausted(hypothesis.strategy):
                self.hypotheses.pending.remove(hypothesis_id)
                self.hypotheses.settle(hypothesis_id)
                message = (f"{hypothesis_id}: skipped, category {hypothesis.category} of {hypothesis.strategy} is "
                           f"exhausted ({self.config.memory.exhausted_after} discards, no keep)")
                self._write("add_events", self.name, [(time.time(), None, None, "skipped", message)])
                self.say(message)

    def _next(self) -> Assignment | None:
        self._skip_exhausted()
        kept = self.merges.next()
        while kept is not None and self._lands_as_is(kept):
            kept = self.merges.next()
        if kept is not None:
            self.merges.in_flight = kept.experiment_id
            return self._new(Kind.MERGE, self.hypotheses.by_id[kept.hypothesis_id], self.tip,
                             screened_experiment=kept.experiment_id, pick_base=kept.parent_commit,
                             pick_tip=kept.commit)
        hypothesis = self.hypotheses.next()
        if hypothesis is None:
            return self._confirmation()
        # An existing commit (agent refs) is measured against its own parent, everything else against the tip.
        return self._new(Kind.SCREEN, hypothesis, hypothesis.parent or self.tip)

    def _confirmation(self) -> Assignment | None:
        """Once everything else is done and something landed: the final tip against the base, once."""
        if (not self.config.merge.confirm_blocks or not self.landed or self.confirmation is not None
                or self.in_flight or self.merges.waiting or self.merges.in_flight or self.planner_due()
                or self.hypotheses.waiting()):
            return None
        return self._new(Kind.CONFIRM, CONFIRM_HYPOTHESIS, self.base, pick_base=self.base, pick_tip=self.tip)

    def _lands_as_is(self, kept: Kept) -> bool:
        """With merge.remeasure off, a kept commit whose parent is still the tip lands as it is."""
        if self.config.merge.remeasure or kept.parent_commit != self.tip:
            return False
        self._land(kept, kept.commit, remeasured=None)
        return True

    def blocked(self) -> list[str]:
        """With nothing in flight: hypotheses that still wait and can never start."""
        if self.in_flight or self.stopping:
            return []
        return [f"{h} (after {self.hypotheses.by_id[h].after})" for h in self.hypotheses.waiting()]

    # -- planners ------------------------------------------------------------

    def planner_due(self) -> str | None:
        """A strategy whose planner should propose hypotheses now: it has none waiting, the planner is not done,
        and the --max-experiments budget is not spent."""
        if self.stopping or self.hypotheses.budget_spent():
            return None
        for strategy, state in self.planners.items():
            if not state["done"] and not self.hypotheses.waiting_in(strategy):
                return strategy
        return None

    def planned(self, strategy: str, plan: Plan) -> None:
        """What a planner call proposed: valid hypotheses join the queue, each line not taken is an event. A call
        that failed, or printed lines of which none was valid, counts as a failure; two in a row end the
        planner, as does an empty answer or reaching max_hypotheses."""
        state = self.planners[strategy]
        state["calls"] += 1
        limit = self.config.strategy(strategy).planner.max_hypotheses
        new = plan.hypotheses[:max(0, limit - state["proposed"])]
        rejected = plan.rejected + [(h.id, f"beyond max_hypotheses ({limit})") for h in plan.hypotheses[len(new):]]
        failure = plan.error or (None if new or not rejected else f"none of its {len(rejected)} line(s) was a "
                                                                   f"valid hypothesis")
        if failure:
            state["failures"] += 1
            state["done"] = state["failures"] >= 2
        else:
            state["failures"] = 0
            state["proposed"] += len(new)
            state["done"] = not new or state["proposed"] >= limit
        if new:
            self.hypotheses.add(new)
            self._write("add_planned", self.name, strategy, new)
        summary = (f"planner of {strategy}: " + (f"{failure}; " if failure else "")
                   + f"{len(new)} hypothesis(es) ({', '.join(h.id for h in new) or 'none'}), {len(rejected)} line(s) "
                   f"rejected" + ("; the planner is done" if state["done"] else ""))
        now = time.time()
        self._write("add_events", self.name, [(now, None, None, "planner_rejected", f"{strategy}: rejected line "
                                                                                    f"{line!r}: {why}")
                                              for line, why in rejected] + [(now, None, None, "planner", summary)])
        self.say(summary)
        for line, why in rejected:
            self.say(f"planner of {strategy}: rejected {line!r}: {why}")

    # -- results -------------------------------------------------------------

    def finish(self, result: ExperimentResult) -> None:
        worker, a = self.in_flight.pop(result.experiment_id)
        self._write("finish_experiment", result)
        self._count(result.status, +1)
        effect = f" effect {result.effect:.3f}x" if result.effect else ""
        self.say(f"{worker} {result.experiment_id} {a.hypothesis.id}: {result.status.value.upper()}{effect} -- "
                 f"{result.reason}")
        for kind, benchmark, reason in result.artifacts:
            self._artifact(result.experiment_id, kind, benchmark, reason)
        if a.kind is Kind.CONFIRM:
            self.say(f"final confirmation {result.experiment_id}: {result.reason}")
            return
        if a.kind is Kind.AA:
            alarm = self.monitor.on_canary(worker, result)
            if alarm:
                self._artifact(result.experiment_id, "canary", None, alarm)
            return
        self.monitor.counted(worker)
        if result.status in MEASURED:
            flagged = self.monitor.off_control_chart(worker, a.parent_commit, result)
            for name, reason in flagged:
                self._artifact(result.experiment_id, "control_chart", name, reason)
            if flagged and self._measure_again(result.experiment_id, result.status, a.kind, a.hypothesis.id,
                                               a.screened_experiment, "the reference run was off its control chart"):
                return
        if a.kind is Kind.SCREEN:
            self._on_screen(a, result)
        else:
            self._on_merge(a, result)

    def _on_screen(self, a: Assignment, result: ExperimentResult) -> None:
        counts = self.categories.setdefault(f"{a.hypothesis.strategy}|{a.hypothesis.category}", [0, 0])
        counts[0] += result.status is Status.DISCARD
        counts[1] += result.status is Status.KEEP
        lands = self.config.merge.enabled and a.hypothesis.commit is None  # an existing commit is screen-only
        if result.status is Status.KEEP and lands:
            self.merges.add(Kept(result.experiment_id, a.hypothesis.id, result.effect, result.commit,
                                 a.parent_commit))
        else:
            self.hypotheses.settle(a.hypothesis.id)
        if result.status in MEASURED:
            self.monitor.record_screen(a.parent_commit, result, a.hypothesis.id)
            self._check_baseline(a.parent_commit, result)

    def _on_merge(self, a: Assignment, result: ExperimentResult) -> None:
        self.merges.in_flight = None
        kept = self.merges.by_id[a.screened_experiment]
        if result.status is Status.KEEP:
            self._land(kept, result.commit, remeasured=result)
            return
        vanished = result.status is Status.DISCARD and kept.parent_commit != a.parent_commit
        why = (f"its gain vanished on top of the winners landed since it was screened (screened "
               f"{_times(kept.effect)}, re-measured {_times(result.effect)} against the tip)" if vanished
               else f"{result.status.value} against the tip")
        self._write("add_merge", kept.experiment_id, self.name, None, kept.effect, result.effect,
                    result.experiment_id, False, None, f"{why}: {result.reason}" if vanished
                    else f"{result.status.value}: {result.reason}")
        self.hypotheses.settle(kept.hypothesis_id)
        self.say(f"not landed: {kept.hypothesis_id} ({why})")

    def _land(self, kept: Kept, commit: str, remeasured: ExperimentResult | None) -> None:
        """The store records the landing; the coordinator moves the branch once that is written."""
        self.tip = commit
        self.landed.append(kept.experiment_id)
        self._write("add_merge", kept.experiment_id, self.name, len(self.landed), kept.effect,
                    remeasured.effect if remeasured else None, remeasured.experiment_id if remeasured else None,
                    True, commit,
                    remeasured.reason if remeasured else "parent is the tip; landed on the screening measurement")
        self.hypotheses.settle(kept.hypothesis_id)
        self.say(f"landed {kept.hypothesis_id} as #{len(self.landed)}: integrated tip {commit[:10]}")

    def _check_baseline(self, parent: str, result: ExperimentResult) -> None:
        """(c): everyone "improves" one benchmark on this parent: rebuild the reference and measure again."""
        for benchmark, reason, experiments in self.monitor.suspect_baselines(parent, result):
            self._artifact(None, "suspect_baseline", benchmark,
                           f"parent {parent[:10]}: {reason}; rebuilding the reference and re-measuring")
            self.monitor.rebuild_everywhere(self.workers, parent)
            for experiment_id in experiments:
                if experiment_id not in self.monitor.screens.get(parent, {}):
                    continue  # voided for another benchmark of the same parent just now
                if experiment_id in self.merges.by_id and not self.merges.is_waiting(experiment_id):
                    continue  # already landing or landed: its re-measurement against the tip decides
                screen = self.monitor.forget_screen(parent, experiment_id)
                self._measure_again(experiment_id, Status(screen["status"]), Kind.SCREEN, screen["hypothesis"],
                                    None, f"suspect baseline on {benchmark}")

    def _measure_again(self, experiment_id: str, status: Status, kind: Kind, hypothesis_id: str,
                       screened: str | None, why: str) -> bool:
        """Void a measured verdict and measure the hypothesis again, once per hypothesis. False: it was
        measured again already, and this verdict stands."""
        if hypothesis_id in self.monitor.remeasured:
            self.say(f"{experiment_id}: {why}, but {hypothesis_id} was re-measured already; verdict stands")
            return False
        self.monitor.remeasured.add(hypothesis_id)
        self._write("invalidate_experiment", experiment_id, f"invalidated: {why}")
        self._count(status, -1)
        self._count(Status.INVALIDATED, +1)
        if kind is Kind.MERGE:
            self.merges.in_flight = None
            self.merges.add(self.merges.by_id[screened])
        else:
            self.merges.withdraw(experiment_id)
            self.hypotheses.again(hypothesis_id)
        self.say(f"{experiment_id} {hypothesis_id}: verdict voided ({why}); measuring again")
        return True

    def _count(self, status: Status, step: int) -> None:
        self.statuses[status.value] = self.statuses.get(status.value, 0) + step

    def _artifact(self, experiment_id: str | None, kind: str, benchmark: str | None, reason: str) -> None:
        self._write("add_artifact", self.name, experiment_id, kind, benchmark, reason)
        self.say(f"ARTIFACT {kind}{' ' + benchmark if benchmark else ''}"
                 f"{' in ' + experiment_id if experiment_id else ''}: {reason}")

    def _write(self, method: str, *args) -> None:
        self.writes.append((method, args))

    # -- faults and stopping -------------------------------------------------

    def lose(self, experiment_id: str, why: str) -> None:
        """An attempt that will not end: `lost` in the store (its samples kept), run again under a new id.
        A lost canary is not: the worker's canary is simply due again."""
        worker, a = self.in_flight.pop(experiment_id)
        self._write("mark_lost", experiment_id, why)
        self._count(Status.LOST, +1)
        self.say(f"{worker} {experiment_id} {a.hypothesis.id}: LOST -- {why}" +
                 ("" if a.kind is Kind.AA else "; it will run again"))
        if a.kind is not Kind.AA:
            self.retry.append(replace(a, retry_of=experiment_id))

    def lose_worker(self, worker: str) -> None:
        """A worker is gone for good: its reserved assignment goes to whoever is idle next."""
        self.workers.remove(worker)
        if worker in self.reserved:
            self.retry.insert(0, self.reserved.pop(worker))

    def abandon(self, why: str) -> None:
        for experiment_id in list(self.in_flight):
            self.lose(experiment_id, why)

    # -- stored form ---------------------------------------------------------

    def to_dict(self) -> dict:
        return {"version": STATE_VERSION, "counter": self.counter, "base": self.base, "tip": self.tip,
                "landed": self.landed, "confirmation": self.confirmation,
                "statuses": self.statuses, "categories": self.categories, "hypotheses": self.hypotheses.to_dict(),
                "planners": self.planners,
                "merges": self.merges.to_dict(), "monitor": self.monitor.to_dict(),
                "in_flight": {e: [w, self._assignment_dict(a)] for e, (w, a) in self.in_flight.items()},
                "retry": [self._assignment_dict(a) for a in self.retry],
                "reserved": {w: self._assignment_dict(a) for w, a in self.reserved.items()}}

    def restore(self, data: dict) -> None:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"stored campaign state version {data.get('version')}, this farm reads "
                             f"{STATE_VERSION}")
        self.counter, self.tip, self.landed = data["counter"], data["tip"], list(data["landed"])
        self.base = data.get("base", self.base)
        self.confirmation = data.get("confirmation")
        self.statuses = dict(data["statuses"])
        self.categories = {key: list(counts) for key, counts in data["categories"].items()}
        self.planners.update({k: dict(v) for k, v in data.get("planners", {}).items() if k in self.planners})
        self.hypotheses.restore(data["hypotheses"])
        self.merges.restore(data["merges"])
        acceptance = self.config.acceptance
        self.monitor = AcceptanceMonitor.from_dict(acceptance.alpha, acceptance.canary_every, data["monitor"])
        self.in_flight = {e: (w, self._assignment(a)) for e, (w, a) in data["in_flight"].items()}
        self.retry = [self._assignment(a) for a in data["retry"]]
        self.reserved = {w: self._assignment(a) for w, a in data["reserved"].items()}
        # Workers that no longer exist (fewer workers this time) leave their reservations to the others.
        for worker in [w for w in self.reserved if w not in self.workers]:
            self.retry.insert(0, self.reserved.pop(worker))

    def resume(self, why: str = "the coordinator stopped while it ran") -> None:
        """After `restore`: what was in flight when the coordinator died runs again."""
        self.abandon(why)

    @staticmethod
    def _assignment_dict(a: Assignment) -> dict:
        return {"experiment_id": a.experiment_id, "kind": a.kind.value, "hypothesis": a.hypothesis.id,
                "parent_commit": a.parent_commit, "branch": a.branch, "screened_experiment": a.screened_experiment,
                "pick_base": a.pick_base, "pick_tip": a.pick_tip, "retry_of": a.retry_of}

    def _assignment(self, data: dict) -> Assignment:
        kind = Kind(data["kind"])
        fixed = {Kind.AA: AA_HYPOTHESIS, Kind.CONFIRM: CONFIRM_HYPOTHESIS}
        hypothesis = fixed[kind] if kind in fixed else self.hypotheses.by_id[data["hypothesis"]]
        return Assignment(data["experiment_id"], self.name, kind, hypothesis, data["parent_commit"], data["branch"],
                          screened_experiment=data["screened_experiment"], pick_base=data["pick_base"],
                          pick_tip=data["pick_tip"], retry_of=data["retry_of"])


def _times(effect: float | None) -> str:
    return f"{effect:.3f}x" if effect else "-"
