"""The nodes a campaign runs on, and which worker goes where on which CPUs.

On one machine (no cluster address) there is one node, the driver's, with the driver's CPUs: they are read
before Ray starts, because the driver then moves Ray onto the CPUs no worker owns (run_campaign).

On a cluster, every alive node whose Ray resources include CPUs takes workers. A node's CPU ids are read on
the node itself (a probe task's affinity there), and only as many as Ray was started with there are used
(`ray start --num-cpus N` keeps the rest for other work). Workers are spread over the nodes in turn, the
coordinator's node first, and each node's CPU sets are allocated from its own CPUs. Actors go to their node
explicitly (NodeAffinitySchedulingStrategy, not soft): the store actor to the coordinator's node, where the
DuckDB file is, and each worker to its node.
"""
from __future__ import annotations

import itertools
import os
import socket
from dataclasses import dataclass

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from farm.campaign_file.config import MeasurementMode
from farm.errors import ConfigError
from farm.node.cpusets import allocate_cpu_sets, available_cpus, exclusive_measurement

PROBE_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Node:
    node_id: str | None  # Ray's id; None for the driver's node before Ray has started
    host: str
    cpus: tuple[int, ...]  # the CPUs the farm may pin workers to there
    hub: bool  # the coordinator's node: its workers use the target repository itself, no bundles


@dataclass(frozen=True)
class Place:
    worker: str
    node: Node
    cpus: tuple[int, ...]
    exclusive: bool  # the node's workers measure one at a time (see exclusive_measurement)


def local_node() -> Node:
    return Node(None, socket.gethostname(), tuple(available_cpus()), hub=True)


def on_node(node_id: str | None) -> dict:
    """The `.options(...)` that pin an actor or a task to a node (none when the node id is not known yet)."""
    if node_id is None:
        return {}
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)}


@ray.remote(num_cpus=0)
def _probe() -> tuple[str, list[int]]:
    return socket.gethostname(), sorted(os.sched_getaffinity(0))


def cluster_nodes(driver_cpus: list[int]) -> list[Node]:
    """The alive nodes of the connected Ray cluster that have CPUs, the coordinator's own first."""
    here = ray.get_runtime_context().get_node_id()
    alive = [n for n in ray.nodes() if n["Alive"]]
    if here not in {n["NodeID"] for n in alive}:
        raise ConfigError("the driver is not on a node of the cluster; run `farm run` on the head node (or any "
                          "node started with `ray start --address`)")
    alive = [n for n in alive if int(n["Resources"].get("CPU", 0)) > 0]
    others = [n for n in alive if n["NodeID"] != here]
    try:
        probes = ray.get([_probe.options(**on_node(n["NodeID"])).remote() for n in others],
                         timeout=PROBE_TIMEOUT_SECONDS)
    except ray.exceptions.GetTimeoutError:
        raise ConfigError(f"a node of the cluster did not answer within {PROBE_TIMEOUT_SECONDS:g}s; check "
                          f"`ray status` and remove or restart the node") from None
    nodes = [Node(n["NodeID"], host, tuple(cpus[:int(n["Resources"]["CPU"])]), hub=False)
             for n, (host, cpus) in zip(others, probes)]
    mine = [n for n in alive if n["NodeID"] == here]
    if mine:
        ray_cpus = int(mine[0]["Resources"]["CPU"])
        nodes.insert(0, Node(here, socket.gethostname(), tuple(sorted(driver_cpus)[:ray_cpus]), hub=True))
    if not nodes:
        raise ConfigError("no node of the cluster offers CPUs to Ray; start the nodes with `ray start ... "
                          "--num-cpus N`")
    return nodes


def place_workers(nodes: list[Node], count: int | None, cpus_per_worker: int, explicit: list[list[int]] | None,
                  mode: MeasurementMode) -> list[Place]:
    """Workers w0, w1, ... spread over `nodes` in turn, each with a CPU set of its node; `count` defaults to as
    many as fit. `explicit` CPU sets name one machine's CPUs: only on a single node."""
    if explicit:
        if len(nodes) > 1:
            raise ConfigError(f"workers.cpu_sets names one machine's CPUs, and the cluster has {len(nodes)} nodes; "
                              f"give workers.count and workers.cpus_per_worker instead")
        per_node = {0: len(explicit)}
    else:
        fits = [len(node.cpus) // cpus_per_worker for node in nodes]
        count = sum(fits) if count is None else count
        if count < 1 or count > sum(fits):
            where = "" if len(nodes) == 1 else f" on {len(nodes)} nodes"
            raise ConfigError(f"workers: {count} worker(s) x {cpus_per_worker} CPU(s) do not fit in the "
                              f"{sum(len(n.cpus) for n in nodes)} available CPU(s){where}; lower workers.count or "
                              f"workers.cpus_per_worker")
        per_node = dict.fromkeys(range(len(nodes)), 0)
        while sum(per_node.values()) < count:  # in turn: one more on each node that has room
            for index, fit in enumerate(fits):
                if per_node[index] < fit and sum(per_node.values()) < count:
                    per_node[index] += 1
    by_node = []
    for index, workers in per_node.items():
        node = nodes[index]
        if workers:
            sets = allocate_cpu_sets(workers, cpus_per_worker, explicit, available=list(node.cpus))
            exclusive = exclusive_measurement(mode, sets, list(node.cpus))
            by_node.append([(node, cpus, exclusive) for cpus in sets])
    # Named in turn over the nodes, like the placement: w0 on the first node, w1 on the second, ...
    in_turn = [place for row in itertools.zip_longest(*by_node) for place in row if place is not None]
    return [Place(f"w{i}", node, cpus, exclusive) for i, (node, cpus, exclusive) in enumerate(in_turn)]
