"""A race on real local Ray with a real repository: each strategy on its own lineage branch, a losing strategy
dropped at a rung with its reason, the best lineage made the integration branch and another lineage's winner
re-measured on top of it."""
import subprocess

import duckdb
import pytest

from farm.campaign_file.config import CampaignConfig
from scheduler.runtime import run_campaign
from tests.scheduler.tiny_repo import config_dict, make_patch, make_repo

pytestmark = pytest.mark.slow

# Which strategy won and by how much (README: Racing strategies, the cookbook query).
WINNER_SQL = """SELECT strategy, status, screens, kept, landed, round(landed_ratio, 3) AS landed_ratio
                FROM race_results WHERE campaign = ? ORDER BY landed_ratio"""


def show(repo, ref, path="prog.py"):
    return subprocess.run(["git", "show", f"{ref}:{path}"], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def test_a_race_drops_the_loser_and_lands_the_best_lineage_with_the_others_winners_on_top(local_ray, tmp_path):
    repo = make_repo(tmp_path / "repo")
    patches = tmp_path / "patches"
    patches.mkdir()
    quarter = make_patch(repo, patches / "quarter.patch", "N = 400000", "N = 100000")  # 4x
    half = make_patch(repo, patches / "half.patch", "for i in range(N):", "for i in range(N // 2):")  # 2x
    end = '"pid": os.getpid()}))\n'  # a comment after the last line: nothing to gain, applies on every lineage
    notes = {f"note{i}": make_patch(repo, patches / f"note{i}.patch", end, f"{end}# note {i}\n") for i in range(5)}
    data = config_dict(repo, [], measurement={"mode": "exclusive"}, race={"mode": "race", "rung": 1},
                       merge={"confirm_blocks": 6})
    data["acceptance"]["max_blocks"] = 10  # a 2x step is called on a loaded machine too
    data["strategies"] = [
        {"name": "cut", "hypotheses": [{"id": "quarter", "patch": str(quarter)},
                                       {"id": "note0", "patch": str(notes["note0"])}]},
        {"name": "loop", "hypotheses": [{"id": "half", "patch": str(half)},
                                        {"id": "note1", "patch": str(notes["note1"])}]},
        {"name": "notes", "hypotheses": [{"id": i, "patch": str(notes[i])} for i in ("note2", "note3", "note4")]}]
    lines = []
    summary = run_campaign(CampaignConfig(**data), tmp_path / "work", tmp_path / "work" / "farm.duckdb",
                           echo=lines.append)
    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)

    # Every strategy screened on its own lineage, one screen each up to rung 1 (the rung waits for the slowest).
    # There notes (nothing landed) is below the better half: the rest of its notes do not run.
    assert sorted(con.execute("SELECT hypothesis_id, lineage, status FROM experiments WHERE kind = 'screen'")
                  .fetchall()) == [("half", "loop", "keep"), ("note0", "cut", "discard"), ("note1", "loop", "discard"),
                                   ("note2", "notes", "discard"), ("quarter", "cut", "keep")], "\n".join(lines)
    reasons = [m for (m,) in con.execute("SELECT message FROM events WHERE kind = 'reallocation' "
                                         "ORDER BY ts").fetchall()]
    assert any(m.startswith("rung 1 (1 screens each") and m.endswith(
        "notes is below the better half; 2 of its hypotheses will not run") for m in reasons), reasons
    assert reasons[-1].startswith("race over: cut wins")
    assert con.execute(WINNER_SQL, ["tiny"]).fetchall()[0][:5] == ("cut", "winner", 2, 1, 1)

    # The lineage branches hold their own winners; the integration branch is cut's lineage plus loop's winner,
    # re-measured on top of it (and landed: halving the loop still pays on the shorter loop).
    assert "N = 100000" in show(repo, "farm/tiny/cut") and "range(N):" in show(repo, "farm/tiny/cut")
    assert "range(N // 2)" in show(repo, "farm/tiny/loop") and "N = 400000" in show(repo, "farm/tiny/loop")
    assert show(repo, "farm/tiny/notes") == show(repo, "main")
    integrated = show(repo, "farm/tiny/integrated")
    assert "N = 100000" in integrated and "range(N // 2)" in integrated
    cut_tip = subprocess.run(["git", "rev-parse", "farm/tiny/cut"], cwd=repo, check=True, capture_output=True,
                             text=True).stdout.strip()
    offered = con.execute("SELECT e.parent_commit, m.landed, m.position FROM merges m JOIN experiments e "
                          "ON e.id = m.remeasure_experiment_id WHERE m.lineage = 'integrated'").fetchall()
    assert offered == [(cut_tip, True, 2)]
    assert summary.landed == [e for (e,) in con.execute(
        "SELECT experiment_id FROM merges WHERE landed AND lineage IN ('cut', 'integrated') "
        "ORDER BY merged_at").fetchall()]
    # The final confirmation measured the integration tip (both changes: about 8x) against the base.
    assert con.execute("SELECT status, effect < 0.5 FROM experiments WHERE kind = 'confirm'").fetchall() == \
        [("keep", True)]
