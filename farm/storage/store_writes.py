"""The coordinator's store writes, one frozen record per kind: the campaign collects them, the store actor
applies a step's records and the campaign state they lead to in one transaction (farm/storage/store.py, Store.apply).

A record carries its arguments by name and applies itself to a Store: no method names travel as text, and
the store actor exposes what the farm calls, nothing more. The workers' blocks, events and phases take the
batched path instead (Store.add_observations).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from farm.records import ExperimentResult, Hypothesis

if TYPE_CHECKING:
    from farm.storage.store import Store

Event = tuple[float, str | None, str | None, str, str]  # (unix time, worker, experiment id, kind, message)


@dataclass(frozen=True)
class StartCampaign:
    campaign: str
    config_json: str
    repo: str
    base_ref: str
    base_commit: str
    integrated_branch: str
    workers: int

    def apply_to(self, store: Store) -> None:
        store.start_campaign(self.campaign, self.config_json, self.repo, self.base_ref, self.base_commit,
                             self.integrated_branch, self.workers)


@dataclass(frozen=True)
class ResumeCampaign:
    campaign: str

    def apply_to(self, store: Store) -> None:
        store.resume_campaign(self.campaign)


@dataclass(frozen=True)
class FinishCampaign:
    campaign: str
    status: str  # finished | interrupted | failed

    def apply_to(self, store: Store) -> None:
        store.finish_campaign(self.campaign, self.status)


@dataclass(frozen=True)
class AddHypotheses:
    campaign: str
    hypotheses: tuple[Hypothesis, ...]
    agents: dict[str, str]  # strategy -> agent kind: the strategies' rows

    def apply_to(self, store: Store) -> None:
        store.add_hypotheses(self.campaign, self.hypotheses, self.agents)


@dataclass(frozen=True)
class AddPlanned:
    campaign: str
    strategy: str
    hypotheses: tuple[Hypothesis, ...]

    def apply_to(self, store: Store) -> None:
        store.add_planned(self.campaign, self.strategy, list(self.hypotheses))


@dataclass(frozen=True)
class StartExperiment:
    experiment_id: str
    campaign: str
    hypothesis: Hypothesis
    kind: str
    parent_commit: str
    branch: str
    worker: str
    cpus: tuple[int, ...]
    screened_experiment: str | None = None
    retry_of: str | None = None
    lineage: str | None = None

    def apply_to(self, store: Store) -> None:
        StartExperiment.apply_many(store, [self])

    @staticmethod
    def apply_many(store: Store, writes: list[StartExperiment]) -> None:
        store.start_experiments([(w.experiment_id, w.campaign, w.hypothesis, w.kind, w.parent_commit, w.branch,
                                  w.worker, w.cpus, w.screened_experiment, w.retry_of, w.lineage) for w in writes])


@dataclass(frozen=True)
class FinishExperiment:
    result: ExperimentResult

    def apply_to(self, store: Store) -> None:
        store.finish_experiments([self.result])

    @staticmethod
    def apply_many(store: Store, writes: list[FinishExperiment]) -> None:
        store.finish_experiments([w.result for w in writes])


@dataclass(frozen=True)
class MarkLost:
    experiment_id: str
    reason: str

    def apply_to(self, store: Store) -> None:
        store.mark_lost(self.experiment_id, self.reason)


@dataclass(frozen=True)
class InvalidateExperiment:
    experiment_id: str
    reason: str

    def apply_to(self, store: Store) -> None:
        store.invalidate_experiment(self.experiment_id, self.reason)


@dataclass(frozen=True)
class AddMerge:
    experiment_id: str  # the screened experiment
    campaign: str
    position: int | None  # 1, 2, ... in landing order; None if it did not land
    screening_ratio: float | None
    remeasured_ratio: float | None
    remeasure_experiment_id: str | None
    landed: bool
    integrated_commit: str | None
    reason: str
    lineage: str

    def apply_to(self, store: Store) -> None:
        store.add_merge(self.experiment_id, self.campaign, self.position, self.screening_ratio,
                        self.remeasured_ratio, self.remeasure_experiment_id, self.landed, self.integrated_commit,
                        self.reason, self.lineage)


@dataclass(frozen=True)
class AddArtifact:
    campaign: str
    experiment_id: str | None
    kind: str
    benchmark: str | None
    reason: str

    def apply_to(self, store: Store) -> None:
        store.add_artifact(self.campaign, self.experiment_id, self.kind, self.benchmark, self.reason)


@dataclass(frozen=True)
class AddEvents:
    campaign: str
    events: tuple[Event, ...]

    def apply_to(self, store: Store) -> None:
        store.add_events(self.campaign, list(self.events))


@dataclass(frozen=True)
class AddAllocations:
    campaign: str
    at: float
    rung: int
    rows: tuple[tuple, ...]  # (strategy, status, workers, started, screens, kept, landed, landed_ratio, reason)

    def apply_to(self, store: Store) -> None:
        store.add_allocations(self.campaign, self.at, self.rung, list(self.rows))


Write = (StartCampaign | ResumeCampaign | FinishCampaign | AddHypotheses | AddPlanned | StartExperiment
         | FinishExperiment | MarkLost | InvalidateExperiment | AddMerge | AddArtifact | AddEvents | AddAllocations)
