"""Issue 19, "Agents cannot fake a win": a benchmark's output is data from a program the agent wrote. A value
the store cannot hold must cost that experiment alone (`crash`, with the reason in one line), never the
campaign: on main each of these was read, acknowledged with its block, and failed the store's next write
and every one after it, losing the other workers' blocks and leaving the campaign `running` for ever."""
import duckdb
import pytest

from farm.campaign_file.config import CampaignConfig
from scheduler.runtime import run_campaign
from tests.scheduler.tiny_repo import config_dict, make_patch, make_repo

pytestmark = pytest.mark.slow

# hypothesis id -> (what prog.py prints instead, words of the crash reason)
BAD_OUTPUT = {
    # A lone surrogate: json.dumps writes it as the escape "\ud800", which json.loads turns back into one.
    "surrogate_unit": (('"unit": "s"', '"unit": "\\ud800"'), "`unit` '\\ud800' is not valid UTF-8 text"),
    "huge_pid": (('"pid": os.getpid()', '"pid": 3000000000'), "`pid` 3000000000 is not a process id"),
    "huge_cpu": (('"cpus": sorted(os.sched_getaffinity(0))', '"cpus": [3000000000]'),
                 "`cpus` [3000000000] is not a list of CPU numbers"),
}


def test_output_the_store_cannot_hold_crashes_its_experiment_and_nothing_else(local_ray, tmp_path):
    repo = make_repo(tmp_path / "repo")
    hypotheses = [{"id": "fewer_iterations", "category": "algorithm",
                   "patch": str(make_patch(repo, tmp_path / "fast.patch", "N = 400000", "N = 100000"))}]
    hypotheses += [{"id": name, "category": "bad-output", "patch": str(make_patch(repo, tmp_path / f"{name}.patch",
                                                                                   *change))}
                   for name, (change, _) in BAD_OUTPUT.items()]
    data = config_dict(repo, hypotheses, measurement={"mode": "exclusive"}, merge={"confirm_blocks": 0})
    db = tmp_path / "work" / "farm.duckdb"
    lines = []
    summary = run_campaign(CampaignConfig(**data), tmp_path / "work", db, echo=lines.append)

    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT status FROM campaigns").fetchall() == [("finished",)]
    screens = {h: (status, reason) for h, status, reason in con.execute(
        "SELECT hypothesis_id, status, reason FROM experiments WHERE kind = 'screen'").fetchall()}
    assert set(screens) == {"fewer_iterations", *BAD_OUTPUT}
    for name, (_, words) in BAD_OUTPUT.items():
        status, reason = screens[name]
        assert status == "crash" and "benchmark output" in reason and words in reason, (name, reason)
        assert "\n" not in reason
    # The others' verdicts stand: the real win is kept and lands; the canaries measured clean or flagged.
    assert screens["fewer_iterations"][0] == "keep"
    assert con.execute("SELECT landed FROM merges").fetchall() == [(True,)] and len(summary.landed) == 1
    assert {s for (s,) in con.execute("SELECT status FROM experiments WHERE kind = 'aa'").fetchall()} <= \
        {"aa_clean", "aa_false_positive"}
    # Every block of every measured experiment is in the store, with both arms' samples; nothing was refused.
    per_experiment = con.execute("""SELECT e.id, e.status, coalesce(e.blocks, 0),
                                           (SELECT count(*) FROM blocks b WHERE b.experiment_id = e.id),
                                           (SELECT count(*) FROM samples s WHERE s.experiment_id = e.id)
                                    FROM experiments e""").fetchall()
    measured = [row for row in per_experiment if row[1] != "crash"]
    assert len(measured) == 4  # two canaries, the screen and its re-measurement
    assert all(blocks >= 3 and stored == blocks and samples == 2 * blocks
               for _, _, blocks, stored, samples in measured), per_experiment
    assert all(stored == samples == 0 for _, status, _, stored, samples in per_experiment if status == "crash")
    assert con.execute("SELECT count(*) FROM events WHERE kind = 'store_error'").fetchone() == (0,)
