"""bench/farm_perf.py's parts in their tiny mode, on real Ray, git and DuckDB: each returns well-formed figures.

The targets are not checked here: timings on a shared, noisy machine make flaky tests. The suite itself
(`python bench/farm_perf.py`) checks them.
"""
import importlib.util
import json
import logging
import math
import sys

import pytest
import ray

_PATH = __import__("pathlib").Path(__file__).resolve().parents[2] / "bench" / "farm_perf.py"
_spec = importlib.util.spec_from_file_location("bench_farm_perf", _PATH)
farm_perf = importlib.util.module_from_spec(_spec)
sys.modules["bench_farm_perf"] = farm_perf  # dataclasses look their module up while the class is made
_spec.loader.exec_module(farm_perf)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared_ray():
    """One local Ray of this test's own for every part (each would otherwise start its own, which takes
    seconds); never a cluster that something else left running on the machine."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             namespace="farm-perf-tests")
    yield
    ray.shutdown()


def _well_formed(figures, part, count):
    assert len(figures) == count
    assert len({f.name for f in figures}) == count
    for figure in figures:
        assert figure.part == part
        assert math.isfinite(figure.measured) and figure.measured > 0, figure
        assert figure.op in ("<", "<=", ">=", ">") and figure.target > 0 and figure.unit
        assert isinstance(figure.met, bool)
        assert figure.line().startswith(figure.name) and figure.line().endswith(("met", "MISSED"))
        json.dumps(figure.details, default=str)  # goes into the results file


def test_overhead_part(shared_ray, tmp_path):
    figures = farm_perf.part_overhead(tmp_path, tiny=True)
    _well_formed(figures, "overhead", 2)
    trivial, slow = (f.details for f in figures)
    for details in (trivial, slow):
        assert details["cycles"] >= 1 and details["statuses"] == ["discard"]
        assert details["commands_per_experiment"] == 8  # cand build, guard, 3 blocks x 2 arms
        assert 0 < details["target_s"] < details["cycle_s"]
    assert slow["target_s"] > 6 * 0.02  # the slow benchmark's sleeps are inside the target's time


def test_slots_part(tmp_path):
    figures = farm_perf.part_slots(tmp_path, tiny=True)
    _well_formed(figures, "slots", 4)
    assert {f.details["files"] for f in figures} == {300, figures[0].details["files"]}
    assert all(len(f.details["samples_s"]["reuse"]) == f.details["repetitions"] for f in figures)


def test_store_part(shared_ray, tmp_path):
    figures = farm_perf.part_store(tmp_path, tiny=True)
    from farm.storage.cookbook import RECIPES

    _well_formed(figures, "store", 1 + len(RECIPES))
    ingest = figures[0].details
    assert ingest["samples_in_store"] == ingest["samples_ingested"] + ingest["samples_generated_by_sql"]
    assert abs(ingest["samples_in_store"] - 2000) <= 100  # give or take one experiment's samples
    assert all(f.details["rows"] > 0 for f in figures[1:])  # every recipe answers on the populated store


def test_throughput_part(shared_ray, tmp_path):
    figures = farm_perf.part_throughput(tmp_path, tiny=True)
    _well_formed(figures, "throughput", 2)
    for figure, workers in zip(figures, (2, 4)):
        details = figure.details
        assert details["workers"] == workers and details["experiments"] == 2 * workers
        assert details["statuses"] == {"aa_clean": workers, "discard": workers}
        assert details["coordinator_calls"]["_collect"] == 2 * workers
        assert details["mean_in_worker_s"] >= 0.3  # the synthetic experiment's sleeps
        assert details["cpu_s"]["store_actor"] > 0 and details["cpu_s"]["driver"] > 0
    # The substitutions are undone.
    import scheduler.runtime.coordinator
    import scheduler.runtime.worker_pool
    from scheduler.runtime.worker import WorkerActor

    assert scheduler.runtime.worker_pool.WorkerActor is WorkerActor
    assert scheduler.runtime.coordinator.local_node is scheduler.runtime.nodes.local_node
    assert scheduler.runtime.coordinator.cluster_nodes is scheduler.runtime.nodes.cluster_nodes


def test_startup_part(tmp_path):
    figures = farm_perf.part_startup(tmp_path, tiny=True)
    _well_formed(figures, "startup", 2)
    assert [f.name for f in figures] == ["start-up of farm validate", "start-up of farm doctor"]
    assert all(len(f.details["seconds"]) == 2 and f.details["exit"] in (0, 1) for f in figures)


def test_docs_table_is_replaced_and_the_text_around_it_kept(tmp_path):
    page = tmp_path / "performance.md"
    page.write_text(f"# Title\n\nbefore\n\n{farm_perf.TABLE_START}\nold table\n{farm_perf.TABLE_END}\n\nafter\n")
    figure = farm_perf.Figure("store", "a figure", 7.0, "s", "<", 5.0)
    farm_perf.write_docs(page, [figure], {"slots": "RuntimeError: boom"}, 60.0, quick=False)
    text = page.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\n\nafter\n") and "old table" not in text
    assert "| a figure | < 5 s | 7 s | **MISSED** |" in text and "| part slots |" in text
