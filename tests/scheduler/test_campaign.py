"""A whole campaign on real local Ray with a tiny target: wins land, bad input is recorded."""
import re
import subprocess

import duckdb
import pytest

from farm.campaign_file.config import CampaignConfig
from farm.storage.report import confirmation_summary
from scheduler.runtime import run_campaign
from tests.scheduler.tiny_repo import config_dict, make_patch, make_repo
from worktrees import TargetRepo

pytestmark = pytest.mark.slow


def test_campaign_lands_the_win_and_records_every_bad_input(local_ray, tmp_path):
    repo = make_repo(tmp_path / "repo")
    patches = tmp_path / "patches"
    patches.mkdir()
    hypotheses = [
        {"id": "fewer_iterations", "category": "algorithm",
         "patch": str(make_patch(repo, patches / "fast.patch", "N = 400000", "N = 100000"))},
        {"id": "garbage_output", "category": "bug",
         "patch": str(make_patch(repo, patches / "garbage.patch", "print(json.dumps(", "print('oops', ("))},
        {"id": "stale_patch", "category": "micro-opt",
         "patch": str(make_patch(repo, patches / "stale.patch", "N = 400000", "N = 399999"))},
        {"id": "touches_guard", "category": "tamper", "patch": str(patches / "tamper.patch")},
        {"id": "breaks_guard", "category": "wrong",
         "patch": str(make_patch(repo, patches / "wrong.patch", "total += i * i", "total += i"))},
    ]
    (patches / "tamper.patch").write_text(
        "diff --git a/guard.sh b/guard.sh\n--- a/guard.sh\n+++ b/guard.sh\n@@ -1 +1 @@\n"
        "-grep -q 'total += i \\* i' prog.py\n+true\n")
    # stale_patch was made against a line that no longer exists on the parent:
    (patches / "stale.patch").write_text((patches / "stale.patch").read_text().replace("N = 400000", "N = 123"))
    config = CampaignConfig(**config_dict(repo, hypotheses, measurement={"mode": "exclusive"}))
    lines = []
    summary = run_campaign(config, tmp_path / "work", tmp_path / "work" / "farm.duckdb", echo=lines.append)

    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    statuses = dict(con.execute("SELECT hypothesis_id, status FROM experiments WHERE kind = 'screen'").fetchall())
    assert statuses == {"fewer_iterations": "keep", "garbage_output": "crash", "stale_patch": "conflict",
                        "touches_guard": "tampered", "breaks_guard": "guard_fail"}
    reasons = dict(con.execute("SELECT hypothesis_id, reason FROM experiments WHERE kind = 'screen'").fetchall())
    assert "unreadable" in reasons["garbage_output"] and "no benchmark values" in reasons["garbage_output"]
    assert "does not apply" in reasons["stale_patch"]
    assert "guard.sh" in reasons["touches_guard"]

    # Every measured experiment has both arms in every block, on its worker's own CPU set.
    per_arm = con.execute("""SELECT e.id, s.arm, count(*), any_value(e.blocks) FROM samples s
                             JOIN experiments e ON e.id = s.experiment_id
                             WHERE e.status IN ('keep', 'discard') AND e.kind <> 'confirm'
                             GROUP BY e.id, s.arm""").fetchall()
    assert per_arm and all(n == blocks and 3 <= blocks <= 4 for _, _, n, blocks in per_arm)
    # Each worker measured the parent against itself first (A/A: its noise floor and a canary).
    canaries = con.execute("SELECT worker, status, blocks FROM experiments WHERE kind = 'aa' ORDER BY 1").fetchall()
    assert {w for w, _, _ in canaries} == {"w0", "w1"} and all(b == 3 for _, _, b in canaries)
    assert {s for _, s, _ in canaries} <= {"aa_clean", "aa_false_positive"}
    mismatched = con.execute("""SELECT count(*) FROM samples s JOIN experiments e ON e.id = s.experiment_id
                                WHERE s.cpus <> e.cpus""").fetchone()[0]
    assert mismatched == 0
    assert con.execute("SELECT count(DISTINCT worker) FROM experiments").fetchone()[0] == 2

    # One blocks row per measured block, stored with its samples, with the node's state while it ran.
    per_experiment = con.execute("""SELECT e.id, coalesce(any_value(e.blocks), 0), count(b.block) FROM experiments e
                                    LEFT JOIN blocks b ON b.experiment_id = e.id GROUP BY e.id""").fetchall()
    assert all(expected == found for _, expected, found in per_experiment)
    assert sum(found for _, _, found in per_experiment) >= 4 * 3
    assert con.execute("""SELECT count(*) FROM blocks b WHERE (SELECT count(DISTINCT arm) FROM samples s
                          WHERE s.experiment_id = b.experiment_id AND s.block = b.block) <> 2""").fetchone()[0] == 0
    blocks = con.execute("SELECT worker, block, arm_order, started_at, finished_at, loadavg_1m, others, waited_s "
                         "FROM blocks ORDER BY started_at").fetchall()
    assert all(load is not None and load >= 0 for _, _, _, _, _, load, _, _ in blocks)
    for _, block, order, *_ in blocks:  # ABBA: the reference leads in even blocks
        first, second = order.split(",")
        assert {first, second} in ({"ref", "cand"}, {"ref", "aa"}) and (first == "ref") == (block % 2 == 0)
    # Exclusive: no two blocks overlap (in start order, each ends before the next starts), and while one worker
    # measured the other did nothing heavy.
    assert all(earlier[4] <= later[3] for earlier, later in zip(blocks, blocks[1:]))
    other = {"w0": "w1", "w1": "w0"}
    seen = [(w, others) for w, _, _, _, _, _, others, _ in blocks if others]  # None: the other not started yet
    assert len(seen) > len(blocks) / 2
    assert all(re.fullmatch(rf"{other[w]}:(agent|wait|idle)(>(agent|wait|idle))?", others) for w, others in seen)
    assert max(waited for *_, waited in blocks) > 0  # they did queue for the lock
    assert any("measurement exclusive" in line for line in lines)

    # The win was re-measured against the tip and landed: the integration branch is one commit ahead.
    merge = con.execute("SELECT position, landed, screening_ratio, remeasured_ratio FROM merges").fetchall()
    assert len(merge) == 1 and merge[0][0] == 1 and merge[0][1] is True and merge[0][3] < 0.6
    target = TargetRepo(repo)
    assert len(target.commits_between(summary.base_commit, summary.integrated_branch)) == 1
    assert "N = 100000" in target.git("show", f"{summary.integrated_branch}:prog.py")
    assert summary.statuses["keep"] == 3  # the screen, its re-measurement, and the final confirmation
    assert any("landed fewer_iterations" in line for line in lines)

    # At the end, once: the final tip against the base, the summary's headline next to the landed product.
    confirm = con.execute("SELECT id, status, parent_commit, commit, blocks FROM experiments WHERE kind = 'confirm'"
                          ).fetchall()
    assert [row[1:] for row in confirm] == [("keep", summary.base_commit, summary.tip, 12)]
    assert con.execute("SELECT max(started_at) FROM experiments WHERE kind <> 'confirm'").fetchone()[0] < \
        con.execute("SELECT started_at FROM experiments WHERE kind = 'confirm'").fetchone()[0]
    headline = confirmation_summary(con, "tiny").splitlines()
    assert re.fullmatch(rf"final confirmation \({confirm[0][0]}: the final tip against the base, 12 blocks\): "
                        r"overall 0\.\d+x \[0\.\d+, [01]\.\d+\]; loop 0\.\d+x \[.*\]", headline[0]), headline
    assert headline[1].startswith("product of the landed re-measured ratios: loop 0.")


