"""Faults with real parts: `farm run` in its own process on a real local Ray, a real git repository and a real
DuckDB file; a worker actor killed with SIGKILL mid-measurement, the driver killed, Ctrl-C.

What is left behind is checked by walking /proc for processes whose working directory or command line is in
the test's directory (every checkout, the workdir and the Ray session the farm started are there), not with
the farm's own tags.
"""
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import duckdb
import pytest
import yaml

from farm.node.processes import _tag_of, campaign_tag, run_key, tagged_pids
from tests.scheduler.tiny_repo import config_dict, make_patch, make_repo

pytestmark = pytest.mark.slow
ROOT = pathlib.Path(__file__).resolve().parents[2]
HYPOTHESES = ("fewer_iterations", "comment_a", "comment_b", "comment_c")


class Farm:
    """`farm run` as a user starts it: its own process group (a terminal's Ctrl-C goes to the whole group)."""

    def __init__(self, tmp_path: pathlib.Path, *args: str):
        self.lines: list[str] = []
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "farm.cli", "run", str(tmp_path / "campaign.yaml"), "--workdir",
             str(tmp_path / "work"), *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, fragment: str, occurrence: int = 1, seconds: float = 180) -> str:
        """The `occurrence`-th line containing `fragment`, once it is printed."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = [line for line in list(self.lines) if fragment in line]
            if len(found) >= occurrence:
                return found[occurrence - 1]
            assert self.process.poll() is None, "farm run ended early:\n" + "\n".join(self.lines)
            time.sleep(0.1)
        raise AssertionError(f"no line with {fragment!r} in {seconds}s:\n" + "\n".join(self.lines))

    def wait(self, seconds: float = 300) -> int:
        code = self.process.wait(timeout=seconds)
        self.reader.join(timeout=10)
        return code


def _campaign(tmp_path: pathlib.Path) -> None:
    repo = make_repo(tmp_path / "repo")
    patches = tmp_path / "patches"
    patches.mkdir()
    hypotheses = [{"id": "fewer_iterations",
                   "patch": str(make_patch(repo, patches / "fast.patch", "N = 400000", "N = 100000"))}]
    hypotheses += [{"id": name, "patch": str(make_patch(repo, patches / f"{name}.patch", "N = 400000",
                                                          f"N = 400000  # {name}"))} for name in HYPOTHESES[1:]]
    # send_every 0: each block goes to the store at once, so a worker killed mid-measurement has some stored.
    data = config_dict(repo, hypotheses, measurement={"mode": "exclusive", "send_every": 0})
    # Each benchmark run lingers after printing its value, so that a measurement is long enough to be hit.
    data["phases"]["bench"]["command"] = "python prog.py && sleep 0.4"
    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(data))


def _measuring(tmp_path: pathlib.Path, farm: Farm, screen: int = 1, block: int = 1) -> tuple[str, str]:
    """Wait until the `screen`-th screening experiment measures its `block`-th block (seen on its worker's
    phase board); returns (worker, experiment id)."""
    line = farm.wait_for_line(": screen (parent", occurrence=screen)
    worker, experiment = line.split("] ", 1)[1].split()[:2]
    board = tmp_path / "work" / "workers" / "phases" / f"{worker}.json"
    deadline = time.monotonic() + 120
    blocks = set()  # the start times of the experiment's blocks seen so far
    while time.monotonic() < deadline:
        try:
            record = json.loads(board.read_text())
        except (OSError, ValueError):
            record = {}
        if record.get("phase") == "measure" and record.get("experiment") == experiment:
            blocks.add(record["since"])
            if len(blocks) >= block:
                return worker, experiment
        time.sleep(0.05)
    raise AssertionError(f"{experiment} never measured")


def _actor_of(tmp_path: pathlib.Path, worker: str) -> int:
    """The pid of the Ray actor process running `worker`'s benchmark: the first ray:: ancestor of a process
    tagged for that worker."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for pid in tagged_pids(campaign_tag(run_key("tiny", tmp_path / "work"), worker)):
            while pid > 1:
                try:
                    if pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::"):
                        return pid
                    pid = int(pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError):
                    break
        time.sleep(0.05)
    raise AssertionError(f"no running process of {worker}")


