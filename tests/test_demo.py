"""The demo campaign from the README, run as a user runs it, checked against the fixture manifest."""
import pathlib
import subprocess
import sys

import duckdb
import pytest
import yaml

import cpp_fixture
from worktrees import TargetRepo

pytestmark = pytest.mark.slow
ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_demo_campaign_matches_the_manifest(tmp_path):
    workdir = tmp_path / "demo"
    farm = pathlib.Path(sys.executable).with_name("farm")
    done = subprocess.run([str(farm), "run", str(ROOT / "configs" / "demo.yaml"), "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (workdir / "progress.png").stat().st_size > 10_000

    demo = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    ids = demo["strategies"][0]["pack"]["ids"]
    con = duckdb.connect(str(workdir / "farm.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM campaigns").fetchone() == (1,)
    screened = dict(con.execute("SELECT hypothesis_id, status FROM experiments WHERE kind = 'screen' "
                                "AND status <> 'invalidated'").fetchall())
    expected = {i: cpp_fixture.hypothesis(i)["expected"]["outcome"] for i in ids}
    assert screened == expected

    benchmarks = set(demo["benchmarks"])
    measured = con.execute("SELECT id FROM experiments WHERE status IN ('keep', 'discard')").fetchall()
    for (experiment,) in measured:
        arms = con.execute("SELECT arm, benchmark, count(*) FROM samples WHERE experiment_id = ? GROUP BY ALL",
                           [experiment]).fetchall()
        assert {(a, b) for a, b, _ in arms} == {(a, b) for a in ("ref", "cand") for b in benchmarks}
        blocks = con.execute("SELECT blocks FROM experiments WHERE id = ?", [experiment]).fetchone()[0]
        assert {n for _, _, n in arms} == {blocks}  # every arm and benchmark measured in every block
        last_look = max([demo["acceptance"]["max_blocks"], *demo["acceptance"].get("extension_looks", [])])
        assert demo["acceptance"]["min_blocks"] <= blocks <= last_look
    canaries = con.execute("SELECT worker, status, blocks FROM experiments WHERE kind = 'aa'").fetchall()
    assert {w for w, _, _ in canaries} == {"w0", "w1"}  # each worker measured its noise before experimenting
    assert all(b == demo["acceptance"]["aa_blocks"] for _, _, b in canaries)
    assert con.execute("SELECT count(*) FROM samples s JOIN experiments e ON e.id = s.experiment_id "
                       "WHERE s.cpus <> e.cpus").fetchone() == (0,)
    workers = con.execute("SELECT DISTINCT worker, cpus FROM experiments ORDER BY 1").fetchall()
    assert len(workers) == 2 and workers[0][1] != workers[1][1]

    kept = [i for i in ids if expected[i] == "keep"]
    landed = con.execute("SELECT e.hypothesis_id FROM merges m JOIN experiments e ON e.id = m.experiment_id "
                         "WHERE m.landed ORDER BY m.position").fetchall()
    assert sorted(h for (h,) in landed) == sorted(kept)
    base, integrated = con.execute("SELECT base_commit, integrated_branch FROM campaigns").fetchone()
    assert len(TargetRepo(workdir / "target").commits_between(base, integrated)) == len(kept)
    # The headline: the final tip against the base, measured once at the end, printed first.
    tip = TargetRepo(workdir / "target").resolve(integrated)
    assert con.execute("SELECT status, parent_commit, commit FROM experiments WHERE kind = 'confirm'").fetchall() \
        == [("keep", base, tip)]
    assert done.stdout.index("final confirmation (") < done.stdout.index("experiment  hypothesis")

    status = subprocess.run([str(farm), "status", "--db", str(workdir / "farm.duckdb")], capture_output=True,
                            text=True)
    assert status.returncode == 0 and "campaign demo: finished" in status.stdout
    query = subprocess.run([str(farm), "query", "--db", str(workdir / "farm.duckdb"), "--format", "csv",
                            "SELECT count(*) AS n FROM decisions"], capture_output=True, text=True)
    assert query.returncode == 0 and query.stdout.splitlines()[0] == "n" and int(query.stdout.splitlines()[1]) > 0
