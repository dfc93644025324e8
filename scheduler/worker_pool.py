"""The worker actors of a campaign: one per CPU set, replaced when one dies, killed with every process they
started."""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import ray

from farm.config import CampaignConfig
from farm.processes import campaign_tag, kill_tagged, run_key
from scheduler.worker import WorkerActor

MAX_WORKER_RESTARTS = 3


@dataclass
class PoolWorker:
    name: str
    cpus: tuple[int, ...]
    actor: object
    restarts: int = 0
    busy: object = None  # the ObjectRef of the running experiment


class WorkerPool:
    def __init__(self, config: CampaignConfig, repo_path: pathlib.Path, workdir: pathlib.Path, store,
                 exclusive: bool, cpu_sets: list[tuple[int, ...]]):
        self.config = config
        self.repo_path = repo_path
        self.workdir = workdir
        self.store = store
        self.exclusive = exclusive
        self.key = run_key(config.campaign, workdir)  # the campaign part of its processes' tags
        self.workers = {f"w{i}": self._spawn(f"w{i}", cpus) for i, cpus in enumerate(cpu_sets)}

    def _spawn(self, name: str, cpus: tuple[int, ...], restarts: int = 0) -> PoolWorker:
        actor = WorkerActor.options(name=f"farm-{self.config.campaign}-{name}-{restarts}").remote(
            name, cpus, self.config, str(self.repo_path), str(self.workdir / "workers"), self.store, self.exclusive)
        return PoolWorker(name, cpus, actor, restarts)

    def idle(self) -> list[PoolWorker]:
        return [w for w in self.workers.values() if w.busy is None]

    def replace(self, worker: PoolWorker) -> bool:
        """A worker died: kill what it left running, start a new actor on its CPU set (same name and slots).
        False when it died too often and is retired instead."""
        kill_tagged(campaign_tag(self.key, worker.name))
        if worker.restarts >= MAX_WORKER_RESTARTS:
            del self.workers[worker.name]
            return False
        self.workers[worker.name] = self._spawn(worker.name, worker.cpus, worker.restarts + 1)
        return True

    def kill_all(self) -> int:
        """Kill every actor and every process the campaign started; returns how many processes were killed."""
        for worker in self.workers.values():
            ray.kill(worker.actor, no_restart=True)
            worker.busy = None
        return kill_tagged(campaign_tag(self.key))
