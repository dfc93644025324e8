"""The farm's own performance: what it costs beyond the target's own work (part of issue 13).

    python bench/farm_perf.py [--quick] [--workdir DIR] [--out FILE] [--docs FILE]
                              [--parts overhead,slots,store,throughput,startup]

Every figure is measured in this run, side by side with what it is compared to, and printed with its
target, "met" or "MISSED". The figures go to bench/results/farm_perf.json and into the generated table of
docs/performance.md (between its markers; the hand-written text around it is kept). A missed target, or
a part that failed, makes the exit code 1, after every part has run. --quick is a smoke run of about
two minutes (small sizes; its figures are not the suite's): it writes bench/results/farm_perf-quick.json and
leaves the docs alone.

The parts (each a function returning Figure records, so that tests/bench/test_farm_perf.py can run them
in a tiny mode):

1. overhead     per-experiment overhead of real campaigns (run_campaign: local Ray, git worktrees, DuckDB)
                on a generated target whose build, guard and benchmark do nearly nothing, and side by side
                on one whose benchmark makes an experiment last about 5 s.
2. slots        reusing a worktree slot (SlotPool.slot + Slot.reset) against `git worktree add` and a fresh
                `git clone`, on the C++ fixture and on a generated 20,000-file repository.
3. store        1,000,000 samples into a DuckDB file through the store's spool (as workers on its node send
                them) and the coordinator's drains (each takes in the spool and writes it), then every
                cookbook recipe on that store.
4. throughput   the real coordinator loop with 8, 32 and 64 synthetic workers whose experiments sleep
                through their phases for 2 s, against the ideal workers / 2 s.
5. startup      `farm validate configs/demo.yaml` and `farm doctor`, each in a fresh interpreter.

The machine is shared and noisy: each figure is a median of repetitions where it can be, and the docs say
what limits each. Keep other work off the machine while the full suite runs (about 6-7 minutes on 2 cores; each part's
load average goes into the results).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import datetime
import json
import logging
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "performance.md"
TABLE_START = "<!-- farm_perf: generated table, start (bench/farm_perf.py rewrites what is between the markers) -->"
TABLE_END = "<!-- farm_perf: generated table, end -->"
PARTS = ("overhead", "slots", "store", "throughput", "startup")


@dataclasses.dataclass(frozen=True)
class Figure:
    """One measured figure against its target: `measured` `unit`, met when `measured` `op` `target`."""

    part: str
    name: str
    measured: float
    unit: str
    op: str  # "<", "<=", ">=" or ">"
    target: float
    details: dict = dataclasses.field(default_factory=dict)  # what it was measured from, for the results file

    @property
    def met(self) -> bool:
        compare = {"<": float.__lt__, "<=": float.__le__, ">=": float.__ge__, ">": float.__gt__}[self.op]
        return bool(compare(float(self.measured), float(self.target)))

    def line(self) -> str:
        return (f"{self.name}: {_show(self.measured, self.unit)} (target {self.op} {_show(self.target, self.unit)}) "
                f"{'met' if self.met else 'MISSED'}")


def _show(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.2f} %"
    if unit == "x":
        return f"{value:.1f}x"
    if unit == "ratio":
        return f"{value:.3f}"
    return f"{value:.3g} {unit}" if abs(value) < 1000 else f"{value:.0f} {unit}"


def _median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def _ts(value) -> float:
    """A store TIMESTAMP (naive local time, written with datetime.fromtimestamp) as Unix seconds."""
    return value.timestamp()


def _quiet_echo(_line: str) -> None:
    """run_campaign's progress lines are not wanted here; the store has everything."""


# -- 1. per-experiment overhead ---------------------------------------------------------------------------

def _timed(kind: str, body: str, times: pathlib.Path) -> str:
    """A phase command that records how long its own body ran, from inside: bash's $EPOCHREALTIME (a
    builtin, so the clock costs no process) before and after the body, appended to `times`. What the farm
    spends around the command (taskset, bash's start, the kill sweep after it, the log) is outside these
    two readings and counts as overhead."""
    return f's=$EPOCHREALTIME; {body}; echo "{kind} $s $EPOCHREALTIME" >> {times}'


def _busy(seconds: float) -> str:
    """Bash that keeps its CPU busy for `seconds` with builtins only (no process), as a benchmark does. Not
    `sleep`: an idle CPU drops into a deep sleep state, and waking the farm's processes after it cost about 5 ms
    more per run here, an effect of the idle CPU rather than of the farm (docs/performance.md)."""
    return (f"end=$(( ${{EPOCHREALTIME/./}} + {round(seconds * 1e6)} )); "
            "while (( ${EPOCHREALTIME/./} < end )); do :; done")


