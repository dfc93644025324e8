"""The demo campaign from the README, run as a user runs it, checked against the fixture manifest."""
import math
import pathlib
import subprocess
import sys

import duckdb
import pytest
import scipy.stats as scipy_stats
import yaml

import cpp_fixture
from farm.storage.report import landed_product
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
    # sqrt_root screened on a tip where square_fast_path landed already does not apply (and the other way round).
    conflicting = {"square_fast_path", "sqrt_root"}
    assert {i: s for i, s in screened.items() if i not in conflicting} == \
        {i: s for i, s in expected.items() if i not in conflicting}
    assert {screened[i] for i in conflicting} <= {"keep", "conflict"}
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

    # The conflicting pair: one landed; the other conflicts, at its screen or when it is picked onto the tip.
    landed = [h for (h,) in con.execute("SELECT e.hypothesis_id FROM merges m JOIN experiments e ON e.id = "
                                        "m.experiment_id WHERE m.landed ORDER BY m.position").fetchall()]
    (landed_of_pair,) = conflicting & set(landed)
    (other,) = conflicting - {landed_of_pair}
    assert con.execute("SELECT count(*) FROM experiments WHERE hypothesis_id = ? AND status = 'conflict'",
                       [other]).fetchone() == (1,)
    assert sorted(landed) == sorted([landed_of_pair, "precompute_distances"])
    # The overlapping pair, both screened on the base: the second to land was re-measured on top of the first,
    # and gained less on gridsearch there than at its screen.
    second = landed[1]
    screen_parent, screen_ratio, merge_parent, merge_ratio = con.execute(
        "SELECT s.parent_commit, ds.ratio, r.parent_commit, dr.ratio FROM merges m "
        "JOIN experiments s ON s.id = m.experiment_id JOIN experiments r ON r.id = m.remeasure_experiment_id "
        "JOIN decisions ds ON ds.experiment_id = s.id AND ds.benchmark = 'gridsearch' "
        "JOIN decisions dr ON dr.experiment_id = r.id AND dr.benchmark = 'gridsearch' "
        "WHERE m.landed AND s.hypothesis_id = ?", [second]).fetchone()
    assert screen_parent != merge_parent and merge_ratio > screen_ratio, (second, screen_ratio, merge_ratio)
    base, integrated = con.execute("SELECT base_commit, integrated_branch FROM campaigns").fetchone()
    assert len(TargetRepo(workdir / "target").commits_between(base, integrated)) == len(landed)
    # The headline: the final tip against the base, measured once at the end, printed first.
    tip = TargetRepo(workdir / "target").resolve(integrated)
    assert con.execute("SELECT status, parent_commit, commit FROM experiments WHERE kind = 'confirm'").fetchall() \
        == [("keep", base, tip)]
    assert done.stdout.index("final confirmation (") < done.stdout.index("│ experiment │")
    # ... and agrees with the product of the landed re-measured ratios, benchmark by benchmark. Both are
    # estimates on a noisy machine, so the check allows their combined error at a 99.9 % level shared by the
    # benchmarks: a failure means the product counts the wrong merges, not that one block was slow.
    alpha = demo["acceptance"]["alpha"]
    z = scipy_stats.norm.ppf(1 - alpha / 2)
    confirmed = {b: (r, (math.log(high) - math.log(low)) / (2 * z)) for b, r, low, high in con.execute(
        "SELECT d.benchmark, d.ratio, d.ci_low, d.ci_high FROM decisions d JOIN experiments e ON e.id = "
        "d.experiment_id WHERE e.kind = 'confirm'").fetchall()}
    product = {b: (r, (math.log(high) - math.log(low)) / (2 * z))
               for b, (r, low, high) in landed_product(con, "demo", alpha).items()}
    assert set(product) == set(confirmed) == benchmarks
    allowed = scipy_stats.norm.ppf(1 - 0.001 / 2 / len(benchmarks))
    for b in sorted(benchmarks):
        (c, c_se), (p, p_se) = confirmed[b], product[b]
        assert abs(math.log(c / p)) <= allowed * math.hypot(c_se, p_se), (b, confirmed, product)

    status = subprocess.run([str(farm), "status", "--db", str(workdir / "farm.duckdb")], capture_output=True,
                            text=True)
    assert status.returncode == 0 and "campaign demo: finished" in status.stdout
    query = subprocess.run([str(farm), "query", "--db", str(workdir / "farm.duckdb"), "--format", "csv",
                            "SELECT count(*) AS n FROM decisions"], capture_output=True, text=True)
    assert query.returncode == 0 and query.stdout.splitlines()[0] == "n" and int(query.stdout.splitlines()[1]) > 0
