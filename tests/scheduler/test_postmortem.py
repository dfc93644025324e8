"""Post-mortems on the store of a real small campaign (real local Ray, git, DuckDB): every cookbook recipe, the
exports, the report, and `farm query` while a campaign runs."""
import json
import pathlib
import threading
import time

import duckdb
import pytest
from click.testing import CliRunner

from farm.campaign_file.config import CampaignConfig
from farm.cli import main
from farm.storage.cookbook import RECIPES, bound
from farm.storage.store import snapshot_path
from scheduler.runtime import run_campaign
from tests.scheduler.tiny_repo import config_dict, make_patch, make_repo

pytestmark = pytest.mark.slow


def _campaign(tmp_path: pathlib.Path, name: str, notes: int) -> tuple[CampaignConfig, pathlib.Path]:
    repo = make_repo(tmp_path / f"repo-{name}")
    patches = tmp_path / f"patches-{name}"
    patches.mkdir()
    end = '"pid": os.getpid()}))\n'
    data = config_dict(repo, [], measurement={"mode": "exclusive"}, race={"mode": "race", "rung": 1},
                       merge={"confirm_blocks": 4})
    data["campaign"] = name
    data["acceptance"]["max_blocks"] = 10
    data["strategies"] = [
        {"name": "cut", "hypotheses": [
            {"id": "quarter", "patch": str(make_patch(repo, patches / "q.patch", "N = 400000", "N = 100000"))},
            {"id": "wrong", "patch": str(make_patch(repo, patches / "w.patch", "total += i * i", "total += i"))}]},
        {"name": "notes", "hypotheses": [
            {"id": f"note{i}", "patch": str(make_patch(repo, patches / f"n{i}.patch", end, f"{end}# note {i}\n"))}
            for i in range(notes)]}]
    return CampaignConfig(**data), tmp_path / f"work-{name}"


@pytest.fixture(scope="module")
def store(local_ray, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("postmortem")
    config, workdir = _campaign(tmp_path, "pm", notes=1)
    run_campaign(config, workdir, workdir / "farm.duckdb", echo=lambda line: None)
    return workdir / "farm.duckdb"


def _recipe(store, name, **params):
    con = duckdb.connect(str(store), read_only=True)
    cursor = con.execute(RECIPES[name].sql, bound(RECIPES[name].sql, {"campaign": "pm", **params}))
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


def _one(store, sql, params=()):
    return duckdb.connect(str(store), read_only=True).execute(sql, list(params)).fetchall()


def test_every_recipe_answers_its_question_on_a_real_store(store):
    (quarter,) = _one(store, "SELECT id, blocks FROM experiments WHERE hypothesis_id = 'quarter' AND kind = 'screen'")
    samples = _recipe(store, "samples", experiment=quarter[0], benchmark="loop")
    assert sorted((r["arm"], r["block"]) for r in samples) == [(arm, b) for arm in ("cand", "ref")
                                                               for b in range(quarter[1])]

    discarded = _recipe(store, "why-discarded")
    assert {(r["hypothesis"], r["status"]) for r in discarded} == {("note0", "discard"), ("wrong", "guard_fail")}
    assert [r["verdict"] for r in discarded if r["hypothesis"] == "note0"] and \
        [r["benchmark"] for r in discarded if r["hypothesis"] == "wrong"] == [None]  # no measurement, a reason

    floors = _recipe(store, "noise-floor")
    assert len(floors) == _one(store, "SELECT count(*) FROM decisions")[0][0] and {r["worker"] for r in floors} <= {
        "w0", "w1"}

    landed = _recipe(store, "landed")
    assert [(r["lineage"], r["position"], r["hypothesis"]) for r in landed] == [("cut", 1, "quarter")]
    assert landed[0]["remeasured"] < 0.5

    race = _recipe(store, "race")
    assert [(r["strategy"], r["status"], r["landed"]) for r in race][0] == ("cut", "winner", 1)

    assert len(_recipe(store, "artifacts")) == _one(store, "SELECT count(*) FROM artifacts")[0][0]

    per_hour = _recipe(store, "per-hour")
    assert sum(r["experiments"] for r in per_hour) == _one(store, "SELECT count(*) FROM experiments")[0][0]
    assert sum(r["kept"] for r in per_hour) == _one(store, "SELECT count(*) FROM experiments "
                                                           "WHERE status = 'keep'")[0][0]

    spent = _recipe(store, "time")
    assert {r["worker"] for r in spent} == {"w0", "w1"}
    assert {"agent", "measure", "idle"} <= {r["phase"] for r in spent}
    for worker in ("w0", "w1"):
        assert abs(sum(r["percent"] for r in spent if r["worker"] == worker) - 100) < 0.5


def test_exports_open_in_duckdb_with_the_stores_row_counts(store, tmp_path):
    out = tmp_path / "export"
    result = CliRunner().invoke(main, ["export", "--db", str(store), "--out", str(out)])
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(store), read_only=True)
    tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables "
                                        "WHERE table_type = 'BASE TABLE'").fetchall()]
    for table in tables:
        stored = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        exported = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out / (table + '.parquet')}')").fetchall()[0][0]
        assert exported == stored, table
    screens = con.execute("SELECT hypothesis_id, status FROM experiments WHERE kind = 'screen' ORDER BY started_at"
                          ).fetchall()
    tsv = duckdb.sql(f"SELECT * FROM read_csv('{out / 'results.tsv'}', delim = '\t', header = true)").fetchall()
    assert [(row[3], row[4].split()[0].rstrip(":")) for row in tsv] == [
        ({"keep": "keep", "discard": "discard"}.get(status, "crash"), h) for h, status in screens]
    # memory_gb: the candidate's peak resident memory where it was measured (a Python process: 5 MB to 1 GB)
    assert all(0.005 < row[2] < 1 if row[3] in ("keep", "discard") else row[2] == 0 for row in tsv), tsv
    lines = [json.loads(line) for line in (out / "autoresearch.jsonl").read_text().splitlines()]
    assert lines[0] == {"type": "config", "name": "pm", "metricName": "effect", "metricUnit": "x",
                        "bestDirection": "lower"}
    assert [(line["run"], line["status"]) for line in lines[1:]] == [
        (i, {"keep": "keep", "discard": "discard", "guard_fail": "checks_failed"}[status])
        for i, (_, status) in enumerate(screens)]


