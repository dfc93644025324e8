"""The coordinator: assigns experiments to worker actors, lands kept ones.

Runs in the driver process. Screening experiments start from the current
integration tip; kept ones wait in the merge queue, largest effect first, and
land one at a time after a re-measurement against the tip (a MERGE
experiment), so the integration branch only ever moves forward by commits
that were measured against exactly the commit they land on.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import pathlib
import time
from dataclasses import dataclass, field, replace

import ray
from ray.exceptions import RayActorError, RayTaskError

import cpp_fixture
from farm.config import CampaignConfig, MeasurementMode
from farm.errors import FarmError, TargetError
from farm.hypotheses import load_hypotheses
from farm.records import Assignment, ExperimentResult, Hypothesis, Kind, Status
from scheduler.cpusets import affinity, allocate_cpu_sets, exclusive_measurement, spare_cpus
from scheduler.store_actor import StoreActor
from scheduler.worker import WorkerActor
from stats.artifacts import canary_alarm, control_chart, suspect_baseline
from stats.noise import build_bias, robust_noise
from worktrees import TargetRepo, WorktreeError

MAX_WORKER_RESTARTS = 3
AA_HYPOTHESIS = Hypothesis(id="aa", strategy="farm", category="canary", agent="aa",
                           text="A/A: the parent against a second build of itself (build bias and false-positive canary)",
                           patch="")
MEASURED = (Status.KEEP, Status.DISCARD)


@dataclass
class CampaignSummary:
    campaign: str
    db: pathlib.Path
    workdir: pathlib.Path
    repo: pathlib.Path
    integrated_branch: str
    base_commit: str
    tip: str
    statuses: dict[str, int] = field(default_factory=dict)
    landed: list[str] = field(default_factory=list)
    interrupted: bool = False


@dataclass
class _Worker:
    name: str
    cpus: tuple[int, ...]
    actor: object
    restarts: int = 0
    busy: object = None  # the ObjectRef of the running experiment


@dataclass
class _Kept:
    result: ExperimentResult
    assignment: Assignment


from farm.target import prepare_target


class Coordinator:
    def __init__(self, config: CampaignConfig, workdir: pathlib.Path, db: pathlib.Path, workers: int | None,
                 max_experiments: int | None, echo=print):
        self.config = config
        self.workdir = workdir
        self.db = db
        self.echo = echo
        self.max_experiments = max_experiments
        self.campaign = config.campaign
        self.integrated = f"farm/{self.campaign}/integrated"
        self.repo = prepare_target(config, workdir)
        try:
            self.base_commit = self.repo.resolve(config.target.base_ref)
        except WorktreeError as error:
            raise TargetError(f"target.base_ref: {error}") from None
        self.tip = self.repo.ensure_branch(self.integrated, self.base_commit)
        self.cpu_sets = allocate_cpu_sets(workers or config.workers.count, config.workers.cpus_per_worker,
                                          None if workers else config.workers.cpu_sets)
        self.exclusive = exclusive_measurement(config.measurement.mode, self.cpu_sets)
        self.hypotheses = load_hypotheses(config)
        self.pending: list[Hypothesis] = list(self.hypotheses)
        self.settled: set[str] = set()  # hypothesis ids whose outcome (and merge) is final
        self.merge_queue: list[_Kept] = []
        self.kept_by_id: dict[str, _Kept] = {}  # screened experiment id -> its kept result
        self.retry: list[Assignment] = []  # assignments of workers that died
        self.merge_in_flight = False
        self.in_flight: dict[object, tuple[_Worker, Assignment]] = {}
        self.counter = 0
        self.screens_started = 0
        self.landed: list[str] = []
        self.statuses: dict[str, int] = {}
        self.started = time.monotonic()
        self.stopping = False
        # Acceptance state: A/A log ratios per worker and benchmark, canary counts per worker,
        # reference-arm history per (worker, parent, benchmark), screening ratios per parent.
        self.aa_logs: dict[str, dict[str, list[float]]] = {}
        self.bias_logs: dict[str, dict[str, list[float]]] = {}  # the same, of targets that build something
        self.reserved: dict[str, Assignment] = {}  # held for a worker while it runs its canary
        self.since_canary: dict[str, int] = {}
        self.canaries: dict[str, list[int]] = {}  # worker -> [canaries, false positives]
        self.ref_history: dict[tuple[str, str, str], list[float]] = {}
        self.screens_on: dict[str, dict[str, tuple[Assignment, ExperimentResult]]] = {}  # parent -> exp -> ...
        self.suspected: set[tuple[str, str]] = set()
        self.alarmed: set[str] = set()
        self.remeasured: set[str] = set()  # hypothesis ids already re-measured after an artifact
        self.rebuild_ref: set[tuple[str, str]] = set()

    # -- set-up ------------------------------------------------------------

    def start(self, placement: str) -> None:
        """Start the store and the workers; `placement` says where the farm's own processes run."""
        self.store = StoreActor.options(name=f"farm-store-{self.campaign}").remote(str(self.db), self.campaign)
        ray.get(self.store.call.remote(
            "start_campaign", self.campaign, self.config.model_dump_json(), str(self.repo.path),
            self.config.target.base_ref, self.base_commit, self.integrated, len(self.cpu_sets)))
        agents = {s.name: s.agent for s in self.config.strategies}
        ray.get(self.store.add_hypotheses.remote(self.hypotheses, agents))
        self.workers = [self._spawn(f"w{i}", cpus) for i, cpus in enumerate(self.cpu_sets)]
        auto = " (auto)" if self.config.measurement.mode is MeasurementMode.AUTO else ""
        measurement = ("exclusive: one worker of a node measures at a time, no build or guard meanwhile"
                       if self.exclusive else "parallel")
        self.say(f"campaign {self.campaign}: {len(self.hypotheses)} hypotheses, {len(self.workers)} workers on CPU "
                 f"sets {[list(c) for c in self.cpu_sets]}, base {self.base_commit[:10]}, store {self.db}; "
                 f"{placement}; measurement{auto} {measurement}")

    def _spawn(self, name: str, cpus: tuple[int, ...], restarts: int = 0) -> _Worker:
        actor = WorkerActor.options(name=f"farm-{self.campaign}-{name}-{restarts}").remote(
            name, cpus, self.config, str(self.repo.path), str(self.workdir / "workers"), self.store, self.exclusive)
        return _Worker(name, cpus, actor, restarts)

    def say(self, message: str) -> None:
        self.echo(f"[{time.monotonic() - self.started:6.0f}s] {message}")

    # -- assignment --------------------------------------------------------

    def _next_id(self) -> str:
        self.counter += 1
        return f"{self.campaign}-{self.counter:04d}"

    def _next_hypothesis(self) -> Hypothesis | None:
        if self.stopping or (self.max_experiments is not None and self.screens_started >= self.max_experiments):
            return None
        for hypothesis in self.pending:
            if hypothesis.after is None or hypothesis.after in self.settled:
                self.pending.remove(hypothesis)
                return hypothesis
        return None

    def _next_assignment(self) -> Assignment | None:
        if self.merge_queue and not self.merge_in_flight:
            self.merge_queue.sort(key=lambda kept: kept.result.effect or 1.0)
            kept = self.merge_queue.pop(0)
            landed = self._land_without_remeasure(kept)
            if not landed:
                exp = self._next_id()
                self.merge_in_flight = True
                return Assignment(exp, self.campaign, Kind.MERGE, kept.assignment.hypothesis, self.tip,
                                  f"farm/{self.campaign}/{exp}", screened_experiment=kept.result.experiment_id,
                                  pick_base=kept.assignment.parent_commit, pick_tip=kept.result.commit)
        hypothesis = self._next_hypothesis()
        if hypothesis is None:
            return None
        self.screens_started += 1
        exp = self._next_id()
        return Assignment(exp, self.campaign, Kind.SCREEN, hypothesis, self.tip, f"farm/{self.campaign}/{exp}")

    def _land_without_remeasure(self, kept: _Kept) -> bool:
        """With merge.remeasure off, a kept commit whose parent is still the tip lands as it is."""
        if self.config.merge.remeasure or kept.assignment.parent_commit != self.tip:
            return False
        self._advance(kept.result.commit, kept, remeasured=None)
        return True

    def _dispatch(self, worker: _Worker, assignment: Assignment) -> None:
        key = (worker.name, assignment.parent_commit)
        assignment = replace(assignment, build_bias=self._build_bias(worker), rebuild_ref=key in self.rebuild_ref)
        self.rebuild_ref.discard(key)
        ray.get(self.store.call.remote(
            "start_experiment", assignment.experiment_id, self.campaign, assignment.hypothesis,
            assignment.kind.value, assignment.parent_commit, assignment.branch, worker.name, worker.cpus,
            assignment.screened_experiment))
        ref = worker.actor.run.remote(assignment)
        worker.busy = ref
        self.in_flight[ref] = (worker, assignment)
        what = {Kind.MERGE: "re-measure on tip", Kind.SCREEN: "screen", Kind.AA: "A/A canary"}[assignment.kind]
        self.say(f"{worker.name} {assignment.experiment_id} {assignment.hypothesis.id}: {what} "
                 f"(parent {assignment.parent_commit[:10]})")

    def _fill_idle_workers(self) -> None:
        for worker in self.workers:
            if worker.busy is not None:
                continue
            if worker.name in self.reserved:
                assignment = self.reserved.pop(worker.name)
            else:
                assignment = self.retry.pop(0) if self.retry else self._next_assignment()
            if assignment is None:
                return
            if self._canary_due(worker):
                self.reserved[worker.name] = assignment
                exp = self._next_id()
                assignment = Assignment(exp, self.campaign, Kind.AA, AA_HYPOTHESIS, assignment.parent_commit,
                                        f"farm/{self.campaign}/{exp}")
            self._dispatch(worker, assignment)

    def _canary_due(self, worker: _Worker) -> bool:
        """A/A before a worker's first experiment, and again every canary_every experiments."""
        return (worker.name not in self.aa_logs
                or self.since_canary.get(worker.name, 0) >= self.config.acceptance.canary_every)

    def _build_bias(self, worker: _Worker) -> tuple[tuple[str, float], ...]:
        """The worker's build-to-build bias per benchmark, counted into the floor: pooled over its canaries
        (none for a target that builds nothing)."""
        return tuple((name, float(build_bias(logs)[2]))
                     for name, logs in sorted(self.bias_logs.get(worker.name, {}).items()) if len(logs) >= 3)

    # -- results -----------------------------------------------------------

    def _advance(self, commit: str, kept: _Kept, remeasured: ExperimentResult | None) -> None:
        self.repo.advance_branch(self.integrated, commit, self.tip)
        self.tip = commit
        self.landed.append(kept.result.experiment_id)
        ray.get(self.store.call.remote(
            "add_merge", kept.result.experiment_id, self.campaign, len(self.landed), kept.result.effect,
            remeasured.effect if remeasured else None, remeasured.experiment_id if remeasured else None, True,
            commit, remeasured.reason if remeasured else "parent is the tip; landed on the screening measurement"))
        self.settled.add(kept.assignment.hypothesis.id)
        self.say(f"landed {kept.assignment.hypothesis.id} as #{len(self.landed)}: integrated tip {commit[:10]}")

    def _on_result(self, worker: _Worker, assignment: Assignment, result: ExperimentResult) -> None:
        ray.get(self.store.finish_experiment.remote(result))
        self._count(result.status, +1)
        effect = f" effect {result.effect:.3f}x" if result.effect else ""
        self.say(f"{worker.name} {result.experiment_id} {assignment.hypothesis.id}: {result.status.value.upper()}"
                 f"{effect} -- {result.reason}")
        for kind, benchmark, reason in result.artifacts:
            self._artifact(result.experiment_id, kind, benchmark, reason)
        if assignment.kind is Kind.AA:
            self._on_canary(worker, assignment, result)
            return
        self.since_canary[worker.name] = self.since_canary.get(worker.name, 0) + 1
        if result.status in MEASURED and self._off_control_chart(worker, assignment, result):
            return
        if assignment.kind is Kind.SCREEN:
            if result.status is Status.KEEP and self.config.merge.enabled:
                kept = _Kept(result, assignment)
                self.kept_by_id[result.experiment_id] = kept
                self.merge_queue.append(kept)
            else:
                self.settled.add(assignment.hypothesis.id)
            if result.status in MEASURED:
                self.screens_on.setdefault(assignment.parent_commit, {})[result.experiment_id] = (assignment, result)
                self._check_baseline(assignment.parent_commit, result)
            return
        self.merge_in_flight = False
        kept = self.kept_by_id[assignment.screened_experiment]
        if result.status is Status.KEEP:
            self._advance(result.commit, kept, remeasured=result)
        else:
            ray.get(self.store.call.remote(
                "add_merge", kept.result.experiment_id, self.campaign, None, kept.result.effect, result.effect,
                result.experiment_id, False, None, f"{result.status.value}: {result.reason}"))
            self.settled.add(assignment.hypothesis.id)
            self.say(f"not landed: {assignment.hypothesis.id} ({result.status.value} against the tip)")

    def _count(self, status: Status, step: int) -> None:
        self.statuses[status.value] = self.statuses.get(status.value, 0) + step

    def _artifact(self, experiment_id: str | None, kind: str, benchmark: str | None, reason: str) -> None:
        ray.get(self.store.call.remote("add_artifact", self.campaign, experiment_id, kind, benchmark, reason))
        self.say(f"ARTIFACT {kind}{' ' + benchmark if benchmark else ''}"
                 f"{' in ' + experiment_id if experiment_id else ''}: {reason}")

    def _on_canary(self, worker: _Worker, assignment: Assignment, result: ExperimentResult) -> None:
        """(a): pool the A/A log ratios (and, when something is built, the build bias); alarm on too many
        false positives."""
        # Every target: two checkouts of the same pure-Python source ran 18 % apart for a whole experiment here.
        for pool in (self.aa_logs, self.bias_logs):
            logs = pool.setdefault(worker.name, {})
            for name, values in result.aa_log_ratios:
                logs.setdefault(name, []).extend(values)
        self.since_canary[worker.name] = 0
        counts = self.canaries.setdefault(worker.name, [0, 0])
        counts[0] += 1
        counts[1] += result.status is Status.AA_FALSE_POSITIVE
        reason = canary_alarm(counts[1], counts[0], self.config.acceptance.alpha)
        if reason and worker.name not in self.alarmed:
            self.alarmed.add(worker.name)
            self._artifact(result.experiment_id, "canary", None, f"worker {worker.name}: {reason}")

    def _off_control_chart(self, worker: _Worker, assignment: Assignment, result: ExperimentResult) -> bool:
        """(b): a reference arm far from its history on this parent and worker voids the verdict."""
        noise = {name: robust_noise(logs) for name, logs in self.aa_logs.get(worker.name, {}).items()}
        flagged = []
        for name, value in result.ref_means:
            history = self.ref_history.setdefault((worker.name, assignment.parent_commit, name), [])
            reason = control_chart(history, value, min_spread=max(noise.get(name, 0.0) or 0.0, 0.002))
            if reason:
                flagged.append((name, reason))
            history.append(value)  # the median ignores one outlier but follows a lasting change of the machine
        if not flagged:
            return False
        for name, reason in flagged:
            self._artifact(result.experiment_id, "control_chart", name, reason)
        self._remeasure(assignment, result, "the reference run was off its control chart")
        return True

    def _check_baseline(self, parent: str, result: ExperimentResult) -> None:
        """(c): everyone "improves" one benchmark on this parent: rebuild the reference and re-decide."""
        finished = self.screens_on.get(parent, {})
        for d in result.decisions:
            if (parent, d.benchmark) in self.suspected:
                continue
            ratios = {exp: next((x.ratio for x in r.decisions if x.benchmark == d.benchmark), math.nan)
                      for exp, (_, r) in finished.items()}
            changed = {exp: frozenset(r.changed_paths) for exp, (_, r) in finished.items()}
            reason = suspect_baseline(ratios, changed, d.effect_floor)
            if not reason:
                continue
            self.suspected.add((parent, d.benchmark))
            self._artifact(None, "suspect_baseline", d.benchmark, f"parent {parent[:10]}: {reason}; rebuilding "
                                                                  f"the reference and re-measuring")
            self.rebuild_ref.update((w.name, parent) for w in self.workers)
            queued = {k.result.experiment_id for k in self.merge_queue}
            for exp, (a, r) in list(finished.items()):
                if exp in self.kept_by_id and exp not in queued:
                    continue  # already landing or landed: its re-measurement against the tip decides
                del finished[exp]
                self._remeasure(a, r, f"suspect baseline on {d.benchmark}")

    def _remeasure(self, assignment: Assignment, result: ExperimentResult, why: str) -> None:
        """Void a measured verdict and measure the hypothesis again (once per hypothesis)."""
        hypothesis = assignment.hypothesis
        if hypothesis.id in self.remeasured:
            self.say(f"{result.experiment_id}: {why}, but {hypothesis.id} was re-measured already; verdict stands")
            if assignment.kind is Kind.SCREEN and result.status is not Status.KEEP:
                self.settled.add(hypothesis.id)
            return
        self.remeasured.add(hypothesis.id)
        ray.get(self.store.call.remote("invalidate_experiment", result.experiment_id, f"invalidated: {why}"))
        self._count(result.status, -1)
        self._count(Status.INVALIDATED, +1)
        if assignment.kind is Kind.MERGE:
            self.merge_in_flight = False
            self.merge_queue.append(self.kept_by_id[assignment.screened_experiment])
        else:
            self.merge_queue = [k for k in self.merge_queue if k.result.experiment_id != result.experiment_id]
            self.settled.discard(hypothesis.id)
            self.pending.insert(0, hypothesis)
        self.say(f"{result.experiment_id} {hypothesis.id}: verdict voided ({why}); measuring again")

    def _on_lost_worker(self, worker: _Worker, assignment: Assignment, error: Exception) -> None:
        """A worker died mid-experiment: forget its partial samples, re-queue, replace the worker."""
        ray.get(self.store.call.remote("requeue_experiment", assignment.experiment_id,
                                       f"worker {worker.name} died: {type(error).__name__}"))
        self.say(f"{worker.name} died during {assignment.experiment_id}; re-queued")
        index = self.workers.index(worker)
        if worker.restarts >= MAX_WORKER_RESTARTS:
            self.say(f"{worker.name} died {worker.restarts + 1} times; not restarted")
            self.workers.pop(index)
            if not self.workers:
                raise FarmError("every worker died; see the logs in the workdir")
        else:
            self.workers[index] = self._spawn(worker.name, worker.cpus, worker.restarts + 1)
        self.retry.append(assignment)

    # -- the loop ----------------------------------------------------------

    def run(self, placement: str) -> CampaignSummary:
        self.start(placement)
        interrupted = False
        try:
            self._loop()
        except KeyboardInterrupt:
            interrupted = True
            self.say("interrupted: no new experiments; abandoning the ones in flight")
            for worker, assignment in self.in_flight.values():
                ray.kill(worker.actor)
                ray.get(self.store.call.remote("requeue_experiment", assignment.experiment_id,
                                               "abandoned: campaign interrupted"))
        finally:
            self._print_events()
            ray.get(self.store.call.remote("finish_campaign", self.campaign,
                                           "interrupted" if interrupted else "finished"))
            ray.get(self.store.close.remote())
        return CampaignSummary(self.campaign, self.db, self.workdir, self.repo.path, self.integrated,
                               self.base_commit, self.tip, dict(self.statuses), list(self.landed), interrupted)

    def _loop(self) -> None:
        while True:
            self._fill_idle_workers()
            if not self.in_flight:
                if self.pending and not self.stopping and (self.max_experiments is None
                                                          or self.screens_started < self.max_experiments):
                    blocked = ", ".join(f"{h.id} (after {h.after})" for h in self.pending)
                    raise FarmError(f"hypotheses wait on others that never settle: {blocked}")
                return
            ready, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=1.0)
            self._print_events()
            for ref in ready:
                worker, assignment = self.in_flight.pop(ref)
                worker.busy = None
                try:
                    result = ray.get(ref)
                except RayActorError as error:
                    self._on_lost_worker(worker, assignment, error)
                    continue
                except RayTaskError as error:
                    result = _internal_error(worker, assignment, error)
                self._on_result(worker, assignment, result)

    def _print_events(self) -> None:
        for _at, worker, experiment_id, kind, message in ray.get(self.store.drain_events.remote()):
            if kind in ("build", "guard", "measure"):
                self.say(f"{worker} {experiment_id}: {message}")


