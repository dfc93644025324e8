"""Worker actors: one per CPU set, each with its own worktree slots."""
from __future__ import annotations

import json
import os
import pathlib
import tempfile
import time

import ray

from farm.campaign_file.config import CampaignConfig
from farm.experiment.pipeline import ExperimentPipeline
from farm.experiment.runner import Pinning, run_command
from farm.node.measurement_lock import MeasurementLock
from farm.node.node_state import PhaseBoard
from farm.node.processes import campaign_tag, run_key
from farm.records import Assignment, Block, ExperimentResult, Kind, Observations, Sample
from farm.storage.packed import Packed, pack
from farm.storage.spool import SpoolWriter
from worktrees import SlotPool, TargetRepo
from worktrees.transport import SHIP_PREFIX, branch_bundle, fetch_bundle, node_clone


def node_directory(template: str, key: str) -> pathlib.Path:
    """This node's directory for the run `key` (workers.node_dir, expanded on the node itself)."""
    node = ray.get_runtime_context().get_node_id()[:12]
    return pathlib.Path(template.format(tmp=tempfile.gettempdir(), node=node)).expanduser() / key


@ray.remote(num_cpus=0, max_restarts=0)
class WorkerActor:
    """Runs experiments one at a time in slots under `root`, pinned to `cpus`.

    num_cpus=0: Ray's CPU accounting would refuse a second worker on a small
    machine where the coordinator and store also need a slot; the real
    isolation is the taskset pinning of every child process.

    `root` is the node's workers directory: the workers of a node share it, and with it the measurement lock
    (`root`/measure.lock, used when `exclusive`) and the phase board (`root`/phases/).

    On the coordinator's node the worker uses the target repository (`repo_path`) and the workdir (`root`).
    On any other node both are None: the worker works under that node's own directory (workers.node_dir), in
    a bare clone seeded from the `seed` bundle, and commits travel as bundles (worktrees/transport.py).
    """

    def __init__(self, name: str, cpus: tuple[int, ...], config: CampaignConfig, repo_path: str | None,
                 root: str | None, store, exclusive: bool, key: str | None = None, seed: bytes | None = None,
                 spool: str | None = None):
        self.name = name
        self.pinning = Pinning(tuple(cpus))
        key = key or run_key(config.campaign, pathlib.Path(root).parent)
        if repo_path is None:
            node_root = node_directory(config.workers.node_dir, key)
            self.repo = node_clone(node_root / "repo.git", seed)
            root_path = node_root / "workers"
        else:
            self.repo = TargetRepo(repo_path)
            root_path = pathlib.Path(root)
        self.remote = repo_path is None
        # "<campaign>:<worker>", the start of the farm tag of every process this worker starts: the coordinator
        # kills what is left of them with kill_tagged(campaign_tag(campaign, name)) when the worker dies.
        self.tag = campaign_tag(key, name).removesuffix(":")
        self.store = store
        # On the store's node a worker sends through the store's spool (its own log there, no call); elsewhere
        # with a call.
        self.spool = SpoolWriter(spool, name) if spool is not None else None
        # What the worker observed and has not sent yet (blocks with their samples, events, phase rows), and the
        # last call that sent some: calls to one actor run in order, so waiting for it waits for all before it.
        self.outbox = Observations()
        self.last_send = None
        self.send_every = config.measurement.send_every
        self.sent_at = time.monotonic()
        slots = SlotPool(self.repo, root_path / name)
        lock = MeasurementLock(root_path / "measure.lock" if exclusive else None)
        board = PhaseBoard(root_path, config.campaign, name, on_phase=self._send_phase)
        board.set("idle")
        self.pipeline = ExperimentPipeline(config, slots, self.pinning, name, root_path.parent / "logs", lock,
                                           board, self._send_block, self._send_event, tag=self.tag)

    # Blocks, events and phase rows go to the store actor together, in one record of its spool log (one call from
    # another node) every measurement.send_every seconds and when the experiment ends: a call each cost the
    # store actor more than writing them, and with 64 workers its queue held up the coordinator's own writes
    # (docs/performance.md).

    def _send_block(self, block: Block, samples: list[Sample]) -> None:
        self.outbox.add_block(block, samples)
        self._send_when_due()

    def _send_event(self, experiment_id: str, kind: str, message: str) -> None:
        self.outbox.events.append((time.time(), self.name, experiment_id, kind, message))
        self._send_when_due()

    def _send_phase(self, phase: str, experiment_id: str | None, start: float, end: float) -> None:
        self.outbox.phases.append((self.name, experiment_id, phase, start, end))
        self._send_when_due()

    def _send_when_due(self) -> None:
        if time.monotonic() - self.sent_at >= self.send_every:
            self._send()

    def _send(self) -> None:
        if self.outbox:
            send = pack(self.outbox)  # here, on this worker's CPU: the store actor serves every worker
            if not self._spooled(send):
                self.last_send = self.store.observe.remote(send)
        self.outbox = Observations()
        self.sent_at = time.monotonic()

    def _spooled(self, send: Packed) -> bool:
        """Left in the store's spool; False when this node has none or it could not be written (a full disk):
        then a call sends them."""
        if self.spool is None:
            return False
        try:
            self.spool.put(send)
            return True
        except OSError:
            return False

    def _sent(self) -> None:
        """Everything observed so far is in the store actor."""
        self._send()
        if self.last_send is not None:
            ray.get(self.last_send)
            self.last_send = None

    def run(self, assignment: Assignment, bundle: bytes | None = None) -> tuple[ExperimentResult, bytes | None]:
        """The experiment's result, and on a node other than the coordinator's its branch as a bundle. `bundle`
        brings the commits the experiment needs that this node's clone may lack."""
        if bundle is not None:
            fetch_bundle(self.repo, bundle, f"+{SHIP_PREFIX}*:{SHIP_PREFIX}*")
        self.sent_at = time.monotonic()
        # The experiment's own work (git, the phases' process starts, this thread's bookkeeping) runs on the
        # worker's CPUs, not on the farm's, where the store and the coordinator write meanwhile. Linux pins a
        # thread: Ray's own threads in this process stay where they are.
        farm_cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, self.pinning.cpus)
        try:
            result = self.pipeline.run(assignment)
        finally:
            os.sched_setaffinity(0, farm_cpus)
            self._sent()  # stored before the coordinator hears the result
        if not self.remote or result.commit is None or assignment.kind not in (Kind.SCREEN, Kind.MERGE):
            return result, None
        return result, branch_bundle(self.repo, assignment.branch, assignment.parent_commit)

    def probe(self) -> dict:
        """What a process started by this worker sees: pid, affinity, OpenMP environment."""
        result = run_command("probe", "python -c 'import os, json; print(json.dumps({\"pid\": os.getpid(), "
                             "\"cpus\": sorted(os.sched_getaffinity(0)), \"omp\": os.environ.get(\"OMP_NUM_THREADS\")"
                             "}))'", os.getcwd(), 30, self.pinning, tag=self.tag)
        return {"worker": self.name, "actor_pid": os.getpid(), **json.loads(result.stdout)}
