"""Hypothesis sources on real local Ray with real repositories: existing commits (`refs`), each measured against
its own parent; a knob search that finds and lands the best setting; a planner whose hypotheses reach the agent
and whose invalid lines are recorded."""
import json
import subprocess
import sys
import textwrap

import duckdb
import pytest

from farm.campaign_file.config import CampaignConfig
from scheduler.runtime import run_campaign
from tests.scheduler.tiny_repo import config_dict, make_repo

pytestmark = pytest.mark.slow


def git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def commit_edit(repo, path, old, new, message):
    file = repo / path
    file.write_text(file.read_text().replace(old, new) if old else new)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def test_existing_commits_get_each_its_verdict_against_its_own_parent(local_ray, tmp_path):
    repo = make_repo(tmp_path / "repo")
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-qb", "feature/half")
    commit_edit(repo, "prog.py", "N = 400000", "N = 200000", "halve the loop")
    git(repo, "checkout", "-q", "main")
    fast = commit_edit(repo, "prog.py", "N = 400000", "N = 100000", "a quarter of the loop")
    slow = commit_edit(repo, "prog.py", "N = 100000", "N = 400000", "the whole loop again")
    docs = commit_edit(repo, "README", None, "the tiny target\n", "a readme")
    data = config_dict(repo, [], workers={"count": 1}, measurement={"mode": "exclusive"})
    data["acceptance"]["max_blocks"] = 10  # a 2x step is called on a loaded machine too
    data["strategies"] = [{"name": "hist", "refs": {"range": f"{base}..main", "branches": ["feature/half"]}}]
    summary = run_campaign(CampaignConfig(**data), tmp_path / "work", tmp_path / "work" / "farm.duckdb",
                           echo=lambda line: None)

    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    rows = {h: (status, parent) for h, status, parent in con.execute(
        "SELECT hypothesis_id, status, parent_commit FROM experiments WHERE kind = 'screen'").fetchall()}
    # "the whole loop again" would not apply as a patch on the base: it is realised from its own tree. The
    # readme changes nothing measurable: its verdict is a coin with alpha on one side, so only its parent is known.
    docs_status, docs_parent = rows.pop(f"hist-{docs[:10]}")
    assert docs_parent == slow and docs_status in ("keep", "discard")
    assert rows == {f"hist-{fast[:10]}": ("keep", base), f"hist-{slow[:10]}": ("discard", fast),
                    "hist-feature-half": ("keep", base)}
    texts = dict(con.execute("SELECT id, text FROM hypotheses").fetchall())
    assert texts[f"hist-{slow[:10]}"] == "the whole loop again"
    # Discarded as soon as no improvement is possible; its estimate shows the slow-down it brought.
    slower = con.execute(f"SELECT ratio FROM decisions d JOIN experiments e ON e.id = d.experiment_id "
                         f"WHERE e.hypothesis_id = 'hist-{slow[:10]}'").fetchone()[0]
    assert slower > 1.5  # four times the loop, plus the fixed start-up cost
    # Screen-only: nothing lands, and the measured trees are the commits' own.
    assert summary.landed == [] and con.execute("SELECT count(*) FROM merges").fetchone() == (0,)
    branch = con.execute(f"SELECT branch FROM experiments WHERE hypothesis_id = 'hist-{slow[:10]}' "
                         f"AND kind = 'screen'").fetchone()[0]
    assert git(repo, "rev-parse", f"{branch}^{{tree}}") == git(repo, "rev-parse", f"{slow}^{{tree}}")


KNOB_PROG = textwrap.dedent('''\
    import json
    import os
    import pathlib
    import time

    step = int(pathlib.Path("knobs.txt").read_text().split("=")[1])
    n = 400000 // (4 if "-fast" in os.environ.get("PYFLAGS", "").split() else 1)
    start = time.perf_counter()
    total = 0
    for i in range(0, n, step):
        total += i * i
    print(json.dumps({"name": "loop", "value": time.perf_counter() - start, "unit": "s",
                      "cpus": sorted(os.sched_getaffinity(0)), "pid": os.getpid()}))
''')

PLANNER = textwrap.dedent('''\
    import json, os, pathlib
    calls = pathlib.Path(os.environ["FARM_STATE_DIR"], "calls")  # its cwd is read-only in its sandbox
    call = int(calls.read_text()) + 1 if calls.exists() else 1
    calls.write_text(str(call))
    assert "# Strategy memory" in pathlib.Path(os.environ["FARM_MEMORY_FILE"]).read_text()
    if call == 1:
        print(json.dumps({"id": "p1", "category": "layout", "text": "note the loop layout"}))
        print("Sure! Here are my ideas:")
        print(json.dumps({"id": "p2", "category": "layout", "text": "note the loop bounds"}))
        print(json.dumps({"id": "p1", "text": "the same id again"}))
    elif call == 2:
        print(json.dumps({"id": "p3", "category": "other", "text": "note the accumulator"}))
''')

