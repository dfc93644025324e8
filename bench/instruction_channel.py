"""The instruction channel in real campaigns: [time] against [time, instructions] on one target.

    python bench/instruction_channel.py [--workdir DIR] [--out FILE]

Makes a pure-Python target of four benchmarks (a loop each, timed by the benchmark itself) and a pack of
patches with known truth: wins of 3, 4, 5 and 8 % in one benchmark each (the loop runs that many fewer
iterations: fewer instructions and less time), a null change, and a change that runs 5 % fewer instructions
and more time (a sleep). Then runs two real screen-only campaigns of the pack (`farm run`: local Ray, two
workers on one CPU each, git worktrees, DuckDB), one with measurement.channels [time] and one with [time,
instructions] (each benchmark counted by `python -S prog.py --only {benchmark}` under perf or cachegrind, in
the first three blocks of each experiment), and prints for each: the verdicts against the truth, the blocks
each experiment spent, the campaign's wall time, and the A/A spread per block of each channel (the canaries'
log ratios, a robust standard deviation).

Targets (issue 22): the same verdicts (no verdict that agrees with the truth under [time] lost, no false
keep added); at least 40 % fewer blocks with instructions on the wins under 5 % (mean over --repeats
campaigns of each kind, interleaved); the instruction channel's A/A spread per block under 0.5 %. Prints
MISSED and exits 1 when one is missed. Run it on a quiet machine: about 20 minutes here with 3 repeats
(a [time] campaign about 25 s, a [time, instructions] one about 6 minutes, most of it cachegrind).

Not the C++ fixture's pack: without a hardware counter (this VM) a count of one fixture benchmark takes
about 20 s under cachegrind, 200 s a block (cpp_fixture/README.md).
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import duckdb
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCHMARKS = {"b1": 150_000, "b2": 160_000, "b3": 170_000, "b4": 180_000}  # iterations of each loop

PROG = textwrap.dedent('''\
    import os
    import sys
    import time

    LOOPS = {LOOPS}


    def loop(n):
        total = 0
        for i in range(n):
            total += i * i % 7
        return total


    if "--only" in sys.argv:  # the instruction channel's command: one loop, nothing printed, no more imports
        loop(LOOPS[sys.argv[sys.argv.index("--only") + 1]])
        sys.exit(0)
    import json
    for name, n in LOOPS.items():
        start = time.perf_counter()
        loop(n)
        elapsed = time.perf_counter() - start
        print(json.dumps({"name": name, "value": elapsed, "unit": "s", "pid": os.getpid()}))
''')

# id -> (truth, what the patch does to LOOPS and loop)
PACK = {
    "win_3pct_b1": ("keep", {"b1": 0.97}, False),
    "win_4pct_b2": ("keep", {"b2": 0.96}, False),
    "win_5pct_b3": ("keep", {"b3": 0.95}, False),
    "win_8pct_b4": ("keep", {"b4": 0.92}, False),
    "null_comment": ("discard", {}, False),
    "fewer_instructions_more_time_b1": ("discard", {"b1": 0.95}, True),
}
SMALL_WINS = ("win_3pct_b1", "win_4pct_b2")  # the wins under 5 %


def _git(repo: pathlib.Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def _program(loops: dict[str, int], sleep_in: str | None = None, comment: bool = False) -> str:
    text = PROG.replace("{LOOPS}", repr(loops))
    if sleep_in:  # fewer iterations, and a sleep inside that benchmark's timing
        timed = "    loop(n)\n    elapsed"
        assert timed in text
        text = text.replace(timed, f"    loop(n)\n    if name == {sleep_in!r}:\n        time.sleep(0.002)\n"
                                   f"    elapsed")
    if comment:
        text = "# a comment: no change at all\n" + text
    return text


def make_target(workdir: pathlib.Path) -> tuple[pathlib.Path, dict[str, pathlib.Path]]:
    """The target repository (one commit on main) and a patch per hypothesis of PACK."""
    repo = workdir / "target"
    repo.mkdir(parents=True)
    (repo / "prog.py").write_text(_program(BENCHMARKS))
    (repo / "guard.sh").write_text("python prog.py > /dev/null\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "base")
    patches = {}
    for hypothesis, (_, scaled, slower) in PACK.items():
        loops = {name: round(n * scaled.get(name, 1.0)) for name, n in BENCHMARKS.items()}
        sleep_in = next(iter(scaled)) if slower else None
        (repo / "prog.py").write_text(_program(loops, sleep_in, comment=hypothesis == "null_comment"))
        patches[hypothesis] = workdir / f"{hypothesis}.patch"
        patches[hypothesis].write_text(_git(repo, "diff"))
        _git(repo, "checkout", "-q", "prog.py")
    return repo, patches


def campaign_config(name: str, repo: pathlib.Path, patches: dict[str, pathlib.Path], channels: list[str],
                    workdir: pathlib.Path) -> pathlib.Path:
    config = {
        "campaign": name, "workdir": str(workdir / name),
        "target": {"repo": str(repo), "base_ref": "main"},
        "workers": {"count": 2, "cpus_per_worker": 1},
        "measurement": {"mode": "exclusive", "channels": channels},
        "phases": {"build": {"command": "true"}, "guard": {"command": "bash guard.sh", "timeout": 60},
                   "bench": {"command": "python prog.py", "timeout": 120,
                             "instructions_command": "python -S prog.py --only {benchmark}"}},
        "benchmarks": {name: {} for name in BENCHMARKS},
        "protected_paths": ["guard.sh"],
        "acceptance": {"min_effect": 0.01, "aa_blocks": 10},
        "merge": {"enabled": False},
        "strategies": [{"name": "pack", "agent": "patch",
                        "hypotheses": [{"id": h, "category": h.split("_")[0], "patch": str(p)}
                                       for h, p in patches.items()]}],
    }
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_campaign(config: pathlib.Path) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "farm.cli", "run", str(config)], check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def robust_spread(values: list[float]) -> float:
    """The spread of log ratios as a standard deviation from the median absolute deviation."""
    median = statistics.median(values)
    return 1.4826 * statistics.median(abs(v - median) for v in values)


def read_campaign(db: pathlib.Path, name: str) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    screens = {h: {"status": s, "blocks": b} for h, s, b in con.execute(
        "SELECT hypothesis_id, status, blocks FROM experiments WHERE campaign = ? AND kind = 'screen' "
        "AND status NOT IN ('invalidated', 'lost')", [name]).fetchall()}
    rows = con.execute(
        """SELECT s.benchmark, s.block, s.experiment_id, ln(max(s.value) FILTER (WHERE arm = 'aa'))
                  - ln(max(s.value) FILTER (WHERE arm = 'ref'))
           FROM samples s JOIN experiments e ON e.id = s.experiment_id
           WHERE e.campaign = ? AND e.kind = 'aa' GROUP BY ALL""", [name]).fetchall()
    con.close()
    spreads: dict[str, list[float]] = {}
    for benchmark, _, _, log_ratio in rows:
        if log_ratio is not None:
            channel = "instructions" if benchmark.endswith(".instructions") else "time"
            spreads.setdefault(channel, []).append(log_ratio)
    return {"screens": screens, "aa_spread": {channel: math.expm1(robust_spread(values))
                                              for channel, values in spreads.items() if len(values) >= 3}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", help="where the target and the campaigns go (default: a temporary directory)")
    parser.add_argument("--repeats", type=int, default=3, help="campaigns of each kind (default 3): one campaign "
                                                               "is one draw of each hypothesis' blocks")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "instruction_channel.json"))
    args = parser.parse_args(argv)
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="instruction-channel-"))
    repo, patches = make_target(workdir)
    kinds = {"time": ["time"], "time_instructions": ["time", "instructions"]}
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for repeat in range(args.repeats):  # the kinds interleaved: a slow stretch of the machine hits both
        for kind, channels in kinds.items():
            name = f"{kind.replace('_', '')}{repeat}"
            print(f"== campaign {name}: channels {channels}", flush=True)
            wall = run_campaign(campaign_config(name, repo, patches, channels, workdir))
            runs[kind].append({"wall_s": wall, **read_campaign(workdir / name / "farm.duckdb", name)})
            print(f"   {wall:.0f} s", flush=True)

    def keeps(kind: str, hypothesis: str) -> int:
        return sum(run["screens"].get(hypothesis, {}).get("status") == "keep" for run in runs[kind])

    def blocks(kind: str, hypotheses) -> float:
        return statistics.mean(sum(run["screens"].get(h, {}).get("blocks", 0) for h in hypotheses)
                               for run in runs[kind])

    print(f"\n{'hypothesis':<34} {'truth':<8} {'[time] keeps, blocks':>22} {'[time, instructions]':>22}")
    for hypothesis, (truth, _, _) in PACK.items():
        cells = [f"{keeps(kind, hypothesis)}/{args.repeats} {blocks(kind, [hypothesis]):>6.1f}" for kind in kinds]
        print(f"{hypothesis:<34} {truth:<8} " + " ".join(f"{c:>22}" for c in cells))
    agree = {kind: sum(run["screens"].get(h, {}).get("status") == truth for run in runs[kind]
                       for h, (truth, _, _) in PACK.items()) for kind in kinds}
    # No correct verdict lost: a hypothesis [time] gets right in a campaign, [time, instructions] gets right
    # at least as often (the channel may add keeps of real wins; it must not add false keeps or lose wins).
    lost = [h for h, (truth, _, _) in PACK.items()
            if sum(r["screens"].get(h, {}).get("status") == truth for r in runs["time_instructions"]) <
            sum(r["screens"].get(h, {}).get("status") == truth for r in runs["time"])]
    false_keeps = sum(keeps("time_instructions", h) for h, (truth, _, _) in PACK.items() if truth != "keep")
    small = {kind: blocks(kind, SMALL_WINS) for kind in kinds}
    fewer = 1 - small["time_instructions"] / small["time"] if small["time"] else 0.0
    spreads = {kind: statistics.median(run["aa_spread"].get(channel, math.nan) for run in runs[kind])
               for kind, channel in (("time_instructions", "instructions"), ("time", "time"))}
    walls = {kind: statistics.mean(run["wall_s"] for run in runs[kind]) for kind in kinds}
    total = len(PACK) * args.repeats
    lines = [(not lost and not false_keeps,
              f"verdicts against the truth: [time] {agree['time']}/{total}, [time, instructions] "
              f"{agree['time_instructions']}/{total}; correct verdicts lost with instructions: "
              f"{', '.join(lost) or 'none'}; false keeps with instructions: {false_keeps}"),
             (fewer >= 0.4, f"mean blocks on the wins under 5 % ({', '.join(SMALL_WINS)}): {small['time']:.1f} -> "
                            f"{small['time_instructions']:.1f} ({fewer:.0%} fewer, target 40 %)"),
             (spreads["time_instructions"] < 0.005,
              f"A/A spread per block, instruction channel: {spreads['time_instructions']:.3%} (target < 0.5 %); "
              f"time: {spreads['time']:.2%}")]
    ok = True
    print()
    for met, text in lines:
        ok &= met
        print(f"{text} {'met' if met else 'MISSED'}")
    print(f"mean blocks on all screens: [time] {blocks('time', PACK):.1f}, [time, instructions] "
          f"{blocks('time_instructions', PACK):.1f}; mean wall time per campaign: [time] {walls['time']:.0f} s, "
          f"[time, instructions] {walls['time_instructions']:.0f} s (the counting: cachegrind where perf has no "
          f"hardware counter)")
    pathlib.Path(args.out).write_text(json.dumps(runs, indent=2, default=str) + "\n")
    print(f"results in {args.out}")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