def _trivial_repo(path: pathlib.Path) -> pathlib.Path:
    """A target with nothing to build: one text file the hypotheses add a line to."""
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("a target whose phases do (almost) nothing\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    return path


def _overhead_config(campaign: str, repo: pathlib.Path, patch: pathlib.Path, times: pathlib.Path,
                     bench_seconds: float, screens: int):
    """One worker (CPU set (0,), so Ray and the farm get the other CPU, as run_campaign places them), the
    fewest blocks the acceptance config allows (3, no extension), one A/A canary at the start (the
    worker's first experiment) and then only screens of a no-op patch: discards, so nothing lands and
    every screen has the same parent."""
    from farm.campaign_file.config import CampaignConfig

    value = 'printf \'{"name": "t", "value": 1.00%d, "unit": "s"}\\n\' $((RANDOM % 10))'
    bench = f"{_busy(bench_seconds)}; {value}" if bench_seconds else value
    return CampaignConfig(
        campaign=campaign,
        target={"repo": str(repo), "base_ref": "main"},
        workers={"count": 1},
        phases={"build": {"command": _timed("build", "true", times)},
                "guard": {"command": _timed("guard", "true", times)},
                "bench": {"command": _timed("bench", bench, times)}},
        acceptance={"aa_blocks": 3, "min_blocks": 3, "max_blocks": 3, "extension_looks": [], "min_effect": 0.05,
                    "canary_every": 1000},
        merge={"confirm_blocks": 0},
        strategies=[{"name": "s", "hypotheses": [{"id": f"h{i:03d}", "patch": str(patch)}
                                                 for i in range(screens)]}])


def _campaign_cycles(db: pathlib.Path, campaign: str, times: pathlib.Path) -> list[dict]:
    """Per screen of a finished one-worker campaign: its cycle (from its start to the next screen's start,
    so everything the farm does between two experiments is in it), the time inside the target's commands
    in that cycle, and the phases of the phase board in it. The last screen has no next: left out."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        screens = con.execute("SELECT id, started_at, finished_at, status FROM experiments WHERE campaign = ? AND "
                              "kind = 'screen' ORDER BY started_at", [campaign]).fetchall()
        phases = [(phase, _ts(start), _ts(end)) for phase, start, end in con.execute(
            "SELECT phase, started_at, finished_at FROM phases WHERE campaign = ?", [campaign]).fetchall()]
    finally:
        con.close()
    inside = []
    for line in times.read_text().splitlines():
        kind, start, end = line.split()
        inside.append((kind, float(start), float(end)))
    cycles = []
    for (exp, start, finish, status), (_, next_start, _, _) in zip(screens, screens[1:]):
        window = (_ts(start), _ts(next_start))
        target = sum(min(e, window[1]) - max(s, window[0]) for _, s, e in inside if s < window[1] and e > window[0])
        commands = sum(1 for _, s, _ in inside if window[0] <= s < window[1])
        by_phase: dict[str, float] = {}
        for phase, s, e in phases:
            if s < window[1] and e > window[0]:
                by_phase[phase] = by_phase.get(phase, 0.0) + min(e, window[1]) - max(s, window[0])
        cycles.append({"experiment": exp, "status": status, "cycle": window[1] - window[0],
                       "pipeline": _ts(finish) - _ts(start), "target": target, "commands": commands,
                       "phases": by_phase})
    return cycles


def _overhead_campaign(workdir: pathlib.Path, name: str, bench_seconds: float, screens: int) -> dict:
    """Run one campaign and summarise its cycles: medians of the cycle, the target's time, the overhead
    (cycle - target) and where the overhead went."""
    from scheduler.runtime import run_campaign

    base = workdir / name
    repo = _trivial_repo(base / "repo")
    # One appended line: a change the guard and the benchmark do not see, so every screen is a discard.
    patch = base / "noop.patch"
    patch.write_text("diff --git a/notes.txt b/notes.txt\n--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1,2 @@\n"
                     " a target whose phases do (almost) nothing\n+one more line\n")
    times = base / "times.txt"
    times.touch()
    config = _overhead_config(name, repo, patch, times, bench_seconds, screens)
    started = time.monotonic()
    run_campaign(config, base / "work", base / "work" / "farm.duckdb", echo=_quiet_echo)
    wall = time.monotonic() - started
    cycles = _campaign_cycles(base / "work" / "farm.duckdb", name, times)
    if not cycles:
        raise RuntimeError(f"campaign {name}: fewer than two screens finished")
    overheads = [c["cycle"] - c["target"] for c in cycles]
    phase_names = sorted({p for c in cycles for p in c["phases"]})
    phases = {p: _median(c["phases"].get(p, 0.0) for c in cycles) for p in phase_names}
    # The commands' wrapping: the build, guard and measure phases minus the target's own time in them
    # (starting the process under taskset and bash, the kill sweep of /proc after it, its log).
    wrapping = [sum(c["phases"].get(p, 0.0) for p in ("build", "guard", "measure")) - c["target"] for c in cycles]
    return {"campaign_seconds": wall, "screens": len(cycles) + 1, "cycles": len(cycles),
            "statuses": sorted({c["status"] for c in cycles}),
            "cycle_s": _median(c["cycle"] for c in cycles), "pipeline_s": _median(c["pipeline"] for c in cycles),
            "target_s": _median(c["target"] for c in cycles), "commands_per_experiment": _median(
                c["commands"] for c in cycles),
            "overhead_s": _median(overheads), "overhead_min_s": min(overheads), "overhead_max_s": max(overheads),
            "between_experiments_s": _median(c["cycle"] - c["pipeline"] for c in cycles),
            "command_wrapping_s": _median(wrapping), "phases_s": phases}


def part_overhead(workdir: pathlib.Path, quick: bool = False, tiny: bool = False) -> list[Figure]:
    """Per-experiment overhead: a campaign on a trivial target (the overhead is nearly the whole cycle)
    and one whose benchmark sleeps so that an experiment lasts about 5 s (3 blocks x 2 arms x 0.8 s)."""
    screens, slow_screens, slow_bench = (2, 2, 0.02) if tiny else (5, 3, 0.8) if quick else (25, 8, 0.8)
    trivial = _overhead_campaign(workdir, "ovh-trivial", 0.0, screens)
    slow = _overhead_campaign(workdir, "ovh-5s", slow_bench, slow_screens)
    ratio = 100.0 * slow["overhead_s"] / slow["cycle_s"]
    return [
        Figure("overhead", "overhead per experiment, trivial target", 1000.0 * trivial["overhead_s"], "ms", "<",
               100.0, trivial),
        Figure("overhead", f"overhead / experiment of {slow['cycle_s']:.1f} s", ratio, "%", "<", 2.0, slow),
    ]


# -- 2. worktree slots --------------------------------------------------------------------------------------

CHANGED_FILES = 5  # files the second commit changes: a landed experiment's size, about


def _fast_import(repo: pathlib.Path, files: int, file_bytes: int = 400) -> None:
    """A new repository `repo` with `files` files in one commit on main (100 per directory, each distinct),
    and a second commit that changes CHANGED_FILES of them, made with git fast-import: one process, no work
    tree written (the slots and clones are what writes them)."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, capture_output=True)
    chunks = []
    filler = "x" * file_bytes
    paths = [f"d{i // 100:03d}/f{i % 100:02d}.txt" for i in range(files)]
    for index, path in enumerate(paths):
        body = f"{path} {index}\n{filler}\n".encode()
        chunks.append(b"blob\nmark :%d\ndata %d\n%s\n" % (index + 1, len(body), body))
    chunks.append(b"commit refs/heads/main\nmark :%d\ncommitter t <t@t> 1700000000 +0000\ndata 4\nbase\n"
                  % (files + 1))
    chunks.extend(b"M 100644 :%d %s\n" % (index + 1, path.encode()) for index, path in enumerate(paths))
    chunks.append(b"\ncommit refs/heads/main\ncommitter t <t@t> 1700000100 +0000\ndata 6\nsecond\nfrom :%d\n"
                  % (files + 1))
    for path in paths[:CHANGED_FILES]:
        body = f"{path} changed\n".encode()
        chunks.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(body), body))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(chunks) + b"\n", check=True,
                   capture_output=True)


def _fixture_repo(path: pathlib.Path) -> pathlib.Path:
    """The C++ fixture as cpp_fixture.init_repo makes it, plus a second commit that changes one kernel source
    (src/idw.cpp), as most of the fixture's hypotheses do."""
    import cpp_fixture

    repo = cpp_fixture.init_repo(path)
    with open(repo / "src" / "idw.cpp", "a") as handle:
        handle.write("\n// changed\n")
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "second"], cwd=repo,
                   check=True, capture_output=True)
    return repo


def _slot_timings(repo_path: pathlib.Path, scratch: pathlib.Path, repetitions: int,
                  build: list[str] | None = None) -> dict:
    """Median seconds of the three ways to get a checkout of a commit, interleaved (each repetition runs
    the three in a rotated order, so a slow stretch of the machine hits all of them):

    reuse  SlotPool.slot("cand", commit) of the existing slot, then Slot.reset(commit) to the other of the
           repository's two commits: what a worker does between experiments (git worktree list, checkout
           --force --detach, clean -fdq, and the helpers' rev-parse calls);
    add    `git worktree add --detach DIR commit` (the bare command, not SlotPool's lock and prune: the
           cheapest way to add one);
    clone  `git clone --no-hardlinks` of the repository (its main branch checked out): a full copy of the
           objects, as a fresh clone on another node would have to make (a plain local clone would hardlink
           them instead).

    With `build` (a command), each way also builds its checkout: the reused slot incrementally (it keeps its
    build directory), the new worktree and clone from scratch.

    The new worktree and clone are removed after each timing, outside it."""
    from worktrees import SlotPool, TargetRepo
    from worktrees.repo import run_git

    repo = TargetRepo(repo_path)
    commits = [repo.resolve("main~1"), repo.resolve("main")]
    pool = SlotPool(repo, scratch / "slots")
    pool.slot("cand", commits[0]).reset(commits[0])  # created once, like a worker's first experiment (built in
    # the first, uncounted round)
    current = 0
    times: dict[str, list[float]] = {"reuse": [], "add": [], "clone": []}

    found: list[float] = []  # of reuse: the part in SlotPool.slot (the rest is Slot.reset)

    def reuse() -> None:
        nonlocal current
        current = 1 - current
        started = time.perf_counter()
        slot = pool.slot("cand", commits[current])
        found.append(time.perf_counter() - started)
        slot.reset(commits[current], keep=["build/"])
        built(slot.path)

    def add() -> None:
        run_git(repo.path, "worktree", "add", "--detach", str(scratch / "added"), commits[1])
        built(scratch / "added")

    def clone() -> None:
        run_git(scratch, "clone", "--quiet", "--no-hardlinks", str(repo.path), str(scratch / "cloned"))
        built(scratch / "cloned")

    def built(checkout: pathlib.Path) -> None:
        if build:
            subprocess.run(build, cwd=checkout, check=True, capture_output=True)

    def tidy() -> None:
        shutil.rmtree(scratch / "added", ignore_errors=True)
        run_git(repo.path, "worktree", "prune")
        shutil.rmtree(scratch / "cloned", ignore_errors=True)

    ways = [("reuse", reuse), ("add", add), ("clone", clone)]
    for repetition in range(repetitions + 1):  # the first round warms the page cache, and is not counted
        shift = repetition % len(ways)
        for name, way in ways[shift:] + ways[:shift]:
            started = time.perf_counter()
            way()
            elapsed = time.perf_counter() - started
            tidy()
            if repetition:
                times[name].append(elapsed)
    files = len(run_git(repo.path, "ls-tree", "-r", "--name-only", "main").splitlines())
    return {"files": files, "repetitions": repetitions, **{f"{n}_s": _median(v) for n, v in times.items()},
            "reuse_slot_lookup_s": _median(found[1:]), "samples_s": times}


