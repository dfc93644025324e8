"""Which CPUs are spare, whether a node measures one worker at a time, and moving the driver (no Ray)."""
import json
import os
import subprocess
import sys

import pytest

from farm.campaign_file.config import MeasurementMode
from farm.node.cpusets import affinity, exclusive_measurement, spare_cpus


def test_spare_cpus_are_the_available_ones_no_worker_owns():
    assert spare_cpus([(0,), (1,)], available=[0, 1]) == []
    assert spare_cpus([(2, 3), (4, 5)], available=[0, 1, 2, 3, 4, 5]) == [0, 1]
    assert spare_cpus([(1,)], available=[3, 1, 0]) == [0, 3]
    assert spare_cpus([], available=[0, 1]) == [0, 1]


@pytest.mark.parametrize("mode, sets, available, exclusive", [
    (MeasurementMode.AUTO, [(0,), (1,)], [0, 1], True),  # 2 cores, 2 workers: nothing spare
    (MeasurementMode.AUTO, [(0,)], [0, 1], True),  # a spare CPU, but fewer than 4
    (MeasurementMode.AUTO, [(0,), (1,), (2,), (3,)], [0, 1, 2, 3], True),  # 4 CPUs, none spare
    (MeasurementMode.AUTO, [(1,), (2,), (3,)], [0, 1, 2, 3], False),
    (MeasurementMode.PARALLEL, [(0,), (1,)], [0, 1], False),
    (MeasurementMode.EXCLUSIVE, [(1,), (2,), (3,)], [0, 1, 2, 3], True),
])
def test_auto_is_exclusive_without_a_spare_cpu_or_below_four(mode, sets, available, exclusive):
    assert exclusive_measurement(mode, sets, available) is exclusive


def child_affinity() -> list[int]:
    out = subprocess.run([sys.executable, "-c", "import json, os; print(json.dumps(sorted(os.sched_getaffinity(0))))"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def test_processes_started_inside_inherit_the_affinity_and_it_is_restored():
    before = os.sched_getaffinity(0)
    target = [min(before)]
    with affinity(target):
        assert sorted(os.sched_getaffinity(0)) == target
        assert child_affinity() == target  # what Ray's daemons and actors inherit
    assert os.sched_getaffinity(0) == before


def test_the_affinity_is_restored_after_an_error():
    before = os.sched_getaffinity(0)
    with pytest.raises(RuntimeError), affinity([min(before)]):
        raise RuntimeError("the campaign failed")
    assert os.sched_getaffinity(0) == before
