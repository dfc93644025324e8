"""Run the benchmarks and print one JSON object per line per benchmark.

    python bench.py [--only idw2d,kde] [--reps 3] [--warmup 1]

Each line: {"name", "value" (seconds, median of --reps timed calls after
--warmup untimed ones), "unit": "s", "checksum", "threads" (OpenMP),
"cpus" (the CPU list this process may run on), "reps", "pid"}.
The default repetitions come from $FIXTURE_REPS (3) and $FIXTURE_WARMUP (1).
"""
import argparse
import json
import os
import statistics
import sys
import time

from harness.workloads import WORKLOADS, checksum

import interp


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--reps", type=int, default=int(os.environ.get("FIXTURE_REPS", "3")))
    parser.add_argument("--warmup", type=int, default=int(os.environ.get("FIXTURE_WARMUP", "1")))
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {sorted(WORKLOADS)}")
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    return names, args.reps, max(args.warmup, 0)


def measure(name, reps, warmup):
    call = WORKLOADS[name]()
    output = call()  # the first call is always untimed: it gives the checksum
    for _ in range(warmup - 1):
        call()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return {
        "name": name,
        "value": statistics.median(times),
        "unit": "s",
        "checksum": checksum(output),
        "threads": interp.core.omp_threads(),
        "cpus": sorted(os.sched_getaffinity(0)),
        "reps": reps,
        "pid": os.getpid(),
    }


def main(argv=None):
    names, reps, warmup = parse_args(sys.argv[1:] if argv is None else argv)
    for name in names:
        print(json.dumps(measure(name, reps, warmup)), flush=True)


if __name__ == "__main__":
    main()
