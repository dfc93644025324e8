import array
import json
import time

import duckdb
import pytest

from farm.errors import StoreError
from farm.records import Block, ExperimentResult, Hypothesis, Observations, Sample, Status
from farm.storage.packed import pack
from farm.storage.store import SCHEMA_VERSION, Store, open_readonly
from farm.storage.store_writes import AddArtifact, FinishExperiment, StartExperiment
from stats import decide_benchmark

TABLES = {"campaigns", "strategies", "hypotheses", "experiments", "samples", "blocks", "decisions", "merges",
          "artifacts", "events", "schema_version", "allocations", "race_results", "phases", "agent_runs"}


def block(experiment_id: str, number: int, at: float) -> Block:
    return Block(experiment_id, number, "w0", "ref,cand" if number % 2 == 0 else "cand,ref", at, at + 1, 0.5,
                 2400.0, "w1:build", 0.25)


def test_schema_and_round_trip(tmp_path):
    store = Store(tmp_path / "f.duckdb")
    tables = {r[0] for r in store.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert TABLES <= tables
    h = Hypothesis("h1", "s", "micro-opt", "text", "patch", "diff")
    store.start_campaign("c", "{}", "/repo", "main", "abc", "farm/c/integrated", 2)
    store.add_hypotheses("c", [h], {"s": "patch"})
    StartExperiment("c-0001", "c", h, "screen", "abc", "farm/c/c-0001", "w0", (1,)).apply_to(store)
    now = time.time()
    for b in range(3):
        samples = [Sample("c-0001", arm, b, "x", 1.0 + b, "s", (1,), 42, now, now, 2**33 + b)
                   for arm in ("ref", "cand")]
        assert store.add_block(block("c-0001", b, now), samples) == 2
    decision = decide_benchmark("x", [1, 2, 3], [1, 2.001, 2.999], 0.02)
    FinishExperiment(ExperimentResult("c-0001", Status.DISCARD, "why", "w0", (1,), now, now,
                                      decisions=(decision,), blocks=3)).apply_to(store)
    store.close()
    con = open_readonly(tmp_path / "f.duckdb")
    assert con.execute("SELECT status, reason FROM experiments").fetchall() == [("discard", "why")]
    assert con.execute("SELECT count(*), min(cpus), max(peak_rss) FROM samples WHERE arm = 'ref'").fetchone() == \
        (3, [1], 2**33 + 2)  # beyond INTEGER: a peak of 8 GiB
    assert con.execute("SELECT verdict FROM decisions").fetchone() == ("same",)
    assert con.execute("SELECT block, worker, arm_order, others, waited_s FROM blocks ORDER BY block").fetchall() == [
        (0, "w0", "ref,cand", "w1:build", 0.25), (1, "w0", "cand,ref", "w1:build", 0.25),
        (2, "w0", "ref,cand", "w1:build", 0.25)]
    assert con.execute("SELECT max(version) FROM schema_version").fetchone() == (SCHEMA_VERSION,)


def test_a_turns_starts_and_results_written_together_are_what_one_at_a_time_writes(tmp_path):
    from farm.coding_agents.agent_spend import Spend
    from farm.records import AgentRun
    stores, now = {}, time.time()
    for way in ("together", "one at a time"):
        store = Store(tmp_path / f"{way}.duckdb")
        hypotheses = [Hypothesis(f"h{i}", "s", "c", "t", "command", None) for i in range(3)]
        store.start_campaign("c", "{}", "/repo", "main", "abc", "farm/c/integrated", 3)
        store.add_hypotheses("c", hypotheses, {"s": "command"})
        starts = [StartExperiment(f"c-000{i}", "c", h, "screen", "abc", f"farm/c/c-000{i}", f"w{i}", (i, i + 1),
                                  retry_of="c-0000" if i == 2 else None) for i, h in enumerate(hypotheses)]
        decision = decide_benchmark("x", [1, 2, 3], [1, 2.001, 2.999], 0.02)
        finishes = [FinishExperiment(ExperimentResult(f"c-000{i}", Status.DISCARD, f"why \ud800 {i}", f"w{i}",
                                                      (i,), now, now + i, decisions=(decision,) * i, blocks=i,
                                                      effect=None if i == 1 else 1.0 + i, notes="n" if i else None,
                                                      agent_runs=(AgentRun(1, "claude", "ok", 2.5, Spend(0.4)),)
                                                      if i == 2 else ()))
                    for i in range(3)]
        if way == "together":
            store.apply("c", starts, None)
            store.apply("c", finishes, None)
        else:
            for write in [*starts, *finishes]:
                store.apply("c", [write], None)
        stores[way] = [store.query("SELECT * EXCLUDE (started_at) FROM experiments ORDER BY ALL")[1],  # its clock
                       store.query("SELECT * FROM decisions ORDER BY ALL")[1],
                       store.query("SELECT * FROM agent_runs ORDER BY ALL")[1]]
        store.close()
    assert stores["together"] == stores["one at a time"]
    experiments, decisions, runs = stores["together"]
    assert len(experiments) == 3 and len(decisions) == 3 and len(runs) == 1


def test_a_block_that_fails_to_store_leaves_neither_it_nor_its_samples(tmp_path):
    store = Store(tmp_path / "f.duckdb")
    now = time.time()
    bad = Sample("c-0001", "ref", 0, "x", None, "s", (1,), 42, now, now)  # value NOT NULL
    assert store.add_block(block("c-0001", 0, now), [bad]) == 0
    assert store.query("SELECT (SELECT count(*) FROM blocks), (SELECT count(*) FROM samples)")[1] == [(0, 0)]
    assert store.query("SELECT kind FROM events")[1] == [("store_error",)]


def _samples(experiment_id: str, number: int, at: float, pid: int = 42, unit: str = "s") -> list[Sample]:
    return [Sample(experiment_id, arm, number, "x", 1.0, unit, (1,), pid, at, at) for arm in ("ref", "cand")]


def test_a_row_the_store_refuses_is_left_out_reported_and_never_costs_the_others(tmp_path):
    # Three workers' blocks, events and phases arrive in one flush; one block has a pid beyond INTEGER. On main
    # the whole batch failed (and the store actor kept it, so every later write failed too).
    store = Store(tmp_path / "f.duckdb")
    now = time.time()
    blocks = [(block("c-0001", 0, now), _samples("c-0001", 0, now)),
              (block("c-0002", 0, now), _samples("c-0002", 0, now, pid=3_000_000_000)),
              (block("c-0003", 0, now), _samples("c-0003", 0, now))]
    events = [(now, "w0", "c-0001", "measure", "block 1"), (now, "w1", "c-0002", "measure", "block 1")]
    phases = [("w0", "c-0001", "measure", now, now + 1)]
    refused = store.add_observations("c", Observations.of(blocks, events, phases))

    assert [(worker, exp, kind) for _, worker, exp, kind, _ in refused] == [("w0", "c-0002", "store_error")]
    message = refused[0][4]
    assert message.startswith("block 0 of c-0002 and its 2 sample(s) not stored, the store refused it: "
                              "Conversion Error:") and "3000000000" in message and "\n" not in message
    assert store.query("SELECT experiment_id, count(*) FROM samples GROUP BY 1 ORDER BY 1")[1] == [
        ("c-0001", 2), ("c-0003", 2)]
    assert store.query("SELECT experiment_id FROM blocks ORDER BY 1")[1] == [("c-0001",), ("c-0003",)]
    assert store.query("SELECT experiment_id, kind, message FROM events ORDER BY ts, kind")[1] == [
        ("c-0001", "measure", "block 1"), ("c-0002", "measure", "block 1"), ("c-0002", "store_error", message)]
    assert store.query("SELECT count(*) FROM phases")[1] == [(1,)]
    # Nothing of the refused batch lingers: the next write is stored as usual.
    assert store.add_observations("c", Observations.of([(block("c-0004", 0, now), _samples("c-0004", 0, now))])) == []
    assert store.query("SELECT count(*) FROM samples WHERE experiment_id = 'c-0004'")[1] == [(2,)]


def test_sends_joined_in_one_write_keep_each_sends_values_and_a_send_that_points_past_its_values_costs_only_itself(
        tmp_path):
    # Workers pack each send (farm/storage/packed.py): the store joins many sends' coded columns by offsetting
    # each send's indices past the values of the sends before it.
    store = Store(tmp_path / "f.duckdb")
    now = time.time()
    sends = [pack(Observations.of([(block(f"c-000{n}", 0, now), _samples(f"c-000{n}", 0, now, pid=40 + n,
                                                                         unit=unit))]))
             for n, unit in ((1, "s"), (2, "ms"), (3, "s"))]
    broken = pack(Observations.of([(block("c-0009", 0, now), _samples("c-0009", 0, now))]))
    broken.coded["unit"] = (["s"], array.array("I", [0, 1]).tobytes())  # the second sample's unit is not there
    refused = store.add_observations("c", sends[:2] + [broken] + sends[2:])
    assert [(kind, message.split(",")[0]) for _, _, _, kind, message in refused] == [
        ("store_error", "a send not stored")]
    assert store.query("SELECT experiment_id, unit, pid, count(*) FROM samples GROUP BY ALL ORDER BY 1")[1] == [
        ("c-0001", "s", 41, 2), ("c-0002", "ms", 42, 2), ("c-0003", "s", 43, 2)]


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Asia/Kolkata"])
def test_sample_times_are_stored_as_the_other_tables_store_times(tmp_path, monkeypatch, zone):
    # Samples are inserted column by column from NumPy (Store._insert_samples), the other tables' times through
    # datetime.fromtimestamp: both must give the same local time, to the microsecond, on either side of a change
    # of the UTC offset (Berlin's, 2024-03-31 01:00 UTC) and in a batch that spans months.
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        store = Store(tmp_path / "f.duckdb")
        change = 1711846800.0
        batches = [[change - 0.25, change + 0.5, change + 0.1234565],
                   [change - 86400 * 10, change + 0.75, time.time() + 0.3333335]]
        for number, batch in enumerate(batches):
            store.add_observations("c", Observations.of(
                [(block("c-0001", number, at), _samples("c-0001", number, at)) for at in batch]))
        stored = store.query("SELECT started_at, started_at = finished_at FROM samples WHERE arm = 'ref'")[1]
        blocks = store.query("SELECT started_at FROM blocks")[1]
        assert sorted(stored) == sorted((at, True) for (at,) in blocks)
        assert len(stored) == 6
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_text_a_worker_sent_with_a_lone_surrogate_is_stored_escaped(tmp_path):
    # A lone surrogate (JSON's "\\ud800") in a sample's unit, an event, a reason, notes, an artifact or the
    # campaign state: on main each failed its whole transaction.
    store = Store(tmp_path / "f.duckdb")
    now = time.time()
    h = Hypothesis("h1", "s", "micro-opt", "text", "patch", "diff")
    store.start_campaign("c", "{}", "/repo", "main", "abc", "farm/c/integrated", 2)
    store.add_hypotheses("c", [h], {"s": "patch"})
    StartExperiment("c-0001", "c", h, "screen", "abc", "farm/c/c-0001", "w0", (1,)).apply_to(store)
    assert store.add_observations("c", Observations.of([(block("c-0001", 0, now), _samples("c-0001", 0, now,
                                                                                           unit="\ud800"))],
                                                       [(now, "w0", "c-0001", "guard", "guard said \udcff")])) == []
    store.apply("c", [FinishExperiment(ExperimentResult("c-0001", Status.CRASH, "crashed: \ud800", "w0", (1,),
                                                        now, now, notes="notes \udfff")),
                      AddArtifact("c", "c-0001", "canary", None, "odd \ud800")],
                {"screens": {"c-0001": {"changed": ["f\ud800.py"]}}})
    assert store.query("SELECT DISTINCT unit FROM samples")[1] == [("\\ud800",)]
    assert store.query("SELECT message FROM events")[1] == [("guard said \\udcff",)]
    assert store.query("SELECT reason, agent_notes FROM experiments")[1] == [("crashed: \\ud800", "notes \\udfff")]
    assert store.query("SELECT reason FROM artifacts")[1] == [("odd \\ud800",)]
    assert store.load_state("c") == {"screens": {"c-0001": {"changed": ["f?.py"]}}}


def test_a_version_1_store_is_upgraded_in_place(tmp_path):
    # A version-1 file is today's schema without `blocks`, `experiments.retry_of` and `campaign_state` (version
    # 3) and the lineages and allocations of version 4, at version 1 (with data in it).
    path = tmp_path / "old.duckdb"
    store = Store(path)
    now = time.time()
    store.add_block(block("c-0001", 0, now), [Sample("c-0001", "ref", 0, "x", 1.5, "s", (1,), 42, now, now)])
    store.con.execute("DROP TABLE blocks")
    store.con.execute("DROP VIEW campaign_state")
    store.con.execute("DROP TABLE campaign_state_parts")
    store.con.execute("ALTER TABLE experiments DROP COLUMN retry_of")
    store.con.execute("ALTER TABLE experiments DROP COLUMN agent_notes")
    store.con.execute("ALTER TABLE experiments DROP COLUMN lineage")
    store.con.execute("ALTER TABLE merges DROP COLUMN lineage")
    store.con.execute("DROP VIEW race_results")
    store.con.execute("DROP TABLE allocations")
    store.con.execute("DROP TABLE phases")
    store.con.execute("ALTER TABLE samples DROP COLUMN peak_rss")
    store.con.execute("DROP TABLE agent_runs")
    store.con.execute("DROP TABLE spool_positions")
    store.con.execute("DELETE FROM schema_version")
    store.con.execute("INSERT INTO schema_version VALUES (1)")
    store.close()

    upgraded = Store(path)
    assert upgraded.query("SELECT max(version) FROM schema_version")[1] == [(SCHEMA_VERSION,)]
    assert upgraded.query("SELECT value FROM samples")[1] == [(1.5,)]
    upgraded.add_block(block("c-0002", 0, now), [])
    assert upgraded.query("SELECT experiment_id FROM blocks")[1] == [("c-0002",)]
    upgraded.close()
    # The migrated table is the one a fresh store gets.
    fresh = Store(tmp_path / "fresh.duckdb")
    columns = "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns " \
              "ORDER BY table_name, ordinal_position"
    migrated = duckdb.connect(str(path), read_only=True)
    assert migrated.execute(columns).fetchall() == fresh.con.execute(columns).fetchall()


def test_a_version_6_state_is_split_into_parts_and_only_changed_parts_are_written_again(tmp_path):
    path = tmp_path / "f.duckdb"
    state = {"version": 9, "counter": 3, "hypotheses": {"all": ["h1", "h2"], "settled": ["h1"]},
             "planners": {"plans": {"done": True}}, "text": "caf\u00e9"}
    store = Store(path)  # made at today's version, then put back to 6 with the state in one row
    store.con.execute("DROP VIEW campaign_state")
    store.con.execute("DROP TABLE campaign_state_parts")
    store.con.execute("CREATE TABLE campaign_state (campaign VARCHAR PRIMARY KEY, state JSON NOT NULL, "
                      "saved_at TIMESTAMP NOT NULL)")
    store.con.execute("INSERT INTO campaign_state VALUES ('c', ?, now())", [json.dumps(state)])
    store.con.execute("DROP TABLE spool_positions")
    store.con.execute("DELETE FROM schema_version")
    store.con.execute("INSERT INTO schema_version VALUES (6)")
    store.close()
    store = Store(path)
    assert store.load_state("c") == state
    assert json.loads(store.query("SELECT state FROM campaign_state WHERE campaign = 'c'")[1][0][0])["counter"] == 3
    migrated = store.query("SELECT part FROM campaign_state_parts ORDER BY part")[1]
    assert migrated == [("counter",), ("hypotheses",), ("planners",), ("text",), ("version",)]
    store.apply("c", [], state)  # the hypothesis queue's keys become parts of their own
    before = dict(store.query("SELECT part, saved_at FROM campaign_state_parts")[1])
    assert set(before) == {"version", "counter", "hypotheses.all", "hypotheses.settled", "planners", "text"}
    assert store.load_state("c") == state
    time.sleep(0.01)
    store.apply("c", [], {**state, "counter": 4, "hypotheses": {"all": ["h1", "h2"], "settled": ["h1", "h2"]}})
    after = dict(store.query("SELECT part, saved_at FROM campaign_state_parts")[1])
    assert {part for part in after if after[part] != before[part]} == {"counter", "hypotheses.settled"}
    store.apply("c", [], {"version": 9, "counter": 5})  # parts no longer in the state go
    assert store.load_state("c") == {"version": 9, "counter": 5}
    store.close()


def test_newer_schema_is_refused_with_what_to_do(tmp_path):
    Store(tmp_path / "f.duckdb").close()
    con = duckdb.connect(str(tmp_path / "f.duckdb"))
    con.execute("INSERT INTO schema_version VALUES (99)")
    con.close()
    with pytest.raises(StoreError, match="upgrade autoresearch-farm"):
        Store(tmp_path / "f.duckdb")


def test_missing_store_says_what_to_do(tmp_path):
    with pytest.raises(StoreError, match="run a campaign first or pass --db"):
        open_readonly(tmp_path / "nope.duckdb")
