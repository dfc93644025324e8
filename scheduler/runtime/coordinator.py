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

import concurrent.futures
import contextlib
import datetime
import logging
import os
import pathlib
import signal
import threading
import time
from dataclasses import dataclass, field, replace

import ray
from ray.exceptions import RayActorError, RayTaskError

from farm.campaign_file.config import CampaignConfig, MeasurementMode
from farm.campaign_file.hypotheses import load_hypotheses
from farm.campaign_file.target import prepare_target
from farm.coding_agents import agents, memory
from farm.coding_agents.planner import Plan, run_planner
from farm.errors import FarmError, TargetError
from farm.node import sandbox
from farm.node.cpusets import affinity, available_cpus, spare_cpus
from farm.node.processes import RAY_SESSION_FILE, campaign_tag, kill_campaign_leftovers, kill_tagged, run_key
from farm.records import INTEGRATED, Assignment, ExperimentResult, Kind, Status
from farm.storage.live import LiveState, board_phases
from farm.storage.spool import Spool, spool_directory
from farm.storage.store_writes import AddHypotheses, FinishCampaign, MarkLost, ResumeCampaign, StartCampaign
from scheduler.campaign import Campaign
from scheduler.progress import Progress
from scheduler.runtime.nodes import Place, cluster_nodes, local_node, on_node, place_workers
from scheduler.runtime.store_actor import StoreActor
from scheduler.runtime.worker_pool import PoolWorker, WorkerPool, kill_on_nodes
from worktrees import TargetRepo, WorktreeError
from worktrees.transport import NodeCommits, fetch_bundle

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