def _processes_in(directory: pathlib.Path) -> list[str]:
    """Live processes whose working directory or command line is inside `directory`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{name}/cwd")
            cmdline = pathlib.Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = pathlib.Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (cwd.startswith(str(directory)) or str(directory) in cmdline):
            found.append(f"{name} {cwd} {cmdline.strip()[:100]} (farm tag {_tag_of(int(name))})")
    return found


def _nothing_left(directory: pathlib.Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while (left := _processes_in(directory)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == []


def _check_store(tmp_path: pathlib.Path) -> duckdb.DuckDBPyConnection:
    """Every hypothesis has exactly one final verdict, the win landed once, no sample counts twice."""
    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    finals = con.execute("""SELECT hypothesis_id, count(*) FROM experiments WHERE kind = 'screen'
                            AND status NOT IN ('lost', 'invalidated') GROUP BY 1 ORDER BY 1""").fetchall()
    assert finals == [(h, 1) for h in sorted(HYPOTHESES)]
    assert con.execute("SELECT count(*) FROM experiments WHERE status = 'running'").fetchone() == (0,)
    assert con.execute("""SELECT count(*) FROM (SELECT experiment_id, arm, block, benchmark FROM samples
                          GROUP BY ALL HAVING count(*) > 1)""").fetchone() == (0,)
    # Each decision counts exactly the blocks its own experiment measured, both arms in each.
    mismatched = con.execute("""SELECT d.experiment_id FROM decisions d JOIN (SELECT experiment_id,
                                count(DISTINCT block) AS blocks, count(*) AS samples FROM samples GROUP BY 1) s
                                USING (experiment_id) WHERE d.n_blocks <> s.blocks OR s.samples <> 2 * s.blocks
                             """).fetchall()
    assert mismatched == []
    # Every lost attempt was run again under a new id.
    unretried = con.execute("""SELECT id FROM experiments l WHERE status = 'lost' AND kind <> 'aa' AND NOT EXISTS
                               (SELECT 1 FROM experiments r WHERE r.retry_of = l.id)""").fetchall()
    assert unretried == []
    landed = con.execute("""SELECT e.hypothesis_id FROM merges m JOIN experiments e ON e.id = m.experiment_id
                            WHERE m.landed""").fetchall()
    assert landed == [("fewer_iterations",)]
    return con


def test_a_worker_killed_mid_measurement_is_replaced_and_the_campaign_completes(tmp_path):
    _campaign(tmp_path)
    farm = Farm(tmp_path)
    worker, experiment = _measuring(tmp_path, farm, block=2)
    actor = _actor_of(tmp_path, worker)
    os.kill(actor, signal.SIGKILL)
    assert farm.wait() == 0, "\n".join(farm.lines)
    con = _check_store(tmp_path)
    status, reason = con.execute("SELECT status, reason FROM experiments WHERE id = ?", [experiment]).fetchone()
    assert status == "lost" and f"worker {worker} died" in reason
    # Its partial samples are kept, marked by the experiment's status, and the retry measured afresh.
    assert con.execute("SELECT count(*) FROM samples WHERE experiment_id = ?", [experiment]).fetchone()[0] > 0
    assert con.execute("SELECT status FROM campaigns").fetchone() == ("finished",)
    _nothing_left(tmp_path)


def test_a_killed_driver_is_resumed_to_the_same_end(tmp_path):
    _campaign(tmp_path)
    farm = Farm(tmp_path)
    _measuring(tmp_path, farm, screen=3)  # two screens started or done before it
    os.kill(farm.process.pid, signal.SIGKILL)
    farm.wait()
    resumed = Farm(tmp_path, "--resume")
    assert resumed.wait() == 0, "\n".join(resumed.lines)
    assert any("resumed at experiment" in line for line in resumed.lines)
    con = _check_store(tmp_path)
    lost = con.execute("SELECT reason FROM experiments WHERE status = 'lost'").fetchall()
    assert lost and all("coordinator stopped" in reason for (reason,) in lost)
    assert con.execute("SELECT status FROM campaigns").fetchone() == ("finished",)
    repo = tmp_path / "repo"
    ahead = subprocess.run(["git", "rev-list", "--count", "main..farm/tiny/integrated"], cwd=repo, check=True,
                           capture_output=True, text=True).stdout.strip()
    assert ahead == "1"
    _nothing_left(tmp_path)


def test_ctrl_c_lets_the_running_experiments_finish_writes_the_summary_and_leaves_nothing(tmp_path):
    _campaign(tmp_path)
    farm = Farm(tmp_path)
    _worker, experiment = _measuring(tmp_path, farm)
    os.killpg(farm.process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    assert farm.wait() == 130, "\n".join(farm.lines)
    assert any("interrupted: no new experiments" in line for line in farm.lines)
    assert any(line.startswith("store: ") for line in farm.lines)
    assert any("--resume" in line for line in farm.lines)
    _nothing_left(tmp_path)
    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    assert con.execute("SELECT status FROM campaigns").fetchone() == ("interrupted",)
    status = con.execute("SELECT status FROM experiments WHERE id = ?", [experiment]).fetchone()[0]
    assert status in ("keep", "discard")  # it finished; it was not abandoned
    assert con.execute("SELECT count(*) FROM experiments WHERE status IN ('running', 'lost')").fetchone() == (0,)


def test_a_second_ctrl_c_abandons_the_running_experiments_and_resume_runs_them_again(tmp_path):
    _campaign(tmp_path)
    farm = Farm(tmp_path)
    _worker, experiment = _measuring(tmp_path, farm, block=2)
    os.killpg(farm.process.pid, signal.SIGINT)
    farm.wait_for_line("interrupted: no new experiments")
    os.killpg(farm.process.pid, signal.SIGINT)
    assert farm.wait() == 130, "\n".join(farm.lines)
    assert any("interrupted again: abandoning" in line for line in farm.lines)
    _nothing_left(tmp_path)
    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    assert con.execute("SELECT status, reason FROM experiments WHERE id = ?", [experiment]).fetchone() == \
        ("lost", "abandoned: a second interrupt")
    con.close()
    resumed = Farm(tmp_path, "--resume")
    assert resumed.wait() == 0, "\n".join(resumed.lines)
    _check_store(tmp_path)
    _nothing_left(tmp_path)


def test_a_campaign_that_fails_is_recorded_as_failed_not_finished(local_ray, tmp_path, monkeypatch):
    # On main an exception in the loop still marked the campaign `finished`.
    from farm.campaign_file.config import CampaignConfig
    from scheduler.campaign import Campaign
    from scheduler.runtime import run_campaign

    _campaign(tmp_path)
    config = CampaignConfig(**yaml.safe_load((tmp_path / "campaign.yaml").read_text()))

    def broken(self, result):
        raise RuntimeError("a bug in the campaign logic")

    monkeypatch.setattr(Campaign, "finish", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        run_campaign(config, tmp_path / "work", tmp_path / "work" / "farm.duckdb", echo=lambda line: None)
    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    assert con.execute("SELECT status FROM campaigns").fetchone() == ("failed",)
    assert con.execute("SELECT count(*) FROM experiments WHERE status = 'running'").fetchone() == (0,)
    assert tagged_pids(campaign_tag(run_key("tiny", tmp_path / "work"))) == []
