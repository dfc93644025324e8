"""What one experiment has found so far (Draft, filled in as it runs, its ExperimentResult at the end), and how it
ends early (Outcome, raised by the pipeline and the realisers with a final status)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from farm.records import AgentRun, ExperimentResult, Status
from stats import BenchmarkDecision


class Outcome(Exception):
    """Ends an experiment early with a final status (raised by the pipeline and the realisers)."""

    def __init__(self, status: Status, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Draft:
    """What an experiment has found so far, filled in as it runs; its ExperimentResult at the end."""

    commit: str | None = None
    ref_fp: str | None = None
    cand_fp: str | None = None
    decisions: tuple[BenchmarkDecision, ...] = ()
    counts: tuple[BenchmarkDecision, ...] = ()  # the instruction channel's, at the last look
    blocks: int = 0
    reworked: int = 0
    effect: float | None = None
    changed: list[str] = field(default_factory=list)  # the paths the change touches
    ref_means: tuple[tuple[str, float], ...] = ()
    aa: tuple[tuple[str, tuple[float, ...]], ...] = ()
    artifacts: tuple[tuple[str, str | None, str], ...] = ()
    notes: str | None = None
    rebased: bool = False  # a kept change its agent made again on the tip after a conflict
    peak_rss: dict[str, list[int]] = field(default_factory=dict)  # per arm: each benchmark run's peak memory
    agent_runs: list[AgentRun] = field(default_factory=list)

    def result(self, experiment_id: str, status: Status, reason: str, worker: str, cpus: tuple[int, ...],
               started: float) -> ExperimentResult:
        return ExperimentResult(
            experiment_id=experiment_id, status=status, reason=reason, worker=worker, cpus=cpus,
            started_at=started, finished_at=time.time(), commit=self.commit, decisions=tuple(self.decisions),
            counts=tuple(self.counts),
            blocks=self.blocks, ref_fingerprint=self.ref_fp, cand_fingerprint=self.cand_fp, effect=self.effect,
            reworked=self.reworked, changed_paths=tuple(self.changed), ref_means=tuple(self.ref_means),
            aa_log_ratios=self.aa, artifacts=tuple(self.artifacts), notes=self.notes,
            agent_runs=tuple(self.agent_runs))
