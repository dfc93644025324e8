"""A campaign on a two-node Ray cluster on one machine (ray.cluster_utils): each node keeps its own clone and
slots under its own directory, commits travel as bundles, and wins found on both nodes land."""
import subprocess
import textwrap

import duckdb
import pytest
import ray
from ray.cluster_utils import Cluster

from farm.campaign_file.config import CampaignConfig
from farm.node.cpusets import affinity, available_cpus
from scheduler.runtime import run_campaign
from tests.scheduler.tiny_repo import config_dict, make_patch, make_repo
from worktrees import TargetRepo

pytestmark = pytest.mark.slow

# Two loops, each half the run time: cutting either is a win, and the two changes are lines apart, so that the
# second one lands on top of the first without a conflict.
PROG = textwrap.dedent('''\
    import json
    import os
    import time

    A = 1500000


    def loop_a():
        return sum(i * i for i in range(A))


    B = 1500000


    def loop_b():
        return sum(i * 3 for i in range(B))


    start = time.perf_counter()
    total = loop_a() + loop_b()
    print(json.dumps({"name": "loops", "value": time.perf_counter() - start, "unit": "s",
                      "cpus": sorted(os.sched_getaffinity(0)), "pid": os.getpid()}))
''')


@pytest.fixture
def two_nodes():
    """A head node and a second node, one CPU each; the second is started on CPU 1 only, like a machine of its
    own, so that each node's CPU sets come from what that node has."""
    assert not ray.is_initialized()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    with affinity(available_cpus()[-1:]):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_a_campaign_on_two_nodes_lands_wins_found_on_both(two_nodes, tmp_path):
    repo = make_repo(tmp_path / "repo", PROG, "grep -q 'i \\* i' prog.py\n")
    nodes_dir = tmp_path / "elsewhere"
    patches = tmp_path / "patches"
    patches.mkdir()
    hypotheses = [{"id": f"fewer_{loop}", "category": "algorithm",
                   "patch": str(make_patch(repo, patches / f"{loop}.patch", f"{loop.upper()} = 1500000",
                                           f"{loop.upper()} = 150000"))} for loop in ("a", "b")]
    data = config_dict(repo, hypotheses, measurement={"mode": "exclusive"})
    data["workers"] = {"count": 2, "node_dir": str(nodes_dir / "{node}")}
    # The two nodes share this machine's two cores with two sets of Ray daemons: room for a noisy stretch.
    data["acceptance"].update(aa_blocks=6, max_blocks=12)
    summary = run_campaign(CampaignConfig(**data), tmp_path / "work", tmp_path / "work" / "farm.duckdb",
                           address=two_nodes.address, echo=lambda line: None)
    assert not summary.interrupted

    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    screens = dict(con.execute("SELECT hypothesis_id, worker FROM experiments WHERE kind = 'screen' "
                               "AND status = 'keep'").fetchall())
    assert set(screens) == {"fewer_a", "fewer_b"} and set(screens.values()) == {"w0", "w1"}, screens
    landed = con.execute("SELECT e.hypothesis_id FROM merges m JOIN experiments e ON e.id = m.experiment_id "
                         "WHERE m.landed").fetchall()
    assert set(landed) == {("fewer_a",), ("fewer_b",)}
    hub = TargetRepo(repo)
    landed = hub.git("show", f"{summary.integrated_branch}:prog.py")
    assert "A = 150000" in landed and "B = 150000" in landed
    # Each worker's CPU set is its own node's: w0 on the head's first CPU, w1 on the CPU the second node has.
    cpus = dict(con.execute("SELECT DISTINCT worker, cpus FROM experiments").fetchall())
    assert cpus == {"w0": available_cpus()[:1], "w1": available_cpus()[-1:]}, cpus

    # The second node worked in its own directory, in a bare clone with no link to the hub's objects; the
    # workdir holds the first node's worker only.
    (clone,) = nodes_dir.glob("*/*/repo.git")
    assert not (clone / "objects" / "info" / "alternates").exists()
    assert {p.name for p in (clone.parent / "workers").iterdir() if p.is_dir()} >= {"w1"}
    assert not (tmp_path / "work" / "workers" / "w1").exists() and (tmp_path / "work" / "workers" / "w0").exists()
    assert str(tmp_path / "work") not in subprocess.run(["git", "worktree", "list"], cwd=clone, text=True,
                                                        capture_output=True, check=True).stdout
