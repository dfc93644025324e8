"""A held-out benchmark in a real campaign on local Ray: not decided in screens, decided when a change is about
to land. A change that makes the visible benchmark 4x faster and the held-out one 4x slower is kept at its
screen and not landed ("overfits the visible benchmarks"); a change that speeds both up lands. Agents never
see the held-out benchmark: not in the prompt, not in the strategy memory."""
import textwrap

import duckdb
import pytest

from farm.campaign_file.config import CampaignConfig
from farm.coding_agents import agents, memory
from farm.records import Hypothesis
from scheduler.runtime import run_campaign
from tests.scheduler.tiny_repo import config_dict, make_patch, make_repo

pytestmark = pytest.mark.slow

PROG = textwrap.dedent('''\
    import json
    import time

    N = 400000
    M = 400000


    def timed(n):
        start = time.perf_counter()
        total = 0
        for i in range(n):
            total += i * i
        return time.perf_counter() - start


    print(json.dumps({"name": "visible", "value": timed(N), "unit": "s"}))
    print(json.dumps({"name": "hidden", "value": timed(M), "unit": "s"}))
''')


def _patch(repo, out, n, m):
    return str(make_patch(repo, out, "N = 400000\nM = 400000", f"N = {n}\nM = {m}"))


def test_a_change_that_overfits_the_visible_benchmark_is_kept_at_its_screen_and_not_landed(local_ray, tmp_path):
    repo = make_repo(tmp_path / "repo", prog=PROG)
    # Effects of 4x: on a noisy day this VM's blocks of a 25 ms loop spread by 15-35 %, and three such A/A blocks
    # can count a build bias of 20 % into the floor (a 0.65x win was then discarded).
    hypotheses = [{"id": "overfit", "patch": _patch(repo, tmp_path / "o.patch", 100000, 1600000)},
                  {"id": "both", "patch": _patch(repo, tmp_path / "b.patch", 100000, 100000), "after": "overfit"}]
    data = config_dict(repo, hypotheses, workers={"count": 1})
    data["benchmarks"] = {"visible": {}, "hidden": {"held_out": True}}
    data["acceptance"]["max_blocks"] = 8
    config = CampaignConfig(**data)
    summary = run_campaign(config, tmp_path / "work", tmp_path / "work" / "farm.duckdb", echo=lambda line: None)

    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    screens = dict(con.execute("SELECT hypothesis_id, status FROM experiments WHERE kind = 'screen'").fetchall())
    assert screens == {"overfit": "keep", "both": "keep"}
    decided = {b for (b,) in con.execute("SELECT DISTINCT d.benchmark FROM decisions d JOIN experiments e "
                                         "ON e.id = d.experiment_id WHERE e.kind = 'screen'").fetchall()}
    assert decided == {"visible"}  # the hold-out is never decided in a screen
    merges = dict(con.execute("SELECT e.hypothesis_id, m.landed::VARCHAR || ': ' || m.reason FROM merges m "
                              "JOIN experiments e ON e.id = m.experiment_id").fetchall())
    assert merges["overfit"].startswith("false: discard: overfits the visible benchmarks: held-out hidden "
                                        "regressed"), merges
    assert merges["both"].startswith("true: ")
    assert [h for h in summary.landed] and len(summary.landed) == 1
    confirm = {b for (b,) in con.execute("SELECT d.benchmark FROM decisions d JOIN experiments e "
                                         "ON e.id = d.experiment_id WHERE e.kind = 'confirm'").fetchall()}
    assert confirm == {"visible", "hidden"}

    def query(sql, params):
        cursor = con.execute(sql, params)
        return [c[0] for c in cursor.description], cursor.fetchall()

    seen = memory.strategy_memory(query, "tiny", "s", [], False, 5, config.held_out())
    assert "visible:" in seen and "hidden" not in seen
    task = agents.prompt(config, Hypothesis(id="h", strategy="s", category="c", text="t", agent="command", patch=""))
    assert "visible (lower is better)" in task and "hidden" not in task
