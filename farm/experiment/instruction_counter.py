"""Instruction counts of a command: the second measurement channel (measurement.channels: [time, instructions]).

Two counters, the first that works on the node:
  perf        `perf stat -e instructions:u`: the CPU's own counter of user-space instructions, at nearly native
              speed; needs a PMU the kernel exposes (a VM often has none: `<not supported>`) and
              kernel.perf_event_paranoid <= 2. Counts every process and thread the command starts.
  cachegrind  `valgrind --tool=cachegrind --cache-sim=no --trace-children=yes`: simulated, about 20-50x slower,
              on any Linux machine. Every process of the command is counted (each prints its own total, they
              are summed); the threads of a process are run one at a time and all counted, so an OpenMP
              kernel's count is its total work over all its threads, whatever their number.

Both count the command's whole run, start-up included (the same in both arms: it dilutes a ratio, it does
not bias it); a cheap command that runs each benchmark once (bench.instructions_command) keeps the
dilution and the cost low. The count is read from the command's stderr, where both counters write it: a
benchmark could print a forged one. It only decides how Holm's alpha is shared (stats.decision:
holm_mask), never a keep by itself, so a forged count cannot make a change kept.
"""
from __future__ import annotations

import functools
import re
import shlex
import subprocess

COUNTERS = ("perf", "cachegrind")
_PERF_LINE = re.compile(r"^\s*(\d+|<not supported>|<not counted>),[^,]*,instructions(:u)?,", re.MULTILINE)
_CACHEGRIND_LINE = re.compile(r"^==\d+== I\s+refs:\s+([\d,]+)\s*$", re.MULTILINE)


class CountError(Exception):
    """The counter gave no count (the reason in one line)."""


def counted(counter: str, command: str) -> str:
    """`command` (a bash command line) run under `counter`, as a bash command line."""
    inner = f"bash -c {shlex.quote(command)}"
    if counter == "perf":
        return f"perf stat -x, -e instructions:u -- {inner}"
    if counter == "cachegrind":
        return (f"valgrind --tool=cachegrind --cache-sim=no --trace-children=yes --cachegrind-out-file=/dev/null "
                f"--log-fd=2 {inner}")
    raise ValueError(f"unknown instruction counter {counter!r}; known: {', '.join(COUNTERS)}")


def read_count(counter: str, stderr: str) -> int:
    """The instructions `counter` reported on a counted command's stderr (cachegrind: summed over its
    processes). Raises CountError when it reported none."""
    if counter == "perf":
        found = _PERF_LINE.findall(stderr)
        if not found:
            raise CountError("perf stat printed no instruction count")
        value = found[-1][0]
        if not value.isdigit():
            raise CountError(f"perf stat: instructions:u {value} (no hardware counter here?)")
        return int(value)
    totals = _CACHEGRIND_LINE.findall(stderr)
    if not totals:
        raise CountError("cachegrind printed no `I refs` total")
    return sum(int(total.replace(",", "")) for total in totals)


@functools.cache
def find_counter() -> tuple[str | None, str]:
    """The counter that works on this node (perf first) and what was found, in one line; (None, why) when none
    does. Asked once per process: perf counts `true`; for cachegrind, valgrind tells its version (a run under
    it takes about half a second, too long for `farm doctor`)."""
    tried = []
    try:
        done = subprocess.run(["bash", "-c", counted("perf", "true")], capture_output=True, text=True, timeout=30)
        count = read_count("perf", done.stderr)
        return "perf", f"perf stat -e instructions:u ({count:,} instructions for `true`)"
    except (OSError, subprocess.TimeoutExpired, CountError) as error:
        tried.append(f"perf: {error}")
    try:
        done = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, timeout=30)
        if done.returncode == 0:
            return "cachegrind", f"cachegrind ({done.stdout.strip()}; {tried[0]}): counts 20-50x slower than native"
        tried.append(f"valgrind --version exited {done.returncode}")
    except (OSError, subprocess.TimeoutExpired) as error:
        tried.append(f"valgrind: {error}")
    return None, "no instruction counter works here: " + "; ".join(tried) + \
        " (install valgrind, or run on a machine whose kernel exposes the CPU's counters to perf)"