def _internal_error(worker: _Worker, assignment: Assignment, error: Exception) -> ExperimentResult:
    """A bug in the farm while running an experiment: recorded as a crash, the campaign goes on."""
    last = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    now = time.time()
    return ExperimentResult(assignment.experiment_id, Status.CRASH, f"internal error in the farm: {last}",
                            worker.name, worker.cpus, now, now)


def run_campaign(config: CampaignConfig, workdir: pathlib.Path, db: pathlib.Path, *, workers: int | None = None,
                 address: str | None = None, max_experiments: int | None = None, echo=print) -> CampaignSummary:
    """Run a whole campaign on Ray (local unless `address` or RAY_ADDRESS names a cluster).

    Starting a local Ray, the driver moves to the CPUs no worker owns first, so that Ray's daemons, the store
    actor and the worker actors (which inherit its affinity) stay off the benchmark CPUs; its affinity is
    restored afterwards. Without a spare CPU it is left alone.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    coordinator = Coordinator(config, workdir, db, workers, max_experiments, echo)
    address = address or os.environ.get("RAY_ADDRESS")
    started_ray = not ray.is_initialized()
    spare = spare_cpus(coordinator.cpu_sets) if started_ray and not address else []
    if not started_ray or address:
        placement = "the farm's own processes not placed (Ray was not started here by this campaign)"
    elif spare:
        placement = f"Ray and the farm's own processes on spare CPU(s) {spare}"
    else:
        placement = "no spare CPU: Ray and the farm's own processes share the workers' CPUs"
    with contextlib.ExitStack() as stack:  # unwinds in reverse: Ray stops before the affinity is restored
        if spare:
            stack.enter_context(affinity(spare))
        if started_ray:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                     namespace="autoresearch-farm")
            stack.callback(ray.shutdown)
        return coordinator.run(placement)