def test_the_html_report_holds_the_plot_and_every_experiment(store, tmp_path):
    page = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "--db", str(store), "--html", str(page), "--png",
                                       str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert text.count('src="data:image/png;base64,') == 1 and "<h2>Final confirmation</h2>" in text
    for (experiment,) in _one(store, "SELECT id FROM experiments"):
        assert f"<td>{experiment}</td>" in text
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_farm_query_reads_a_running_campaign_without_a_lock_error(local_ray, tmp_path):
    config, workdir = _campaign(tmp_path, "live", notes=4)
    db = workdir / "farm.duckdb"
    runner = threading.Thread(target=run_campaign, args=(config, workdir, db), kwargs={"echo": lambda line: None})
    runner.start()
    try:
        deadline = time.time() + 120
        while not snapshot_path(db).exists() and runner.is_alive() and time.time() < deadline:
            time.sleep(0.2)
        assert snapshot_path(db).exists(), "the running campaign wrote no snapshot"
        result = CliRunner().invoke(main, ["query", "--db", str(db), "--format", "csv",
                                           "SELECT id, status FROM campaigns"])
        status = CliRunner().invoke(main, ["status", "--db", str(db)])
        still_running = runner.is_alive()
    finally:
        runner.join(300)
    assert still_running, "the campaign ended before the query: the test did not query a running campaign"
    assert result.exit_code == 0 and "lock" not in result.output.lower(), result.output
    assert result.stdout.splitlines() == ["id,status", "live,running"]
    assert "reading its snapshot" in result.stderr
    # farm status shows the live view too: the campaign's queue and counts, its running experiments
    assert status.exit_code == 0 and "campaign live: running" in status.stdout, status.output
    assert "to screen" in status.stdout and "worker" in status.stdout, status.stdout
    assert not snapshot_path(db).exists()  # the finished campaign's store is read directly again
