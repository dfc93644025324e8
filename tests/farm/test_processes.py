import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import pytest

import farm.node.processes
from farm.node.processes import TAG_VARIABLE, campaign_tag, kill_tagged, tagged_pids
from tests.marked import kill_marked, marked_after_kill, marked_pids, new_marker, wait_marked

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def marker():
    marker = new_marker()
    yield marker
    kill_marked(marker)


def _campaign() -> str:
    return f"t{uuid.uuid4().hex[:8]}"  # no clash with another test run on this machine


def _start_tagged(tag: str, marker: str, digit: int) -> subprocess.Popen:
    """A sleeping process carrying `tag`, in its own session like a phase command."""
    env = {**os.environ, TAG_VARIABLE: f"{tag}{uuid.uuid4().hex}"}
    return subprocess.Popen(["sleep", f"{marker}{digit}"], env=env, start_new_session=True)


def test_campaign_tag_ends_with_a_colon_so_that_w1_is_not_w10():
    assert campaign_tag("c") == "c:"
    assert campaign_tag("c", "w1") == "c:w1:"
    assert not "c:w10:abc".startswith(campaign_tag("c", "w1"))
    with pytest.raises(ValueError):
        campaign_tag("c:w1")


def test_kill_tagged_kills_one_worker_and_leaves_other_workers_and_campaigns_alone(marker):
    campaign, other = _campaign(), _campaign()
    w1 = _start_tagged(campaign_tag(campaign, "w1"), marker, 1)
    w10 = _start_tagged(campaign_tag(campaign, "w10"), marker, 2)
    elsewhere = _start_tagged(campaign_tag(other, "w1"), marker, 3)
    try:
        assert len(wait_marked(marker, 3)) == 3
        assert tagged_pids(campaign_tag(campaign, "w1")) == [w1.pid]
        assert kill_tagged(campaign_tag(campaign, "w1")) == 1
        assert w1.wait(timeout=5) == -signal.SIGTERM
        assert w10.poll() is None and elsewhere.poll() is None
        assert kill_tagged(campaign_tag(campaign)) == 1  # the whole campaign: w10 is what is left of it
        assert w10.wait(timeout=5) == -signal.SIGTERM
        assert elsewhere.poll() is None
        assert kill_tagged(campaign_tag(other)) == 1
        assert tagged_pids(campaign_tag(campaign)) == [] and tagged_pids(campaign_tag(other)) == []
    finally:
        for proc in (w1, w10, elsewhere):
            proc.kill()
            proc.wait()



def test_a_process_caught_in_the_middle_of_an_exec_is_looked_at_again(marker, monkeypatch):
    # Between its fork and the end of its exec a command's child shows an empty environment for an instant:
    # here the first look at it sees that, as a sweep right after the command ended can (CI saw one survive).
    campaign = _campaign()
    child = _start_tagged(campaign_tag(campaign, "w1"), marker, 1)
    try:
        assert len(wait_marked(marker, 1)) == 1
        real, looked = farm.node.processes._tag_of, []

        def mid_exec_once(pid):
            if pid == child.pid and not looked:
                looked.append(pid)
                return ""
            return real(pid)

        monkeypatch.setattr(farm.node.processes, "_tag_of", mid_exec_once)
        assert kill_tagged(campaign_tag(campaign)) == 1 and looked == [child.pid]
        assert child.wait(timeout=5) == -signal.SIGTERM
    finally:
        child.kill()
        child.wait()


def test_kill_tagged_gets_sigkill_to_a_process_that_ignores_sigterm(marker):
    campaign = _campaign()
    env = {**os.environ, TAG_VARIABLE: f"{campaign_tag(campaign, 'w1')}{uuid.uuid4().hex}"}
    proc = subprocess.Popen(["bash", "-c", f"trap '' TERM; sleep {marker}1 & wait"], env=env, start_new_session=True)
    try:
        assert len(wait_marked(marker, 1)) == 1
        assert kill_tagged(campaign_tag(campaign), grace=0.2) == 2  # bash and its sleep
        assert proc.wait(timeout=5) == -signal.SIGKILL
        assert marked_after_kill(marker) == []
    finally:
        proc.kill()
        proc.wait()


def test_a_phase_outlives_its_killed_worker_until_kill_tagged_finds_it(marker):
    # A worker actor, killed with SIGKILL mid-phase: nothing in it can clean up.
    campaign = _campaign()
    worker = (f"from farm.experiment.runner import run_command\n"
              f"run_command('bench', 'setsid sleep {marker}1 >/dev/null 2>&1 & sleep {marker}2', '.', 600, None,"
              f" tag='{campaign}:w1')\n")
    actor = subprocess.Popen([sys.executable, "-c", worker], cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    try:
        assert len(wait_marked(marker, 2)) == 2
        actor.send_signal(signal.SIGKILL)
        actor.wait(timeout=5)
        assert len(marked_pids(marker)) == 2  # the defect this guards against: the phase lives on
        assert kill_tagged(campaign_tag(campaign, "w1")) >= 2  # from another process, by the tag alone
        assert marked_after_kill(marker) == []
    finally:
        actor.kill()
        actor.wait()


def test_one_farm_run_per_workdir_and_the_lock_dies_with_its_holder(tmp_path):
    from farm.errors import FarmError
    from farm.node.campaign_lock import campaign_lock

    workdir = tmp_path / "work"
    with campaign_lock(workdir):
        with pytest.raises(FarmError, match=f"in use by a running `farm run` \\(pid {os.getpid()}\\)"):
            with campaign_lock(workdir):
                pass
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time, pathlib; sys.path.insert(0, sys.argv[1]); "
                               "from farm.node.campaign_lock import campaign_lock\n"
                               "with campaign_lock(pathlib.Path(sys.argv[2])):\n print('held', flush=True); "
                               "time.sleep(60)", str(pathlib.Path(__file__).resolve().parents[2]), str(workdir)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(FarmError, match=str(holder.pid)):
        with campaign_lock(workdir):
            pass
    holder.kill()
    holder.wait()
    with campaign_lock(workdir):  # a killed driver leaves the workdir free
        pass


def test_leftovers_of_an_earlier_driver_are_its_phases_and_the_processes_of_its_ray_session(tmp_path):
    from farm.node.processes import RAY_SESSION_FILE, kill_campaign_leftovers, pids_using

    session = tmp_path / "session_1"
    session.mkdir()
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / RAY_SESSION_FILE).write_text(str(session))
    # A Ray agent: its title overwrites its environment, but it keeps a log file of the session open.
    agent = subprocess.Popen(["python3", "-c", f"import time; log = open({str(session / 'agent.log')!r}, 'w'); "
                              "time.sleep(60)"])
    bystander = subprocess.Popen(["python3", "-c", f"import time; log = open({str(tmp_path / 'other.log')!r}, 'w'); "
                                  "time.sleep(60)"])
    try:
        deadline = time.monotonic() + 10
        while agent.pid not in pids_using(session) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pids_using(session) == [agent.pid]
        assert kill_campaign_leftovers("c", tmp_path / "work") == 1
        assert agent.wait(timeout=10) is not None and bystander.poll() is None
        assert not (tmp_path / "work" / RAY_SESSION_FILE).exists()
    finally:
        agent.kill()
        bystander.kill()
