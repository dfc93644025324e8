"""The coordinator: the Ray loop of a campaign.

It owns the store actor and the worker pool, asks the campaign (scheduler/campaign.py, no Ray) what each
idle worker runs, hands it the results and the faults, and after each of them sends the campaign's store
writes and its whole state to the store in one transaction; the integration branch follows what the store
says landed. So a coordinator killed at any moment resumes (`farm run --resume`) from the store.

Signals: the first SIGINT or SIGTERM stops assigning and lets the running experiments finish; a second one
abandons them (they are `lost`, and run again on --resume). Either way every process the campaign started
is killed, the summary is written, and the campaign is `interrupted`.
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
import pathlib
import signal
import threading
from dataclasses import dataclass, field

import ray
from ray.exceptions import RayActorError, RayTaskError

from farm.config import CampaignConfig, MeasurementMode
from farm.errors import FarmError, TargetError
from farm.hypotheses import load_hypotheses
from farm.processes import RAY_SESSION_FILE, kill_campaign_leftovers
from farm.records import Assignment, ExperimentResult, Kind, Status
from farm.target import prepare_target
from scheduler.campaign import Campaign
from scheduler.cpusets import affinity, allocate_cpu_sets, exclusive_measurement, spare_cpus
from scheduler.progress import Progress
from scheduler.store_actor import StoreActor
from scheduler.worker_pool import PoolWorker, WorkerPool
from worktrees import TargetRepo, WorktreeError

WAIT_SECONDS = 1.0  # the loop wakes at least this often to print events and notice signals


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


def claim_branches(repo: TargetRepo, campaign: str, fresh: bool) -> None:
    """A new campaign starts with no branch of its name: an earlier run's `farm/<campaign>/...` branches are
    refused, or with `fresh` moved under refs/farm-archive/<campaign>/<time>/ (kept, never overwritten)."""
    prefix = f"refs/heads/farm/{campaign}/"
    existing = repo.git("for-each-ref", "--format=%(refname)", prefix).split()
    if not existing:
        return
    if not fresh:
        raise TargetError(f"{repo.path} has {len(existing)} branch(es) farm/{campaign}/... from an earlier run; "
                          f"pass --resume to continue it or --fresh to archive them and start over")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for ref in existing:
        archived = f"refs/farm-archive/{campaign}/{stamp}/{ref[len(prefix):]}"
        repo.git("update-ref", archived, ref)
        repo.git("update-ref", "-d", ref)


class Coordinator:
    def __init__(self, config: CampaignConfig, workdir: pathlib.Path, db: pathlib.Path, workers: int | None,
                 max_experiments: int | None, echo=print, resume: bool = False, fresh: bool = False):
        self.config = config
        self.workdir = workdir
        self.db = db
        self.resume = resume
        self.progress = Progress(echo)
        self.name = config.campaign
        self.integrated = f"farm/{self.name}/integrated"
        self.repo = prepare_target(config, workdir)
        try:
            self.base_commit = self.repo.resolve(config.target.base_ref)
        except WorktreeError as error:
            raise TargetError(f"target.base_ref: {error}") from None
        if not resume:
            claim_branches(self.repo, self.name, fresh)
            self.repo.git("branch", "--no-track", self.integrated, self.base_commit)
        self.branch_tip = self.repo.resolve(f"refs/heads/{self.integrated}") if resume else self.base_commit
        self.cpu_sets = allocate_cpu_sets(workers or config.workers.count, config.workers.cpus_per_worker,
                                          None if workers else config.workers.cpu_sets)
        self.exclusive = exclusive_measurement(config.measurement.mode, self.cpu_sets)
        self.hypotheses = load_hypotheses(config)
        self.campaign = Campaign(config, self.hypotheses, self.base_commit,
                                 [f"w{i}" for i in range(len(self.cpu_sets))], max_experiments, self.progress.say)
        self.running: dict[object, tuple[PoolWorker, str]] = {}  # ObjectRef -> (worker, experiment id)
        self.signals = 0

    # -- set-up ------------------------------------------------------------

    def start(self, placement: str) -> None:
        """Start the store (and restore the campaign from it on resume) and the workers."""
        self.store = StoreActor.options(name=f"farm-store-{self.name}").remote(str(self.db), self.name)
        if self.resume:
            state = ray.get(self.store.call.remote("load_state", self.name))
            if state is None:
                raise FarmError(f"campaign {self.name!r} in {self.db} has no saved state to resume from "
                                f"(it ran with an older farm); start it over with --fresh")
            try:
                self.campaign.restore(state)
            except ValueError as error:
                raise FarmError(f"--resume: {error}") from None
            self.campaign.resume()
            ray.get(self.store.call.remote("resume_campaign", self.name))
        else:
            ray.get(self.store.call.remote(
                "start_campaign", self.name, self.config.model_dump_json(), str(self.repo.path),
                self.config.target.base_ref, self.base_commit, self.integrated, len(self.cpu_sets)))
            agents = {s.name: s.agent for s in self.config.strategies}
            ray.get(self.store.add_hypotheses.remote(self.hypotheses, agents))
        self._save()
        self.pool = WorkerPool(self.config, self.repo.path, self.workdir, self.store, self.exclusive, self.cpu_sets)
        auto = " (auto)" if self.config.measurement.mode is MeasurementMode.AUTO else ""
        measurement = ("exclusive: one worker of a node measures at a time, no build or guard meanwhile"
                       if self.exclusive else "parallel")
        resumed = (f"resumed at experiment {self.campaign.counter}, {len(self.campaign.landed)} landed, "
                   f"{len(self.campaign.retry)} to run again; " if self.resume else "")
        self.progress.say(f"campaign {self.name}: {resumed}{len(self.hypotheses)} hypotheses, {len(self.cpu_sets)} "
                          f"workers on CPU sets {[list(c) for c in self.cpu_sets]}, base {self.base_commit[:10]}, "
                          f"store {self.db}; {placement}; measurement{auto} {measurement}")

    def _save(self) -> None:
        """The campaign's writes and state to the store in one transaction; then the branch follows."""
        ray.get(self.store.apply.remote(self.campaign.take_writes(), self.campaign.to_dict()))
        if self.campaign.tip != self.branch_tip:
            self.repo.git("update-ref", f"refs/heads/{self.integrated}", self.campaign.tip)
            self.branch_tip = self.campaign.tip

    # -- the loop ----------------------------------------------------------

    def run(self, placement: str) -> CampaignSummary:
        status = "failed"
        with self._signals():
            self.start(placement)
            try:
                self._loop()
                status = "interrupted" if self.signals else "finished"
            finally:
                if self.signals >= 2 or status == "failed":
                    self.campaign.abandon("abandoned: " + ("a second interrupt" if self.signals >= 2 else
                                                           "the campaign failed"))
                killed = self.pool.kill_all()
                if killed:
                    self.progress.say(f"killed {killed} leftover process(es) of the campaign")
                self._save()
                self._print_events()
                ray.get(self.store.call.remote("finish_campaign", self.name, status))
                ray.get(self.store.close.remote())
        return CampaignSummary(self.name, self.db, self.workdir, self.repo.path, self.integrated,
                               self.base_commit, self.campaign.tip, dict(self.campaign.statuses),
                               list(self.campaign.landed), status == "interrupted")

    def _loop(self) -> None:
        while self.signals < 2:
            self._assign_idle()
            if not self.running:
                blocked = self.campaign.blocked()
                if blocked:
                    raise FarmError(f"hypotheses wait on others that never settle: {', '.join(blocked)}")
                return
            ready, _ = ray.wait(list(self.running), num_returns=1, timeout=WAIT_SECONDS)
            self._print_events()
            for ref in ready:
                self._collect(ref)

    def _assign_idle(self) -> None:
        """Every idle worker gets the campaign's next experiment for it, if any."""
        for worker in self.pool.idle():
            assignment = self.campaign.assign(worker.name, worker.cpus)
            if assignment is None:
                continue
            self._save()  # recorded as running before it runs
            ref = worker.actor.run.remote(assignment)
            worker.busy = ref
            self.running[ref] = (worker, assignment.experiment_id)
            self.progress.say(f"{worker.name} {assignment.experiment_id} {assignment.hypothesis.id}: "
                              f"{_describe(assignment)} (parent {assignment.parent_commit[:10]})")

    def _collect(self, ref) -> None:
        worker, experiment_id = self.running.pop(ref)
        worker.busy = None
        try:
            result = ray.get(ref)
        except RayActorError as error:
            self.campaign.lose(experiment_id, f"worker {worker.name} died: {type(error).__name__}")
            if not self.pool.replace(worker):
                self.progress.say(f"{worker.name} died {worker.restarts + 1} times; not restarted")
                self.campaign.lose_worker(worker.name)
                if not self.pool.workers:
                    raise FarmError("every worker died; see the logs in the workdir") from None
            self._save()
            return
        except RayTaskError as error:
            result = _internal_error(worker, experiment_id, error)
        self.campaign.finish(result)
        self._save()

    def _print_events(self) -> None:
        self.progress.events(ray.get(self.store.drain_events.remote()))

    @contextlib.contextmanager
    def _signals(self):
        """SIGINT/SIGTERM: the first stops assigning, the second abandons what runs (see the module doc)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum, _frame):
            self.signals += 1
            self.campaign.stopping = True
            what = ("no new experiments; waiting for the running ones (again to abandon them)" if self.signals == 1
                    else "abandoning the running experiments")
            self.progress.say(f"{signal.Signals(signum).name}: {what}")

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _describe(assignment: Assignment) -> str:
    return {Kind.MERGE: "re-measure on tip", Kind.SCREEN: "screen", Kind.AA: "A/A canary"}[assignment.kind] + \
        (f", again after {assignment.retry_of}" if assignment.retry_of else "")


def _internal_error(worker: PoolWorker, experiment_id: str, error: Exception) -> ExperimentResult:
    """A bug in the farm while running an experiment: recorded as a crash, the campaign goes on."""
    last = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    now = datetime.datetime.now().timestamp()
    return ExperimentResult(experiment_id, Status.CRASH, f"internal error in the farm: {last}", worker.name,
                            worker.cpus, now, now)


def run_campaign(config: CampaignConfig, workdir: pathlib.Path, db: pathlib.Path, *, workers: int | None = None,
                 address: str | None = None, max_experiments: int | None = None, echo=print, resume: bool = False,
                 fresh: bool = False) -> CampaignSummary:
    """Run a whole campaign on Ray (local unless `address` or RAY_ADDRESS names a cluster); `resume`
    continues the one in `db`; `fresh` archives an earlier run's branches in the target repository.

    Starting a local Ray, the driver moves to the CPUs no worker owns first, so that Ray's daemons, the store
    actor and the worker actors (which inherit its affinity) stay off the benchmark CPUs; its affinity is
    restored afterwards. Without a spare CPU it is left alone.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    leftovers = kill_campaign_leftovers(config.campaign, workdir)
    if leftovers:
        echo(f"killed {leftovers} process(es) left running by an earlier run of {config.campaign}")
    coordinator = Coordinator(config, workdir, db, workers, max_experiments, echo, resume=resume, fresh=fresh)
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
            context = ray.init(address=address, include_dashboard=False, log_to_driver=False,
                               logging_level=logging.WARNING, namespace="autoresearch-farm")
            stack.callback(ray.shutdown)
            if not address:  # a local Ray of this driver: the next run kills what a killed driver left of it
                (workdir / RAY_SESSION_FILE).write_text(context.address_info["session_dir"])
        return coordinator.run(placement)
