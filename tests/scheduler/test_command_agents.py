"""Command agents with real subprocesses (tests/agents/) in a real campaign on local Ray: each outcome is recorded,
and nothing of a hanging agent's process tree survives its timeout."""
import pathlib
import subprocess
import sys

import duckdb
import pytest
import yaml
from click.testing import CliRunner

from farm.campaign_file.config import CampaignConfig
from farm.cli import main
from scheduler.runtime import run_campaign
from tests.marked import marked_after_kill, new_marker
from tests.scheduler.tiny_repo import config_dict, make_patch, make_repo
from worktrees import TargetRepo

pytestmark = pytest.mark.slow
AGENTS = pathlib.Path(__file__).resolve().parents[1] / "agents"


def _strategy(name: str, script: str, *args: str, timeout: float = 60) -> dict:
    command = " ".join([sys.executable, str(AGENTS / script), *args])
    return {"name": name, "agent": "command", "command": {"command": command, "timeout": timeout},
            "hypotheses": [{"id": name, "category": "test", "text": f"what {script} does"}]}


def test_command_agents_outcomes_are_recorded_and_a_hanging_agent_leaves_nothing(local_ray, tmp_path):
    repo = make_repo(tmp_path / "repo")
    marker = new_marker()
    strategies = [_strategy("speed_up", "speed_up.py"), _strategy("hang", "hang.py", marker, timeout=5),
                  _strategy("harness", "touch_harness.py"), _strategy("rework", "rework.py"),
                  _strategy("outside", "write_outside.py"), _strategy("unlink", "unlink_git.py"),
                  _strategy("set_env", "set_env.py")]
    data = config_dict(repo, [], workers={"count": 1}, measurement={"mode": "exclusive"},
                       merge={"enabled": False})
    # A patch whose rework rewrites the guard: on main the rework's diff was never checked, and it was kept.
    breaks = make_patch(repo, tmp_path / "breaks.patch", "total += i * i", "total += i")
    (tmp_path / "guard_rework.patch").write_text(
        "diff --git a/guard.sh b/guard.sh\n--- a/guard.sh\n+++ b/guard.sh\n@@ -1 +1 @@\n"
        "-grep -q 'total += i \\* i' prog.py\n+true\n")
    strategies.append({"name": "patches", "hypotheses": [{"id": "rework_guard", "patch": str(breaks),
                                                          "rework": [str(tmp_path / "guard_rework.patch")]}]})
    # Two slow-downs in one category exhaust it (memory.exhausted_after 2): the third is skipped, and the
    # strategy's next agent reads so in its memory (it copies the memory into its notes).
    strategies.append({"name": "tries", "agent": "command",
                       "command": {"command": f"{sys.executable} {AGENTS / 'slow_down.py'}"},
                       "hypotheses": [{"id": f"unroll{i}", "category": "unroll", "text": "unroll"} for i in (1, 2, 3)]
                       + [{"id": "other", "category": "layout", "text": "another layout"}]})
    data["memory"] = {"exhausted_after": 2}
    data["strategies"] = strategies
    data["acceptance"]["rework_tries"] = 1
    run_campaign(CampaignConfig(**data), tmp_path / "work", tmp_path / "work" / "farm.duckdb", echo=lambda line: None)

    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    rows = {h: (status, reason, reworked, notes) for h, status, reason, reworked, notes in con.execute(
        "SELECT hypothesis_id, status, reason, reworked, agent_notes FROM experiments WHERE kind = 'screen'"
    ).fetchall()}
    assert rows["speed_up"][0] == "keep" and "expect about 4x" in rows["speed_up"][3]
    assert rows["hang"][0] == "timeout" and "agent" in rows["hang"][1]
    assert rows["harness"][0] == "tampered" and "guard.sh" in rows["harness"][1]
    assert rows["rework"][0] == "keep" and rows["rework"][2] == 1 and "reworked 1x" in rows["rework"][1]
    assert rows["rework"][3] == "restored the squares the guard checks\n"
    # Beside its checkout the agent's sandbox is read-only: the write fails, and with it the agent.
    assert rows["outside"][0] == "crash" and "Read-only file system" in rows["outside"][1]
    assert not (tmp_path / "work" / "workers" / "w0" / "outside.txt").exists()
    assert rows["unlink"][0] == "tampered" and "git configuration" in rows["unlink"][1]
    assert rows["set_env"][0] == "tampered" and "protected path(s): .farm-env" in rows["set_env"][1]
    assert rows["rework_guard"][0] == "tampered" and "rework 1 touches protected path(s): guard.sh" in \
        rows["rework_guard"][1]
    assert marked_after_kill(marker) == []  # the hanging agent's children, the setsid one included
    assert rows["unroll1"][0] == rows["unroll2"][0] == "discard" and "unroll3" not in rows
    memory = rows["other"][3]
    assert "- unroll: given up after discards without a keep" in memory
    assert "- unroll1 [unroll] discard" in memory and "- unroll2 [unroll] discard" in memory
    assert con.execute("SELECT count(*) FROM events WHERE kind = 'skipped' AND message LIKE 'unroll3: skipped%'"
                       ).fetchone() == (1,)
    # What the agent read, and its own commit folded into the farm's one commit on the experiment branch.
    speed_up, branch = con.execute("SELECT id, branch FROM experiments WHERE hypothesis_id = 'speed_up'").fetchone()
    prompt = (tmp_path / "work" / "logs" / speed_up / "prompt-0.md").read_text()
    assert "Make this change (test): what speed_up.py does" in prompt and "Do not touch guard.sh" in prompt
    messages = subprocess.run(["git", "log", "--format=%s", f"main..{branch}"], cwd=repo, capture_output=True,
                              text=True, check=True).stdout.split()
    assert messages[:2] == ["farm:", "speed_up"] and "fewer" not in messages


