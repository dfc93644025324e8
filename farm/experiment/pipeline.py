"""One experiment inside one worker's worktree slots, start to verdict.

the change made in the clean candidate slot by the hypothesis' realiser
(farm/experiment/realisers.py: a patch, an agent in its sandbox and scratch checkout, a
knob setting, a commit) -> commit -> build (stale check) -> guard (-> rework) ->
interleaved A/B blocks, looking at the data at the scheduled block counts until the
sequential decision stops -> verdict (what it found so far is a Draft,
farm/experiment/draft.py). Kind.AA runs the parent's build against
a second build of the same source: the build-to-build bias for the floor, and
a canary for false positives. Builds and guards hold the node's measurement
lock shared, each block holds it exclusively (a no-op when the node measures
in parallel); before every guard and benchmark run the checkout is verified
to be its commit (Slot.verify); every phase runs in a phase sandbox (the
farm's directories read-only but for its own checkout, a PID namespace of its
own); the worker's phase goes on the node's phase board, and each
block is sent with the node's state while it ran. Ray-free: the worker actor
gives it slots, a CPU pinning, the lock, the board and two callbacks (blocks
with their samples, events), so the whole flow is testable in a plain process.
"""
from __future__ import annotations

import contextlib
import fnmatch
import glob
import hashlib
import math
import os
import pathlib
import statistics
import time
from collections.abc import Callable, Iterator

from farm.campaign_file import knobs
from farm.campaign_file.config import CampaignConfig, Direction, is_protected
from farm.errors import PhaseError, PhaseTimeout, ProtocolError
from farm.experiment import instruction_counter, realisers
from farm.experiment.draft import Draft, Outcome
from farm.experiment.protocol import parse_output
from farm.experiment.runner import Pinning, run_command
from farm.node import sandbox
from farm.node.measurement_lock import MeasurementLock
from farm.node.node_state import PhaseBoard, cpu_mhz, describe_others, load_average
from farm.records import INSTRUCTIONS, OVERFITS, Assignment, Block, ExperimentResult, Kind, Sample, Status
from stats import BenchmarkDecision, Outlook, Verdict, decide_benchmark, decide_experiment
from stats.artifacts import stale_build
from stats.noise import aa_log_ratios, effect_floor, robust_noise
from worktrees import Scratch, Slot, SlotPool

BlockSink = Callable[[Block, list[Sample]], None]  # one block and its samples: one batch for the store
EventSink = Callable[[str, str, str], None]  # (experiment_id, kind, message)
LOCK_EVENT_SECONDS = 0.01  # waits for the measurement lock at least this long go into the event log
# A count's timeout: phases.bench.timeout times the counter's slowdown (cachegrind runs 20-50x slower)
COUNT_SLOWDOWN = {"perf": 2, "cachegrind": 50}


class ReferenceChanged(Exception):
    """The reference checkout is not its commit before a benchmark run: rebuilt, and the block run again."""


def fingerprint(checkout: pathlib.Path, patterns: list[str]) -> str | None:
    """sha256 over the built artefacts matching `patterns` (sorted by path)."""
    files = sorted({p for pattern in patterns for p in glob.glob(str(checkout / pattern), recursive=True)})
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(pathlib.Path(path).relative_to(checkout).as_posix().encode())
        digest.update(pathlib.Path(path).read_bytes())
    return digest.hexdigest()[:16]


def geometric_mean(values) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))


def geometric_effect(decisions) -> float | None:
    """The experiment's effect: the geometric mean of its benchmarks' ratios (< 1 is better)."""
    ratios = [d.ratio for d in decisions if d.ratio == d.ratio]
    return geometric_mean(ratios) if ratios else None


