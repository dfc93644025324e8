"""Measure every patch of the cpp_fixture hypothesis pack against its parent.

    python bench/verify_pack.py [--blocks 5] [--cpus 1] [--only a,b] [--out FILE]

For each hypothesis: apply its patch on its parent (the naive tree or its
declared predecessor), build, run the guard, then run interleaved A/B blocks
(parent and patched harness alternately, ABBA order, pinned with taskset) and
print the geometric-mean ratio patched/parent per benchmark next to the
manifest's expected direction. Then the combined chain against the naive tree.
The last line is `agree: N/M` over every outcome and direction check.

This is independent of the farm on purpose: it checks the fixture's ground
truth with nothing but git, the fixture's own commands and a ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import cpp_fixture  # noqa: E402

PROTECTED = ("bench.py", "guard.py", "checksums.json", "harness/")
SAME_BAND = 0.02  # |ratio - 1| below this is "same"


def run(cmd, cwd, timeout, cpus=None):
    """Run a command in its own session; returns (rc, stdout+stderr); rc None on timeout."""
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        return None, ""


def bench(tree, cpus, timeout):
    rc, out = run([sys.executable, "bench.py"], tree, timeout, cpus)
    if rc != 0:
        raise RuntimeError(f"bench failed in {tree} (rc={rc}): {out[-500:]}")
    return {row["name"]: row["value"] for row in map(json.loads, out.splitlines()) if row}


def interleaved(ref, cand, blocks, cpus, timeout):
    """{benchmark: [(ref, cand), ...]} from ABBA-ordered blocks."""
    pairs: dict[str, list] = {}
    for block in range(blocks):
        order = (ref, cand) if block % 2 == 0 else (cand, ref)
        values = {tree: bench(tree, cpus, timeout) for tree in order}
        for name in values[ref]:
            pairs.setdefault(name, []).append((values[ref][name], values[cand][name]))
    return pairs


def median_ratio(pairs):
    """Median of the per-block ratios: robust to one disturbed block on a shared machine."""
    return statistics.median(c / r for r, c in pairs)


def direction(ratio):
    if ratio < 1 - SAME_BAND:
        return "better"
    if ratio > 1 + SAME_BAND:
        return "worse"
    return "same"


class Trees:
    """Git worktrees of one fixture repository, built once per lineage."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.repo = cpp_fixture.init_repo(root / "repo")
        self.base = cpp_fixture._git(self.repo, "rev-parse", "HEAD")
        self.built: dict[tuple, pathlib.Path] = {}

    def checkout(self, name: str, lineage: list[str]) -> pathlib.Path:
        tree = self.root / name
        if not tree.exists():
            cpp_fixture._git(self.repo, "worktree", "add", "-q", "--detach", str(tree), self.base)
        cpp_fixture._git(tree, "checkout", "-q", "-f", "--detach", self.base)
        cpp_fixture._git(tree, "clean", "-q", "-fd")
        cpp_fixture.apply_patches(tree, lineage, commit=False)
        return tree

    def parent(self, lineage: list[str]) -> pathlib.Path:
        key = tuple(lineage)
        if key not in self.built:
            tree = self.checkout("parent-" + ("-".join(lineage) or "naive"), lineage)
            rc, out = run([sys.executable, "build.py"], tree, 600)
            if rc != 0:
                raise RuntimeError(f"parent {lineage} does not build: {out[-800:]}")
            self.built[key] = tree
        return self.built[key]


def verify(entry, trees, args, multithread):
    lineage = cpp_fixture.lineage(entry["id"])
    expected = (entry.get("expected_multithread") if multithread else None) or entry["expected"]
    ref = trees.parent(lineage[:-1])
    try:
        cand = trees.checkout("cand", lineage)
    except cpp_fixture.FixtureError as error:
        return {"outcome": "does_not_apply", "detail": str(error)}, expected
    changed = cpp_fixture._git(cand, "diff", "--name-only", "HEAD").splitlines()
    tampered = any(path.startswith(PROTECTED) for path in changed)
    rc, out = run([sys.executable, "build.py"], cand, 600)
    if rc != 0:
        return {"outcome": "crash", "detail": out.strip().splitlines()[-1][:120]}, expected
    rc, out = run([sys.executable, "guard.py"], cand, args.timeout, args.cpus)
    if rc is None:
        return {"outcome": "timeout", "detail": f"guard exceeded {args.timeout}s"}, expected
    guard_ok = rc == 0
    pairs = interleaved(ref, cand, args.blocks, args.cpus, args.timeout)
    ratios = {name: median_ratio(p) for name, p in pairs.items()}
    directions = {name: direction(r) for name, r in ratios.items()}
    if tampered:
        outcome = "tampered"
    elif not guard_ok:
        outcome = "guard_fail"
    elif "better" in directions.values() and "worse" not in directions.values():
        outcome = "keep"
    else:
        outcome = "discard"
    return {"outcome": outcome, "ratios": ratios, "directions": directions}, expected