def test_presets_render_their_command_lines_and_a_missing_cli_is_a_validate_error(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    data = config_dict(repo, [])
    data["strategies"] = [{"name": "claude", "agent": "command", "open": 1,
                           "command": {"preset": "claude-code", "max_turns": 12, "model": "opus"}}]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    result = CliRunner().invoke(main, ["validate", str(path), "--workdir", str(tmp_path / "work")])
    assert result.exit_code == 2
    assert "strategies.0.command: agent of claude: 'claude' not found on PATH" in result.output
    (bin_dir / "claude").write_text("#!/bin/sh\necho '{\"loggedIn\": false}'\n")  # `claude auth status`
    (bin_dir / "claude").chmod(0o755)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = CliRunner().invoke(main, ["validate", str(path), "--workdir", str(tmp_path / "work")])
    assert result.exit_code == 2
    assert ("strategies.0.command: agent of claude: claude: not logged in: run claude once and log in, or set "
            "ANTHROPIC_API_KEY") in result.output
    (bin_dir / "claude").write_text("#!/bin/sh\necho '{\"loggedIn\": true}'\n")
    result = CliRunner().invoke(main, ["validate", str(path), "--workdir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    assert ('agent of claude: claude -p "$(cat "$FARM_PROMPT_FILE")" --max-turns 12 '
            "--dangerously-skip-permissions --output-format json --model opus") in result.output


def test_a_kept_agent_change_that_conflicts_with_the_tip_is_made_again_by_its_agent(local_ray, tmp_path):
    # Both agents edit the same line; whichever lands second no longer cherry-picks onto the tip. On main that
    # was `conflict`; now its agent makes it again on the tip (quartering N there), and it is measured and lands.
    repo = make_repo(tmp_path / "repo")
    data = config_dict(repo, [], measurement={"mode": "exclusive"})
    data["acceptance"]["max_blocks"] = 10
    data["merge"] = {"confirm_blocks": 0}
    data["strategies"] = [{"name": name, "agent": "command",
                           "command": {"command": f"{sys.executable} {AGENTS / 'loop_cut.py'} {divisor}"},
                           "hypotheses": [{"id": name, "category": "loop", "text": f"cut the loop to 1/{divisor}"}]}
                          for name, divisor in (("quarter", 4), ("half", 2))]
    summary = run_campaign(CampaignConfig(**data), tmp_path / "work", tmp_path / "work" / "farm.duckdb",
                           echo=lambda line: None)

    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    merges = con.execute("""SELECT e.hypothesis_id, m.landed, r.reason, r.id FROM merges m
                            JOIN experiments e ON e.id = m.experiment_id
                            JOIN experiments r ON r.id = m.remeasure_experiment_id ORDER BY m.position""").fetchall()
    assert [(h, landed) for h, landed, _, _ in merges] in ([("quarter", True), ("half", True)],
                                                           [("half", True), ("quarter", True)])
    first, second = merges
    assert "made again" not in first[2] and second[2].startswith("made again by its agent on the tip after a "
                                                                   "conflict; improved")
    prompt = (tmp_path / "work" / "logs" / second[3] / "prompt-0.md").read_text()
    assert "## Your change no longer applies" in prompt and "-N = 400000" in prompt
    final_n = {"quarter": 100000 // 4, "half": 200000 // 4}[first[0]]
    assert f"N = {final_n}" in TargetRepo(repo).git("show", f"{summary.tip}:prog.py")
