"""Agents that cannot work, stopped early in a real campaign on local Ray: one that hangs silently is killed at
`stall_timeout` (status `timeout`, "stalled"), one that fails the same way three times in a row pauses its
strategy (its other hypotheses skipped, an `events` row), and the other strategies go on."""
import sys

import duckdb
import pytest

from farm.campaign_file.config import CampaignConfig
from scheduler.runtime import run_campaign
from tests.marked import kill_marked, marked_after_kill, new_marker
from tests.scheduler.tiny_repo import config_dict, make_patch, make_repo

pytestmark = pytest.mark.slow


def test_a_silent_agent_stalls_and_a_failing_one_pauses_its_strategy(local_ray, tmp_path):
    repo = make_repo(tmp_path / "repo")
    marker = new_marker()
    silent = f"sleep {marker}1"
    failing = f"{sys.executable} -c \"import sys; sys.exit('claude: not logged in')\""
    data = config_dict(repo, [], workers={"count": 1}, merge={"enabled": False})
    data["strategies"] = [
        {"name": "silent", "agent": "command", "command": {"command": silent, "timeout": 120, "stall_timeout": 3},
         "hypotheses": [{"id": "silent", "text": "think quietly"}]},
        {"name": "failing", "agent": "command", "command": {"command": failing, "pause_after": 3},
         "hypotheses": [{"id": f"f{i}", "text": "t"} for i in range(5)]},
        {"name": "patches", "hypotheses": [{"id": "speed_up", "patch": str(make_patch(
            repo, tmp_path / "s.patch", "N = 400000", "N = 100000"))}]}]
    try:
        run_campaign(CampaignConfig(**data), tmp_path / "work", tmp_path / "work" / "farm.duckdb",
                     echo=lambda line: None)
        assert marked_after_kill(marker) == []
    finally:
        kill_marked(marker)
    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    rows = dict(con.execute("SELECT hypothesis_id, status || ': ' || reason FROM experiments WHERE kind = 'screen'"
                            ).fetchall())
    assert rows["silent"].startswith("timeout: agent: agent stalled: no output and no file changed for 3s")
    assert [rows[f"f{i}"][:32] for i in range(3)] == ["crash: agent failed: exit 1: cla"] * 3
    assert "f3" not in rows and "f4" not in rows
    assert rows["speed_up"].startswith("keep: ")
    paused = con.execute("SELECT message FROM events WHERE kind = 'paused'").fetchall()
    assert len(paused) == 1 and "strategy failing paused: its agent failed 3 times in a row" in paused[0][0]
    assert con.execute("SELECT status FROM campaigns").fetchone() == ("finished",)