def claim_branches(repo: TargetRepo, campaign: str, fresh: bool, check_only: bool = False) -> None:
    """A new campaign starts with no branch of its name: an earlier run's `farm/<campaign>/...` branches are
    refused, or with `fresh` moved under refs/farm-archive/<campaign>/<time>/ (kept, never overwritten);
    `check_only`: refuse, but move nothing yet."""
    prefix = f"refs/heads/farm/{campaign}/"
    existing = repo.git("for-each-ref", "--format=%(refname)", prefix).split()
    if not existing or (fresh and check_only):
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
                 max_experiments: int | None, echo=print, resume: bool = False, fresh: bool = False,
                 live: bool = False, places: list[Place] | None = None):
        """`places`: where each worker runs (scheduler/runtime/nodes.py); default, this machine's CPUs."""
        self.config = config
        self.workdir = workdir
        self.db = db
        self.resume = resume
        self.progress = Progress(echo, live)
        self.name = config.campaign
        self.integrated = f"farm/{self.name}/integrated"
        self.repo = prepare_target(config, workdir)
        try:
            self.base_commit = self.repo.resolve(config.target.base_ref)
        except WorktreeError as error:
            raise TargetError(f"target.base_ref: {error}") from None
        self.fresh = fresh
        if not resume:
            claim_branches(self.repo, self.name, fresh, check_only=True)  # refused before anything starts
        # Where each lineage's branch is (the integration branch, and in race mode one per strategy); a lineage
        # missing here has no branch yet.
        self.branch_tips: dict[str, str] = {}
        self.places = places or place_workers([local_node()], workers or config.workers.count,
                                              config.workers.cpus_per_worker,
                                              None if workers else config.workers.cpu_sets, config.measurement.mode)
        self.cpu_sets = [p.cpus for p in self.places if p.node.hub]  # this machine's worker CPUs
        self.hypotheses = load_hypotheses(config, self.repo)
        self.campaign = Campaign(config, self.hypotheses, self.base_commit,
                                 [p.worker for p in self.places], max_experiments, self.progress.say)
        # The Ray side of what runs: ObjectRef of a worker's run -> (experiment id, when it was sent). Which
        # worker runs which assignment is the campaign's (Campaign.in_flight), saved with its state.
        self.running: dict[object, tuple[str, float]] = {}
        self.signals = 0
        # A planner runs in a thread of the driver (it waits on a command), one at a time: (strategy, future).
        self.planner_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="farm-planner")
        self.planning: tuple[str, concurrent.futures.Future[Plan]] | None = None

    # -- set-up ------------------------------------------------------------

    def start(self, placement: str) -> None:
        """Start the store (and restore the campaign from it on resume) and the workers."""
        # The store actor stays on this node, with the DuckDB file.
        here = ray.get_runtime_context().get_node_id()
        spool = Spool(spool_directory(self.db, self.name))
        if not self.resume:
            spool.clear()  # a killed run's, whose experiment ids this one uses again
        self.store = StoreActor.options(name=f"farm-store-{self.name}", **on_node(here)).remote(str(self.db),
                                                                                                  self.name)
        if self.resume:
            state = ray.get(self.store.load_state.remote())
            if state is None:
                raise FarmError(f"campaign {self.name!r} in {self.db} has no saved state to resume from "
                                f"(it ran with an older farm); start it over with --fresh")
            self.base_commit = ray.get(self.store.query.remote(
                "SELECT base_commit FROM campaigns WHERE id = ?", [self.name]))[1][0][0]
            try:
                self.campaign.restore(state)
            except ValueError as error:
                raise FarmError(f"--resume: {error}") from None
            self.campaign.resume()
            self.progress.events(ray.get(self.store.apply.remote([ResumeCampaign(self.name)], None)))
            self.branch_tips = self._branches()
        else:
            # The campaign's row, its hypotheses and its first state land together; the branches only after.
            self.campaign.writes[:0] = [
                StartCampaign(self.name, self.config.model_dump_json(), str(self.repo.path),
                              self.config.target.base_ref, self.base_commit, self.integrated, len(self.places)),
                AddHypotheses(self.name, tuple(self.hypotheses), {s.name: s.agent for s in self.config.strategies})]
            # So that _save leaves the branches alone: made just below.
            self.branch_tips = dict.fromkeys(self.campaign.lineages, self.base_commit)
        self._save()
        if not self.resume:
            self.create_branches()
        self.commits = NodeCommits(self.repo)
        self.pool = WorkerPool(self.config, self.repo.path, self.workdir, self.store, spool.directory, self.places,
                               self.commits)
        auto = " (auto)" if self.config.measurement.mode is MeasurementMode.AUTO else ""
        exclusive = {p.exclusive for p in self.places}
        measurement = ("per node" if len(exclusive) > 1 else
                       "exclusive: one worker of a node measures at a time, no build or guard meanwhile"
                       if exclusive == {True} else "parallel")
        resumed = (f"resumed at experiment {self.campaign.counter}, {len(self.campaign.landed)} landed, "
                   f"{len(self.campaign.retry)} to run again; " if self.resume else "")
        self.progress.say(f"campaign {self.name}: {resumed}{len(self.hypotheses)} hypotheses, {len(self.places)} "
                          f"workers {_describe_places(self.places)}, base {self.base_commit[:10]}, "
                          f"store {self.db}; {placement}; measurement{auto} {measurement}")

    def create_branches(self) -> None:
        """A new campaign's integration branch (and race lineages) at the base (an earlier run's branches
        archived with --fresh)."""
        claim_branches(self.repo, self.name, self.fresh)
        for lineage in self.campaign.lineages:
            self.repo.git("branch", "--no-track", self.campaign.branch(lineage), self.base_commit)
            self.branch_tips[lineage] = self.base_commit

    def _branches(self) -> dict[str, str]:
        tips = {}
        for lineage in self.campaign.lineages:
            with contextlib.suppress(WorktreeError):  # the driver died before it made the branch: _save makes it
                tips[lineage] = self.repo.resolve(f"refs/heads/{self.campaign.branch(lineage)}")
        return tips

    def _save(self) -> None:
        """The campaign's writes and state to the store in one transaction; then the branches follow."""
        self._saved(self._send_save())

    def _send_save(self):
        """Send the campaign's writes and the state they lead to (one transaction in the store actor); returns
        what _saved waits for. Experiment ids handed out after this save was sent and before it was stored are
        never handed out again if the driver dies in between: the stored counter is ahead by one experiment per
        worker, the most one turn assigns (--resume skips those ids)."""
        state = self.campaign.to_dict()
        state["counter"] += len(self.places)
        pending = self.store.apply.remote(list(self.campaign.writes), state)
        self.campaign.writes.clear()  # a write the store refuses fails the campaign (_saved raises)
        return pending

    def _saved(self, pending) -> None:
        """Wait for a save; print the events it brought; move the branches to the stored tips."""
        self.progress.events(ray.get(pending))
        for name, lineage in self.campaign.lineages.items():
            old = self.branch_tips.get(name)
            if lineage.tip != old:
                # Compare-and-swap: a branch someone else moved meanwhile is an error (one line), not overwritten.
                self.repo.advance_branch(self.campaign.branch(name), lineage.tip, old or "")
                self.branch_tips[name] = lineage.tip

    # -- the loop ----------------------------------------------------------

    def run(self, placement: str) -> CampaignSummary:
        status = "failed"
        with self._signals():
            self.start(placement)
            try:
                self._loop()
                status = "interrupted" if self.signals else "finished"
            finally:
                self._stop(status)
        return CampaignSummary(self.name, self.db, self.workdir, self.repo.path, self.integrated,
                               self.base_commit, self.campaign.tip, dict(self.campaign.statuses),
                               list(self.campaign.landed), status == "interrupted")

    def _stop(self, status: str) -> None:
        """Kill every process of the campaign and record how it ended. After a failure the campaign's memory may
        be half-way through a step: the store keeps its last saved state (which --resume continues), and only
        the experiments that were running are marked lost. Each step runs even if an earlier one fails; the
        error that ended the campaign is the one raised."""
        steps = [self.progress.stop, self.pool.kill_all, self._stop_planner]
        if status == "failed":
            steps += [lambda: self.progress.events(ray.get(self.store.apply.remote(
                [MarkLost(experiment_id, "the campaign failed") for experiment_id in self.campaign.in_flight], None)))]
        else:
            if self.signals >= 2:
                steps.append(lambda: self.campaign.abandon("abandoned: a second interrupt"))
            steps.append(self._save)
        steps += [self._print_events,
                  lambda: self.progress.events(ray.get(self.store.apply.remote([FinishCampaign(self.name, status)],
                                                                               None))),
                  lambda: ray.get(self.store.close.remote())]
        for step in steps:
            try:
                step()
            except Exception as error:  # noqa: BLE001 -- the others must still run
                if status != "failed":
                    raise
                self.progress.say(f"while stopping after a failure: {type(error).__name__}: {error}")

    def _stop_planner(self) -> None:
        """Kill a running planner call (again, until its thread is done: it may have started its command after
        the pool killed the campaign's processes)."""
        self.planner_thread.shutdown(wait=False, cancel_futures=True)
        if self.planning is not None:
            future = self.planning[1]
            while not future.done():
                kill_tagged(self._planner_tag())
                concurrent.futures.wait([future], timeout=WAIT_SECONDS)

    def _planner_sandbox(self, command: str, directory: pathlib.Path) -> sandbox.Sandbox | None:
        """A planner runs like an agent: the filesystem read-only (it reads the repository and its files in
        `directory`), a private /tmp and PID namespace, writable only its own `state` directory there and its
        CLI's state directories. None with `sandbox: none`."""
        settings = self.config.sandbox
        if settings.mode == "none":
            return None
        state = [*agents.state_dirs_of_program(agents.program_of(command)), *settings.state_dirs]
        return sandbox.agent_sandbox([], [], [directory / "state"], state, settings.network,
                                     [self.config.resolve("."), self.repo.path, directory])

    def _planner_tag(self) -> str:
        return f"{run_key(self.name, self.workdir)}:planner"

    def _loop(self) -> None:
        announced = 0
        collected = False  # results handed to the campaign and not saved yet: saved with the next assignments
        while self.signals < 2:
            if self.signals > announced:  # printed here, not in the handler: it may interrupt a print
                announced = self.signals
                self.progress.say("interrupted: no new experiments; waiting for the running ones (interrupt again "
                                  "to abandon them)")
            self._plan()
            self._assign_idle(collected)
            collected = False
            # A planner call may take minutes: an interrupted campaign does not wait for it (_stop kills it).
            if not self.running and (self.planning is None or self.campaign.stopping):
                blocked = self.campaign.blocked()
                if blocked:
                    raise FarmError(f"hypotheses wait on others that never settle: {', '.join(blocked)}")
                return
            if self.running:
                ready, _ = ray.wait(list(self.running), num_returns=1, timeout=WAIT_SECONDS)
                if ready:  # and whatever else has finished meanwhile
                    ready, _ = ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
            else:
                ready = []
                concurrent.futures.wait([self.planning[1]], timeout=WAIT_SECONDS)
            for ref in ready:
                self._collect(ref)
            collected = bool(ready)
            if not collected:  # else the turn's save brings the events
                self._print_events()
            self.progress.show(self._live_state, lambda: board_phases(self.workdir / "workers"))
        self.progress.say("interrupted again: abandoning the running experiments")

    def _assign_idle(self, collected: bool) -> None:
        """Every idle worker gets the campaign's next experiment for it, if any. The results `collected` since
        the last save and the new assignments are saved in one transaction (one save a turn: it carries the
        whole campaign state). The save is sent before the assignments, which start while the store writes it
        (about 20 ms sooner; see _send_save for a driver that dies meanwhile); the turn ends when it is stored."""
        self.campaign.check_stop(time.time())
        busy = {worker for worker, _ in self.campaign.in_flight.values()}
        assigned = [(worker, self.campaign.assign(worker.name, worker.cpus)) for worker in self.pool.idle(busy)]
        assigned = [(worker, assignment) for worker, assignment in assigned if assignment is not None]
        pending = self._send_save() if assigned or collected else None
        for worker, assignment in assigned:
            if assignment.kind is Kind.SCREEN and assignment.hypothesis.agent == "command":
                assignment = self._with_memory(assignment)
            bundle = None if worker.node.hub else self.commits.bundle_for(worker.name, _needs(assignment))
            self.running[worker.actor.run.remote(assignment, bundle)] = (assignment.experiment_id, time.time())
        if pending is not None:
            self._saved(pending)  # its events (the results') are shown before the new assignments
        for worker, assignment in assigned:
            self.progress.say(f"{worker.name} {assignment.experiment_id} {assignment.hypothesis.id}: "
                              f"{_describe(assignment)} (parent {assignment.parent_commit[:10]})")

    def _with_memory(self, assignment: Assignment) -> Assignment:
        """The strategy memory from the store, for the agent to read before it works."""
        text, stuck = self._memory(assignment.hypothesis.strategy)
        return replace(assignment, memory=text, stuck=stuck)

    def _memory(self, strategy: str) -> tuple[str, bool]:
        """The strategy memory and whether the strategy is stuck, from the store."""
        def query(sql, params):
            return ray.get(self.store.query.remote(sql, params))

        stuck = memory.is_stuck(query, self.name, strategy, self.config.memory.stuck_after)
        return memory.strategy_memory(query, self.name, strategy, self.campaign.exhausted(strategy), stuck,
                                      self.config.memory.stuck_after, self.config.held_out()), stuck

    def _plan(self) -> None:
        """Hand a finished planner call's output to the campaign, and start the next due planner."""
        if self.planning is not None:
            strategy, future = self.planning
            if not future.done():
                return
            self.planning = None
            self.campaign.planned(strategy, future.result())
            self._save()
        strategy = self.campaign.planner_due()
        if strategy is None:
            return
        config = self.config.strategy(strategy)
        call = self.campaign.planners[strategy]["calls"] + 1
        self.progress.say(f"planner of {strategy}: call {call}, asking for {config.planner.batch} hypotheses")
        directory = self.workdir / "logs" / "planner" / strategy
        (directory / "state").mkdir(parents=True, exist_ok=True)
        future = self.planner_thread.submit(
            run_planner, config, self.name, self._memory(strategy)[0], set(self.campaign.hypotheses.by_id),
            self.config.resolve("."), directory, call, self.repo.path,
            self.campaign.lineages.get(strategy, self.campaign.lineages[INTEGRATED]).tip, self._planner_tag(),
            self._planner_sandbox(config.planner.command, directory))
        self.planning = (strategy, future)

    def _collect(self, ref) -> None:
        """Hand a finished experiment (or its worker's death) to the campaign; the loop saves the turn's results."""
        experiment_id, _ = self.running.pop(ref)
        worker = self.pool.workers[self.campaign.in_flight[experiment_id][0]]
        try:
            result, branch = ray.get(ref)
        except RayActorError as error:
            self.campaign.lose(experiment_id, f"worker {worker.name} died: {type(error).__name__}")
            self.commits.forget(worker.name)
            if not self.pool.replace(worker):
                self.progress.say(f"{worker.name} died {worker.restarts + 1} times; not restarted")
                self.campaign.lose_worker(worker.name)
                if not self.pool.workers:
                    raise FarmError("every worker died; see the logs in the workdir") from None
            return
        except RayTaskError as error:
            result, branch = _internal_error(worker, experiment_id, error), None
        assignment = self.campaign.in_flight[experiment_id][1]
        if branch is not None:  # from another node: its experiment branch into the hub, before anything lands
            try:
                fetch_bundle(self.repo, branch, f"+refs/heads/{assignment.branch}:refs/heads/{assignment.branch}")
                self.commits.received(worker.name, result.commit)
            except WorktreeError as error:
                result = _internal_error(worker, experiment_id, error)
        self.campaign.finish(result)

    def _live_state(self) -> LiveState:
        return ray.get(self.store.live_state.remote())

    def _print_events(self) -> None:
        self.progress.events(ray.get(self.store.drain_events.remote()))

    @contextlib.contextmanager
    def _signals(self):
        """SIGINT/SIGTERM: the first stops assigning, the second abandons what runs (see the module doc)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(_signum, _frame):  # flags only: the loop acts on them
            self.signals += 1
            self.campaign.stopping = True

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _describe(assignment: Assignment) -> str:
    return {Kind.MERGE: "re-measure on tip", Kind.SCREEN: "screen", Kind.AA: "A/A canary",
            Kind.CONFIRM: f"final confirmation of {(assignment.pick_tip or '')[:10]}"}[assignment.kind] + \
        (f", again after {assignment.retry_of}" if assignment.retry_of else "")


def _needs(assignment: Assignment) -> list[str]:
    """The commits a worker needs for an assignment: its parent, the kept change it picks, the commit it reads."""
    h = assignment.hypothesis
    wanted = [assignment.parent_commit, assignment.pick_base, assignment.pick_tip, h.commit, h.parent]
    return list(dict.fromkeys(c for c in wanted if c))


def _describe_places(places: list[Place]) -> str:
    if len({p.node.node_id for p in places}) == 1:
        return f"on CPU sets {[list(p.cpus) for p in places]}"
    return "on " + ", ".join(f"{p.worker}@{p.node.host}[{(p.node.node_id or '')[:6]}]:{list(p.cpus)}"
                             for p in places)


def _internal_error(worker: PoolWorker, experiment_id: str, error: Exception) -> ExperimentResult:
    """A bug in the farm while running an experiment: recorded as a crash, the campaign goes on."""
    last = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    now = datetime.datetime.now().timestamp()
    return ExperimentResult(experiment_id, Status.CRASH, f"internal error in the farm: {last}", worker.name,
                            worker.cpus, now, now)


def run_campaign(config: CampaignConfig, workdir: pathlib.Path, db: pathlib.Path, *, workers: int | None = None,
                 address: str | None = None, max_experiments: int | None = None, echo=print, resume: bool = False,
                 fresh: bool = False, live: bool = False) -> CampaignSummary:
    """Run a whole campaign on Ray (local unless `address` or RAY_ADDRESS names a cluster); `resume`
    continues the one in `db`; `fresh` archives an earlier run's branches in the target repository.

    Starting a local Ray, the driver moves to the CPUs no worker owns first, so that Ray's daemons, the store
    actor and the worker actors (which inherit its affinity) stay off the benchmark CPUs; its affinity is
    restored afterwards. Without a spare CPU it is left alone. On a cluster (`address`, RAY_ADDRESS, or a Ray
    this process already joined) the workers are placed on its nodes instead (scheduler/runtime/nodes.py).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    leftovers = kill_campaign_leftovers(config.campaign, workdir)
    if leftovers:
        echo(f"killed {leftovers} process(es) left running by an earlier run of {config.campaign}")
    address = address or os.environ.get("RAY_ADDRESS")
    options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                   namespace="autoresearch-farm")
    with contextlib.ExitStack() as stack:  # unwinds in reverse: Ray stops before the affinity is restored
        if address or ray.is_initialized():
            # A cluster (or a Ray someone else started): the workers are placed on its nodes' own CPUs.
            if not ray.is_initialized():
                ray.init(address=address, **options)
                stack.callback(ray.shutdown)
            nodes = cluster_nodes(available_cpus())
            # What a killed driver's workers left running on the other nodes (this node's is killed above).
            remote = kill_on_nodes(campaign_tag(run_key(config.campaign, workdir)), [n for n in nodes if not n.hub])
            if remote:
                echo(f"killed {remote} process(es) left running on other nodes by an earlier run of "
                     f"{config.campaign}")
            places = place_workers(nodes, workers or config.workers.count, config.workers.cpus_per_worker,
                                   None if workers else config.workers.cpu_sets, config.measurement.mode)
            coordinator = Coordinator(config, workdir, db, workers, max_experiments, echo, resume=resume,
                                      fresh=fresh, live=live, places=places)
            return coordinator.run("the farm's own processes not placed (Ray was not started here by this "
                                   "campaign)")
        coordinator = Coordinator(config, workdir, db, workers, max_experiments, echo, resume=resume, fresh=fresh,
                                  live=live)
        spare = spare_cpus(coordinator.cpu_sets)
        if spare:
            placement = f"Ray and the farm's own processes on spare CPU(s) {spare}"
            stack.enter_context(affinity(spare))
        else:
            placement = "no spare CPU: Ray and the farm's own processes share the workers' CPUs"
        # "local": a Ray of this driver's own, never a cluster that `ray start` left running here.
        context = ray.init(address="local", **options)
        session = workdir / RAY_SESSION_FILE  # the next run kills what a killed driver left of its Ray
        partial = session.with_suffix(".partial")
        partial.write_text(context.address_info["session_dir"])
        partial.replace(session)
        stack.callback(session.unlink, missing_ok=True)
        stack.callback(ray.shutdown)
        return coordinator.run(placement)