def combined(trees, args):
    chain = cpp_fixture.load_manifest_document()["combined"]
    naive = trees.parent([])
    full = trees.parent(chain)
    totals = {"naive": [], "combined": []}
    per_bench: dict[str, list] = {}
    for run_index in range(args.combined_runs):
        order = (naive, full) if run_index % 2 == 0 else (full, naive)
        values = {tree: bench(tree, args.cpus, args.timeout) for tree in order}
        totals["naive"].append(sum(values[naive].values()))
        totals["combined"].append(sum(values[full].values()))
        for name in values[naive]:
            per_bench.setdefault(name, []).append((values[naive][name], values[full][name]))
    return chain, totals, per_bench


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=5, help="interleaved A/B blocks per patch")
    parser.add_argument("--cpus", default=str(max(os.sched_getaffinity(0))),
                        help="taskset CPU list for guard and benchmarks (default: the last CPU)")
    parser.add_argument("--only", default="", help="comma-separated hypothesis ids")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per guard or bench run")
    parser.add_argument("--combined-runs", type=int, default=5, help="runs of each arm for the combined figure")
    parser.add_argument("--no-combined", action="store_true")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()
    multithread = len(args.cpus.replace("-", ",").split(",")) > 1
    manifest = cpp_fixture.load_manifest()
    wanted = [h for h in args.only.split(",") if h] or [e["id"] for e in manifest]
    results = {}
    agree = total = 0
    with tempfile.TemporaryDirectory(prefix="verify_pack-") as tmp:
        trees = Trees(pathlib.Path(tmp))
        print(f"cpus={args.cpus} blocks={args.blocks} same-band=±{SAME_BAND:.0%}; "
              f"ratio = patched/parent (<1 is faster)")
        for entry in manifest:
            if entry["id"] not in wanted:
                continue
            measured, expected = verify(entry, trees, args, multithread)
            results[entry["id"]] = measured
            ok = measured["outcome"] == expected["outcome"]
            agree += ok
            total += 1
            print(f"\n{entry['id']:22} outcome {measured['outcome']:10} expected {expected['outcome']:10} "
                  f"{'ok' if ok else 'DIFFERS'}  {measured.get('detail', '')}", flush=True)
            for name, ratio in measured.get("ratios", {}).items():
                want = expected.get("directions", {}).get(name)
                if want is None:
                    continue
                got = measured["directions"][name]
                agree += got == want
                total += 1
                verdict = "ok" if got == want else "DIFFERS"
                print(f"    {name:12} ratio {ratio:7.3f}  {got:6}  expected {want:6} {verdict}",
                      flush=True)
        if not args.no_combined:
            chain, totals, per_bench = combined(trees, args)
            naive_total, full_total = statistics.median(totals["naive"]), statistics.median(totals["combined"])
            print(f"\ncombined chain: {' + '.join(chain)}")
            for name, pairs in per_bench.items():
                print(f"    {name:12} naive {statistics.median(p[0] for p in pairs):7.4f} s  "
                      f"combined {statistics.median(p[1] for p in pairs):7.4f} s")
            print(f"total harness time (sum of benchmark medians), median of {args.combined_runs} interleaved runs: "
                  f"naive {naive_total:.3f} s, combined {full_total:.3f} s, speedup {naive_total / full_total:.1f}x")
            results["_combined"] = {"chain": chain, "naive_total": naive_total, "combined_total": full_total}
    print(f"agree: {agree}/{total}")
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
