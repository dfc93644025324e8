"""Disjoint CPU sets for worker actors.

Ray reserves CPUs but never pins them; the farm gives each worker its own set
and pins every process the worker starts to it.
"""
from __future__ import annotations

import os

from farm.errors import ConfigError


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
                          f"{len(available)} available CPU(s) {available}; lower workers.count")
    return [tuple(available[i * cpus_per_worker:(i + 1) * cpus_per_worker]) for i in range(count)]
