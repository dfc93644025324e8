"""Disjoint CPU sets for worker actors, and where the farm's own processes go.

Ray reserves CPUs but never pins them; the farm gives each worker its own set
and pins every process the worker starts to it. The CPUs no worker owns are
spare: the driver, Ray's daemons and the actor processes run there, off the
benchmark CPUs.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from farm.campaign_file.config import MeasurementMode
from farm.errors import ConfigError

# Below this many CPUs a node has no quiet core left whatever the sets are: auto measures one worker at a time.
MIN_CPUS_FOR_PARALLEL = 4


def available_cpus() -> list[int]:
    """CPUs this process may run on, sorted."""
    return sorted(os.sched_getaffinity(0))


def allocate_cpu_sets(count: int | None = None, cpus_per_worker: int = 1,
                      explicit: list[list[int]] | None = None,
                      available: list[int] | None = None) -> list[tuple[int, ...]]:
    """One disjoint CPU set per worker.

    explicit: used as given, after checking every CPU is available.
    Otherwise `count` sets of `cpus_per_worker` consecutive available CPUs
    (count defaults to as many as fit). Raises ConfigError if they do not fit.
    """
    available = sorted(available if available is not None else available_cpus())
    if explicit:
        unknown = sorted({cpu for s in explicit for cpu in s} - set(available))
        if unknown:
            raise ConfigError(f"workers.cpu_sets: CPU(s) {unknown} are not available here (available: {available})")
        return [tuple(sorted(s)) for s in explicit]
    fit = len(available) // cpus_per_worker
    count = fit if count is None else count
    if count < 1 or count > fit:
        raise ConfigError(f"workers: {count} worker(s) x {cpus_per_worker} CPU(s) do not fit in the "
                          f"{len(available)} available CPU(s) {available}; lower workers.count or "
                          f"workers.cpus_per_worker")
    return [tuple(available[i * cpus_per_worker:(i + 1) * cpus_per_worker]) for i in range(count)]


def spare_cpus(worker_sets: list[tuple[int, ...]], available: list[int] | None = None) -> list[int]:
    """The available CPUs (default: this process's affinity) that are in no worker's set, sorted."""
    available = available if available is not None else available_cpus()
    owned = {cpu for cpus in worker_sets for cpu in cpus}
    return sorted(set(available) - owned)


def exclusive_measurement(mode: MeasurementMode, worker_sets: list[tuple[int, ...]],
                          available: list[int] | None = None) -> bool:
    """Whether the workers of a node measure one at a time.

    `auto` is exclusive when the sets leave no spare CPU for the farm itself or the node has fewer than
    MIN_CPUS_FOR_PARALLEL CPUs: there a build or a second benchmark next door shares the caches, the memory
    bandwidth and the clock with the measurement.
    """
    if mode is not MeasurementMode.AUTO:
        return mode is MeasurementMode.EXCLUSIVE
    available = available if available is not None else available_cpus()
    return not spare_cpus(worker_sets, available) or len(available) < MIN_CPUS_FOR_PARALLEL


@contextlib.contextmanager
def affinity(cpus: list[int]) -> Iterator[None]:
    """Run the body with the calling thread on `cpus`; processes and threads started meanwhile inherit it.
    The previous affinity is restored afterwards. Raises OSError if a CPU is not allowed here."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)
