"""Budgets and stop rules in real campaigns on local Ray: reaching one ends the campaign whole. No new screen
starts, the kept win lands, the final confirmation runs, and the reason is an `events` row."""
import duckdb
import pytest

from farm.config import CampaignConfig
from scheduler import run_campaign
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