def test_a_build_that_does_not_rebuild_is_stale_build_with_an_artifact_row(local_ray, tmp_path):
    repo = make_repo(tmp_path / "repo")
    # The "artefact" is committed, and the build only makes it when it is missing: a changed source is
    # never built, like the case study's header edits that setuptools did not track.
    (repo / "build").mkdir()
    (repo / "build" / "out").write_text("old build\n")
    for args in (["add", "-f", "build/out"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "art"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    patch = make_patch(repo, tmp_path / "fast.patch", "N = 400000", "N = 100000")
    data = config_dict(repo, [{"id": "fewer_iterations", "patch": str(patch)}], workers={"count": 1})
    data["phases"]["build"] = {"command": "test -f build/out || cp prog.py build/out", "artifacts": ["build/out"],
                               "sources": ["*.py"]}
    summary = run_campaign(CampaignConfig(**data), tmp_path / "work", tmp_path / "work" / "farm.duckdb",
                           echo=lambda line: None)
    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    exp, status, reason = con.execute("SELECT id, status, reason FROM experiments WHERE kind = 'screen'").fetchone()
    assert status == "stale_build" and "prog.py" in reason and "build/out" in reason
    # (The canary may also flag a build bias on a loaded machine: an artifact of its own kind.)
    assert con.execute("SELECT kind, experiment_id FROM artifacts WHERE kind <> 'build_bias'").fetchall() == [
        ("stale_build", exp)]
    assert summary.landed == []


SLOW_REF_PROG = '''\
import json, os, pathlib, time

# Counts the runs in the worker's reference slot; runs 19-21 (the sixth experiment's reference arm, after
# the canary's 3 reference runs and five experiments of 3 blocks) are twenty times slower: a machine hiccup that
# hits only the reference arm of one experiment. (Six times was not always enough: this VM once ran twice as slow
# from the fourth experiment on, which widened the chart to 4 sigma = 6.6x.)
N = 400000
counter = pathlib.Path(os.environ["REF_COUNTER"])
if pathlib.Path.cwd().name == "ref":
    count = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(count))
    if 18 < count <= 21:
        N *= 20
start = time.perf_counter()
total = 0
for i in range(N):
    total += i * i
print(json.dumps({"name": "loop", "value": time.perf_counter() - start, "unit": "s"}))
'''


def test_a_reference_off_its_control_chart_voids_the_verdict_and_is_measured_again(local_ray, tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "prog.py").write_text(SLOW_REF_PROG)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "slow ref"], cwd=repo,
                   check=True, capture_output=True)
    hypotheses = [{"id": f"h{i}", "patch": str(make_patch(repo, tmp_path / f"h{i}.patch", "N = 400000",
                                                           f"N = 400000  # h{i}"))} for i in range(1, 8)]
    data = config_dict(repo, hypotheses, workers={"count": 1}, merge={"enabled": False})
    data["phases"]["bench"]["command"] = f"REF_COUNTER={tmp_path / 'count'} python prog.py"
    data["acceptance"] = {"aa_blocks": 3, "min_blocks": 3, "max_blocks": 3, "extension_looks": [],
                          "canary_every": 100, "min_effect": 0.05}
    run_campaign(CampaignConfig(**data), tmp_path / "work", tmp_path / "work" / "farm.duckdb",
                 echo=lambda line: None)
    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    rows = con.execute("SELECT hypothesis_id, status FROM experiments WHERE kind = 'screen' ORDER BY id").fetchall()
    assert [h for h, _ in rows] == ["h1", "h2", "h3", "h4", "h5", "h6", "h6", "h7"]
    assert rows[5][1] == "invalidated" and rows[6][1] in ("keep", "discard")
    # Comment-only changes: each measured once, with a final verdict. (Their verdicts are not asserted: a
    # 3-block single look on this 2-core machine keeps a null now and then, which is what alpha allows.)
    assert all(s in ("keep", "discard") for h, s in rows if h != "h6")
    invalidated = con.execute("SELECT id FROM experiments WHERE status = 'invalidated'").fetchone()[0]
    artifacts = con.execute("SELECT experiment_id, kind, benchmark FROM artifacts ORDER BY created_at").fetchall()
    # The hiccup is the first flag. A loaded machine can flag the re-measurement too (seen here with other jobs
    # running): it is recorded, and h6 is not voided a second time (once per hypothesis).
    assert artifacts[0] == (invalidated, "control_chart", "loop")
    assert all(kind == "control_chart" for _, kind, _ in artifacts)
