"""Everything the coordinator decides, without Ray: what each idle worker runs next, what a result means,
what a lost experiment becomes.

Screening experiments start from the tip of their lineage (the integration branch; in race mode their
strategy's own branch); kept ones wait in that lineage's merge queue and land one at a time after a
re-measurement against its tip (a MERGE experiment), so a branch only ever moves forward by commits measured
against exactly the commit they land on. With several strategies, scheduler/race.py decides which one an
idle worker serves; at the end of a race the best lineage becomes the integration branch and the other
lineages' winners are offered on top of it, each re-measured.

Every experiment id is used once. An attempt that did not end (its worker died, the coordinator died, the
campaign was abandoned) is `lost`: its row and partial samples stay in the store, marked by that status,
and the retry is a new experiment (`retry_of` names the lost one) whose decision sees only its own samples.

The campaign writes nothing itself: its store writes collect in `writes`, and the coordinator sends them
with `to_dict()` of the whole state, to the store in one transaction. A coordinator that dies therefore
leaves a store whose saved state matches its rows, and `restore` + `resume` continue from there.
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import replace

from farm.campaign_file.config import CampaignConfig
from farm.coding_agents.planner import Plan
from farm.records import INTEGRATED, OVERFITS, Assignment, ExperimentResult, Hypothesis, Kind, Status
from farm.storage.store_writes import (
    AddAllocations,
    AddArtifact,
    AddEvents,
    AddMerge,
    AddPlanned,
    FinishExperiment,
    InvalidateExperiment,
    MarkLost,
    StartExperiment,
    Write,
)
from scheduler.acceptance_monitor import AcceptanceMonitor
from scheduler.campaign_state import check_state
from scheduler.hypothesis_queue import HypothesisQueue
from scheduler.merge_queue import Kept, Lineage
from scheduler.race import DROPPED, RACING, WINNER, Race

AA_HYPOTHESIS = Hypothesis(id="aa", strategy="farm", category="canary", agent="aa",
                           text="A/A: the parent against a second build of itself (build bias, false-positive canary)",
                           patch="")
CONFIRM_HYPOTHESIS = Hypothesis(id="confirm", strategy="farm", category="confirmation", agent="confirm",
                                text="the final integration tip against the campaign base", patch="")
MEASURED = (Status.KEEP, Status.DISCARD)
STATE_VERSION = 2


class Campaign:
    def __init__(self, config: CampaignConfig, hypotheses: list[Hypothesis], base_commit: str, workers: list[str],
                 max_experiments: int | None = None, say: Callable[[str], None] = print):
        self.config = config
        self.name = config.campaign
        self.workers = list(workers)
        self.say = say
        limits = [n for n in (max_experiments, config.budget.experiments) if n is not None]
        self.hypotheses = HypothesisQueue(hypotheses, min(limits) if limits else None)
        self.started_at = time.time()  # for budget.hours; kept across resumes
        self.screens_since_keep = 0  # for stop.plateau
        self.spend = {"cost_usd": 0.0, "tokens": 0}  # what the agents' CLIs reported (budget.cost_usd, .tokens)
        self.stopped: str | None = None  # why a budget or stop rule ended the campaign
        self.monitor = AcceptanceMonitor(config.acceptance.alpha, config.acceptance.canary_every)
        self.base = base_commit
        self.race_mode = config.race.mode == "race"
        names = [s.name for s in config.strategies]
        # The integration branch, and in race mode one lineage branch per strategy, all starting at the base.
        self.lineages = {name: Lineage(name, base_commit) for name in [INTEGRATED] + (names if self.race_mode else [])}
        self.race = (Race(names, config.race.rung, config.memory.stuck_after)
                     if self.race_mode or (config.race.rung and len(names) > 1) else None)
        self.confirmation: str | None = None  # the final confirmation's experiment id, once it started
        self.counter = 0  # experiment ids handed out
        self.in_flight: dict[str, tuple[str, Assignment]] = {}  # experiment id -> (worker, assignment)
        self.retry: list[Assignment] = []  # lost attempts to run again (a new id each)
        self.reserved: dict[str, Assignment] = {}  # held for a worker while it runs its canary
        self.statuses: dict[str, int] = {}
        # "strategy|category" -> [discards, keeps] of its screens (a voided verdict counts nowhere)
        self.categories: dict[str, list[int]] = {}
        self.stopping = False
        # strategy -> [cause, count]: its last agent failures in a row with the same cause (the circuit breaker)
        self.agent_failures: dict[str, list] = {}
        self.writes: list[Write] = []  # store writes not yet sent
        # Per strategy with a planner: its calls, the hypotheses it proposed, failures in a row, and whether it
        # is done (proposed max_hypotheses, proposed nothing new, or failed twice in a row).
        self.planners = {s.name: {"calls": 0, "proposed": 0, "failures": 0, "done": False}
                         for s in config.strategies if s.planner}
        if self.race:
            self._reallocated([("", RACING, "start: the workers are shared equally")])

    @property
    def tip(self) -> str:
        """The integration branch's tip."""
        return self.lineages[INTEGRATED].tip

    @property
    def landed(self) -> list[str]:
        """The screened experiments on the integration branch, in landing order."""
        return [kept.experiment_id for kept in self.lineages[INTEGRATED].landed]

    def branch(self, lineage: str) -> str:
        return f"farm/{self.name}/{lineage}"

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
        self.writes.append(StartExperiment(
            experiment_id, self.name, assignment.hypothesis, assignment.kind.value, assignment.parent_commit,
            assignment.branch, worker, tuple(cpus), assignment.screened_experiment, assignment.retry_of,
            assignment.lineage if assignment.kind in (Kind.SCREEN, Kind.MERGE) else None))
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
        for hypothesis in self.hypotheses.skip(lambda h: h.agent == "command"
                                               and h.category in self.exhausted(h.strategy)):
            message = (f"{hypothesis.id}: skipped, category {hypothesis.category} of {hypothesis.strategy} is "
                       f"exhausted ({self.config.memory.exhausted_after} discards, no keep)")
            self._event("skipped", message)
            self.say(message)

    def _next(self) -> Assignment | None:
        self._skip_exhausted()
        if self.race and not self.race.ended:
            self._race_step()
        merge = self._next_merge()
        if merge is not None:
            return merge
        hypothesis = self._next_hypothesis()
        if hypothesis is None:
            return self._confirmation()
        # An existing commit (agent refs) is measured against its own parent, everything else against the tip
        # of its lineage.
        lineage = self.lineages[hypothesis.strategy if self.race_mode else INTEGRATED]
        return self._new(Kind.SCREEN, hypothesis, hypothesis.parent or lineage.tip, lineage=lineage.name)

    def _next_merge(self) -> Assignment | None:
        """The largest win waiting on a lineage with no merge in flight, as a re-measurement on its tip."""
        for lineage in self.lineages.values():
            kept = lineage.merges.next()
            while kept is not None and self._lands_as_is(lineage, kept):
                kept = lineage.merges.next()
            if kept is not None:
                lineage.merges.start(kept)
                return self._new(Kind.MERGE, self.hypotheses.by_id[kept.hypothesis_id], lineage.tip,
                                 screened_experiment=kept.experiment_id, pick_base=kept.parent_commit,
                                 pick_tip=kept.commit, lineage=lineage.name)
        return None

    def _next_hypothesis(self) -> Hypothesis | None:
        """In file order; in a race, of the racing strategy that has started the fewest (scheduler/race.py)."""
        if self.race is None or self.hypotheses.again_ids:
            return self.hypotheses.next()
        strategy = self.race.pick(self.hypotheses.ready_strategies())
        if strategy is None:
            return None
        self.race.started(strategy)
        return self.hypotheses.next(strategy)

    # -- racing ----------------------------------------------------------------

    def _race_step(self) -> None:
        """Apply the race's rule; once no strategy races and nothing runs, end the race."""
        changes = self.race.step(self._has_work, self._screening, self._merging)
        for index, (strategy, status, reason) in enumerate(changes):
            if status == DROPPED:
                skipped = self.hypotheses.drop(strategy)
                if strategy in self.planners:
                    self.planners[strategy]["done"] = True
                reason = self.race.explain(strategy, f"{reason}; {len(skipped)} of its hypotheses will not run")
                changes[index] = (strategy, status, reason)
        if changes:
            self._reallocated(changes)
        if not self.race.racing() and not self.in_flight and not self.retry and not self.reserved \
                and not self.hypotheses.again_ids and self._lineages_idle():
            self._end_race()

    def _has_work(self, strategy: str) -> bool:
        """Hypotheses of the strategy that would still run, a planner that may propose more, or a lost attempt
        to run again."""
        planner = self.planners.get(strategy)
        return (any(self.hypotheses.by_id[h].strategy == strategy for h in self.hypotheses.waiting())
                or (planner is not None and not planner["done"] and not self.hypotheses.budget_spent())
                or any(a.hypothesis.strategy == strategy for a in self.retry + list(self.reserved.values())))

    def _screening(self, strategy: str) -> bool:
        return any(a.kind is Kind.SCREEN and a.hypothesis.strategy == strategy for _, a in self.in_flight.values())

    def _merging(self, strategy: str) -> bool:
        """A kept screen of the strategy waits to land or is landing."""
        if self.race_mode:
            return not self.lineages[strategy].idle()
        return any(self.hypotheses.by_id[k.hypothesis_id].strategy == strategy
                   for k in self.lineages[INTEGRATED].merges.pending())

    def _end_race(self) -> None:
        """The winner's lineage becomes the integration branch; the others' winners wait to land on top of it."""
        winner = self.race.end()
        ratios = ", ".join(f"{s} {self.race.ratio(s):.3f}x" for s in self.race.order)
        if winner is None:
            self._reallocated([("", "ended", f"race over: nothing landed (landed ratios {ratios})")])
            return
        offered = []
        if self.race_mode:
            integrated, won = self.lineages[INTEGRATED], self.lineages[winner]
            integrated.tip, integrated.landed = won.tip, list(won.landed)
            for lineage in self.lineages.values():
                if lineage.name not in (INTEGRATED, winner):
                    offered += lineage.landed
                    for kept in lineage.landed:
                        integrated.merges.add(kept)
        reason = f"race over: {winner} wins with the largest landed gain (landed ratios {ratios})" + (
            f"; its lineage is the integration branch, and {len(offered)} winner(s) of the others are offered on "
            f"top, each re-measured" if self.race_mode else "")
        self.race.explain(winner, reason)
        self._reallocated([(winner, WINNER, reason)])

    def _reallocated(self, changes: list[tuple[str, str, str]]) -> None:
        """Changes of the race: an `events` row each, and every strategy's share of the workers now (with the
        reason of its own last change)."""
        now = time.time()
        self.writes.append(AddEvents(self.name, tuple((now, None, None, "reallocation", reason)
                                                      for _, _, reason in changes)))
        self.writes.append(AddAllocations(self.name, now, self.race.rungs_passed, tuple(
            (s, state["status"], self.race.workers(s, len(self.workers)), state["started"], state["finished"],
             state["kept"], state["landed"], self.race.ratio(s), state["reason"])
            for s, state in self.race.strategies.items())))
        for _, _, reason in changes:
            self.say(f"race: {reason}")

    def _confirmation(self) -> Assignment | None:
        """Once everything else is done and something landed: the final tip against the base, once."""
        if (not self.config.merge.confirm_blocks or not self.landed or self.confirmation is not None
                or self.in_flight or not self._lineages_idle()
                or self.planner_due() or self.hypotheses.waiting() or (self.race and not self.race.ended)):
            return None
        return self._new(Kind.CONFIRM, CONFIRM_HYPOTHESIS, self.base, pick_base=self.base, pick_tip=self.tip)

    def _lineages_idle(self) -> bool:
        """No kept screen waits to land, or is landing, on any lineage."""
        return all(lineage.idle() for lineage in self.lineages.values())

    def _lands_as_is(self, lineage: Lineage, kept: Kept) -> bool:
        """With merge.remeasure off, a kept commit whose parent is still the tip lands as it is."""
        if self.config.merge.remeasure or kept.parent_commit != lineage.tip:
            return False
        self._land(lineage, kept, kept.commit, remeasured=None)
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
            self.writes.append(AddPlanned(self.name, strategy, tuple(new)))
        summary = (f"planner of {strategy}: " + (f"{failure}; " if failure else "")
                   + f"{len(new)} hypothesis(es) ({', '.join(h.id for h in new) or 'none'}), {len(rejected)} line(s) "
                   f"rejected" + ("; the planner is done" if state["done"] else ""))
        now = time.time()
        self.writes.append(AddEvents(self.name, (
            *((now, None, None, "planner_rejected", f"{strategy}: rejected line {line!r}: {why}")
              for line, why in rejected), (now, None, None, "planner", summary))))
        self.say(summary)
        for line, why in rejected:
            self.say(f"planner of {strategy}: rejected {line!r}: {why}")

    # -- results -------------------------------------------------------------

    def finish(self, result: ExperimentResult) -> None:
        worker, a = self.in_flight.pop(result.experiment_id)
        self.writes.append(FinishExperiment(result))
        self._count(result.status, +1)
        for run in result.agent_runs:
            self.spend["cost_usd"] += run.spend.cost_usd or 0.0
            self.spend["tokens"] += (run.spend.input_tokens or 0) + (run.spend.output_tokens or 0)
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
                                               a.screened_experiment, a.lineage,
                                               "the reference run was off its control chart"):
                return
        if a.kind is Kind.SCREEN:
            self._on_screen(a, result)
        else:
            self._on_merge(a, result)

    def _lands(self, hypothesis: Hypothesis) -> bool:
        """Whether a kept screen of this hypothesis waits to land (an existing commit is screen-only)."""
        return self.config.merge.enabled and hypothesis.commit is None

    def _on_screen(self, a: Assignment, result: ExperimentResult) -> None:
        self._count_screen(result.experiment_id, a.hypothesis, result.status, result.effect, +1)
        self.screens_since_keep = 0 if result.status is Status.KEEP else self.screens_since_keep + 1
        self._agent_breaker(a.hypothesis.strategy, result)
        lands = self._lands(a.hypothesis)
        if result.status is Status.KEEP and lands:
            self.lineages[a.lineage].merges.add(Kept(result.experiment_id, a.hypothesis.id, result.effect,
                                                     result.commit, a.parent_commit))
        else:
            self.hypotheses.settle(a.hypothesis.id)
        if result.status in MEASURED:
            self.monitor.record_screen(a.parent_commit, result, a.hypothesis.id)
            self._check_baseline(a.parent_commit, result)

    def check_stop(self, now: float) -> None:
        """The budget and stop rules (config `budget`, `stop`). Once one is reached, no new screen starts (the
        screen budget is spent); what runs finishes, kept screens land and the final confirmation runs."""
        if self.stopped is None:
            self.stopped = self._stop_reason(now)
            if self.stopped is None:
                return
            self._event("stopped", self.stopped, now)
            self.say(f"stopping: {self.stopped}; what runs finishes, kept screens land, then the final "
                     f"confirmation")
        self.hypotheses.max_screens = min(self.hypotheses.max_screens or self.hypotheses.started,
                                          self.hypotheses.started)
        for planner in self.planners.values():
            planner["done"] = True

    def _stop_reason(self, now: float) -> str | None:
        budget, stop = self.config.budget, self.config.stop
        hours = (now - self.started_at) / 3600
        if budget.hours is not None and hours >= budget.hours:
            return f"budget.hours {budget.hours:g} reached ({hours:.2f} h)"
        if budget.experiments is not None and self.hypotheses.started >= budget.experiments:
            return f"budget.experiments {budget.experiments} reached"
        if budget.cost_usd is not None and self.spend["cost_usd"] >= budget.cost_usd:
            return f"budget.cost_usd {budget.cost_usd:g} reached (the agents reported ${self.spend['cost_usd']:.2f})"
        if budget.tokens is not None and self.spend["tokens"] >= budget.tokens:
            return f"budget.tokens {budget.tokens} reached (the agents reported {self.spend['tokens']} tokens)"
        if stop.plateau is not None and self.screens_since_keep >= stop.plateau:
            return f"plateau: none of the last {self.screens_since_keep} screens was kept (stop.plateau {stop.plateau})"
        landed = [kept.effect for kept in self.lineages[INTEGRATED].landed if kept.effect]
        effect = math.prod(landed) if landed else None
        if stop.target is not None and effect is not None and effect <= stop.target:
            return f"target reached: the landed effect {effect:.3f}x is at or below stop.target {stop.target:g}x"
        return None

    def _agent_breaker(self, strategy: str, result: ExperimentResult) -> None:
        """`command.pause_after` agent failures in a row with the same cause (a CLI that cannot log in, a
        missing tool) pause the strategy: its remaining hypotheses are skipped, one line and an `events` row."""
        command = self.config.strategy(strategy).command
        failed = result.status in (Status.CRASH, Status.TIMEOUT) and result.reason.startswith(("agent", "the agent"))
        if command is None or not failed:
            self.agent_failures.pop(strategy, None)
            return
        cause = re.sub(r"\d+", "N", result.reason)[:300]  # the same failure in another experiment or worker
        last = self.agent_failures.get(strategy)
        count = last[1] + 1 if last and last[0] == cause else 1
        self.agent_failures[strategy] = [cause, count]
        if count < command.pause_after:
            return
        skipped = self.hypotheses.drop(strategy)
        if strategy in self.planners:
            self.planners[strategy]["done"] = True
        message = (f"strategy {strategy} paused: its agent failed {count} times in a row the same way ("
                   f"{result.reason[:200]}); {len(skipped)} of its hypotheses will not run")
        self._event("paused", message)
        self.say(message)

    def _count_screen(self, experiment_id: str, hypothesis: Hypothesis, status: Status, effect: float | None,
                      step: int) -> None:
        """A screen's verdict in its category's discards and keeps (which exhaust a category) and in the race
        (which drops a stuck strategy); step -1 takes back a verdict that was voided, which counts nowhere."""
        counts = self.categories.setdefault(f"{hypothesis.strategy}|{hypothesis.category}", [0, 0])
        counts[0] += step * (status is Status.DISCARD)
        counts[1] += step * (status is Status.KEEP)
        if self.race is None:
            return
        verdict = (hypothesis.strategy, experiment_id, status is Status.KEEP, effect, self._lands(hypothesis))
        if step > 0:
            self.race.screened(*verdict)
        else:
            self.race.voided(*verdict)

    def _on_merge(self, a: Assignment, result: ExperimentResult) -> None:
        lineage = self.lineages[a.lineage]
        kept = lineage.merges.finish(a.screened_experiment)
        if result.status is Status.KEEP:
            self._land(lineage, kept, result.commit, remeasured=result)
            return
        overfits = result.reason.startswith(OVERFITS)
        vanished = result.status is Status.DISCARD and kept.parent_commit != a.parent_commit and not overfits
        why = (f"its gain vanished on top of the winners landed since it was screened (screened "
               f"{_times(kept.effect)}, re-measured {_times(result.effect)} against the tip)" if vanished
               else OVERFITS if overfits else f"{result.status.value} against the tip")
        self.writes.append(AddMerge(kept.experiment_id, self.name, None, kept.effect, result.effect,
                                    result.experiment_id, False, None, f"{why}: {result.reason}" if vanished
                                    else f"{result.status.value}: {result.reason}", lineage.name))
        self.hypotheses.settle(kept.hypothesis_id)
        self.say(f"not landed on {lineage.name}: {kept.hypothesis_id} ({why})")

    def _land(self, lineage: Lineage, kept: Kept, commit: str, remeasured: ExperimentResult | None) -> None:
        """The store records the landing; the coordinator moves the branch once that is written."""
        effect = remeasured.effect if remeasured else kept.effect
        lineage.landed.append(Kept(kept.experiment_id, kept.hypothesis_id, effect, commit, lineage.tip))
        lineage.tip = commit
        self.writes.append(AddMerge(
            kept.experiment_id, self.name, len(lineage.landed), kept.effect,
            remeasured.effect if remeasured else None, remeasured.experiment_id if remeasured else None, True,
            commit, remeasured.reason if remeasured else "parent is the tip; landed on the screening measurement",
            lineage.name))
        self.hypotheses.settle(kept.hypothesis_id)
        if self.race and not self.race.ended:
            self.race.landed(self.hypotheses.by_id[kept.hypothesis_id].strategy, effect)
        self.say(f"landed {kept.hypothesis_id} as #{len(lineage.landed)} on {self.branch(lineage.name)}: tip "
                 f"{commit[:10]}")

    def _check_baseline(self, parent: str, result: ExperimentResult) -> None:
        """(c): everyone "improves" one benchmark on this parent: rebuild the reference and measure again."""
        for benchmark, reason, experiments in self.monitor.suspect_baselines(parent, result):
            self._artifact(None, "suspect_baseline", benchmark,
                           f"parent {parent[:10]}: {reason}; rebuilding the reference and re-measuring")
            self.monitor.rebuild_everywhere(self.workers, parent)
            for experiment_id in experiments:
                if experiment_id not in self.monitor.screens.get(parent, {}):
                    continue  # voided for another benchmark of the same parent just now
                if any(experiment_id in lineage.merges.by_id and not lineage.merges.is_waiting(experiment_id)
                       for lineage in self.lineages.values()):
                    continue  # already landing or landed: its re-measurement against the tip decides
                screen = self.monitor.forget_screen(parent, experiment_id)
                status = Status(screen["status"])
                if self._measure_again(experiment_id, status, Kind.SCREEN, screen["hypothesis"], None, INTEGRATED,
                                       f"suspect baseline on {benchmark}"):
                    self._count_screen(experiment_id, self.hypotheses.by_id[screen["hypothesis"]], status,
                                       screen.get("effect"), -1)

    def _measure_again(self, experiment_id: str, status: Status, kind: Kind, hypothesis_id: str,
                       screened: str | None, lineage: str, why: str) -> bool:
        """Void a measured verdict and measure the hypothesis again, once per hypothesis. False: it was
        measured again already, and this verdict stands."""
        if hypothesis_id in self.monitor.remeasured:
            self.say(f"{experiment_id}: {why}, but {hypothesis_id} was re-measured already; verdict stands")
            return False
        self.monitor.remeasured.add(hypothesis_id)
        self.writes.append(InvalidateExperiment(experiment_id, f"invalidated: {why}"))
        self._count(status, -1)
        self._count(Status.INVALIDATED, +1)
        if kind is Kind.MERGE:
            self.lineages[lineage].merges.requeue(screened)
        else:
            for each in self.lineages.values():
                each.merges.withdraw(experiment_id)
            self.hypotheses.again(hypothesis_id)
        self.say(f"{experiment_id} {hypothesis_id}: verdict voided ({why}); measuring again")
        return True

    def _count(self, status: Status, step: int) -> None:
        self.statuses[status.value] = self.statuses.get(status.value, 0) + step

    def _artifact(self, experiment_id: str | None, kind: str, benchmark: str | None, reason: str) -> None:
        self.writes.append(AddArtifact(self.name, experiment_id, kind, benchmark, reason))
        self.say(f"ARTIFACT {kind}{' ' + benchmark if benchmark else ''}"
                 f"{' in ' + experiment_id if experiment_id else ''}: {reason}")

    def _event(self, kind: str, message: str, at: float | None = None) -> None:
        """One of the coordinator's `events` rows."""
        self.writes.append(AddEvents(self.name, ((at or time.time(), None, None, kind, message),)))

    # -- faults and stopping -------------------------------------------------

    def lose(self, experiment_id: str, why: str) -> None:
        """An attempt that will not end: `lost` in the store (its samples kept), run again under a new id.
        A lost canary is not: the worker's canary is simply due again."""
        worker, a = self.in_flight.pop(experiment_id)
        self.writes.append(MarkLost(experiment_id, why))
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
        return {"version": STATE_VERSION, "counter": self.counter, "base": self.base,
                "lineages": {name: lineage.to_dict() for name, lineage in self.lineages.items()},
                "race": self.race.to_dict() if self.race else None, "confirmation": self.confirmation,
                "statuses": self.statuses, "categories": self.categories, "hypotheses": self.hypotheses.to_dict(),
                "agent_failures": self.agent_failures, "started_at": self.started_at,
                "screens_since_keep": self.screens_since_keep, "stopped": self.stopped, "spend": self.spend,
                "planners": self.planners, "monitor": self.monitor.to_dict(),
                "in_flight": {e: [w, self._assignment_dict(a)] for e, (w, a) in self.in_flight.items()},
                "retry": [self._assignment_dict(a) for a in self.retry],
                "reserved": {w: self._assignment_dict(a) for w, a in self.reserved.items()}}

    def restore(self, data: dict) -> None:
        """The campaign as `to_dict` saved it; ValueError (one line) for a state of another version or a
        malformed one, which --resume reports instead of a traceback."""
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            version = data.get("version") if isinstance(data, dict) else None
            raise ValueError(f"stored campaign state version {version}, this farm reads "
                             f"{STATE_VERSION}; finish it with the farm version that started it, or start over "
                             f"with --fresh")
        check_state(data)
        try:
            self._restore(data)
        except (KeyError, TypeError, AttributeError, IndexError) as error:  # its own ValueErrors say what differs
            raise ValueError(f"the saved campaign state is malformed ({type(error).__name__}: {error}); start "
                             f"over with --fresh") from None

    def _restore(self, data: dict) -> None:
        self.writes.clear()  # a new campaign's opening rows: stored when it started
        self.counter, self.base = data["counter"], data["base"]
        self.lineages = {name: Lineage.from_dict(name, lineage) for name, lineage in data["lineages"].items()}
        if self.race and data["race"]:
            self.race.restore(data["race"])
        self.confirmation = data.get("confirmation")
        self.statuses = dict(data["statuses"])
        self.categories = {key: list(counts) for key, counts in data["categories"].items()}
        self.agent_failures = {key: list(value) for key, value in data.get("agent_failures", {}).items()}
        self.started_at = data.get("started_at", self.started_at)
        self.screens_since_keep = data.get("screens_since_keep", 0)
        self.stopped = data.get("stopped")
        self.spend = dict(data.get("spend", self.spend))
        self.planners.update({k: dict(v) for k, v in data.get("planners", {}).items() if k in self.planners})
        self.hypotheses.restore(data["hypotheses"])
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
                "pick_base": a.pick_base, "pick_tip": a.pick_tip, "retry_of": a.retry_of, "lineage": a.lineage}

    def _assignment(self, data: dict) -> Assignment:
        kind = Kind(data["kind"])
        fixed = {Kind.AA: AA_HYPOTHESIS, Kind.CONFIRM: CONFIRM_HYPOTHESIS}
        hypothesis = fixed[kind] if kind in fixed else self.hypotheses.by_id[data["hypothesis"]]
        return Assignment(data["experiment_id"], self.name, kind, hypothesis, data["parent_commit"], data["branch"],
                          screened_experiment=data["screened_experiment"], pick_base=data["pick_base"],
                          pick_tip=data["pick_tip"], retry_of=data["retry_of"], lineage=data["lineage"])


def _times(effect: float | None) -> str:
    return f"{effect:.3f}x" if effect else "-"
