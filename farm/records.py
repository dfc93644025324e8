"""Immutable records that cross process boundaries: hypotheses, assignments,
samples, results, and the closed vocabulary of experiment outcomes."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields

from farm.coding_agents.agent_spend import Spend
from stats.verdicts import BenchmarkDecision


class Status(str, enum.Enum):
    """Lifecycle of an experiment; every state after RUNNING is final (LOST and INVALIDATED are attempts whose
    hypothesis was run again, under a new experiment id)."""

    RUNNING = "running"
    KEEP = "keep"  # at least one benchmark improved beyond its floor, none regressed
    DISCARD = "discard"  # measured, not a win
    GUARD_FAIL = "guard_fail"  # the correctness guard failed (after any rework)
    CRASH = "crash"  # build failed, the benchmark failed or printed garbage
    TIMEOUT = "timeout"  # a phase ran past its timeout; its process group was killed
    NO_CHANGE = "no_change"  # the agent changed nothing
    TAMPERED = "tampered"  # the change touched a protected path
    STALE_BUILD = "stale_build"  # sources changed but the built artefact did not
    CONFLICT = "conflict"  # the change does not apply on its parent
    INVALIDATED = "invalidated"  # an artifact detector voided the verdict; the hypothesis was measured again
    LOST = "lost"  # the attempt never ended (its worker or the coordinator died, or it was abandoned); run again
    AA_CLEAN = "aa_clean"  # an A/A canary (the parent against itself) found no difference, as it should
    AA_FALSE_POSITIVE = "aa_false_positive"  # an A/A canary was called a keep: a false positive


class Kind(str, enum.Enum):
    SCREEN = "screen"  # a hypothesis measured against its parent
    MERGE = "merge"  # a kept experiment re-applied on the integration tip and re-measured
    AA = "aa"  # the parent against a second build of itself: build bias for the floor, false-positive canary
    CONFIRM = "confirm"  # at the end: the final integration tip (pick_tip) against the campaign base


@dataclass(frozen=True)
class Hypothesis:
    """One change to try. Patches travel as text so that no node needs the
    coordinator's filesystem."""

    id: str
    strategy: str
    category: str
    text: str
    agent: str
    patch: str
    rework: tuple[str, ...] = ()
    after: str | None = None
    source: str = ""  # where the patch came from, for people
    commit: str | None = None  # agent `refs`: the existing commit whose tree is the change ...
    parent: str | None = None  # ... measured against this parent instead of the integration tip
    knobs: tuple[tuple[str, str], ...] = ()  # agent `knobs`: (name, value) of every knob of the strategy


OVERFITS = "overfits the visible benchmarks"  # a merge re-measurement's reason when a held-out one regressed
INTEGRATED = "integrated"  # the lineage of the integration branch farm/<campaign>/integrated


@dataclass(frozen=True)
class Assignment:
    """What the coordinator sends a worker: run one experiment."""

    experiment_id: str
    campaign: str
    kind: Kind
    hypothesis: Hypothesis
    parent_commit: str
    branch: str
    # For MERGE: the screened experiment and the commits it added (pick_base..pick_tip); for CONFIRM, pick_tip
    # is the final tip measured against parent_commit, the campaign base.
    screened_experiment: str | None = None
    pick_base: str | None = None
    pick_tip: str | None = None
    # The worker's measured build-to-build bias per benchmark (log units, counted into the floor).
    build_bias: tuple[tuple[str, float], ...] = ()
    rebuild_ref: bool = False  # rebuild the parent even if this worker built it before (suspect baseline)
    retry_of: str | None = None  # the lost attempt this one runs again
    # for a command agent: the strategy memory (farm/coding_agents/memory.py), written to $FARM_MEMORY_FILE
    memory: str = ""
    stuck: bool = False  # the strategy's last screens were all not kept: the prompt asks for another approach
    lineage: str = INTEGRATED  # the branch a kept screen lands on: a strategy's own in race mode


@dataclass(frozen=True)
class Sample:
    """One benchmark value from one benchmark process."""

    experiment_id: str
    arm: str  # "ref" or "cand"
    block: int
    benchmark: str
    value: float
    unit: str
    cpus: tuple[int, ...]
    pid: int | None
    started_at: float
    finished_at: float
    peak_rss: int | None = None  # bytes: the peak resident memory of the benchmark run that printed it


@dataclass(frozen=True)
class AgentRun:
    """One run of a command agent and what its CLI said it cost."""

    attempt: int  # 0, then 1, 2, ... for reworks
    cli: str | None  # the preset; None for a custom command
    outcome: str  # ok | failed | timeout
    seconds: float
    spend: Spend = Spend()  # farm/coding_agents/agent_spend.py; its fields None where the CLI did not say