def part_slots(workdir: pathlib.Path, quick: bool = False, tiny: bool = False) -> list[Figure]:
    """Slot reuse against worktree add and a fresh clone: on the C++ fixture with the build each needs (the
    slot's incremental, a full one for the new checkouts; git alone in the tiny mode), and on a generated
    20,000-file repository with git alone."""
    files, reps_small, reps_large = (300, 2, 2) if tiny else (20_000, 3, 2) if quick else (20_000, 5, 5)
    workdir.mkdir(parents=True, exist_ok=True)
    large = workdir / f"generated-{files}"
    started = time.perf_counter()
    _fast_import(large, files)
    generated_s = time.perf_counter() - started
    figures = []
    build = None if tiny else [sys.executable, "build.py"]
    for label, repo, reps, how in (
            ("C++ fixture", _fixture_repo(workdir / "fixture"), reps_small, build),
            (f"{files:,}-file repository", large, reps_large, None)):
        scratch = workdir / f"scratch-{repo.name}"
        scratch.mkdir()
        timing = _slot_timings(repo, scratch, reps, how)
        if repo == large:
            timing["generated_s"] = generated_s
        for other in ("add", "clone"):
            fresh = "worktree add" if other == "add" else "fresh clone"
            name = (f"slot reuse + incremental build vs {fresh} + full build, {label}" if how else
                    f"slot reuse vs {fresh}, {label}")
            figures.append(Figure("slots", name, timing[f"{other}_s"] / timing["reuse_s"], "x", ">=", 10.0,
                                  {**timing, "build": how}))
    return figures


# -- 3. store ingest and post-mortem recipes ----------------------------------------------------------------

BENCHMARKS = 5  # the fixture's (and the demo's) benchmarks: a block is 2 arms x 5 = 10 samples
BLOCKS_PER_EXPERIMENT = 10  # a measured experiment's blocks (the default looks run from 3 to 20)
WORKERS_SENDING = 64  # calls in flight at once from workers on other nodes, each waiting for its own
DRAIN_SECONDS = 1.0  # the coordinator drains the store actor's events at least this often
STORE_CAMPAIGN = "perfstore"


