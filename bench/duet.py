"""Duet measurement against sequential ABBA, on the real fixture, A/A (noise only).

    python bench/duet.py [--blocks 30] [--cpus 0,1] [--duration 1.0] [--out FILE]

One build of the naive cpp_fixture, copied into two work trees A and B (so the
arms load distinct but identical files, as the farm's ref and cand slots do).
Every block runs, one method after the other (which goes first alternates):

  abba   sequential, on CPU B of --cpus: bench.py in arm A then arm B (B first
         in odd blocks), each timing every benchmark for --duration seconds;
         d = log(median B / median A).
  duet   both arms at once, A on one CPU and B on the other (swapped every
         block, so a speed difference between the CPUs cancels in the mean),
         on a shared schedule (bench.py --start-at: both run the same
         benchmark at the same time), each timing for --duet-duration seconds
         (default: set after the first abba block so that a duet block takes
         as long, about 1.7 s for --duration 1) and reporting every
         iteration; each iteration of one arm is
         paired with the other arm's iteration nearest in start time;
         d = median of the pairs' log(B/A).
  duet_mean      the same pairs, d = their mean.
  duet_unpaired  the same runs, d = log(median B / median A): whole-process
         medians, which shows what the pairing adds.

Per benchmark and method, over the blocks: mean d (about 0 for A/A), the
spread of d (trim: the standard error of the farm's 20 % trimmed mean x
sqrt(n), which the farm's intervals rest on; sd; 1.4826 x MAD), the position
effect (half the difference of the mean d between the two orientations: CPU
swap for the duet, order for abba) and the sd left after removing it, the
wall time per block, and the figure of merit FoM = trim x sqrt(wall time per
block) (the standard error of the estimate after one second of measuring;
lower is better). The verdict compares abba with duet on it: "duet wins by
R" means R = FoM(abba) / FoM(duet) > 1, i.e. the duet reaches the same
precision in 1/R^2 of the wall time; the same ratios for sd and MAD and
their 95 % intervals (blocks resampled) are printed beside it. The duet holds
two CPUs, abba one: per CPU-second divide R by sqrt(2).

Keep the machine otherwise quiet while this runs: the measurement is of the
methods' noise, and another load makes it a measurement of that load.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import cpp_fixture  # noqa: E402
from farm.experiment.runner import Pinning  # noqa: E402
from stats.robust import trimmed_location  # noqa: E402

BUILD = "python build.py"  # configs/demo.yaml phases.build.command
BENCHMARKS = ("idw2d", "idw3d", "loocv", "kde", "gridsearch")  # configs/demo.yaml, the harness's order
METHODS = ("abba", "duet", "duet_mean", "duet_unpaired")
MAD_SCALE = 1.4826


# ---------------------------------------------------------------- pure functions

def pair_by_time(a_starts, b_starts, max_gap: float | None = None) -> list[tuple[int, int]]:
    """Pair two arms' iterations by start time.

    Each iteration of the arm with fewer iterations (a on a tie) is paired with
    the other arm's iteration whose start is nearest (the earlier one on a tie);
    a pair whose starts are more than `max_gap` apart is dropped. Returns
    (index into a, index into b) pairs, in start order of the arm paired from.
    """
    a = np.asarray(a_starts, dtype=float)
    b = np.asarray(b_starts, dtype=float)
    if a.size == 0 or b.size == 0:
        return []
    swap = b.size < a.size
    src, dst = (b, a) if swap else (a, b)
    order = np.argsort(dst, kind="stable")
    sorted_dst = dst[order]
    pairs = []
    for i in np.argsort(src, kind="stable"):
        k = int(np.searchsorted(sorted_dst, src[i]))  # sorted_dst[k-1] < src[i] <= sorted_dst[k]
        candidates = [c for c in (k - 1, k) if 0 <= c < sorted_dst.size]
        best = min(candidates, key=lambda c: (abs(sorted_dst[c] - src[i]), sorted_dst[c]))
        if max_gap is not None and abs(sorted_dst[best] - src[i]) > max_gap:
            continue
        j = int(order[best])
        pairs.append((j, int(i)) if swap else (int(i), j))
    return pairs


def paired_log_ratios(a_iterations, b_iterations, max_gap: float | str | None = "auto") -> np.ndarray:
    """log(b / a) of the time-paired iterations ([[start, seconds], ...] each).

    max_gap "auto": half the median iteration duration of both arms, so a pair
    overlaps for at least about half its length (only the windows' edges are
    dropped: two free-running streams are never more than half a period apart).
    """
    a = np.asarray(a_iterations, dtype=float).reshape(-1, 2)
    b = np.asarray(b_iterations, dtype=float).reshape(-1, 2)
    if max_gap == "auto":
        max_gap = 0.5 * float(np.median(np.concatenate([a[:, 1], b[:, 1]]))) if a.size and b.size else None
    pairs = pair_by_time(a[:, 0], b[:, 0], max_gap)
    return np.array([math.log(b[j, 1] / a[i, 1]) for i, j in pairs])


def duet_block_d(a_iterations, b_iterations) -> dict[str, float]:
    """One duet block's d for each duet method, and the pairing's diagnostics."""
    logs = paired_log_ratios(a_iterations, b_iterations)
    a = np.asarray(a_iterations, dtype=float).reshape(-1, 2)
    b = np.asarray(b_iterations, dtype=float).reshape(-1, 2)
    return {
        "duet": float(np.median(logs)) if logs.size else math.nan,
        "duet_mean": float(np.mean(logs)) if logs.size else math.nan,
        "duet_unpaired": math.log(float(np.median(b[:, 1])) / float(np.median(a[:, 1]))),
        "pairs": int(logs.size),
        "floor": iteration_floor(a_iterations, b_iterations),
        "floor_paired": float(logs.std(ddof=1) / math.sqrt(logs.size)) if logs.size >= 2 else math.nan,
    }


def iteration_floor(a_iterations, b_iterations) -> float:
    """The spread a block's d = log(B/A) would have if the iterations' own scatter were the only noise:
    sqrt(var(log a) / n_a + var(log b) / n_b) (for means of log times; a median's is about 1.25x). When the
    observed spread of d over blocks is far above it, the noise is per process or per block (a layout
    draw, a slow minute), which longer runs do not average out and only whatever pairs it in time cancels."""
    parts = []
    for iterations in (a_iterations, b_iterations):
        logs = np.log(np.asarray(iterations, dtype=float).reshape(-1, 2)[:, 1])
        if logs.size < 2:
            return math.nan
        parts.append(logs.var(ddof=1) / logs.size)
    return math.sqrt(sum(parts))


def _sd(x: np.ndarray) -> float:
    return float(x.std(ddof=1)) if x.size >= 2 else math.nan


def _mad(x: np.ndarray) -> float:
    return float(MAD_SCALE * np.median(np.abs(x - np.median(x)))) if x.size >= 2 else math.nan


def _trim(x: np.ndarray) -> float:
    """The standard error of the farm's statistic (Yuen's 20 % trimmed mean, stats/robust.py) x sqrt(n):
    a per-block spread, comparable with the sd, that a few disturbed blocks do not inflate."""
    return float(trimmed_location(x)[1]) * math.sqrt(x.size) if x.size >= 2 else math.nan


# The spreads of d over blocks; the verdict uses PRIMARY, the one the farm's decisions rest on.
SPREADS = {"trim": _trim, "sd": _sd, "mad": _mad}
PRIMARY = "trim"


def spread_summary(d, orientation) -> dict[str, float]:
    """Statistics of the per-block d of one method and benchmark.

    n, mean, and the SPREADS: sd, mad (1.4826 x MAD), trim (see _trim).
    orientation: +1/-1 per block (which CPU, or which order, arm A had). The
    position effect is half the difference of the two orientations' mean d;
    `sd_within`/`mad_within` are the spreads of d around its orientation's
    mean/median (what is left once the position is fitted)."""
    d = np.asarray(d, dtype=float)
    o = np.asarray(orientation)
    keep = np.isfinite(d)
    d, o = d[keep], o[keep]
    out = {"n": int(d.size), "mean": float(d.mean()) if d.size else math.nan}
    out.update({key: spread(d) for key, spread in SPREADS.items()})
    out.update({"position": math.nan, "sd_within": math.nan, "mad_within": math.nan})
    groups = [d[o == s] for s in (1, -1)]
    if all(g.size for g in groups):
        out["position"] = float((groups[0].mean() - groups[1].mean()) / 2)
        if d.size >= 3:
            residuals = np.concatenate([g - g.mean() for g in groups])
            out["sd_within"] = float(math.sqrt((residuals ** 2).sum() / (d.size - 2)))
            med_res = np.concatenate([g - np.median(g) for g in groups])
            out["mad_within"] = float(MAD_SCALE * np.median(np.abs(med_res)))
    return out


def matched_duration(abba_wall: float, benchmarks: int, setup_time: float, startup: float,
                     abba_duration: float) -> float:
    """The duet's timed seconds per benchmark for a block as long as an abba block of `abba_wall` seconds:
    the schedule takes startup + benchmarks x (setup_time + duration), plus about 0.15 s for the last
    iteration's overrun and the exit. At least a quarter of abba's duration."""
    return max((abba_wall - startup - 0.15) / benchmarks - setup_time, abba_duration / 4)


def figure_of_merit(spread: float, wall_per_block: float) -> float:
    """spread x sqrt(wall time per block): the standard error of the mean d after one second."""
    return spread * math.sqrt(wall_per_block)


def verdict(fom_abba: float, fom_duet: float) -> str:
    """'duet wins by R' / 'ABBA wins by R' (R >= 1, the ratio of figures of merit)."""
    if not (math.isfinite(fom_abba) and math.isfinite(fom_duet)) or fom_abba <= 0 or fom_duet <= 0:
        return "no verdict (spread not measurable)"
    ratio = fom_abba / fom_duet
    if ratio >= 1:
        return f"duet wins by {ratio:.2f}x (the same precision in {1 / ratio ** 2:.2f}x the wall time)"
    return f"ABBA wins by {1 / ratio:.2f}x (the duet needs {1 / ratio ** 2:.2f}x the wall time)"


def bootstrap_ratio(d_abba, d_duet, wall_abba, wall_duet, stat: str, draws: int = 2000, seed: int = 1):
    """95 % interval of FoM(abba)/FoM(duet) for the spread SPREADS[stat], resampling blocks (block i of both
    methods together: they were measured next to each other, so a disturbed stretch of time moves both)."""
    a = np.asarray(d_abba, dtype=float)
    b = np.asarray(d_duet, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 3:
        return (math.nan, math.nan)

    spread = SPREADS[stat]
    rng = np.random.default_rng(seed)
    scale = math.sqrt(wall_abba / wall_duet)
    ratios = []
    for _ in range(draws):
        idx = rng.integers(0, a.size, a.size)
        sb = spread(b[idx])
        if sb > 0:
            ratios.append(spread(a[idx]) * scale / sb)
    if not ratios:
        return (math.nan, math.nan)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return (float(low), float(high))


# ---------------------------------------------------------------- running the fixture

def arm_env(cpu: int) -> dict[str, str]:
    """The environment farm/experiment/runner.py gives a process pinned to one CPU."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(Pinning((cpu,)).environment())  # OMP_NUM_THREADS=1, OMP_PLACES={cpu}, OMP_PROC_BIND=close
    return env