@dataclass(frozen=True)
class ExperimentResult:
    experiment_id: str
    status: Status
    reason: str
    worker: str
    cpus: tuple[int, ...]
    started_at: float
    finished_at: float
    commit: str | None = None
    decisions: tuple[BenchmarkDecision, ...] = ()
    # measurement.channels [time, instructions]: each benchmark's instruction counts decided as
    # `<benchmark>.instructions`; they shared Holm's alpha (holm_mask), they are never a verdict
    counts: tuple[BenchmarkDecision, ...] = ()
    blocks: int = 0
    ref_fingerprint: str | None = None
    cand_fingerprint: str | None = None
    effect: float | None = None  # geometric mean of the benchmark ratios (< 1 is better)
    reworked: int = 0
    changed_paths: tuple[str, ...] = ()
    ref_means: tuple[tuple[str, float], ...] = ()  # geometric mean of the reference arm per benchmark
    aa_log_ratios: tuple[tuple[str, tuple[float, ...]], ...] = ()  # for Kind.AA: per benchmark
    artifacts: tuple[tuple[str, str | None, str], ...] = ()  # (kind, benchmark, reason) found by the worker
    notes: str | None = None  # what a command agent left in its notes file (why, what it expects)
    agent_runs: tuple[AgentRun, ...] = ()  # every run of a command agent in this experiment, with its spend


@dataclass(frozen=True)
class Block:
    """One measurement block (both arms) and the state of the node while it ran: it travels with the block's
    samples, so that a noisy stretch can be explained afterwards."""

    experiment_id: str
    block: int
    worker: str
    arm_order: str  # the arms in the order they ran, e.g. "ref,cand"
    started_at: float
    finished_at: float
    loadavg_1m: float  # the node's 1-minute load average at the end of the block
    cpu_mhz: float | None  # the mean clock of the worker's CPUs after each arm; None if the machine does not say
    others: str | None  # the other workers' phases, e.g. "w1:build"; None when no other worker published one
    waited_s: float  # seconds spent waiting for the measurement lock before the block


SAMPLE_COLUMNS = tuple(f.name for f in fields(Sample))
BLOCK_COLUMNS = tuple(f.name for f in fields(Block))
# measurement.channels [time, instructions]: a benchmark's instruction counts are samples, and decisions, of
# `<benchmark>.instructions`
INSTRUCTIONS = ".instructions"


@dataclass
class Observations:
    """What a worker observed and has not sent yet: blocks as records, their samples as columns (a list per
    field of Sample, the block's samples one after the other), events (unix time, worker, experiment id, kind,
    message) and phase rows (worker, experiment id, phase, unix start, unix end). A send packs them further,
    on the worker's CPU, into the form that travels to the store actor and is written
    (farm/storage/packed.py)."""

    blocks: list[Block] = field(default_factory=list)
    sample_counts: list[int] = field(default_factory=list)  # each block's samples, in order
    samples: dict[str, list] = field(default_factory=lambda: {name: [] for name in SAMPLE_COLUMNS})
    events: list[tuple] = field(default_factory=list)
    phases: list[tuple] = field(default_factory=list)

    @classmethod
    def of(cls, blocks: list[tuple[Block, list[Sample]]] = (), events: list[tuple] = (),
           phases: list[tuple] = ()) -> Observations:
        observations = cls(events=list(events), phases=list(phases))
        for block, samples in blocks:
            observations.add_block(block, samples)
        return observations

    def add_block(self, block: Block, samples: list[Sample]) -> None:
        self.blocks.append(block)
        self.sample_counts.append(len(samples))
        for name, column in self.samples.items():
            column.extend(getattr(sample, name) for sample in samples)

    def extend(self, other: Observations) -> None:
        self.blocks += other.blocks
        self.sample_counts += other.sample_counts
        for name, column in self.samples.items():
            column += other.samples[name]
        self.events += other.events
        self.phases += other.phases

    def __bool__(self) -> bool:
        return bool(self.blocks or self.events or self.phases)

    @property
    def sample_count(self) -> int:
        return len(self.samples["value"])

    def each_alone(self) -> list[tuple[str, str | None, str | None, Observations]]:
        """Each block with its samples, each event and each phase as observations of their own, with what it is
        in words, its worker and its experiment id: to be written one at a time when a batch was refused."""
        parts = []
        start = 0
        for block, count in zip(self.blocks, self.sample_counts):
            alone = Observations([block], [count], {name: column[start:start + count]
                                                    for name, column in self.samples.items()})
            start += count
            parts.append((f"block {block.block} of {block.experiment_id} and its {count} sample(s)", block.worker,
                          block.experiment_id, alone))
        for event in self.events:
            _, worker, experiment_id, kind, _ = event
            parts.append((f"a {kind!r} event", worker, experiment_id, Observations(events=[event])))
        for phase in self.phases:
            worker, experiment_id, name, _, _ = phase
            parts.append((f"a {name!r} phase", worker, experiment_id, Observations(phases=[phase])))
        return parts
