"""The farm's own performance: what it costs beyond the target's own work (part of issue 13).

    python bench/farm_perf.py [--quick] [--workdir DIR] [--out FILE] [--docs FILE | --no-docs]
                              [--parts overhead,slots,store,throughput]

Every figure is measured in this run, side by side with what it is compared to, and printed with its
target, "met" or "MISSED". The figures go to bench/results/farm_perf.json and into the generated table of
docs/performance.md (between its markers; the hand-written text around it is kept). A missed target, or
a part that failed, makes the exit code 1, after every part has run. --quick is a smoke run of a minute
or two (small sizes; its figures are not the suite's): it writes bench/results/farm_perf-quick.json and
leaves the docs alone.

The parts (each a function returning Figure records, so that tests/bench/test_farm_perf.py can run them
in a tiny mode):

1. overhead     per-experiment overhead of real campaigns (run_campaign: local Ray, git worktrees, DuckDB)
                on a generated target whose build, guard and benchmark do nearly nothing, and side by side
                on one whose benchmark makes an experiment last about 5 s.
2. slots        reusing a worktree slot (SlotPool.slot + Slot.reset) against `git worktree add` and a fresh
                `git clone`, on the C++ fixture and on a generated 20,000-file repository.
3. store        1,000,000 samples into a DuckDB file through the store actor's add_block, then every
                cookbook recipe on that store.
4. throughput   the real coordinator loop with 8, 32 and 64 synthetic workers whose experiments sleep
                through their phases for 2 s, against the ideal workers / 2 s.

The machine is shared and noisy: each figure is a median of repetitions where it can be, and the docs say
what limits each. Keep other work off the machine while the full suite runs (about 8 minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import contextlib
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
PARTS = ("overhead", "slots", "store", "throughput")


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
    from farm.config import CampaignConfig

    value = 'printf \'{"name": "t", "value": 1.00%d, "unit": "s"}\\n\' $((RANDOM % 10))'
    bench = f"sleep {bench_seconds}; {value}" if bench_seconds else value
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
    from scheduler import run_campaign

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
    screens, slow_screens, slow_bench = (3, 3, 0.05) if tiny else (5, 3, 0.8) if quick else (25, 8, 0.8)
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
    """The C++ fixture as cpp_fixture.init_repo makes it, plus a second commit changing CHANGED_FILES files."""
    import cpp_fixture

    repo = cpp_fixture.init_repo(path)
    tracked = subprocess.run(["git", "ls-files"], cwd=repo, check=True, capture_output=True, text=True).stdout.split()
    for name in [t for t in tracked if t.endswith((".cpp", ".hpp", ".py"))][:CHANGED_FILES]:
        with open(repo / name, "a") as handle:
            handle.write("\n// changed\n" if name.endswith("pp") else "\n# changed\n")
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "second"], cwd=repo,
                   check=True, capture_output=True)
    return repo


def _slot_timings(repo_path: pathlib.Path, scratch: pathlib.Path, repetitions: int) -> dict:
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

    The new worktree and clone are removed after each timing, outside it."""
    from worktrees import SlotPool, TargetRepo
    from worktrees.repo import run_git

    repo = TargetRepo(repo_path)
    commits = [repo.resolve("main~1"), repo.resolve("main")]
    pool = SlotPool(repo, scratch / "slots")
    pool.slot("cand", commits[0]).reset(commits[0])  # created once, like a worker's first experiment
    current = 0
    times: dict[str, list[float]] = {"reuse": [], "add": [], "clone": []}

    found: list[float] = []  # of reuse: the part in SlotPool.slot (the rest is Slot.reset)

    def reuse() -> None:
        nonlocal current
        current = 1 - current
        started = time.perf_counter()
        slot = pool.slot("cand", commits[current])
        found.append(time.perf_counter() - started)
        slot.reset(commits[current])

    def add() -> None:
        run_git(repo.path, "worktree", "add", "--detach", str(scratch / "added"), commits[1])

    def clone() -> None:
        run_git(scratch, "clone", "--quiet", "--no-hardlinks", str(repo.path), str(scratch / "cloned"))

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
    """Slot reuse against worktree add and a fresh clone, on the fixture and on a 20,000-file repository."""
    files, reps_small, reps_large = (300, 2, 2) if tiny else (20_000, 3, 2) if quick else (20_000, 9, 5)
    workdir.mkdir(parents=True, exist_ok=True)
    large = workdir / f"generated-{files}"
    started = time.perf_counter()
    _fast_import(large, files)
    generated_s = time.perf_counter() - started
    figures = []
    for label, repo, reps in (("C++ fixture", _fixture_repo(workdir / "fixture"), reps_small),
                              (f"{files:,}-file repository", large, reps_large)):
        scratch = workdir / f"scratch-{repo.name}"
        scratch.mkdir()
        timing = _slot_timings(repo, scratch, reps)
        if repo == large:
            timing["generated_s"] = generated_s
        for other in ("add", "clone"):
            figures.append(Figure("slots", f"slot reuse vs {'worktree add' if other == 'add' else 'fresh clone'}, "
                                           f"{label}", timing[f"{other}_s"] / timing["reuse_s"], "x", ">=", 10.0,
                                  timing))
    return figures


# -- main ---------------------------------------------------------------------------------------------------

PART_FUNCTIONS = {"overhead": part_overhead, "slots": part_slots}


def run_parts(parts, workdir: pathlib.Path, quick: bool) -> tuple[list[Figure], dict[str, str], dict[str, float]]:
    """Every part in turn; one that fails is reported (its traceback printed) and the others still run."""
    figures, failures, seconds = [], {}, {}
    for name in parts:
        print(f"== {name}", flush=True)
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
        seconds[name] = time.monotonic() - started
        print(f"({name}: {seconds[name]:.0f} s)", flush=True)
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
        write_docs(docs, figures, failures, total, args.quick)
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
            "total_seconds": total, "part_seconds": seconds, "machine": _machine(), "failures": failures,
            "figures": [{**dataclasses.asdict(f), "met": f.met} for f in figures]}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def table(figures, failures, total, quick) -> str:
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
                 f"Python {machine['python']}; every number in bench/results/farm_perf.json.")
    return "\n".join(lines)


def write_docs(path: pathlib.Path, figures, failures, total, quick) -> None:
    """Replace the table between the markers (the page is created with just the table if it is missing)."""
    generated = f"{TABLE_START}\n{table(figures, failures, total, quick)}\n{TABLE_END}"
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
