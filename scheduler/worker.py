"""Worker actors: one per CPU set, each with its own worktree slots."""
from __future__ import annotations

import json
import os
import pathlib

import ray

from farm.config import CampaignConfig
from farm.measurement_lock import MeasurementLock
from farm.node_state import PhaseBoard
from farm.pipeline import ExperimentPipeline
from farm.processes import campaign_tag, run_key
from farm.records import Assignment, Block, ExperimentResult, Sample
from farm.runner import Pinning, run_command
from worktrees import SlotPool, TargetRepo


@ray.remote(num_cpus=0, max_restarts=0)
class WorkerActor:
    """Runs experiments one at a time in slots under `root`, pinned to `cpus`.

    num_cpus=0: Ray's CPU accounting would refuse a second worker on a small
    machine where the coordinator and store also need a slot; the real
    isolation is the taskset pinning of every child process.

    `root` is the node's workers directory: the workers of a node share it, and with it the measurement lock
    (`root`/measure.lock, used when `exclusive`) and the phase board (`root`/phases/).
    """

    def __init__(self, name: str, cpus: tuple[int, ...], config: CampaignConfig, repo_path: str, root: str,
                 store, exclusive: bool):
        self.name = name
        self.pinning = Pinning(tuple(cpus))
        # "<campaign>:<worker>", the start of the farm tag of every process this worker starts: the coordinator
        # kills what is left of them with kill_tagged(campaign_tag(campaign, name)) when the worker dies.
        self.tag = campaign_tag(run_key(config.campaign, pathlib.Path(root).parent), name).removesuffix(":")
        self.store = store
        root_path = pathlib.Path(root)
        slots = SlotPool(TargetRepo(repo_path), root_path / name)
        lock = MeasurementLock(root_path / "measure.lock" if exclusive else None)
        board = PhaseBoard(root_path, config.campaign, name, on_phase=self._send_phase)
        board.set("idle")
        self.pipeline = ExperimentPipeline(config, slots, self.pinning, name, root_path.parent / "logs", lock,
                                           board, self._send_block, self._send_event, tag=self.tag)

    def _send_block(self, block: Block, samples: list[Sample]) -> None:
        ray.get(self.store.add_block.remote(block, samples))

    def _send_event(self, experiment_id: str, kind: str, message: str) -> None:
        self.store.event.remote(self.name, experiment_id, kind, message)

    def _send_phase(self, phase: str, experiment_id: str | None, start: float, end: float) -> None:
        self.store.phase.remote(self.name, experiment_id, phase, start, end)

    def run(self, assignment: Assignment) -> ExperimentResult:
        return self.pipeline.run(assignment)

    def probe(self) -> dict:
        """What a process started by this worker sees: pid, affinity, OpenMP environment."""
        result = run_command("probe", "python -c 'import os, json; print(json.dumps({\"pid\": os.getpid(), "
                             "\"cpus\": sorted(os.sched_getaffinity(0)), \"omp\": os.environ.get(\"OMP_NUM_THREADS\")"
                             "}))'", os.getcwd(), 30, self.pinning, tag=self.tag)
        return {"worker": self.name, "actor_pid": os.getpid(), **json.loads(result.stdout)}
