"""The worker actors of a campaign: one per placed CPU set, each on its node, replaced when one dies, killed with
every process they started (on their own node)."""
from __future__ import annotations

import contextlib
import pathlib
from dataclasses import dataclass

import ray

from farm.campaign_file.config import CampaignConfig
from farm.node.processes import campaign_tag, kill_tagged, run_key
from scheduler.runtime.nodes import Node, Place, on_node
from scheduler.runtime.worker import WorkerActor
from worktrees.transport import NodeCommits

MAX_WORKER_RESTARTS = 3
KILL_TIMEOUT_SECONDS = 60.0


@dataclass
class PoolWorker:
    place: Place
    actor: object
    restarts: int = 0

    @property
    def name(self) -> str:
        return self.place.worker

    @property
    def cpus(self) -> tuple[int, ...]:
        return self.place.cpus

    @property
    def node(self) -> Node:
        return self.place.node


@ray.remote(num_cpus=0)
def _kill_on_node(prefix: str) -> int:
    return kill_tagged(prefix)


class WorkerPool:
    def __init__(self, config: CampaignConfig, repo_path: pathlib.Path, workdir: pathlib.Path, store,
                 spool: pathlib.Path, places: list[Place], commits: NodeCommits):
        self.config = config
        self.repo_path = repo_path
        self.workdir = workdir
        self.store = store
        self.spool = spool  # the store's spool: the workers on its node send through it (farm/storage/spool.py)
        self.key = run_key(config.campaign, workdir)  # the campaign part of its processes' tags
        # The seed of the clones on the other nodes, made and put into Ray's object store once.
        self.seed = ray.put(commits.seed_bundle()) if any(not p.node.hub for p in places) else None
        self.workers = {p.worker: self._spawn(p) for p in places}

    def _spawn(self, place: Place, restarts: int = 0) -> PoolWorker:
        hub = place.node.hub
        actor = WorkerActor.options(name=f"farm-{self.config.campaign}-{place.worker}-{restarts}",
                                    **on_node(place.node.node_id)).remote(
            place.worker, place.cpus, self.config, str(self.repo_path) if hub else None,
            str(self.workdir / "workers") if hub else None, self.store, place.exclusive, key=self.key,
            seed=None if hub else self.seed, spool=str(self.spool) if hub else None)
        return PoolWorker(place, actor, restarts)

    def idle(self, busy: set[str]) -> list[PoolWorker]:
        """The workers not among `busy` (names: the campaign's in-flight experiments say which)."""
        return [w for w in self.workers.values() if w.name not in busy]

    def replace(self, worker: PoolWorker) -> bool:
        """A worker died: kill what it left running on its node, start a new actor on its CPU set (same name, node
        and slots). False when it died too often and is retired instead."""
        kill_on_nodes(campaign_tag(self.key, worker.name), [worker.node])
        if worker.restarts >= MAX_WORKER_RESTARTS:
            del self.workers[worker.name]
            return False
        self.workers[worker.name] = self._spawn(worker.place, worker.restarts + 1)
        return True

    def kill_all(self) -> int:
        """Kill every actor and every process the campaign started, on every node; returns how many processes
        were killed."""
        for worker in self.workers.values():
            ray.kill(worker.actor, no_restart=True)
        # Here always (the campaign's processes on this node), and on every other node with workers.
        prefix = campaign_tag(self.key)
        return kill_tagged(prefix) + kill_on_nodes(prefix, [w.node for w in self.workers.values() if not w.node.hub])



def kill_on_nodes(prefix: str, nodes: list[Node]) -> int:
    """kill_tagged on each of `nodes`: here for the coordinator's node, in a task on any other (a node that is gone
    has nothing left to kill)."""
    killed = kill_tagged(prefix) if any(node.hub for node in nodes) else 0
    remote = {node.node_id for node in nodes if not node.hub}
    for node_id in remote:
        with contextlib.suppress(ray.exceptions.RayError, TimeoutError):
            killed += ray.get(_kill_on_node.options(**on_node(node_id)).remote(prefix), timeout=KILL_TIMEOUT_SECONDS)
    return killed
