"""What the sandbox costs: an agent's start-up and a phase's, with bubblewrap and without, side by side.

    python bench/sandbox_cost.py [--runs 40] [--out FILE]

(a) agent start-up: `run_command` of a trivial agent (`true`) pinned to one CPU, with the agent sandbox the
    pipeline builds (the farm's directories hidden, the scratch and the agent's own directory writable, a
    private /tmp, a PID namespace) and without; plus making the scratch checkout (`clone --shared` and a
    checkout of the C++ fixture), which a sandboxed agent run needs and an unsandboxed one on main did not.
(b) a phase: `run_command` of `true` with the phase sandbox (the farm's directories read-only but the
    checkout, a PID namespace) and without: what every build, guard and benchmark run pays.
(c) a benchmark run's peak memory: the phase sandbox with `measure_memory` (farm/experiment/peak_rss.py between the
    sandbox and the command) and without it: what every benchmark run pays for `samples.peak_rss`.

Runs are interleaved (with, without, with, ...), medians reported. Targets: the agent sandbox adds < 50 ms
to a start (agents run for minutes), the phase sandbox < 10 ms to a run (a block runs two) and the memory
measurement < 30 ms to a benchmark run (outside the benchmark's own timing). "met" or
"MISSED" each; exit 1 if any is missed. Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import cpp_fixture
from farm.experiment.runner import Pinning, run_command
from farm.node import sandbox
from worktrees import Scratch, TargetRepo

AGENT_TARGET_MS = 50.0
PHASE_TARGET_MS = 10.0
MEMORY_TARGET_MS = 30.0


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(runs: int, root: pathlib.Path) -> dict:
    repo = TargetRepo(cpp_fixture.init_repo(root / "target"))
    work = root / "work"
    scratch = Scratch(repo, work / "workers" / "w0" / "scratch")
    own = work / "logs" / "e1" / "agent"
    own.mkdir(parents=True)
    cand = work / "workers" / "w0" / "cand"
    cand.mkdir(parents=True)
    base = repo.resolve("main")
    scratch.create(base, "farm/bench/e1")
    pinning = Pinning((max(os.sched_getaffinity(0)),))
    farm_dirs = (work, repo.path, repo.git_dir)
    agent_box = sandbox.agent_sandbox(farm_dirs, [repo.git_dir / "objects"], [scratch.path, own], [], True)
    phase_box = sandbox.phase_sandbox(farm_dirs, cand)
    timings: dict[str, list[float]] = {name: [] for name in
                                       ("agent_bare", "agent_sandboxed", "phase_bare", "phase_sandboxed",
                                        "bench_memory", "scratch")}
    for _ in range(runs):
        timings["agent_sandboxed"].append(_seconds(lambda: run_command("agent", "true", scratch.path, 30, pinning,
                                                                        sandbox=agent_box)))
        timings["agent_bare"].append(_seconds(lambda: run_command("agent", "true", scratch.path, 30, pinning)))
        timings["phase_sandboxed"].append(_seconds(lambda: run_command("bench", "true", cand, 30, pinning,
                                                                        sandbox=phase_box)))
        timings["phase_bare"].append(_seconds(lambda: run_command("bench", "true", cand, 30, pinning)))
        timings["bench_memory"].append(_seconds(lambda: run_command("bench", "true", cand, 30, pinning,
                                                                     sandbox=phase_box, measure_memory=True)))
    for _ in range(max(3, runs // 8)):
        timings["scratch"].append(_seconds(lambda: scratch.create(base, "farm/bench/e1")))
    return {name: statistics.median(values) * 1000 for name, values in timings.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args()
    problem = sandbox.bwrap_problem()
    if problem:
        print(f"MISSED: {problem}")
        return 1
    with tempfile.TemporaryDirectory(prefix="sandbox-cost-") as root:
        ms = measure(args.runs, pathlib.Path(root))
    agent_extra = ms["agent_sandboxed"] - ms["agent_bare"]
    phase_extra = ms["phase_sandboxed"] - ms["phase_bare"]
    memory_extra = ms["bench_memory"] - ms["phase_sandboxed"]
    rows = [("agent start, no sandbox", ms["agent_bare"], ""),
            ("agent start, sandboxed", ms["agent_sandboxed"], ""),
            ("scratch checkout of the fixture (clone --shared + checkout)", ms["scratch"], ""),
            ("agent sandbox adds", agent_extra,
             f"target < {AGENT_TARGET_MS:g} ms: {'met' if agent_extra < AGENT_TARGET_MS else 'MISSED'}"),
            ("phase run, no sandbox", ms["phase_bare"], ""),
            ("phase run, sandboxed", ms["phase_sandboxed"], ""),
            ("phase sandbox adds", phase_extra,
             f"target < {PHASE_TARGET_MS:g} ms: {'met' if phase_extra < PHASE_TARGET_MS else 'MISSED'}"),
            ("benchmark run, sandboxed, with its peak memory", ms["bench_memory"], ""),
            ("the peak-memory measurement adds", memory_extra,
             f"target < {MEMORY_TARGET_MS:g} ms: {'met' if memory_extra < MEMORY_TARGET_MS else 'MISSED'}")]
    print(f"medians of {args.runs} interleaved runs (`true`, pinned to one CPU):")
    for name, value, verdict in rows:
        print(f"  {name:<62} {value:7.1f} ms  {verdict}")
    if args.out:
        args.out.write_text(json.dumps({"runs": args.runs, "ms": ms}, indent=2) + "\n")
    met = agent_extra < AGENT_TARGET_MS and phase_extra < PHASE_TARGET_MS and memory_extra < MEMORY_TARGET_MS
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
