"""What a node looks like while a worker measures: its workers' phases, its load, its clock.

Each worker writes its current phase to a small file under the node's workers
directory; the others read those files when they record a block, so a noisy
stretch can be explained afterwards ("w1 was building"). Plain files, no Ray:
the workers of one node share the workdir, and nothing else is needed.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import time
from collections.abc import Callable

# The phases a worker reports: what it is doing to the machine right now. wait: for the measurement lock;
# count: instruction counts (measurement.channels), under the shared lock like a build; idle: no phase command
# running (the farm's own bookkeeping at most: git, decisions).
PHASES = ("agent", "build", "guard", "wait", "measure", "count", "idle")


class PhaseBoard:
    """The phase files of one node's workers: `<root>/phases/<worker>.json`, one per worker of a campaign."""

    def __init__(self, root: str | os.PathLike, campaign: str, worker: str,
                 on_phase: Callable[[str, str | None, float, float], None] | None = None):
        self.dir = pathlib.Path(root) / "phases"
        self.campaign = campaign
        self.worker = worker
        # Told (phase, experiment, start, end) of every phase this worker leaves: where its time went.
        self.on_phase = on_phase
        self.current: tuple[str, str | None, float] | None = None

    def set(self, phase: str, experiment_id: str | None = None) -> None:
        """Publish this worker's phase (one of PHASES) with the time; atomic, readers never see half a file.
        Raises ValueError for an unknown phase."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; one of {', '.join(PHASES)}")
        if self.current is not None and self.current[:2] == (phase, experiment_id):
            return  # published already, with the time it began
        now = time.time()
        if self.current is not None and self.on_phase is not None:
            self.on_phase(*self.current, now)
        self.current = (phase, experiment_id, now)
        record = {"campaign": self.campaign, "worker": self.worker, "phase": phase, "since": now,
                  "experiment": experiment_id}
        temporary = self.dir / f".{self.worker}.json.tmp"
        try:
            temporary.write_text(json.dumps(record))
        except FileNotFoundError:  # the first phase (or someone removed the directory)
            self.dir.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(record))
        os.replace(temporary, self.dir / f"{self.worker}.json")

    def others(self) -> dict[str, str]:
        """The current phase of every other worker of this campaign on this node: {worker: phase}."""
        return {record["worker"]: record["phase"] for record in read_phase_files(self.dir)
                if record["campaign"] == self.campaign and record["worker"] != self.worker}


def read_phase_files(directory: pathlib.Path) -> list[dict]:
    """The well-formed phase records in `directory` ({campaign, worker, phase, since, experiment}). Anything
    else is skipped, never an error: a file of another farm version, one that went away, or one written by
    something that wanted every block of the node to fail (a JSON list where a record belongs)."""
    records = []
    for path in sorted(directory.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError):
            continue
        if (isinstance(record, dict) and isinstance(record.get("campaign"), str)
                and isinstance(record.get("worker"), str) and record.get("phase") in PHASES
                and isinstance(record.get("since"), (int, float))):
            records.append(record)
    return records


def describe_others(before: dict[str, str], after: dict[str, str]) -> str | None:
    """The other workers' phases over a block, e.g. 'w1:build' or 'w1:agent>build' when one changed
    between the start and the end; None when no other worker has published a phase (none on this node, or
    not started yet)."""
    parts = []
    for worker in sorted(set(before) | set(after)):
        seen = [phase for phase in (before.get(worker), after.get(worker)) if phase]
        parts.append(f"{worker}:{'>'.join(dict.fromkeys(seen))}")
    return ",".join(parts) or None


def load_average() -> float:
    """The node's 1-minute load average."""
    return os.getloadavg()[0]


def cpu_mhz(cpus: tuple[int, ...], sysfs: str = "/sys/devices/system/cpu",
            cpuinfo: str = "/proc/cpuinfo") -> float | None:
    """The mean current clock of `cpus` in MHz: cpufreq's scaling_cur_freq per CPU, else the "cpu MHz" line
    of /proc/cpuinfo; None when neither tells."""
    listed = None  # /proc/cpuinfo, read only when a CPU has no cpufreq
    readings = []
    for cpu in cpus:
        try:
            readings.append(int(pathlib.Path(f"{sysfs}/cpu{cpu}/cpufreq/scaling_cur_freq").read_text()) / 1000)
            continue
        except (OSError, ValueError):
            pass
        if listed is None:
            listed = _cpuinfo_mhz(cpuinfo)
        if cpu in listed:
            readings.append(listed[cpu])
    return sum(readings) / len(readings) if readings else None


def _cpuinfo_mhz(path: str) -> dict[int, float]:
    """{processor: cpu MHz} from a /proc/cpuinfo; empty if unreadable or without clocks (e.g. on ARM)."""
    try:
        text = pathlib.Path(path).read_text()
    except OSError:
        return {}
    clocks = {}
    for section in text.split("\n\n"):
        processor = re.search(r"^processor\s*:\s*(\d+)", section, re.MULTILINE)
        mhz = re.search(r"^cpu MHz\s*:\s*([0-9.]+)", section, re.MULTILINE)
        if processor and mhz:
            clocks[int(processor.group(1))] = float(mhz.group(1))
    return clocks
