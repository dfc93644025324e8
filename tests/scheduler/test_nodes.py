"""Placing workers on nodes: in turn over the nodes, each node's CPU sets from its own CPUs."""
import pytest

from farm.campaign_file.config import MeasurementMode
from farm.errors import ConfigError
from scheduler.runtime.nodes import Node, place_workers

HEAD = Node("head", "a", (0, 1, 2, 3), hub=True)
OTHER = Node("other", "b", (4, 5), hub=False)


def test_workers_alternate_between_nodes_on_each_nodes_own_cpus():
    places = place_workers([HEAD, OTHER], None, 1, None, MeasurementMode.AUTO)
    assert [(p.worker, p.node.node_id, p.cpus) for p in places] == [
        ("w0", "head", (0,)), ("w1", "other", (4,)), ("w2", "head", (1,)), ("w3", "other", (5,)),
        ("w4", "head", (2,)), ("w5", "head", (3,))]
    # auto: a node whose workers leave no CPU spare measures one worker at a time; each node decides alone.
    assert {p.node.node_id: p.exclusive for p in places} == {"head": True, "other": True}
    two = place_workers([HEAD, OTHER], 2, 1, None, MeasurementMode.AUTO)
    assert [(p.node.node_id, p.cpus, p.exclusive) for p in two] == [("head", (0,), False), ("other", (4,), True)]


def test_a_count_that_does_not_fit_the_nodes_or_one_machines_cpu_sets_on_a_cluster_are_refused():
    assert [p.cpus for p in place_workers([HEAD, OTHER], 3, 2, None, MeasurementMode.PARALLEL)] == \
        [(0, 1), (4, 5), (2, 3)]
    with pytest.raises(ConfigError, match="do not fit in the 6 available CPU.* on 2 nodes"):
        place_workers([HEAD, OTHER], 4, 2, None, MeasurementMode.AUTO)
    with pytest.raises(ConfigError, match="one machine's CPUs"):
        place_workers([HEAD, OTHER], None, 1, [[0], [1]], MeasurementMode.AUTO)
    assert [p.cpus for p in place_workers([HEAD], None, 1, [[3], [1]], MeasurementMode.AUTO)] == [(3,), (1,)]
