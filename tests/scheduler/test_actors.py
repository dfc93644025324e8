"""Real local Ray: pinned worker actors, the store actor under concurrent writers."""
import os
import time

import duckdb
import pytest
import ray

from farm.campaign_file.config import CampaignConfig
from farm.node.cpusets import allocate_cpu_sets
from farm.records import Block, Observations, Sample
from scheduler.runtime.store_actor import StoreActor
from scheduler.runtime.worker import WorkerActor
from tests.scheduler.tiny_repo import config_dict, make_repo

pytestmark = pytest.mark.slow


def test_cpu_sets_are_disjoint_and_checked():
    assert allocate_cpu_sets(2, 1, available=[0, 1]) == [(0,), (1,)]
    assert allocate_cpu_sets(None, 2, available=[0, 1, 2, 3]) == [(0, 1), (2, 3)]
    with pytest.raises(Exception, match="do not fit"):
        allocate_cpu_sets(3, 1, available=[0, 1])
    with pytest.raises(Exception, match="not available"):
        allocate_cpu_sets(explicit=[[7]], available=[0, 1])


def test_two_worker_actors_pin_their_processes_to_disjoint_cpus(local_ray, tmp_path):
    repo = make_repo(tmp_path / "repo")
    config = CampaignConfig(**config_dict(repo, [{"id": "h", "patch": "x"}]))
    store = StoreActor.remote(str(tmp_path / "f.duckdb"), "tiny")
    sets = allocate_cpu_sets(2, 1, available=sorted(os.sched_getaffinity(0))[:2])
    workers = [WorkerActor.remote(f"w{i}", cpus, config, str(repo), str(tmp_path / "workers"), store, True)
               for i, cpus in enumerate(sets)]
    probes = ray.get([w.probe.remote() for w in workers])
    assert [p["cpus"] for p in probes] == [list(s) for s in sets]
    assert [p["omp"] for p in probes] == ["1", "1"]
    assert len({p["actor_pid"] for p in probes}) == 2  # two real actor processes


def test_store_actor_takes_concurrent_batches_without_loss(local_ray, tmp_path):
    path = tmp_path / "f.duckdb"
    store = StoreActor.remote(str(path), "c")

    @ray.remote(num_cpus=0)
    def writer(name: str, batches: int) -> int:
        now = time.time()
        for block in range(batches):
            batch = [Sample(f"{name}-exp", arm, block, f"b{k}", 1.0 + k, "s", (0,), None, now, now)
                     for arm in ("ref", "cand") for k in range(5)]
            record = Block(f"{name}-exp", block, name, "ref,cand", now, now, 0.0, None, None, 0.0)
            ray.get(store.observe.remote(Observations.of(blocks=[(record, batch)])))
        return batches * 10

    sent = sum(ray.get([writer.remote("w0", 40), writer.remote("w1", 40)]))
    ray.get(store.close.remote())
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute("SELECT worker, count(*) FROM samples GROUP BY 1 ORDER BY 1").fetchall()
    assert rows == [("w0", 400), ("w1", 400)] and sent == 800
    distinct = "SELECT count(DISTINCT (experiment_id, arm, block, benchmark)) FROM samples"
    assert con.execute(distinct).fetchone() == (800,)
    assert con.execute("SELECT worker, count(*) FROM blocks GROUP BY 1 ORDER BY 1").fetchall() == [("w0", 40),
                                                                                                   ("w1", 40)]


def test_a_block_the_store_refuses_is_reported_and_the_store_actor_writes_on(local_ray, tmp_path):
    # One block with a pid beyond INTEGER, acknowledged like the others. On main it stayed in the actor's buffer:
    # the flush failed, the other worker's block was lost with it, and every later write failed the same way.
    path = tmp_path / "f.duckdb"
    store = StoreActor.remote(str(path), "c")
    now = time.time()

    def block(experiment_id: str, worker: str, pid: int) -> tuple[Block, list[Sample]]:
        return (Block(experiment_id, 0, worker, "ref,cand", now, now, 0.0, None, None, 0.0),
                [Sample(experiment_id, arm, 0, "loop", 1.0, "s", (0,), pid, now, now) for arm in ("ref", "cand")])

    assert ray.get([store.observe.remote(Observations.of(blocks=[block("c-0001", "w0", 3_000_000_000)])),
                    store.observe.remote(Observations.of(blocks=[block("c-0002", "w1", 42)]))]) == [2, 2]
    store.observe.remote(Observations.of(events=[(now, "w1", "c-0002", "guard", "the guard printed \ud800")]))
    drained = ray.get(store.drain_events.remote())
    assert [(worker, exp, kind) for _, worker, exp, kind, _ in drained] == [
        ("w1", "c-0002", "guard"), ("w0", "c-0001", "store_error")]
    assert drained[0][4] == "the guard printed \\ud800"
    assert drained[1][4].startswith("block 0 of c-0001 and its 2 sample(s) not stored, the store refused it")
    ray.get(store.observe.remote(Observations.of(blocks=[block("c-0003", "w0", 43)])))
    assert ray.get(store.query.remote("SELECT experiment_id, count(*) FROM samples GROUP BY 1 ORDER BY 1"))[1] == [
        ("c-0002", 2), ("c-0003", 2)]
    ray.get(store.close.remote())
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT kind, count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall() == [
        ("guard", 1), ("store_error", 1)]