AGENT = textwrap.dedent('''\
    import os, pathlib
    hypothesis = os.environ["FARM_HYPOTHESIS_ID"]
    prog = pathlib.Path("prog.py")
    prog.write_text(prog.read_text() + f"# {hypothesis}\\n")
    pathlib.Path(os.environ["FARM_NOTES_FILE"]).write_text(f"a comment for {hypothesis}; expect nothing\\n")
''')


def test_a_knob_search_lands_the_best_setting_and_a_planner_feeds_its_agent(local_ray, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "prog.py").write_text(KNOB_PROG)
    (repo / "knobs.txt").write_text("step = 1\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    (tmp_path / "plan.py").write_text(PLANNER)
    (tmp_path / "agent.py").write_text(AGENT)
    data = config_dict(repo, [], measurement={"mode": "exclusive"})
    # Enough blocks, and steps of 4x (step 4, -fast a quarter of the loop), that each is called on a loaded
    # machine (A/A noise up to 39 % per block seen here; a 2x step was once not called).
    data["acceptance"]["max_blocks"] = 10
    data["phases"]["guard"] = {"command": "true"}
    data["protected_paths"] = []
    data["strategies"] = [
        {"name": "knobs", "knobs": {"params": [
            {"name": "step", "values": [1, 4], "write": {"file": "knobs.txt", "pattern": r"^step = (\d+)$"}},
            {"name": "fast", "values": ["", "-fast"], "write": {"flags": "PYFLAGS"}}]}},
        {"name": "plans", "agent": "command", "command": {"command": f"{sys.executable} {tmp_path / 'agent.py'}"},
         "planner": {"command": f"{sys.executable} plan.py", "batch": 2}}]
    config = CampaignConfig(**{**data, "source_dir": str(tmp_path)})
    summary = run_campaign(config, tmp_path / "work", tmp_path / "work" / "farm.duckdb", echo=lambda line: None)

    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    screens = dict(con.execute("SELECT hypothesis_id, status FROM experiments WHERE kind = 'screen' "
                               "AND status <> 'invalidated'").fetchall())
    texts = dict(con.execute("SELECT id, text FROM hypotheses WHERE strategy = 'knobs'").fetchall())
    assert texts == {"knobs-001": "step=1 fast=''", "knobs-002": "step=1 fast=-fast", "knobs-003": "step=4 fast=''",
                     "knobs-004": "step=4 fast=-fast"}
    assert screens["knobs-004"] == "keep"
    # Whatever landed first, a better setting is written on the tip and re-measured: the best one ends there.
    tip = summary.tip
    assert git(repo, "show", f"{tip}:knobs.txt") == "step = 4"
    assert "PYFLAGS=-fast" in git(repo, "show", f"{tip}:.farm-env").splitlines()
    landed = [h for (h,) in con.execute("SELECT e.hypothesis_id FROM merges m JOIN experiments e "
                                        "ON e.id = m.experiment_id WHERE m.landed ORDER BY m.position").fetchall()]
    assert landed[-1] == "knobs-004" and "knobs-001" not in landed  # the no-op setting never lands

    # The planner: its valid lines ran through the agent, its invalid ones are events with their reasons.
    assert {h for h in screens if h.startswith("p")} == {"p1", "p2", "p3"}
    rejected = [m for (m,) in con.execute("SELECT message FROM events WHERE kind = 'planner_rejected'").fetchall()]
    assert len(rejected) == 2 and any("not JSON" in m for m in rejected) and \
        any("id 'p1' is taken" in m for m in rejected)
    calls = tmp_path / "work" / "logs" / "planner" / "plans" / "state" / "calls"
    assert calls.read_text() == "3"  # the third call proposed nothing: the planner is done
    p1, notes = con.execute("SELECT id, agent_notes FROM experiments WHERE hypothesis_id = 'p1'").fetchone()
    assert notes == "a comment for p1; expect nothing\n"
    assert "note the loop layout" in (tmp_path / "work" / "logs" / p1 / "prompt-0.md").read_text()
    assert (tmp_path / "work" / "logs" / "planner" / "plans" / "memory-2.md").exists()
    assert json.loads(con.execute("SELECT state FROM campaign_state").fetchone()[0])["planners"]["plans"]["done"]
