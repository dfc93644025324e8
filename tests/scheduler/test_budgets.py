"""Budgets and stop rules in real campaigns on local Ray: reaching one ends the campaign whole. No new screen
starts, the kept win lands, the final confirmation runs, and the reason is an `events` row."""
import pathlib
import sys

import duckdb
import pytest
from click.testing import CliRunner

from farm.campaign_file.config import CampaignConfig
from farm.cli import main
from scheduler.runtime import run_campaign
from tests.scheduler.tiny_repo import config_dict, make_patch, make_repo

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("rule, screens, reason", [
    ({"budget": {"experiments": 3}}, 3, "budget.experiments 3 reached"),
    ({"stop": {"plateau": 2}}, 3, "plateau: none of the last 2 screens was kept (stop.plateau 2)"),
])
def test_a_budget_or_plateau_ends_the_campaign_with_its_final_confirmation(local_ray, tmp_path, rule, screens,
                                                                            reason):
    repo = make_repo(tmp_path / "repo")
    hypotheses = [{"id": "win", "patch": str(make_patch(repo, tmp_path / "win.patch", "N = 400000", "N = 100000"))}]
    hypotheses += [{"id": f"null{i}", "patch": str(make_patch(repo, tmp_path / f"n{i}.patch", "total = 0",
                                                              f"total = 0  # {i}"))} for i in range(5)]
    data = {**config_dict(repo, hypotheses, workers={"count": 1}), **rule}
    summary = run_campaign(CampaignConfig(**data), tmp_path / "work", tmp_path / "work" / "farm.duckdb",
                           echo=lambda line: None)
    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    screened = [h for (h,) in con.execute("SELECT hypothesis_id FROM experiments WHERE kind = 'screen' "
                                          "ORDER BY started_at").fetchall()]
    assert screened == ["win", "null0", "null1"][:screens]
    assert summary.landed and con.execute("SELECT status FROM experiments WHERE kind = 'confirm'").fetchone() == \
        ("keep",)
    assert con.execute("SELECT message FROM events WHERE kind = 'stopped'").fetchall() == [(reason,)]
    assert con.execute("SELECT status FROM campaigns").fetchone() == ("finished",)


PAID_AGENT = pathlib.Path(__file__).parents[1] / "agents" / "paid_comment.py"


def test_agent_spend_is_stored_per_run_shown_by_status_and_ends_the_campaign_at_its_budget(local_ray, tmp_path):
    repo = make_repo(tmp_path / "repo")
    data = config_dict(repo, [], workers={"count": 1}, budget={"cost_usd": 1.0})
    data["strategies"] = [{"name": "paid", "agent": "command",
                           "command": {"command": f"{sys.executable} {PAID_AGENT}", "report": "claude-json"},
                           "hypotheses": [{"id": f"a{i}", "text": "t"} for i in range(6)]}]
    db = tmp_path / "work" / "farm.duckdb"
    run_campaign(CampaignConfig(**data), tmp_path / "work", db, echo=lambda line: None)
    con = duckdb.connect(str(db), read_only=True)
    runs = con.execute("SELECT e.hypothesis_id, r.outcome, r.cost_usd, r.input_tokens, r.output_tokens, r.turns, "
                       "r.session_id, r.strategy, r.summary FROM agent_runs r JOIN experiments e "
                       "ON e.id = r.experiment_id ORDER BY e.started_at").fetchall()
    # 0.40 a run: the third brings the spend to $1.20, past the budget, and no fourth starts.
    assert [row[:8] for row in runs] == [
        ("a0", "ok", 0.4, 1500, 200, 3, "session-a0", "paid"),
        ("a1", "failed", 0.4, 1500, 200, 3, "session-a1", "paid"),
        ("a2", "ok", 0.4, 1500, 200, 3, "session-a2", "paid")]
    assert '"total_cost_usd": 0.4' in runs[0][8]
    assert con.execute("SELECT message FROM events WHERE kind = 'stopped'").fetchall() == [
        ("budget.cost_usd 1 reached (the agents reported $1.20)",)]
    con.close()
    status = CliRunner().invoke(main, ["status", "--db", str(db)])
    assert "agents: 3 run(s) in" in status.output and "cost $1.20, tokens 4,500 in / 600 out" in status.output
    spend = CliRunner().invoke(main, ["query", "--db", str(db), "--recipe", "spend", "--format", "csv"])
    assert spend.output.splitlines()[:2] == ["strategy,runs,failed,cost_usd,input_tokens,output_tokens,minutes,kept",
                                             f"paid,3,1,1.2,4500,600,{spend.output.splitlines()[1].split(',')[6]},0"]
