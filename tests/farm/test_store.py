import time

import duckdb
import pytest

from farm.errors import StoreError
from farm.records import ExperimentResult, Hypothesis, Sample, Status
from farm.store import SCHEMA_VERSION, Store, open_readonly
from stats import decide_benchmark

TABLES = {"campaigns", "strategies", "hypotheses", "experiments", "samples", "decisions", "merges", "artifacts",
          "events", "schema_version"}


def test_schema_and_round_trip(tmp_path):
    store = Store(tmp_path / "f.duckdb")
    tables = {r[0] for r in store.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert TABLES <= tables
    h = Hypothesis("h1", "s", "micro-opt", "text", "patch", "diff")
    store.start_campaign("c", "{}", "/repo", "main", "abc", "farm/c/integrated", 2)
    store.add_hypotheses("c", [h], {"s": "patch"})
    store.start_experiment("c-0001", "c", h, "screen", "abc", "farm/c/c-0001", "w0", (1,))
    now = time.time()
    samples = [Sample("c-0001", arm, b, "x", 1.0 + b, "s", (1,), 42, now, now) for b in range(3) for arm in
               ("ref", "cand")]
    assert store.add_samples(samples, "w0") == 6
    decision = decide_benchmark("x", [1, 2, 3], [1, 2.001, 2.999], 0.02)
    store.finish_experiment(ExperimentResult("c-0001", Status.DISCARD, "why", "w0", (1,), now, now,
                                             decisions=(decision,), blocks=3))
    store.close()
    con = open_readonly(tmp_path / "f.duckdb")
    assert con.execute("SELECT status, reason FROM experiments").fetchall() == [("discard", "why")]
    assert con.execute("SELECT count(*), min(cpus) FROM samples WHERE arm = 'ref'").fetchone() == (3, [1])
    assert con.execute("SELECT verdict FROM decisions").fetchone() == ("same",)
    assert con.execute("SELECT max(version) FROM schema_version").fetchone() == (SCHEMA_VERSION,)


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