def launch(tree: pathlib.Path, cpu: int, bench_args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "bench.py", *bench_args], cwd=tree,
                            env=arm_env(cpu), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def collect(proc: subprocess.Popen, timeout: float, what: str, cpu: int) -> dict[str, dict]:
    """The JSON rows of a bench.py process, by benchmark name."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise RuntimeError(f"{what}: bench.py timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{what}: bench.py exit {proc.returncode}: {err.strip()[-600:]}")
    rows = {row["name"]: row for row in map(json.loads, (line for line in out.splitlines() if line.startswith("{")))}
    for name, row in rows.items():
        if row["cpus"] != [cpu] or row["threads"] != 1:
            raise RuntimeError(f"{what}: {name} ran on cpus {row['cpus']} with {row['threads']} threads, "
                               f"not on [{cpu}] with 1")
    return rows


def check_same(rows_a: dict, rows_b: dict, what: str) -> None:
    if set(rows_a) != set(rows_b):
        raise RuntimeError(f"{what}: the arms reported different benchmarks {sorted(rows_a)} / {sorted(rows_b)}")
    for name in rows_a:
        if rows_a[name]["checksum"] != rows_b[name]["checksum"]:
            raise RuntimeError(f"{what}: {name} checksums differ between the arms (not the same build?)")


def abba_block(trees, cpu, block, names, duration, timeout):
    """Arm A then B (B then A in odd blocks), one after the other on `cpu`."""
    order = ("A", "B") if block % 2 == 0 else ("B", "A")
    args = ["--only", ",".join(names), "--duration", str(duration), "--iterations"]
    start = time.monotonic()
    rows = {}
    for arm in order:
        rows[arm] = collect(launch(trees[arm], cpu, args), timeout, f"abba block {block} arm {arm}", cpu)
    wall = time.monotonic() - start
    check_same(rows["A"], rows["B"], f"abba block {block}")
    d = {name: math.log(rows["B"][name]["value"] / rows["A"][name]["value"]) for name in names}
    values = {arm: {name: rows[arm][name]["value"] for name in names} for arm in "AB"}
    iterations = {arm: {name: rows[arm][name]["iterations"] for name in names} for arm in "AB"}
    floor = {name: iteration_floor(iterations["A"][name], iterations["B"][name]) for name in names}
    return {"block": block, "orientation": 1 if order[0] == "A" else -1, "order": "".join(order), "wall": wall,
            "d": d, "values": values, "floor": floor, "iterations": iterations}


def duet_block(trees, cpus, block, names, duration, setup_time, startup, timeout):
    """Arms A and B at once on a shared schedule, A on cpus[0] in even blocks and on cpus[1] in odd ones."""
    placement = {"A": cpus[0], "B": cpus[1]} if block % 2 == 0 else {"A": cpus[1], "B": cpus[0]}
    start = time.monotonic()
    start_at = start + startup
    args = ["--only", ",".join(names), "--duration", str(duration), "--start-at", repr(start_at),
            "--setup-time", str(setup_time), "--iterations"]
    procs = {arm: launch(trees[arm], placement[arm], args) for arm in "AB"}
    try:
        rows = {arm: collect(procs[arm], timeout, f"duet block {block} arm {arm}", placement[arm]) for arm in "AB"}
    finally:
        for proc in procs.values():  # one arm failed: do not leave the other running
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.communicate()
    wall = time.monotonic() - start
    check_same(rows["A"], rows["B"], f"duet block {block}")
    late = {}
    for k, name in enumerate(names):
        begin = start_at + k * (setup_time + duration) + setup_time
        late[name] = max(rows[arm][name]["iterations"][0][0] - begin for arm in "AB")
    out = {"block": block, "orientation": 1 if placement["A"] == cpus[0] else -1,
           "placement": placement, "wall": wall, "late": late, "d": {}, "pairs": {}, "corr": {}, "floor": {},
           "iterations": {arm: {name: rows[arm][name]["iterations"] for name in names} for arm in "AB"}}
    for name in names:
        a_it, b_it = rows["A"][name]["iterations"], rows["B"][name]["iterations"]
        block_d = duet_block_d(a_it, b_it)
        out["pairs"][name] = block_d.pop("pairs")
        out["floor"][name] = {"duet": block_d.pop("floor_paired"), "duet_unpaired": block_d.pop("floor")}
        out["d"][name] = block_d
        out["corr"][name] = pair_correlation(a_it, b_it)
    return out


def pair_correlation(a_iterations, b_iterations) -> float:
    """Correlation of the paired iterations' log times: the share of the noise the two arms have in common
    (what pairing can cancel); NaN with fewer than 3 pairs."""
    a = np.asarray(a_iterations, dtype=float).reshape(-1, 2)
    b = np.asarray(b_iterations, dtype=float).reshape(-1, 2)
    gap = 0.5 * float(np.median(np.concatenate([a[:, 1], b[:, 1]])))
    pairs = pair_by_time(a[:, 0], b[:, 0], gap)
    if len(pairs) < 3:
        return math.nan
    x = np.log([a[i, 1] for i, _ in pairs])
    y = np.log([b[j, 1] for _, j in pairs])
    if x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def prepare(repo: pathlib.Path | None, workdir: pathlib.Path) -> dict[str, pathlib.Path]:
    """Build the fixture once (or take a built one) and copy it into trees A and B."""
    if repo is None:
        repo = cpp_fixture.init_repo(workdir / "fixture")
        print(f"building the fixture in {repo} ...", flush=True)
        done = subprocess.run(BUILD.replace("python", sys.executable, 1), shell=True, cwd=repo,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"build failed: {(done.stdout + done.stderr)[-800:]}")
    guard = subprocess.run([sys.executable, "guard.py"], cwd=repo, capture_output=True, text=True,
                           env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    if guard.returncode != 0:
        raise RuntimeError(f"guard failed in {repo}: {guard.stdout.strip()}")
    trees = {}
    for arm in "AB":
        trees[arm] = workdir / f"arm{arm}"
        shutil.copytree(repo, trees[arm], ignore=shutil.ignore_patterns("__pycache__", ".git"), symlinks=True)
    return trees


# ---------------------------------------------------------------- summary

def summarise(abba, duet, names):
    """Per benchmark and method: spread_summary, wall per block, figures of merit; ratios and verdicts."""
    walls = {"abba": float(np.mean([b["wall"] for b in abba]))}
    walls.update({m: float(np.mean([b["wall"] for b in duet])) for m in METHODS[1:]})
    result = {"wall_per_block": walls, "primary_spread": PRIMARY, "benchmarks": {}}
    for name in names:
        per = {}
        series = {"abba": ([b["d"][name] for b in abba], [b["orientation"] for b in abba])}
        for m in METHODS[1:]:
            series[m] = ([b["d"][name][m] for b in duet], [b["orientation"] for b in duet])
        for m, (d, o) in series.items():
            s = spread_summary(d, o)
            s["fom"] = {key: figure_of_merit(s[key], walls[m]) for key in (*SPREADS, "sd_within")}
            s["d"] = [float(x) for x in d]
            floors = [b["floor"][name] if m == "abba" else b["floor"][name]["duet_unpaired" if m == "duet_unpaired"
                                                                            else "duet"]
                      for b in (abba if m == "abba" else duet)]
            floors = [f for f in floors if math.isfinite(f)]
            s["iteration_floor"] = float(np.median(floors)) if floors else math.nan
            per[m] = s
        corr = [b["corr"][name] for b in duet if math.isfinite(b["corr"][name])]
        pairs = [b["pairs"][name] for b in duet]
        entry = {"methods": per, "pair_correlation": float(np.median(corr)) if corr else math.nan,
                 "pairs_per_block": float(np.mean(pairs)) if pairs else math.nan}
        for m in METHODS[1:]:
            ratios = {}
            for key in (*SPREADS, "sd_within"):
                mine, theirs = per[m]["fom"][key], per["abba"]["fom"][key]
                ratios[key] = theirs / mine if mine > 0 else math.nan
            for key in SPREADS:
                ratios[f"{key}_ci"] = bootstrap_ratio(series["abba"][0], series[m][0], walls["abba"], walls[m], key)
            ratios["verdict"] = verdict(per["abba"]["fom"][PRIMARY], per[m]["fom"][PRIMARY])
            entry[f"ratio_{m}"] = ratios
        result["benchmarks"][name] = entry
    for m in METHODS[1:]:
        overall = {}
        for key in SPREADS:
            ratios = [e[f"ratio_{m}"][key] for e in result["benchmarks"].values()]
            ratios = [r for r in ratios if math.isfinite(r) and r > 0]
            overall[key] = math.exp(float(np.mean(np.log(ratios)))) if ratios else math.nan
        geo = overall[PRIMARY]
        result[f"overall_{m}"] = {"geomean_ratio": overall,
                                  "verdict": verdict(geo, 1.0) if math.isfinite(geo) else verdict(math.nan, 1)}
    return result


def pct(x: float) -> str:
    return "     n/a" if not math.isfinite(x) else f"{100 * x:+7.2f}%"


def spread_pct(x: float) -> str:
    return "    n/a" if not math.isfinite(x) else f"{100 * x:6.2f}%"


def interval(ci) -> str:
    return "n/a" if not all(map(math.isfinite, ci)) else f"{ci[0]:.2f}-{ci[1]:.2f}"


def report(summary, names, blocks) -> None:
    walls = summary["wall_per_block"]
    print(f"\n{blocks} blocks; wall time per block: abba {walls['abba']:.2f} s, duet {walls['duet']:.2f} s")
    print("d = log(B/A) per block (A/A: ideally 0), in % (log units); trim = the standard error of the farm's "
          "20 % trimmed mean x sqrt(n);\nfloor = the sd of d that the iterations' own scatter would give (sd far "
          "above it: per-process or per-block noise);\nFoM = trim x sqrt(wall per block), lower is better")
    head = (f"{'benchmark':<11} {'method':<14} {'n':>3} {'mean d':>8} {'trim':>7} {'sd':>7} {'1.48MAD':>7} "
            f"{'pos.eff':>8} {'sd|pos':>7} {'floor':>7} {'wall s':>6} {'FoM':>7}")
    print(head)
    print("-" * len(head))
    for name in names:
        entry = summary["benchmarks"][name]
        for m in METHODS:
            s = entry["methods"][m]
            print(f"{name if m == 'abba' else '':<11} {m:<14} {s['n']:>3} {pct(s['mean'])} {spread_pct(s['trim'])} "
                  f"{spread_pct(s['sd'])} {spread_pct(s['mad'])} {pct(s['position'])} {spread_pct(s['sd_within'])} "
                  f"{spread_pct(s['iteration_floor'])} {walls[m]:6.2f} {spread_pct(s['fom'][PRIMARY])}")
        print(f"{'':<11} pairs/block {entry['pairs_per_block']:.1f}, correlation of paired iterations' log times "
              f"{entry['pair_correlation']:+.2f}")
    print("\nratio = FoM(abba) / FoM(duet): above 1 the duet is better; 95 % intervals by resampling blocks")
    for name in names:
        entry = summary["benchmarks"][name]
        r, ru = entry["ratio_duet"], entry["ratio_duet_unpaired"]
        print(f"verdict {name:<11} {r['verdict']}")
        print(f"{'':<20}trim {r['trim']:.2f} ({interval(r['trim_ci'])}), sd {r['sd']:.2f} ({interval(r['sd_ci'])}), "
              f"MAD {r['mad']:.2f} ({interval(r['mad_ci'])}); sd with the position fitted {r['sd_within']:.2f}; "
              f"without pairing: trim {ru['trim']:.2f}")
    overall = summary["overall_duet"]
    geo = overall["geomean_ratio"]
    print(f"verdict overall     {overall['verdict']}")
    print(f"{'':<20}(geometric mean over the benchmarks of the trim ratio; sd {geo['sd']:.2f}, MAD {geo['mad']:.2f})")
    print(f"{'':<20}per CPU-second (the duet holds 2 CPUs, abba 1): {geo[PRIMARY] / math.sqrt(2):.2f}")
    print(f"{'':<20}without pairing (whole-process medians): {summary['overall_duet_unpaired']['verdict']}")
    print(f"{'':<20}paired, mean instead of median: {summary['overall_duet_mean']['verdict']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=30,
                        help="blocks per method (default 30; keep it even so both orientations count alike)")
    parser.add_argument("--cpus", default="0,1", help="A,B: the duet's two CPUs; abba runs on B (default 0,1)")
    parser.add_argument("--duration", type=float, default=1.0,
                        help="abba: seconds of timed calls per benchmark and arm (default 1.0)")
    parser.add_argument("--duet-duration", type=float, default=None,
                        help="duet: seconds of timed calls per benchmark (default: set from the first abba "
                             "block so that a duet block takes as long)")
    parser.add_argument("--setup-time", type=float, default=0.5, help="duet: setup + warm-up slot per benchmark")
    parser.add_argument("--startup", type=float, default=1.0,
                        help="duet: seconds from launching both processes to the schedule's start")
    parser.add_argument("--only", default="", help="comma-separated benchmarks (default: all five)")
    parser.add_argument("--repo", default=None, help="an already built fixture repository (default: init + build)")
    parser.add_argument("--out", default=None, help="write everything (per block, per iteration) as JSON here")
    args = parser.parse_args(argv)
    cpus = tuple(int(c) for c in args.cpus.split(","))
    if len(cpus) != 2 or cpus[0] == cpus[1]:
        parser.error("--cpus takes two different CPUs, e.g. 0,1")
    missing = set(cpus) - os.sched_getaffinity(0)
    if missing:
        parser.error(f"CPU(s) {sorted(missing)} not available here (have {sorted(os.sched_getaffinity(0))})")
    if args.blocks < 1:
        parser.error("--blocks must be at least 1")
    duet_duration = args.duet_duration
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    # A generous limit per bench.py process: its schedule plus a minute.
    timeout = args.startup + len(names) * (args.setup_time + max(args.duration, duet_duration or 0)) * 3 + 60
    with tempfile.TemporaryDirectory(prefix="duet-") as tmp:
        trees = prepare(pathlib.Path(args.repo).resolve() if args.repo else None, pathlib.Path(tmp))
        print(f"{args.blocks} blocks, cpus {cpus} (abba on {cpus[1]}), abba {args.duration:g} s of timed calls "
              f"per benchmark and arm", flush=True)
        abba, duet = [], []
        began = time.monotonic()
        for block in range(args.blocks):
            runs = [lambda block=block: abba.append(abba_block(trees, cpus[1], block, names, args.duration, timeout)),
                    # duet_duration late-bound on purpose: block 0's abba run sets it
                    lambda block=block: duet.append(duet_block(trees, cpus, block, names, duet_duration,  # noqa: B023
                                                               args.setup_time, args.startup, timeout))]
            for k, run in enumerate(runs if block % 2 == 0 else runs[::-1]):
                run()
                if k == 0 and duet_duration is None:  # block 0 runs abba first
                    duet_duration = matched_duration(abba[0]["wall"], len(names), args.setup_time, args.startup,
                                                     args.duration)
                    print(f"duet: {duet_duration:.2f} s of timed calls per benchmark and arm, for a block as long "
                          f"as the first abba block ({abba[0]['wall']:.1f} s)", flush=True)
            late = max(duet[-1]["late"].values())
            print(f"block {block + 1}/{args.blocks}: abba {abba[-1]['wall']:.1f} s, duet {duet[-1]['wall']:.1f} s"
                  + (f" (a timed window began {late:.2f} s late: raise --setup-time/--startup)"
                     if late > 0.05 else "") + f"; elapsed {time.monotonic() - began:.0f} s", flush=True)
    summary = summarise(abba, duet, names)
    report(summary, names, args.blocks)
    if args.out:
        document = {"config": {"blocks": args.blocks, "cpus": cpus, "duration": args.duration,
                               "duet_duration": duet_duration, "setup_time": args.setup_time,
                               "startup": args.startup, "benchmarks": names},
                    "summary": summary, "abba": abba, "duet": duet}
        pathlib.Path(args.out).write_text(json.dumps(document, indent=1, default=float))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