class ExperimentPipeline:
    """Runs assignments in one worker's `ref` and `cand` slots."""

    def __init__(self, config: CampaignConfig, slots: SlotPool, pinning: Pinning, worker: str,
                 log_root: pathlib.Path, lock: MeasurementLock, board: PhaseBoard, send_block: BlockSink,
                 send_event: EventSink, tag: str | None = None):
        self.config = config
        self.slots = slots
        self.pinning = pinning
        self.worker = worker
        self.log_root = pathlib.Path(log_root)
        self.lock = lock
        self.board = board
        self.send_block = send_block
        self.send_event = send_event
        self.tag = tag  # "<campaign>:<worker>": every phase command carries it (see farm.node.processes)
        self._ref_built: tuple[str, str | None] | None = None  # (commit, fingerprint) of the built ref slot
        # The workdir (or the node's run directory: slots, lock, phase board, logs) and the repository, its git
        # directory inside it: hidden from agents, read-only to phases but for the checkout a phase runs in.
        self.farm_dirs = (self.log_root.parent, slots.repo.path)
        self.contained = sandbox.bwrap_problem() is None  # else phases fall back to the tag sweep
        # measurement.channels [time, instructions]: instructions are counted in the blocks of the first look
        self.counted_blocks = config.acceptance.schedule()[0] if "instructions" in config.measurement.channels else 0
        command = realisers.CommandRealiser(config, slots.repo, Scratch(slots.repo, slots.root / "scratch"),
                                            self.log_root, pinning, tag, self.farm_dirs, send_event)
        self.realisers: dict[str, realisers.Realiser] = {
            "patch": realisers.PatchRealiser(config), "command": command, "knobs": realisers.KnobsRealiser(config),
            "refs": realisers.RefsRealiser(config)}

    # -- public ------------------------------------------------------------

    def run(self, assignment: Assignment) -> ExperimentResult:
        started = time.time()
        draft = Draft()
        try:
            run = {Kind.AA: self._run_aa, Kind.CONFIRM: self._run_confirm}.get(assignment.kind, self._run)
            status, reason = run(assignment, draft)
        except Outcome as outcome:
            status, reason = outcome.status, outcome.reason
        finally:
            self.board.set("idle")
        self.send_event(assignment.experiment_id, "verdict", f"{status.value}: {reason}")
        return draft.result(assignment.experiment_id, status, reason, self.worker, self.pinning.cpus, started)

    # -- the flow ----------------------------------------------------------

    def _run(self, a: Assignment, draft: Draft) -> tuple[Status, str]:
        exp = a.experiment_id
        ref = self.slots.slot("ref", a.parent_commit)
        cand = self.slots.slot("cand", a.parent_commit)
        draft.ref_fp = self._prepare_ref(ref, a)
        cand.start_branch(a.branch, a.parent_commit, self.config.phases.build.outputs)
        self.board.set("agent", exp)
        self.send_event(exp, "agent", f"{a.kind.value} {a.hypothesis.id} on {a.parent_commit[:10]}")
        self.realisers[a.hypothesis.agent].realise(cand, a, draft)
        changed = cand.changed_paths()
        draft.changed = changed
        if not changed:
            raise Outcome(Status.NO_CHANGE, "the change is empty on this parent")
        touched = [p for p in changed if is_protected(p, self._protected(a))]
        message = f"farm: {a.hypothesis.id} ({a.kind.value})\n\n{a.hypothesis.text}".strip()
        draft.commit = cand.commit_staged(message)  # changed_paths staged every change
        if touched:
            raise Outcome(Status.TAMPERED, f"the change touches protected path(s): {', '.join(touched)}")
        draft.cand_fp = self._build(cand, exp, "cand")
        self._check_stale(cand, changed, draft)
        draft.reworked = self._guard_with_rework(cand, a, draft)
        outcome = self._measure(ref, cand, a, draft)
        decisions = outcome.decisions
        draft.decisions = decisions
        draft.effect = geometric_effect(decisions)
        reason = f"{outcome.reason} ({draft.blocks} blocks)"
        self._memory_guard(draft.peak_rss, reason)
        overfit = [d.benchmark for d in decisions if d.benchmark in self.config.held_out()
                   and d.verdict is Verdict.REGRESSED]
        if overfit:
            return Status.DISCARD, f"{OVERFITS}: held-out {', '.join(overfit)} regressed; {reason}"
        if draft.rebased:
            reason = f"made again by its agent on the tip after a conflict; {reason}"
        if draft.reworked:
            reason = f"reworked {draft.reworked}x after a guard failure; {reason}"
        return (Status.KEEP if outcome.outlook is Outlook.KEEP else Status.DISCARD), reason

    def _memory_guard(self, peaks: dict[str, list[int]], reason: str) -> None:
        """phases.guard.memory_growth: the candidate's median peak resident memory over its benchmark runs may
        exceed the parent's by at most that fraction, else `guard_fail`."""
        allowed = self.config.phases.guard.memory_growth
        if allowed is None or not peaks.get("ref") or not peaks.get("cand"):
            return
        ref, cand = statistics.median(peaks["ref"]), statistics.median(peaks["cand"])
        if cand > ref * (1 + allowed):
            raise Outcome(Status.GUARD_FAIL, f"memory guard: peak resident memory {cand / ref:.2f}x the parent's "
                                             f"({cand / 2**20:.1f} MiB against {ref / 2**20:.1f} MiB; "
                                             f"phases.guard.memory_growth allows {1 + allowed:.2f}x); {reason}")

    def _run_aa(self, a: Assignment, draft: Draft) -> tuple[Status, str]:
        """A/A canary: the parent's reference build against a second build of the same source (in the cand
        slot) for aa_blocks blocks. Its log ratios measure the build-to-build bias (none for a target that
        builds nothing); deciding them like an experiment checks for false positives."""
        ref = self.slots.slot("ref", a.parent_commit)
        cand = self.slots.slot("cand", a.parent_commit)
        draft.ref_fp = self._prepare_ref(ref, a)
        cand.reset(a.parent_commit, self.config.phases.build.outputs)
        draft.cand_fp = self._build(cand, a.experiment_id, "second build")
        # Byte-identical artefacts are no exception: two such builds of the fixture, in the two slots, ran
        # 12-20 % apart for a whole canary here. Only a target that builds nothing has no build bias.
        built = draft.ref_fp is not None or draft.cand_fp is not None
        blocks = self.config.acceptance.aa_blocks
        first, second = self._blocks(ref, cand, a, range(blocks), ("ref", "aa"), draft)
        logs = tuple((name, tuple(aa_log_ratios(first[name], second[name]).tolist()))
                     for name in sorted(set(first) & set(second)) if not name.endswith(INSTRUCTIONS))
        draft.aa = logs
        decisions = self._decide(first, second, a, (blocks,))
        outcome = decide_experiment(decisions, alpha=self.config.acceptance.alpha, final=True,
                                    first=self._instructions_first(decisions, first, second, a, draft))
        draft.decisions = outcome.decisions
        noise = ", ".join(f"{name} {math.expm1(robust_noise(values)):.2%}" for name, values in logs)
        same = " (byte-identical)" if draft.ref_fp == draft.cand_fp else ""
        builds = f"two builds{same}" if built else "nothing built"
        called = [d.benchmark for d in outcome.decisions if d.verdict in (Verdict.IMPROVED, Verdict.REGRESSED)]
        if called and not built:
            return Status.AA_FALSE_POSITIVE, f"the parent was called different from itself: {outcome.reason}"
        if called:  # a real build-to-build bias, not a false positive: the floor takes it in
            draft.artifacts = tuple(("build_bias", name, f"a second build of the same source differs: "
                                                            f"{outcome.reason}") for name in called)
        return Status.AA_CLEAN, f"{builds}; A/A noise per block: {noise}"

    def _run_confirm(self, a: Assignment, draft: Draft) -> tuple[Status, str]:
        """The final confirmation: the final integration tip (pick_tip) against the campaign base, in
        merge.confirm_blocks interleaved blocks and one look. Its intervals are the campaign's headline."""
        ref = self.slots.slot("ref", a.parent_commit)
        cand = self.slots.slot("cand", a.parent_commit)
        draft.ref_fp = self._prepare_ref(ref, a)
        cand.reset(a.pick_tip, self.config.phases.build.outputs)
        draft.commit = a.pick_tip
        draft.cand_fp = self._build(cand, a.experiment_id, "the final tip")
        blocks = self.config.merge.confirm_blocks
        values = self._blocks(ref, cand, a, range(blocks), ("ref", "cand"), draft)
        decisions = self._decide(values[0], values[1], a, (blocks,))
        outcome = decide_experiment(decisions, alpha=self.config.acceptance.alpha, final=True,
                                    first=self._instructions_first(decisions, values[0], values[1], a, draft))
        draft.decisions = outcome.decisions
        draft.effect = geometric_effect(outcome.decisions)
        reason = f"final tip {a.pick_tip[:10]} against the base {a.parent_commit[:10]}: {outcome.reason} " \
                 f"({blocks} blocks)"
        return (Status.KEEP if outcome.outlook is Outlook.KEEP else Status.DISCARD), reason

    def _prepare_ref(self, ref: Slot, a: Assignment) -> str | None:
        """Check out and build the parent in the ref slot, once per parent."""
        if (self._ref_built and self._ref_built[0] == a.parent_commit and ref.head() == a.parent_commit
                and not a.rebuild_ref):
            return self._ref_built[1]
        self._ref_built = None
        ref.reset(a.parent_commit, self.config.phases.build.outputs)
        if a.rebuild_ref:
            ref.clean_build()
        try:
            fp = self._build(ref, a.experiment_id, "ref")
        except Outcome as outcome:
            raise Outcome(outcome.status, f"the parent {a.parent_commit[:10]} itself: {outcome.reason}") from None
        self._ref_built = (a.parent_commit, fp)
        return fp

    def _protected(self, a: Assignment) -> list[str]:
        """The protected paths, and the env file for every change but a knob setting: the phases run with its
        variables, so a patch or an agent could otherwise change how the guard and the benchmark run."""
        env_file = [self.config.phases.env_file] if self.realisers[a.hypothesis.agent].env_file_protected else []
        return self.config.protected_paths + env_file

    @contextlib.contextmanager
    def _holding(self, hold: Callable[..., contextlib.AbstractContextManager[float]], phase: str, exp: str,
                 what: str) -> Iterator[float]:
        """Wait for the node's measurement lock (`hold`: self.lock.shared or .exclusive) as phase `wait` (when
        it has to), then publish `phase` until just before the lock is released (`idle` then: the board never
        shows another worker a build or a measurement that is not holding the lock). Yields the seconds waited;
        a wait of LOCK_EVENT_SECONDS or more is an event."""
        with hold(on_wait=lambda: self.board.set("wait", exp)) as waited:
            self.board.set(phase, exp)
            if waited >= LOCK_EVENT_SECONDS:
                self.send_event(exp, "lock", f"waited {waited:.2f}s for the node's measurement lock before {what}")
            try:
                yield waited
            finally:
                self.board.set("idle", exp)

    def _phase(self, phase: str, command: str, timeout: float, slot: Slot, exp: str, log_name: str,
               measure_memory: bool = False):
        """Run a phase in its sandbox, with the variables of the checkout's env file; a timeout becomes the
        experiment's Outcome."""
        box = sandbox.phase_sandbox(self.farm_dirs, slot.path) if self.contained else None
        try:
            return run_command(phase, command, slot.path, timeout, self.pinning,
                               log_path=self.log_root / exp / f"{log_name}.log", tag=self.tag, sandbox=box,
                               env=knobs.read_env_file(slot.path / self.config.phases.env_file),
                               measure_memory=measure_memory)
        except PhaseTimeout as error:
            raise Outcome(Status.TIMEOUT, str(error)) from None

    def _build(self, slot: Slot, exp: str, arm: str) -> str | None:
        build = self.config.phases.build
        try:
            with self._holding(self.lock.shared, "build", exp, f"the build of {arm}"):
                self.send_event(exp, "build", f"building {arm} at {slot.head()[:10]}")
                self._phase("build", build.command, build.timeout, slot, exp, f"build-{arm}")
        except PhaseError as error:
            raise Outcome(Status.CRASH, f"build of {arm} failed: {error}") from None
        return fingerprint(slot.path, build.artifacts)

    def _guard_with_rework(self, cand: Slot, a: Assignment, draft: Draft) -> int:
        """Run the guard; on failure rework (up to rework_tries): a patch agent applies the hypothesis' next
        rework patch, a command agent runs again with the guard's output. Every rework's change is checked like
        the first: protected paths, a build, the stale-build check. Returns the reworks used."""
        guard = self.config.phases.guard
        realiser = self.realisers[a.hypothesis.agent]
        tries = realiser.rework_tries(a)
        for attempt in range(tries + 1):
            self._verify(cand, "cand", a, "the guard")
            try:
                with self._holding(self.lock.shared, "guard", a.experiment_id, "the guard"):
                    self.send_event(a.experiment_id, "guard",
                                    "running the guard" + (f" (rework {attempt})" if attempt else ""))
                    self._phase("guard", guard.command, guard.timeout, cand, a.experiment_id, f"guard-{attempt}")
                return attempt
            except PhaseError as error:
                failure = error
            if attempt == tries:
                detail = f" after {attempt} rework(s)" if attempt else ""
                raise Outcome(Status.GUARD_FAIL, f"guard failed{detail}: {failure}")
            before = cand.head()
            realiser.rework(cand, a, draft, attempt + 1, failure)
            reworked = cand.changed_paths()
            draft.changed = sorted(set(draft.changed) | set(reworked))
            touched = [p for p in reworked if is_protected(p, self._protected(a))]
            draft.commit = cand.commit_all(f"farm: {a.hypothesis.id} rework {attempt + 1}") or before
            if touched:
                raise Outcome(Status.TAMPERED, f"rework {attempt + 1} touches protected path(s): "
                                               f"{', '.join(touched)}")
            draft.cand_fp = self._build(cand, a.experiment_id, f"cand-rework{attempt + 1}")
            self._check_stale(cand, reworked, draft)
        raise AssertionError("unreachable")

    def _run_bench(self, slot: Slot, exp: str, arm: str, block: int, required: list[str]) -> list[Sample]:
        """One benchmark run: its printed readings, and one per `peak_rss` benchmark; every sample carries the
        run's peak resident memory."""
        bench = self.config.phases.bench
        memory_benchmarks = self.config.memory_benchmarks()
        started = time.time()
        try:
            result = self._phase("bench", bench.command, bench.timeout, slot, exp, "bench", measure_memory=True)
        except PhaseError as error:
            raise Outcome(Status.CRASH, f"benchmark run ({arm}, block {block}) failed: {error}") from None
        try:
            readings = parse_output(result.stdout, bench.protocol, bench.pattern,
                                    [name for name in required if name not in memory_benchmarks])
        except ProtocolError as error:
            raise Outcome(Status.CRASH, f"benchmark output ({arm}, block {block}) unreadable: {error}") from None
        if memory_benchmarks and not result.peak_rss:
            raise Outcome(Status.CRASH, f"benchmark run ({arm}, block {block}): its peak memory was not measured")
        finished = time.time()
        samples = [Sample(exp, arm, block, r.name, r.value, r.unit, r.cpus or self.pinning.cpus, r.pid or result.pid,
                          started, finished, result.peak_rss) for r in readings]
        return samples + [Sample(exp, arm, block, name, float(result.peak_rss), "bytes", self.pinning.cpus,
                                 result.pid, started, finished, result.peak_rss) for name in memory_benchmarks]

    def _count_instructions(self, slot: Slot, exp: str, arm: str, block: int) -> list[Sample]:
        """Each printed benchmark's instruction count (measurement.channels), one run of its
        instructions_command under the node's counter (farm/experiment/instruction_counter.py), as samples of
        `<benchmark>.instructions`. Only in the blocks of the first look: the counts are nearly free
        of noise, so the first look decides them, and a count can cost many times the benchmark's own run
        (cachegrind)."""
        counter, found = instruction_counter.find_counter()
        if counter is None:
            raise Outcome(Status.CRASH, f"measurement.channels has instructions, but {found}")
        samples = []
        for name in self.config.printed_benchmarks():
            started = time.time()
            command = instruction_counter.counted(counter, self.config.instructions_command(name))
            try:
                result = self._phase("bench", command, self.config.phases.bench.timeout * COUNT_SLOWDOWN[counter],
                                     slot, exp,
                                     f"instructions-{name}")
                count = instruction_counter.read_count(counter, result.stderr)
            except (PhaseError, instruction_counter.CountError) as error:
                raise Outcome(Status.CRASH, f"instruction count of {name} ({arm}, block {block}) failed: "
                                            f"{error}") from None
            samples.append(Sample(exp, arm, block, name + INSTRUCTIONS, float(count), f"instructions/{counter}",
                                  self.pinning.cpus, result.pid, started, time.time()))
        return samples

    def _instructions_first(self, decisions: list[BenchmarkDecision], ref_values: dict, cand_values: dict,
                            a: Assignment, draft: Draft) -> frozenset[str]:
        """The benchmarks whose instruction counts improved beyond their floor (the floor of their time
        `decisions`), which get the larger share of Holm's alpha for the time win (stats.decision.holm_mask);
        their decisions go into the draft (`counts`) and an event, once: the counts end with the first look.
        Empty without the channel."""
        if not self.counted_blocks:
            return frozenset()
        if not draft.counts:
            # One look at the counted blocks (the first look's): the family is chosen once, from counts alone.
            # `exact`: cachegrind gives a deterministic program the same count every run, a ratio without spread.
            counts = {name.removesuffix(INSTRUCTIONS): (ref_values[name], cand_values[name])
                      for name in sorted(set(ref_values) & set(cand_values)) if name.endswith(INSTRUCTIONS)}
            floors = {d.benchmark: d.effect_floor for d in decisions}
            draft.counts = tuple(
                decide_benchmark(name + INSTRUCTIONS, ref, cand, floors[name], alpha=self.config.acceptance.alpha,
                                 looks=(len(ref),), beta=self.config.acceptance.beta, exact=True)
                for name, (ref, cand) in counts.items() if name in floors)
            if draft.counts:
                self.send_event(a.experiment_id, "instructions", "; ".join(
                    f"{d.benchmark} {d.ratio:.4f}x {d.verdict.value}" for d in draft.counts))
        return frozenset(d.benchmark.removesuffix(INSTRUCTIONS) for d in draft.counts if d.verdict is Verdict.IMPROVED)

    def _check_stale(self, cand: Slot, changed: list[str], draft: Draft) -> None:
        """stale_build: a changed source that feeds the artefacts is newer than an artefact after the build."""
        build = self.config.phases.build
        sources = {p: os.path.getmtime(cand.path / p) for p in changed
                   if any(fnmatch.fnmatch(p, pattern) for pattern in build.sources) and (cand.path / p).exists()}
        artefacts = {pathlib.Path(f).relative_to(cand.path).as_posix(): os.path.getmtime(f)
                     for pattern in build.artifacts for f in glob.glob(str(cand.path / pattern), recursive=True)}
        reason = stale_build(sources, artefacts)
        if reason:
            draft.artifacts = (("stale_build", None, reason),)
            raise Outcome(Status.STALE_BUILD, reason)

    def _blocks(self, first_slot: Slot, second_slot: Slot, a: Assignment, blocks, arms: tuple[str, str],
                draft: Draft, values=None):
        """Run interleaved blocks (ABBA...: the first arm leads in even blocks), each holding the node's
        measurement lock and sent with the node's state while it ran. Returns per-arm values. A block whose
        reference checkout was found changed is discarded and run again once on a rebuilt reference."""
        required = list(self.config.benchmarks)
        values = values or ({}, {})
        for block in blocks:
            pairs = ((arms[0], first_slot), (arms[1], second_slot))
            order = pairs if block % 2 == 0 else pairs[::-1]
            try:
                record, batch = self._block(a, block, order, required)
            except ReferenceChanged as changed:
                self._rebuild_ref(a, str(changed))
                try:
                    record, batch = self._block(a, block, order, required)
                except ReferenceChanged as again:
                    raise Outcome(Status.CRASH, f"the reference checkout was changed again after its rebuild: "
                                                f"{again}") from None
            if not required:  # no benchmarks configured: the first run's names decide
                required = sorted({s.benchmark for s in batch if s.arm == arms[0]})
            self.send_block(record, batch)
            draft.blocks = block + 1
            for (arm, _), peak in {(s.arm, s.block): s.peak_rss for s in batch if s.peak_rss}.items():
                draft.peak_rss.setdefault(arm, []).append(peak)
            for sample in batch:
                target = values[0] if sample.arm == arms[0] else values[1]
                target.setdefault(sample.benchmark, []).append(sample.value)
        return values

    def _block(self, a: Assignment, block: int, order, required: list[str]) -> tuple[Block, list[Sample]]:
        """One block: each arm's checkout verified, then its benchmark run, under the exclusive lock. In the
        blocks of the first look with the instruction channel, then each arm's counts under the shared lock,
        as a build: a count needs no quiet node (it does not change with what runs beside it), and under
        cachegrind it takes far longer than the timed runs, so the other workers may count or build meanwhile
        (the shared lock still keeps it from running beside another worker's timed runs)."""
        exp = a.experiment_id
        batch = []
        with self._holding(self.lock.exclusive, "measure", exp, f"block {block + 1}") as waited:
            self.send_event(exp, "measure", f"block {block + 1}")
            others_before = self.board.others()
            started = time.time()
            for arm, slot in order:
                self._verify(slot, arm, a, f"benchmark block {block + 1}")
                batch.extend(self._run_bench(slot, exp, arm, block, required))
            finished = time.time()
            record = Block(exp, block, self.worker, ",".join(arm for arm, _ in order), started, finished,
                           load_average(), cpu_mhz(self.pinning.cpus),
                           describe_others(others_before, self.board.others()), waited)
        if block < self.counted_blocks:
            with self._holding(self.lock.shared, "count", exp, f"the instruction counts of block {block + 1}"):
                for arm, slot in order:
                    self._verify(slot, arm, a, f"the instruction counts of block {block + 1}")
                    batch.extend(self._count_instructions(slot, exp, arm, block))
        return record, batch

    def _verify(self, slot: Slot, arm: str, a: Assignment, before: str) -> None:
        """The checkout must be its commit (Slot.verify) before a guard or benchmark run. A reference that is
        not raises ReferenceChanged (rebuilt, the block run again); a candidate is `tampered`, and any other
        checkout (an A/A second build, a final tip) ends the experiment as a crash; both slots are made afresh."""
        problems = slot.verify(self.config.protected_paths, self.config.phases.build.outputs)
        if not problems:
            return
        found = "; ".join(problems)
        self.send_event(a.experiment_id, "tampered", f"the {arm} checkout before {before}: {found}")
        if arm == "ref":
            raise ReferenceChanged(found)
        self._ref_built = None
        for name in ("ref", "cand"):  # whatever changed one may have changed the other: both are checked out anew
            self.slots.remove(name)
        status = Status.TAMPERED if a.kind in (Kind.SCREEN, Kind.MERGE) else Status.CRASH
        raise Outcome(status, f"the {arm} checkout is not its commit before {before}: {found}; the slots are "
                              f"made afresh")

    def _rebuild_ref(self, a: Assignment, found: str) -> None:
        """The reference slot made afresh and built again, after it was found changed."""
        self.send_event(a.experiment_id, "tampered", f"the reference checkout is rebuilt from scratch: {found}")
        self._ref_built = None
        self.slots.remove("ref")
        self._prepare_ref(self.slots.slot("ref", a.parent_commit), a)

    def _measure(self, ref: Slot, cand: Slot, a: Assignment, draft: Draft):
        """Blocks up to each scheduled look, deciding at each, until the decision stops."""
        acceptance = self.config.acceptance
        looks = acceptance.schedule()
        regular_last = acceptance.regular_looks()[-1]
        values, done = None, 0
        for look in looks:
            values = self._blocks(ref, cand, a, range(done, look), ("ref", "cand"), draft, values)
            done = look
            decisions = self._decide(values[0], values[1], a, looks)
            outcome = decide_experiment(decisions, alpha=acceptance.alpha, final=look == looks[-1],
                                        first=self._instructions_first(decisions, values[0], values[1], a, draft),
                                        extend=look == regular_last)
            self.send_event(a.experiment_id, "measure", f"look at {look} blocks: {outcome.outlook.value}"
                                                        + (" (extension)" if look > regular_last else ""))
            if outcome.outlook is not Outlook.CONTINUE:
                break
        draft.ref_means = tuple((name, geometric_mean(v)) for name, v in sorted(values[0].items())
                                if v and min(v) > 0 and not name.endswith(INSTRUCTIONS))
        return outcome

    def _decide(self, ref_values: dict, cand_values: dict, a: Assignment, looks) -> list[BenchmarkDecision]:
        """Each configured benchmark against its floor: min_effect plus the worker's measured build bias."""
        acceptance = self.config.acceptance
        bias = dict(a.build_bias)
        decisions = []
        for name in sorted(set(ref_values) & set(cand_values)):
            if self.config.benchmarks and name not in self.config.benchmarks:
                continue  # printed but not configured: recorded as samples, not decided
            settings = self.config.benchmarks.get(name)
            if settings and settings.held_out and a.kind is Kind.SCREEN:
                continue  # a hold-out: decided when the change is about to land, never in a screen
            minimum = settings.min_effect if settings and settings.min_effect is not None else acceptance.min_effect
            higher = bool(settings and settings.direction is Direction.HIGHER)
            floor = float(effect_floor(minimum, bias.get(name, 0.0)))
            decisions.append(decide_benchmark(name, ref_values[name], cand_values[name], floor, higher_is_better=higher,
                                              alpha=acceptance.alpha, looks=looks, beta=acceptance.beta,
                                              exact=bool(settings and settings.metric == "peak_rss")))
        return decisions