@contextlib.contextmanager
def _ray_session():
    """A local Ray for this part, unless one is running already (the tests start one); shut down after."""
    import ray

    started = not ray.is_initialized()
    for attempt in range(2 if started else 0):
        try:
            ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                     namespace="farm-perf")
            break
        except Exception:  # noqa: BLE001 -- a busy machine can time Ray's start out once: try again, once
            if attempt:
                raise
            time.sleep(5)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _synthetic_experiments(count: int) -> list[dict]:
    """A long campaign's experiments over a week on 64 workers: an A/A canary every 16 experiments of a
    worker, 5 % of the screens kept (each followed by its re-measurement on the tip, which lands), 5 % that
    never measure (crash, guard failure, conflict), the rest discards. Deterministic."""
    start = time.time() - 7 * 86400
    experiments = []
    for index in range(count):
        worker = f"w{index % 64}"
        if (index // 64) % 16 == 0:
            kind, status = "aa", "aa_clean"
        elif index % 20 == 3:
            kind, status = "screen", "keep"
        elif index % 20 == 4 and experiments and experiments[-1]["status"] == "keep":
            kind, status = "merge", "keep"  # the re-measurement of the screen just kept (same hypothesis)
        elif index % 20 in (7, 13):
            kind, status = "screen", ("crash", "guard_fail", "conflict")[index % 3]
        else:
            kind, status = "screen", "discard"
        began = start + index * 7 * 86400 / count
        experiments.append({"id": f"{STORE_CAMPAIGN}-{index + 1:06d}", "index": index, "worker": worker,
                            "kind": kind, "status": status, "measured": status in ("keep", "discard", "aa_clean"),
                            "hypothesis": f"h{index:06d}" if kind == "screen" else
                            experiments[-1]["hypothesis"] if kind == "merge" else None, "started": began,
                            "finished": began + 60.0})
    return experiments


def _block(experiment_id: str, worker: str, number: int):
    """One block as a worker sends it: its record and 2 arms x BENCHMARKS samples."""
    from farm.records import Block, Sample

    now = time.time()
    order = ("ref", "cand") if number % 2 == 0 else ("cand", "ref")
    cpus = (int(worker[1:]),)
    samples = [Sample(experiment_id, arm, number, f"b{k}", 0.1 * (k + 1) * (1.0 + 0.01 * ((number + k) % 3)), "s",
                      cpus, 1000 + number, now, now) for arm in order for k in range(BENCHMARKS)]
    return Block(experiment_id, number, worker, ",".join(order), now, now, 1.0, 2400.0, None, 0.0), samples


def _observations(experiment_id: str, worker: str, blocks: int = BLOCKS_PER_EXPERIMENT, events=(), phases=()):
    """An experiment's blocks (and events and phase rows) as its worker sends them to the store actor."""
    from farm.records import Observations

    return Observations.of([_block(experiment_id, worker, number) for number in range(blocks)], events, phases)


def _result(e: dict, decisions: bool):
    """The ExperimentResult a worker would return for a synthetic experiment (with a decision per benchmark
    for a measured one)."""
    from farm.records import ExperimentResult, Status
    from stats import BenchmarkDecision, Verdict

    verdict = Verdict.IMPROVED if e["status"] == "keep" else Verdict.SAME
    ratio = 0.9 if e["status"] == "keep" else 1.0
    made = tuple(BenchmarkDecision(f"b{k}", ratio, ratio - 0.02, ratio + 0.02, verdict, BLOCKS_PER_EXPERIMENT, 0.02)
                 for k in range(BENCHMARKS)) if decisions else ()
    return ExperimentResult(e["id"], Status(e["status"]), f"synthetic {e['status']}", e["worker"],
                            (int(e["worker"][1:]),), e["started"], e["finished"], commit="c" * 40, decisions=made,
                            blocks=BLOCKS_PER_EXPERIMENT if e["measured"] else 0,
                            effect=ratio if e["measured"] else None)


def _populate(store, ray, experiments: list[dict]) -> None:
    """The campaign's rows through the store actor's calls the coordinator makes: its start, its
    hypotheses, every experiment's start (apply, in batches of 500 rather than one step each, to keep this
    short), later their results with decisions, the landings and artifacts, and the race's allocations."""
    from farm.records import Hypothesis
    from farm.storage.store_writes import AddHypotheses, StartCampaign, StartExperiment

    hypotheses = [Hypothesis(e["hypothesis"], "s", f"cat{e['index'] % 7}", "a synthetic change", "patch", "")
                  for e in experiments if e["kind"] == "screen"]
    hypotheses += [Hypothesis("aa", "farm", "canary", "A/A", "aa", "")]
    state = {"version": 2, "synthetic": True}
    ray.get(store.apply.remote([
        StartCampaign(STORE_CAMPAIGN, "{}", "/repo", "main", "b" * 40, f"farm/{STORE_CAMPAIGN}/integrated", 64),
        AddHypotheses(STORE_CAMPAIGN, tuple(hypotheses), {"s": "patch"})], state))
    by_id = {h.id: h for h in hypotheses}
    for first in range(0, len(experiments), 500):
        ray.get(store.apply.remote([
            StartExperiment(e["id"], STORE_CAMPAIGN, by_id[e["hypothesis"] or "aa"], e["kind"], "b" * 40,
                            f"farm/{STORE_CAMPAIGN}/{e['id']}", e["worker"], (int(e["worker"][1:]),))
            for e in experiments[first:first + 500]], state))


def _finish(store, ray, experiments: list[dict]) -> None:
    """Results, merges, artifacts and allocations (apply, in batches); events and phases, 8 and 6 rows per
    experiment, generated by SQL in the store actor (sent row by row as workers do, they would take most of
    this part's time to write: see the ingest figure)."""
    from farm.storage.store_writes import AddAllocations, AddArtifact, AddMerge, FinishExperiment

    state = {"version": 2, "synthetic": True}
    writes = []
    position = 0
    for e in experiments:
        writes.append(FinishExperiment(_result(e, e["measured"])))
        if e["kind"] == "merge":
            position += 1
            screened = f"{STORE_CAMPAIGN}-{e['index']:06d}"
            writes.append(AddMerge(screened, STORE_CAMPAIGN, position, 0.9, 0.92, e["id"], True, "c" * 40,
                                   "re-measured on the tip", "integrated"))
        if e["index"] % 100 == 10:
            writes.append(AddArtifact(STORE_CAMPAIGN, e["id"], "control_chart", "b1",
                                      "the reference run was off its control chart"))
        if len(writes) >= 500:
            ray.get(store.apply.remote(writes, state))
            writes = []
    writes.append(AddAllocations(STORE_CAMPAIGN, time.time(), 2, (
        ("s", "winner", 64.0, len(experiments), len(experiments), 1, position, 0.9 ** position, "won"),
        ("other", "dropped", 0.0, 10, 10, 0, 0, 1.0, "dropped at rung 1"))))
    ray.get(store.apply.remote(writes, state))
    ray.get(store.query.remote(
        "INSERT INTO events SELECT e.campaign, e.started_at + k * INTERVAL 5 SECOND, e.worker, e.id, "
        "['agent', 'build', 'guard', 'measure', 'measure', 'measure', 'measure', 'verdict'][k + 1], "
        "'synthetic event ' || k FROM experiments e, range(8) r(k) WHERE e.campaign = ?", [STORE_CAMPAIGN]))
    ray.get(store.query.remote(
        "INSERT INTO phases SELECT e.campaign, e.worker, e.id, "
        "['idle', 'agent', 'build', 'guard', 'wait', 'measure'][k + 1], e.started_at + k * INTERVAL 10 SECOND, "
        "e.started_at + (k + 1) * INTERVAL 10 SECOND FROM experiments e, range(6) r(k) WHERE e.campaign = ?",
        [STORE_CAMPAIGN]))
    ray.get(store.query.remote(  # one agent run per screen, as a command strategy's
        "INSERT INTO agent_runs SELECT e.campaign, e.id, 0, e.strategy, 'claude-code', 'ok', 60.0, 0.25, 20000, "
        "1500, 6, 'session-' || e.id, NULL, e.finished_at FROM experiments e WHERE e.campaign = ? "
        "AND e.kind = 'screen'", [STORE_CAMPAIGN]))


def _top_up(store, ray, pending: list[dict]) -> int:
    """The samples (and blocks) of the measured experiments the timed ingest did not reach, generated by SQL
    in the store actor: the recipes then run on the whole store. Returns the samples added."""
    ids = [e["id"] for e in pending]
    if not ids:
        return 0
    ray.get(store.query.remote(
        "INSERT INTO blocks SELECT x.id, b, x.worker, CASE WHEN b % 2 = 0 THEN 'ref,cand' ELSE 'cand,ref' END, "
        "now()::TIMESTAMP, now()::TIMESTAMP, 1.0, 2400.0, NULL, 0.0 "
        "FROM (SELECT id, worker FROM experiments WHERE list_contains(?, id)) x, range(?) r(b)",
        [ids, BLOCKS_PER_EXPERIMENT]))
    _, rows = ray.get(store.query.remote(
        "INSERT INTO samples SELECT x.id, arm, b, 'b' || k, 0.1 * (k + 1) * (1 + 0.01 * ((b + k) % 3)), 's', "
        "[CAST(substr(x.worker, 2) AS INTEGER)], 1000 + b, x.worker, now()::TIMESTAMP, now()::TIMESTAMP, 2^25 "
        "FROM (SELECT id, worker FROM experiments WHERE list_contains(?, id)) x, range(?) r(b), "
        "(VALUES ('ref'), ('cand')) a(arm), range(?) q(k)", [ids, BLOCKS_PER_EXPERIMENT, BENCHMARKS]))
    return int(rows[0][0])


def _ingest(store, ray, spool: pathlib.Path, experiments: list[dict], samples: int, deadline_s: float) -> dict:
    """Blocks of the measured experiments, in order, through the store's spool as the workers on its node send
    them (farm/storage/spool.py): a record per experiment in its worker's log, as a worker sends the blocks of
    measurement.send_every seconds (2 s) when its blocks come faster, written here on the clock (64 workers would
    write them on their own CPUs); and a drain_events call every DRAIN_SECONDS as the coordinator's turns make, not
    awaited before the next records are written (each takes in the spool and writes it to the file, and takes a
    snapshot for readers every 5 s), until `samples` samples are sent or `deadline_s` has passed; the time includes
    the last drain, which writes the rest. Returns what was stored, how long it took and the experiments whose
    blocks were not sent."""
    from farm.storage.packed import pack
    from farm.storage.spool import SpoolWriter

    sent_samples = sent_blocks = records = 0
    progress = [(0.0, 0)]  # (seconds, samples sent) after each experiment: is the rate steady?
    measured = [e for e in experiments if e["measured"]]
    # Made before the clock starts: each worker makes its own, in its own process, as it measures.
    needed = -(-samples // (BLOCKS_PER_EXPERIMENT * 2 * BENCHMARKS))
    outgoing = [_observations(e["id"], e["worker"]) for e in measured[:needed]]  # packed on the clock, as sent
    logs = {worker: SpoolWriter(spool, worker) for worker in sorted({e["worker"] for e in measured[:needed]})}
    started = time.perf_counter()
    drain, drained_at = None, started
    reached = drains = 0
    for observations in outgoing:
        if sent_samples >= samples or time.perf_counter() - started > deadline_s:
            break
        # Like the coordinator, one drain at a time: the next only once the last has answered.
        if time.perf_counter() - drained_at >= DRAIN_SECONDS and (drain is None or ray.wait([drain], timeout=0)[0]):
            drain, drained_at = store.drain_events.remote(), time.perf_counter()
            drains += 1
        logs[observations.blocks[0].worker].put(pack(observations))
        sent_samples += observations.sample_count
        sent_blocks += len(observations.blocks)
        records += 1
        reached += 1
        progress.append((time.perf_counter() - started, sent_samples))
    last_drain = time.perf_counter()
    if drain is not None:
        ray.get(drain)
    ray.get(store.drain_events.remote())
    elapsed = time.perf_counter() - started
    middle = next((point for point in progress if point[1] >= sent_samples / 2), (elapsed / 2, sent_samples / 2))
    first_half = middle[1] / middle[0] if middle[0] > 0 else None
    for log in logs.values():
        log.close()
    return {"samples_ingested": sent_samples, "blocks_sent": sent_blocks, "spool_records": records, "seconds": elapsed,
            "drains": drains + 1, "after_the_last_file_s": elapsed - (last_drain - started),
            "samples_per_s": sent_samples / elapsed, "samples_sent_per_s_first_half": first_half,
            "sent": measured[:reached], "pending": measured[reached:]}


def _pickled_by_value(ray) -> None:
    """Imported by path (the tests do), this module cannot be imported by its name in Ray's workers: its classes
    and functions travel by value, as they do when it runs as a script."""
    if __name__ != "__main__":
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _ingest_by_calls(ray, path: pathlib.Path, sends: int) -> float:
    """Seconds for `sends` sends like _ingest's (10 blocks each) as workers on other nodes send them, through the
    store actor's observe on a scratch store: WORKERS_SENDING calls in flight, every one awaited, and a drain
    every DRAIN_SECONDS. The path the spool replaced on the store's node, measured side by side with it."""
    from farm.storage.packed import pack
    from scheduler.runtime.store_actor import StoreActor

    store = StoreActor.remote(str(path), STORE_CAMPAIGN)
    ray.get(store.drain_events.remote())  # started, with its first snapshot
    outgoing = [_observations(f"calls-{number:06d}", f"w{number % 64}") for number in range(sends)]
    in_flight = []
    started = drained_at = time.perf_counter()
    for observations in outgoing:
        if time.perf_counter() - drained_at >= DRAIN_SECONDS:
            ray.get(store.drain_events.remote())
            drained_at = time.perf_counter()
        in_flight.append(store.observe.remote(pack(observations)))
        if len(in_flight) >= WORKERS_SENDING:
            ray.get(in_flight.pop(0))
    ray.get(in_flight)
    ray.get(store.drain_events.remote())
    elapsed = time.perf_counter() - started
    ray.get(store.close.remote())
    ray.kill(store)
    return elapsed


def _direct_rate(path: pathlib.Path, flushes: int, calls_per_flush: int = 100) -> float:
    """Samples per second of Store.add_observations called directly (no Ray) on a scratch store, each call
    with what `calls_per_flush` sends bring, packed as workers pack them (as a flush of the store actor writes
    them): how much of the actor's time is DuckDB's."""
    from farm.storage.packed import pack
    from farm.storage.store import Store

    store = Store(path)
    try:
        batches = [[pack(_observations(f"direct-{flush:04d}-{call:04d}", "w0")) for call in range(calls_per_flush)]
                   for flush in range(flushes)]
        started = time.perf_counter()
        for batch in batches:
            store.add_observations(STORE_CAMPAIGN, batch)
        return sum(send.sample_count for batch in batches for send in batch) / (time.perf_counter() - started)
    finally:
        store.close()


def _recipe_timings(path: pathlib.Path, experiment: str, repetitions: int) -> dict[str, dict]:
    """Each cookbook recipe on the store opened read-only as `farm query` opens it: one untimed run (DuckDB
    reads the file's blocks in), then the median of `repetitions` runs, each fetching every row."""
    from farm.storage.cookbook import RECIPES, bound
    from farm.storage.store import open_readonly

    con = open_readonly(path)
    values = {"campaign": STORE_CAMPAIGN, "experiment": experiment, "benchmark": "b2"}
    timings = {}
    try:
        for name, recipe in RECIPES.items():
            params = bound(recipe.sql, values)
            rows = len(con.execute(recipe.sql, params).fetchall())
            runs = []
            for _ in range(repetitions):
                started = time.perf_counter()
                con.execute(recipe.sql, params).fetchall()
                runs.append(time.perf_counter() - started)
            timings[name] = {"median_s": _median(runs), "rows": rows, "runs_s": runs}
    finally:
        con.close()
    return timings


def part_store(workdir: pathlib.Path, quick: bool = False, tiny: bool = False) -> list[Figure]:
    """1,000,000 samples through the store actor into a DuckDB file, then every recipe on that store.

    The ingest stops at a deadline (120 s; the rate it measures is steady, see the details) and the figure
    is then the time the whole 1,000,000 take at the measured rate, said in its name; the samples it did
    not reach are generated by SQL in the store actor so that the recipes run on the full store."""
    from farm.storage.spool import spool_directory
    from farm.storage.store import write_snapshot
    from scheduler.runtime.store_actor import StoreActor

    samples, deadline, repetitions = (2_000, 5.0, 2) if tiny else (20_000, 10.0, 3) if quick else \
        (1_000_000, 120.0, 5)
    per_experiment = 2 * BENCHMARKS * BLOCKS_PER_EXPERIMENT
    measured_share = 1 - 1 / 10  # _synthetic_experiments: 2 in 20 never measure
    experiments = _synthetic_experiments(int(samples / per_experiment / measured_share) + 64)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "farm.duckdb"
    with _ray_session() as ray:
        store = StoreActor.options(name=f"farm-perf-store-{os.getpid()}-{time.time_ns()}").remote(
            str(path), STORE_CAMPAIGN)
        started = time.perf_counter()
        _populate(store, ray, experiments)
        populate_s = time.perf_counter() - started
        ingest = _ingest(store, ray, spool_directory(path, STORE_CAMPAIGN), experiments, samples, deadline)
        started = time.perf_counter()
        # Only as many experiments as make up the figure's sample count: the store ends at `samples`, give or
        # take one experiment.
        room = max(0, samples - ingest["samples_ingested"]) // per_experiment
        generated = _top_up(store, ray, ingest["pending"][:room])
        with_samples = ingest["sent"] + ingest["pending"][:room]
        _finish(store, ray, experiments)
        finish_s = time.perf_counter() - started
        total = ray.get(store.query.remote("SELECT count(*) FROM samples"))[1][0][0]
        ray.get(store.close.remote())
        ray.kill(store)
        # The same sends as calls (workers on other nodes; every worker before the spool), side by side.
        by_calls = _ingest_by_calls(ray, workdir / "calls.duckdb", ingest["spool_records"])
    direct = _direct_rate(workdir / "direct.duckdb", 1 if tiny else 10)
    # The store actor copies the whole file for readers every SNAPSHOT_SECONDS, on the caller's time: how
    # long one copy of this store takes.
    from farm.storage.store import Store

    scratch = Store(path)
    started = time.perf_counter()
    write_snapshot(scratch.con, workdir / "snapshot.duckdb")
    snapshot_s = time.perf_counter() - started
    scratch.close()
    projected = ingest["seconds"] * samples / ingest["samples_ingested"]
    capped = ingest["samples_ingested"] < samples
    details = {"samples_target": samples, "samples_in_store": total, "samples_generated_by_sql": generated,
               "samples_per_block": 2 * BENCHMARKS, "blocks_per_spool_record": BLOCKS_PER_EXPERIMENT,
               "experiments": len(experiments), "deadline_s": deadline, "populate_s": populate_s,
               "finish_s": finish_s, "direct_store_samples_per_s": direct, "snapshot_s": snapshot_s,
               "the_same_sends_as_observe_calls_s": by_calls,
               "file_mb": path.stat().st_size / 1e6,
               **{k: v for k, v in ingest.items() if k not in ("sent", "pending")}}
    name = (f"{samples:,} samples through the store's spool and actor" +
            (f" (projected from {ingest['samples_ingested']:,} in {ingest['seconds']:.0f} s)" if capped else "") +
            f" [the same as {ingest['spool_records']:,} observe calls: {by_calls:.1f} s]")
    figures = [Figure("store", name, projected, "s", "<", 5.0, details)]
    middle = with_samples[len(with_samples) // 2]["id"]  # the `samples` recipe's experiment
    for recipe, timing in _recipe_timings(path, middle, repetitions).items():
        figures.append(Figure("store", f"recipe {recipe} on {total:,} samples", 1000.0 * timing["median_s"], "ms", "<",
                              200.0, {**timing, "experiments": len(experiments)}))
    return figures


# -- 4. coordinator throughput with synthetic workers -------------------------------------------------------

# A synthetic experiment's phases and their share of its duration; the measure phase is BLOCKS blocks of 2 arms x
# BENCHMARKS samples, sent to the store actor with the phase rows and the verdict event as a real worker sends them.
SYNTHETIC_PHASES = (("agent", 0.1), ("build", 0.2), ("guard", 0.1), ("measure", 0.6))
SYNTHETIC_BLOCKS = 6


class _SyntheticHost:
    """Hosts every synthetic worker of a campaign in one async Ray actor (64 real worker processes would not
    fit 2 cores): run() sleeps through the phases, sends the phase rows, blocks and verdict event a real
    worker sends to the store actor, and returns a plausible ExperimentResult (an A/A canary is clean, a
    screen is a discard whose benchmarks are the same)."""

    def __init__(self, store_name: str, seconds: float, spool: str | None):
        import ray

        self.store = ray.get_actor(store_name)  # the campaign's store actor, by its name (not by argument)
        self.seconds = seconds
        self.spool = spool  # the store's, as a worker on its node is given
        self.logs = {}  # each synthetic worker's log in it, as each real worker has its own

    async def run(self, worker: str, cpus: tuple[int, ...], assignment):
        import asyncio
        import random

        from farm.records import ExperimentResult, Kind, Status
        from farm.storage.packed import pack
        from stats import BenchmarkDecision, Verdict

        exp = assignment.experiment_id
        started = time.time()
        phases = []
        for phase, share in SYNTHETIC_PHASES:
            begun = time.time()
            await asyncio.sleep(share * self.seconds)
            phases.append((worker, exp, phase, begun, time.time()))
        noise = [random.gauss(0.0, 0.01) for _ in range(BENCHMARKS)]
        ratios = [1.0 + n for n in noise]
        if assignment.kind is Kind.AA:
            status, reason = Status.AA_CLEAN, "synthetic: nothing built; A/A noise per block 1 %"
            aa = tuple((f"b{k}", tuple(random.gauss(0.0, 0.01) for _ in range(SYNTHETIC_BLOCKS)))
                       for k in range(BENCHMARKS))
        else:
            status, reason, aa = Status.DISCARD, f"synthetic: every benchmark the same ({SYNTHETIC_BLOCKS} blocks)", ()
        decisions = tuple(BenchmarkDecision(f"b{k}", r, r - 0.03, r + 0.03, Verdict.SAME, SYNTHETIC_BLOCKS, 0.05)
                          for k, r in enumerate(ratios))
        # What a real worker sends when its experiment ends (and every measurement.send_every seconds, 2 s by
        # default): its blocks, phase rows and events in one record of its spool log (in one call without one).
        observations = _observations(
            exp, worker, SYNTHETIC_BLOCKS, events=[(time.time(), worker, exp, "verdict", f"{status.value}: {reason}")],
            phases=phases)
        if self.spool is not None:
            from farm.storage.spool import SpoolWriter

            self.logs.setdefault(worker, SpoolWriter(self.spool, worker)).put(pack(observations))
        else:
            await self.store.observe.remote(pack(observations))
        # (the result, no branch bundle): what WorkerActor.run returns for a worker on the coordinator's node
        return ExperimentResult(exp, status, reason, worker, tuple(cpus), started, time.time(), commit=None,
                                decisions=decisions, blocks=SYNTHETIC_BLOCKS, effect=1.0 + sum(noise) / BENCHMARKS,
                                changed_paths=("notes.txt",) if assignment.kind is not Kind.AA else (),
                                ref_means=tuple((f"b{k}", 0.1 * (k + 1) * (1 + random.gauss(0.0, 0.002)))
                                                for k in range(BENCHMARKS)), aa_log_ratios=aa), None


class _Run:
    """A synthetic worker's `run`: `.remote(assignment, bundle)` calls the host with the worker's name and CPUs
    (a worker on the coordinator's node gets no bundle)."""

    def __init__(self, host, worker: str, cpus: tuple[int, ...]):
        self.host, self.worker, self.cpus = host, worker, cpus

    def remote(self, assignment, _bundle=None):
        return self.host.run.remote(self.worker, self.cpus, assignment)


class SyntheticWorkers:
    """Stands in for scheduler.runtime.worker.WorkerActor in scheduler.runtime.worker_pool while a campaign runs (see
    synthetic_workers): `.options(**anything).remote(*args, **kwargs)` returns a handle whose
    `run.remote(assignment)` runs a synthetic experiment. The handle is a real ActorHandle (a copy of the
    host's, with `run` replaced), because the pool's kill_all calls ray.kill on it; killing it kills the host,
    which ends every synthetic worker, as killing all the workers should.

    The worker's name and CPU set are read from the constructor's first two arguments when they look like
    them (today's WorkerActor(name, cpus, ...)), else numbered, and the store's spool from the `spool` keyword
    (without it the host sends with calls); nothing else of the arguments is used, so a changed constructor does
    not matter."""

    def __init__(self, campaign: str, seconds: float):
        self.campaign = campaign
        self.seconds = seconds
        self.host = None
        self.spawned = 0

    def options(self, **_options):
        return self

    def remote(self, *args, **kwargs):
        import ray

        if self.host is None:
            _pickled_by_value(ray)
            self.host = ray.remote(num_cpus=0)(_SyntheticHost).remote(f"farm-store-{self.campaign}", self.seconds,
                                                                      kwargs.get("spool"))
        name = args[0] if args and isinstance(args[0], str) else f"w{self.spawned}"
        cpus = tuple(args[1]) if len(args) > 1 and isinstance(args[1], (tuple, list)) else (self.spawned,)
        self.spawned += 1
        handle = copy.copy(self.host)  # a registered handle of its own (pickled and unpickled)
        handle.run = _Run(self.host, name, cpus)
        return handle


def _cpu_seconds(title: str, pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by the processes among `pids` whose command line starts with
    `title`: Ray names an actor's process "ray::<Class>" (and "ray::<Class>.<method>" while it runs one)."""
    total = 0.0
    for pid in pids:
        try:
            cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
            if not cmdline.startswith(title.encode()):
                continue
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class _CoordinatorClock:
    """Measurement only: wraps some Coordinator methods (and Campaign.to_dict, the state every _save sends) to
    add up where the driver's time goes, and reads the CPU time of the driver, the store actor and the
    synthetic workers' host over the campaign's loop. Behaviour is unchanged. The times nest: _collect and
    _assign_idle include the _save calls they make, and _save includes to_dict."""

    METHODS = ("_save", "_collect", "_assign_idle", "_print_events", "_loop")
    PROCESSES = {"store_actor": "ray::StoreActor", "synthetic_host": "ray::_SyntheticHost"}

    def __init__(self):
        self.seconds = dict.fromkeys(self.METHODS + ("to_dict",), 0.0)
        self.calls = dict.fromkeys(self.METHODS + ("to_dict",), 0)
        self.state_bytes = 0
        self.cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def installed(self):
        from scheduler.runtime.coordinator import Coordinator

        originals = {name: getattr(Coordinator, name) for name in self.METHODS}

        from scheduler.campaign import Campaign

        to_dict = Campaign.to_dict

        def timed(name, original):
            def wrapper(owner, *args, **kwargs):
                if name == "_loop":
                    self._cpu_mark(-1)
                started = time.perf_counter()
                try:
                    return original(owner, *args, **kwargs)
                finally:
                    self.seconds[name] += time.perf_counter() - started
                    self.calls[name] += 1
                    if name == "_loop":
                        self._cpu_mark(+1)
                        self.state_bytes = len(json.dumps(to_dict(owner.campaign)))
            return wrapper

        for name, original in originals.items():
            setattr(Coordinator, name, timed(name, original))
        Campaign.to_dict = timed("to_dict", to_dict)
        try:
            yield self
        finally:
            for name, original in originals.items():
                setattr(Coordinator, name, original)
            Campaign.to_dict = to_dict

    def _cpu_mark(self, sign: int) -> None:
        """Subtract (at the loop's start) or add (at its end) the CPU seconds used so far. Only the processes
        of this driver's Ray count (those with a file open in its session directory): other Rays may run
        store actors on this machine too."""
        import ray

        from farm.node.processes import pids_using

        ours = pids_using(ray._private.worker.global_worker.node.get_session_dir_path())
        readings = {"driver": time.process_time(), **{k: _cpu_seconds(t, ours) for k, t in self.PROCESSES.items()}}
        for key, value in readings.items():
            self.cpu[key] = self.cpu.get(key, 0.0) + sign * value


@contextlib.contextmanager
def synthetic_workers(campaign: str, seconds: float, workers: int):
    """The two substitutions of the throughput part, undone afterwards:

    scheduler.runtime.worker_pool.WorkerActor -> SyntheticWorkers: the pool spawns synthetic workers; the
        coordinator, the campaign logic and the store actor are the real ones.
    scheduler.runtime.coordinator.local_node (and cluster_nodes) -> this machine with `workers` virtual CPUs
        (0 .. workers - 1): the real placement then gives each worker one of them (64 one-CPU sets do not fit 2
        CPUs, and the synthetic workers pin nothing). The sets leave no real CPU spare, so run_campaign leaves the
        driver's affinity alone."""
    import scheduler.runtime.coordinator
    import scheduler.runtime.worker_pool
    from scheduler.runtime.nodes import Node

    node = Node(None, "synthetic", tuple(range(workers)), hub=True)
    saved = (scheduler.runtime.worker_pool.WorkerActor, scheduler.runtime.coordinator.local_node,
             scheduler.runtime.coordinator.cluster_nodes)
    scheduler.runtime.worker_pool.WorkerActor = SyntheticWorkers(campaign, seconds)
    scheduler.runtime.coordinator.local_node = lambda: node
    scheduler.runtime.coordinator.cluster_nodes = lambda _cpus: [node]  # when a Ray runs already (the tests')
    try:
        yield
    finally:
        (scheduler.runtime.worker_pool.WorkerActor, scheduler.runtime.coordinator.local_node,
         scheduler.runtime.coordinator.cluster_nodes) = saved


def _throughput_campaign(workdir: pathlib.Path, workers: int, per_worker: int, seconds: float) -> dict:
    """A campaign of workers x per_worker experiments (the first of each worker its A/A canary) on
    synthetic workers; returns its throughput in steady state against the ideal workers / seconds."""
    import duckdb

    from farm.campaign_file.config import CampaignConfig
    from scheduler.runtime import run_campaign

    name = f"tput{workers}"
    base = workdir / name
    repo = _trivial_repo(base / "repo")
    patch = base / "noop.patch"
    patch.write_text("diff --git a/notes.txt b/notes.txt\n--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1,2 @@\n"
                     " a target whose phases do (almost) nothing\n+one more line\n")
    # Screens only after each worker's canary; canary_every is the default (16), so with per_worker <= 16 no
    # second canary. The hypotheses are never applied: the synthetic workers only sleep.
    config = CampaignConfig(
        campaign=name, target={"repo": str(repo), "base_ref": "main"}, workers={"count": workers},
        phases={"build": {"command": "true"}, "guard": {"command": "true"}, "bench": {"command": "true"}},
        merge={"confirm_blocks": 0},
        strategies=[{"name": "s", "hypotheses": [{"id": f"h{i:04d}", "patch": str(patch)}
                                                 for i in range(workers * (per_worker - 1))]}])
    clock = _CoordinatorClock()
    started = time.monotonic()
    with synthetic_workers(name, seconds, workers), clock.installed():
        summary = run_campaign(config, base / "work", base / "work" / "farm.duckdb", workers=workers,
                               echo=_quiet_echo)
    wall = time.monotonic() - started
    con = duckdb.connect(str(base / "work" / "farm.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT worker, started_at, finished_at FROM experiments WHERE campaign = ? "
                           "ORDER BY worker, started_at", [name]).fetchall()
    finally:
        con.close()
    by_worker: dict[str, list[tuple[float, float]]] = {}
    for worker, start, finish in rows:
        by_worker.setdefault(worker, []).append((_ts(start), _ts(finish)))
    cycles, inside = [], []
    for runs in by_worker.values():
        cycles += [b[0] - a[0] for a, b in zip(runs, runs[1:])]  # start to the worker's next start
        inside += [finish - start for start, finish in runs]
    mean_cycle = statistics.fmean(cycles)
    firsts = sorted(runs[0][0] for runs in by_worker.values())
    first_start = firsts[0]
    last_finish = max(finish for runs in by_worker.values() for _, finish in runs)
    return {"workers": workers, "experiments": len(rows), "statuses": summary.statuses,
            "experiment_s": seconds, "cycles": len(cycles), "mean_cycle_s": mean_cycle,
            "median_cycle_s": _median(cycles), "p90_cycle_s": sorted(cycles)[int(0.9 * (len(cycles) - 1))],
            "mean_in_worker_s": statistics.fmean(inside),
            "mean_gap_between_experiments_s": mean_cycle - statistics.fmean(inside),
            "steady_ratio": seconds / mean_cycle,
            "whole_run_ratio": len(rows) / (last_finish - first_start) / (workers / seconds),
            "ramp_up_s": firsts[-1] - firsts[0], "campaign_wall_s": wall,
            "coordinator_s": dict(clock.seconds), "coordinator_calls": dict(clock.calls),
            # CPU seconds over the loop, and as a share of one CPU over the loop's wall time
            "cpu_s": dict(clock.cpu), "cpu_busy": {k: v / clock.seconds["_loop"] for k, v in clock.cpu.items()},
            "campaign_state_bytes": clock.state_bytes}


def part_throughput(workdir: pathlib.Path, quick: bool = False, tiny: bool = False) -> list[Figure]:
    """Coordinator throughput with 8, 32 and 64 synthetic workers of 2-second experiments."""
    counts, per_worker, seconds = ((2, 4), 2, 0.3) if tiny else ((8, 32, 64), 3, 2.0) if quick else \
        ((8, 32, 64), 8, 2.0)
    figures = []
    for workers in counts:
        found = _throughput_campaign(workdir, workers, per_worker, seconds)
        figures.append(Figure("throughput", f"coordinator throughput / ideal, {workers} synthetic workers",
                              found["steady_ratio"], "ratio", ">=", 0.9, found))
    return figures


# -- 5. start-up of the commands that run no campaign ---------------------------------------------------------

def part_startup(workdir: pathlib.Path, quick: bool = False, tiny: bool = False) -> list[Figure]:
    """Wall time of `farm validate configs/demo.yaml` and `farm doctor`, each a fresh interpreter as a user
    starts it (`python -m farm.cli`), median of repetitions after one untimed run (the page cache warm)."""
    repetitions = 2 if tiny else 5 if quick else 11
    commands = {"validate": ["validate", str(ROOT / "configs" / "demo.yaml"), "--workdir", str(workdir / "w")],
                "doctor": ["doctor"]}
    workdir.mkdir(parents=True, exist_ok=True)
    figures = []
    for name, args in commands.items():
        seconds = []
        for repetition in range(repetitions + 1):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "farm.cli", *args], cwd=ROOT, capture_output=True,
                                  text=True, check=False)
            if repetition:
                seconds.append(time.perf_counter() - started)
        if done.returncode not in (0, 1):  # doctor exits 1 when a check warns; anything else is a failure
            raise RuntimeError(f"farm {name} exited {done.returncode}: {done.stderr.strip()[-300:]}")
        figures.append(Figure("startup", f"start-up of farm {name}", _median(seconds), "s", "<", 0.5,
                              {"seconds": seconds, "exit": done.returncode}))
    return figures


# -- main ---------------------------------------------------------------------------------------------------

PART_FUNCTIONS = {"overhead": part_overhead, "slots": part_slots, "store": part_store,
                  "throughput": part_throughput, "startup": part_startup}


def _cpu_busy(seconds: float = 1.0) -> float:
    """The share of the machine's CPU time that was not idle over the next `seconds` (/proc/stat)."""
    def reading() -> tuple[int, int]:
        fields = [int(v) for v in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait
    (total0, idle0), _ = reading(), time.sleep(seconds)
    total1, idle1 = reading()
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def _wait_for_quiet(busy_below: float = 0.1, longest: float = 120.0) -> float:
    """Wait until the machine has been at most `busy_below` busy for two seconds in a row (what the previous part
    left behind, a Ray shutting down or a store's file being written back, has settled), at most `longest`
    seconds; returns the seconds waited. The load average is no guide: it lags a minute behind."""
    started = time.monotonic()
    calm = 0
    while calm < 2 and time.monotonic() - started < longest:
        calm = calm + 1 if _cpu_busy() < busy_below else 0
    return time.monotonic() - started


def run_parts(parts, workdir: pathlib.Path, quick: bool) -> tuple[list[Figure], dict[str, str], dict[str, dict]]:
    """Every part in turn; one that fails is reported (its traceback printed) and the others still run.
    Returns the figures, the failures and per part its seconds and the machine's load before and after (other
    work on the machine shows there)."""
    figures, failures, seconds = [], {}, {}
    for name in parts:
        waited = _wait_for_quiet()
        print(f"== {name} (load average {os.getloadavg()[0]:.2f}; waited {waited:.0f} s for a quiet machine)",
              flush=True)
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        try:
            found = PART_FUNCTIONS[name](workdir / name, quick=quick)
        except Exception as error:  # noqa: BLE001 -- the other parts must still run
            traceback.print_exc()
            failures[name] = f"{type(error).__name__}: {error}"
            print(f"{name}: FAILED ({failures[name]})", flush=True)
        else:
            figures.extend(found)
            for figure in found:
                print(figure.line(), flush=True)
        seconds[name] = {"seconds": time.monotonic() - started, "waited_for_quiet_s": waited,
                         "loadavg_1m_before": load_before,
                         "loadavg_1m_after": os.getloadavg()[0]}
        print(f"({name}: {seconds[name]['seconds']:.0f} s)", flush=True)
    return figures, failures, seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small smoke run (minutes); figures not the suite's")
    parser.add_argument("--workdir", help="where repositories, campaigns and stores go (default: a temporary "
                                          "directory, removed afterwards)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--out", help="results file (default bench/results/farm_perf.json, "
                                      "farm_perf-quick.json with --quick)")
    parser.add_argument("--docs", help=f"the page whose table is rewritten (default {DOCS.relative_to(ROOT)}; "
                                       f"not with --quick unless given)")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PART_FUNCTIONS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; one of {sorted(PART_FUNCTIONS)}")
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.workdir:
            workdir = pathlib.Path(args.workdir).resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="farm-perf-")))
        figures, failures, seconds = run_parts(parts, workdir, args.quick)
    total = time.monotonic() - started
    out = pathlib.Path(args.out) if args.out else RESULTS / ("farm_perf-quick.json" if args.quick else "farm_perf.json")
    write_results(out, figures, failures, seconds, total, args.quick)
    docs = pathlib.Path(args.docs) if args.docs else (None if args.quick else DOCS)
    if docs is not None:
        write_docs(docs, figures, failures, total, args.quick, seconds)
    missed = [f for f in figures if not f.met]
    print(f"\n{len(figures)} figure(s), {len(missed)} missed, {len(failures)} part(s) failed; {total:.0f} s; "
          f"results in {out}" + (f", table in {docs}" if docs else ""))
    for figure in figures:
        print(f"  {figure.line()}")
    for name, why in failures.items():
        print(f"  part {name} FAILED: {why}")
    return 1 if missed or failures else 0


def _machine() -> dict:
    return {"host": platform.node(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "available_cpus": len(os.sched_getaffinity(0)), "loadavg_1m_at_end": os.getloadavg()[0]}


def write_results(path: pathlib.Path, figures, failures, seconds, total, quick) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"when": datetime.datetime.now().isoformat(timespec="seconds"), "quick": quick,
            "total_seconds": total, "parts": seconds, "machine": _machine(), "failures": failures,
            "figures": [{**dataclasses.asdict(f), "met": f.met} for f in figures]}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def table(figures, failures, total, quick, parts=None) -> str:
    lines = ["| figure | target | measured | |", "|---|---|---|---|"]
    for f in figures:
        lines.append(f"| {f.name} | {f.op} {_show(f.target, f.unit)} | {_show(f.measured, f.unit)} | "
                     f"{'met' if f.met else '**MISSED**'} |")
    for name, why in failures.items():
        lines.append(f"| part {name} | | failed: {why} | **FAILED** |")
    machine = _machine()
    lines.append("")
    lines.append(f"Measured {datetime.date.today().isoformat()} by `python bench/farm_perf.py"
                 f"{' --quick' if quick else ''}` in {total / 60:.1f} min on {machine['available_cpus']} CPU(s), "
                 f"Python {machine['python']}; every number in bench/results/farm_perf.json." +
                 (" The machine's 1-minute load average when each part started (other work on the machine shows "
                  "here): " + ", ".join(f"{name} {info['loadavg_1m_before']:.1f}" for name, info in parts.items()) +
                  "." if parts else ""))
    return "\n".join(lines)


def write_docs(path: pathlib.Path, figures, failures, total, quick, parts=None) -> None:
    """Replace the table between the markers (the page is created with just the table if it is missing)."""
    generated = f"{TABLE_START}\n{table(figures, failures, total, quick, parts)}\n{TABLE_END}"
    text = path.read_text() if path.exists() else f"# Performance of the farm itself\n\n{TABLE_START}\n{TABLE_END}\n"
    if TABLE_START not in text or TABLE_END not in text:
        raise SystemExit(f"{path}: the table markers are missing; put them back to let the table be generated")
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + generated + tail)


if __name__ == "__main__":
    logging.getLogger("ray").setLevel(logging.WARNING)
    sys.exit(main())