def test_the_store_actor_writes_what_its_spool_holds_once_across_a_resume(local_ray, tmp_path):
    # Workers on the store's node send through the spool (no call): a killed run's logs are written on --resume,
    # from where the killed store actor had got to, and removed once written; a live worker's log stays.
    from farm.storage.packed import Packed, pack
    from farm.storage.spool import LENGTH, SpoolWriter, spool_directory
    path = tmp_path / "f.duckdb"
    directory = spool_directory(path, "c")
    now = time.time()

    def observations(experiment_id: str, worker: str) -> Packed:
        record = Block(experiment_id, 0, worker, "ref,cand", now, now, 0.0, None, None, 0.0)
        return pack(Observations.of(
            blocks=[(record, [Sample(experiment_id, arm, 0, "loop", 1.0, "s", (0,), 7, now, now)
                              for arm in ("ref", "cand")])],
            events=[(now, worker, experiment_id, "measure", "block 0")]))

    killed = SpoolWriter(directory, "w0")  # a worker of a run killed before its store actor took this
    killed.put(observations("c-0001", "w0"))
    killed.close()
    store = StoreActor.remote(str(path), "c")
    live = SpoolWriter(directory, "w1")
    live.put(observations("c-0002", "w1"))
    os.write(live._fd, LENGTH.pack(7) + b"garbage")
    drained = ray.get(store.drain_events.remote())
    assert [(worker, experiment, kind) for _, worker, experiment, kind, _ in drained] == [
        ("w0", "c-0001", "measure"), ("w1", "c-0002", "measure"), (None, None, "store_error")]
    assert [name.split("-")[1] for name in os.listdir(directory)] == ["w1"]  # the killed run's log is gone
    live.put(observations("c-0003", "w1"))
    ray.get(store.close.remote())
    ray.kill(store)
    live.put(observations("c-0004", "w1"))  # after the close: the next store actor (--resume) takes it, and only it
    live.close()
    store = StoreActor.remote(str(path), "c")
    ray.get(store.drain_events.remote())
    ray.get(store.close.remote())
    assert not directory.parent.exists()
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT experiment_id, worker, count(*) FROM samples GROUP BY ALL ORDER BY 1").fetchall() == [
        ("c-0001", "w0", 2), ("c-0002", "w1", 2), ("c-0003", "w1", 2), ("c-0004", "w1", 2)]
    assert con.execute("SELECT kind, count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall() == [
        ("measure", 4), ("store_error", 1)]
    assert con.execute("SELECT count(*) FROM spool_positions").fetchall() == [(0,)]


def test_a_closing_store_actor_waits_for_the_killed_workers_logs_and_removes_them(local_ray, tmp_path):
    # The coordinator kills the workers just before it closes the store; their processes end a moment later. The
    # demo's spool kept both workers' logs when the close did not wait for their locks to go.
    import subprocess
    import sys

    from farm.storage.spool import spool_directory
    path = tmp_path / "f.duckdb"
    directory = spool_directory(path, "c")
    store = StoreActor.remote(str(path), "c")
    ray.get(store.drain_events.remote())
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from farm.records import Observations\n"
        "from farm.storage.packed import pack\n"
        "from farm.storage.spool import SpoolWriter\n"
        f"SpoolWriter({str(directory)!r}, 'w0').put(pack(Observations(events=[(1.0, 'w0', 'c-0001', 'verdict', "
        "'keep')])))\n"
        "print('sent', flush=True)\n"
        "time.sleep(0.5)\n")], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "sent\n"
    ray.get(store.close.remote())  # while the writer still lives
    writer.wait()
    assert not directory.parent.exists()
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT experiment_id, kind FROM events").fetchall() == [("c-0001", "verdict")]


def test_the_live_view_of_farm_run_is_farm_status_and_survives_a_new_store_actor(local_ray, tmp_path):
    # `farm run` used to count blocks and the best keep itself (from zero again after --resume), while `farm
    # status` counted from the store: now both are farm/storage/live.py's from_store.
    from farm.records import ExperimentResult, Hypothesis, Status
    from farm.storage.live import from_store
    from farm.storage.store import Store, open_readonly
    from farm.storage.store_writes import FinishExperiment, StartExperiment
    from stats import decide_benchmark
    path = tmp_path / "f.duckdb"
    store = Store(path)
    hypotheses = [Hypothesis(f"h{i}", "s", "c", "t", "patch", "x") for i in range(3)]
    store.start_campaign("c", "{}", "/repo", "main", "abc", "farm/c/integrated", 2)
    store.add_hypotheses("c", hypotheses, {"s": "patch"})
    now = time.time()
    decision = decide_benchmark("loop", [1, 1.01, 0.99], [0.8, 0.81, 0.79], 0.02)
    for i, (h, status) in enumerate(zip(hypotheses, (Status.KEEP, Status.DISCARD, Status.RUNNING))):
        experiment = f"c-000{i + 1}"
        store.apply("c", [StartExperiment(experiment, "c", h, "screen", "abc", f"farm/c/{experiment}", f"w{i % 2}",
                                          (i % 2,))], None)
        if status is not Status.RUNNING:
            store.apply("c", [FinishExperiment(ExperimentResult(experiment, status, "r", f"w{i % 2}", (i % 2,), now,
                                                                now, decisions=(decision,), blocks=4 + i,
                                                                effect=0.8 if status is Status.KEEP else 1.0))],
                        None)
    store.close()
    for _ in range(2):  # the campaign's store actor, and the one a resumed campaign starts
        actor = StoreActor.remote(str(path), "c")
        live = ray.get(actor.live_state.remote())
        ray.get(actor.close.remote())
        assert (live.blocks, live.best, live.statuses, live.waiting) == (9, ("h0", 0.8), {"keep": 1, "discard": 1}, 0)
        assert [(r.worker, r.experiment) for r in live.running] == [("w0", "c-0003")]
        con = open_readonly(path)
        assert from_store(con, "c") == live
        con.close()
