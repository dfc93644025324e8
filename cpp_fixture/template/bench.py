"""Run the benchmarks and print one JSON object per line per benchmark.

    python bench.py [--only idw2d,kde] [--reps 3] [--warmup 1]
                    [--duration S] [--start-at T [--setup-time G]] [--iterations]

Each line: {"name", "value" (seconds, median of the timed calls after
--warmup untimed ones), "unit": "s", "checksum", "threads" (OpenMP),
"cpus" (the CPU list this process may run on), "reps", "pid"}.
The default repetitions come from $FIXTURE_REPS (3) and $FIXTURE_WARMUP (1).

--duration S   time calls for S seconds per benchmark instead of --reps calls
               (at least one; "reps" is then the number made).
--start-at T   follow a fixed schedule on the machine-wide monotonic clock
               (Python's time.monotonic(), CLOCK_MONOTONIC on Linux), so that
               processes started apart run the same benchmark at the same time:
               the k-th benchmark's setup and warm-up start at T + k*(G + S) and
               its timed calls run from T + k*(G + S) + G until S seconds later
               (G is --setup-time, default 0.5 s). Needs --duration.
--iterations   add "iterations": [[start, seconds], ...], one pair per timed
               call: its start on that same monotonic clock and its duration.
"""
import argparse
import json
import os
import statistics
import sys
import time

import interp
from harness.workloads import WORKLOADS, checksum


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--reps", type=int, default=int(os.environ.get("FIXTURE_REPS", "3")))
    parser.add_argument("--warmup", type=int, default=int(os.environ.get("FIXTURE_WARMUP", "1")))
    parser.add_argument("--duration", type=float, default=None, help="seconds of timed calls per benchmark")
    parser.add_argument("--start-at", type=float, default=None, help="time.monotonic() at which the schedule starts")
    parser.add_argument("--setup-time", type=float, default=0.5, help="seconds for setup and warm-up per benchmark")
    parser.add_argument("--iterations", action="store_true", help="report every timed call's start and duration")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {sorted(WORKLOADS)}")
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    if args.duration is not None and not args.duration > 0:
        parser.error("--duration must be positive")
    if args.start_at is not None and args.duration is None:
        parser.error("--start-at needs --duration")
    if args.setup_time < 0:
        parser.error("--setup-time must not be negative")
    args.names = names
    args.warmup = max(args.warmup, 0)
    return args


def _sleep_until(deadline):
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(left)


def measure(name, reps, warmup, duration=None, begin=None, iterations=False):
    """Time one benchmark: `reps` calls, or calls for `duration` seconds from
    `begin` (a time.monotonic() value; default: right after the warm-up)."""
    call = WORKLOADS[name]()
    output = call()  # the first call is always untimed: it gives the checksum
    for _ in range(warmup - 1):
        call()
    if begin is not None:
        _sleep_until(begin)
    end = None if duration is None else (time.monotonic() if begin is None else begin) + duration

    def more():
        if end is None:
            return len(times) < reps
        return not times or time.monotonic() < end

    times, starts = [], []
    while more():
        starts.append(time.monotonic())
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    row = {
        "name": name,
        "value": statistics.median(times),
        "unit": "s",
        "checksum": checksum(output),
        "threads": interp.core.omp_threads(),
        "cpus": sorted(os.sched_getaffinity(0)),
        "reps": len(times),
        "pid": os.getpid(),
    }
    if iterations:
        row["iterations"] = [[s, t] for s, t in zip(starts, times)]
    return row


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for k, name in enumerate(args.names):
        begin = None
        if args.start_at is not None:
            slot = args.start_at + k * (args.setup_time + args.duration)
            _sleep_until(slot)
            begin = slot + args.setup_time
        row = measure(name, args.reps, args.warmup, args.duration, begin, args.iterations)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
