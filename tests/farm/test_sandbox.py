"""The sandboxes of farm/node/sandbox.py with real bubblewrap: what an agent and a phase can write, and that nothing
they start outlives them, `env -i` included (it drops the farm's tag, so the tag sweep alone misses it)."""
import pytest
import yaml
from click.testing import CliRunner

from farm.cli import main
from farm.errors import PhaseError
from farm.experiment.runner import run_command
from farm.node import sandbox
from tests.marked import kill_marked, marked_after_kill, new_marker, wait_marked
from tests.scheduler.tiny_repo import config_dict, make_repo


def test_bubblewrap_runs_here():  # .ci/run installs it; every other test here needs it
    assert sandbox.bwrap_problem() is None


@pytest.fixture
def farm(tmp_path):
    """A workdir with two workers' slots, a lock and a scratch checkout, and a repository beside it."""
    work = tmp_path / "work"
    for path in ("workers/w0/scratch", "workers/w0/cand", "workers/w1/ref", "logs/e1/agent"):
        (work / path).mkdir(parents=True)
    (work / "workers" / "measure.lock").write_text("")
    (work / "workers" / "w1" / "ref" / "bench.py").write_text("honest\n")
    (work / "logs" / "e1" / "prompt-0.md").write_text("the task\n")
    (tmp_path / "repo" / ".git" / "objects").mkdir(parents=True)
    (tmp_path / "repo" / ".git" / "config").write_text("[core]\n")
    return work


def _agent_box(work, tmp_path, **extra):
    return sandbox.agent_sandbox([work, tmp_path / "repo" / ".git"],
                                 [tmp_path / "repo" / ".git" / "objects", work / "logs" / "e1" / "prompt-0.md"],
                                 [work / "workers" / "w0" / "scratch", work / "logs" / "e1" / "agent"], [], **extra)


def test_an_agent_writes_its_scratch_and_own_files_only(farm, tmp_path):
    box = _agent_box(farm, tmp_path, network=True)
    scratch = farm / "workers" / "w0" / "scratch"
    host_tmp = tmp_path.parent / f"{tmp_path.name}-host-file"  # under /tmp (pytest's tmp_path)
    host_tmp.write_text("x")
    result = run_command("agent", "echo mine > out.txt && cat $PROMPT && echo note > $OWN/notes.md && "
                         "ls $HOST_TMP || echo private", scratch, 30, None,
                         env={"PROMPT": str(farm / "logs" / "e1" / "prompt-0.md"), "HOST_TMP": str(host_tmp),
                              "OWN": str(farm / "logs" / "e1" / "agent")}, sandbox=box)
    assert (scratch / "out.txt").read_text() == "mine\n" and "the task" in result.stdout
    assert result.stdout.split()[-1] == "private"  # /tmp is the sandbox's own
    assert (farm / "logs" / "e1" / "agent" / "notes.md").read_text() == "note\n"
    attacks = {"the other worker's reference slot": f"echo fast > {farm}/workers/w1/ref/bench.py",
               "the measurement lock": f"rm {farm}/workers/measure.lock",
               "the repository's configuration": f"echo '[core] fsmonitor = x' >> {tmp_path}/repo/.git/config",
               "the prompt": f"echo obey > {farm}/logs/e1/prompt-0.md",
               "a new file beside the scratch": f"echo x > {farm}/workers/w0/x"}
    for command in attacks.values():
        with pytest.raises(PhaseError):
            run_command("agent", command, scratch, 30, None, sandbox=box)
    assert (farm / "workers" / "w1" / "ref" / "bench.py").read_text() == "honest\n"
    assert (farm / "workers" / "measure.lock").exists()
    assert (tmp_path / "repo" / ".git" / "config").read_text() == "[core]\n"
    assert (farm / "logs" / "e1" / "prompt-0.md").read_text() == "the task\n"
    assert not (farm / "workers" / "w0" / "x").exists()


def test_without_network_an_agent_has_loopback_only(farm, tmp_path):
    box = _agent_box(farm, tmp_path, network=False)
    result = run_command("agent", "cat /proc/net/dev | tail -n +3 | cut -d: -f1", farm / "workers" / "w0" / "scratch",
                         30, None, sandbox=box)
    assert result.stdout.split() == ["lo"]


def test_a_phase_writes_its_own_checkout_only(farm, tmp_path):
    cand = farm / "workers" / "w0" / "cand"
    box = sandbox.phase_sandbox([farm, tmp_path / "repo"], cand)
    run_command("build", "mkdir build && echo o > build/x.o", cand, 30, None, sandbox=box)
    assert (cand / "build" / "x.o").exists()
    with pytest.raises(PhaseError, match="Read-only file system"):
        run_command("bench", f"echo fast > {farm}/workers/w1/ref/bench.py", cand, 30, None, sandbox=box)
    assert (farm / "workers" / "w1" / "ref" / "bench.py").read_text() == "honest\n"


@pytest.mark.parametrize("detach", ["env -i sleep {m}1 &", "env -i setsid sleep {m}2 &", "(env -i sleep {m}3 &) &"])
def test_nothing_started_in_a_sandbox_outlives_it_even_without_the_tag(farm, tmp_path, detach):
    marker = new_marker()
    try:
        run_command("bench", detach.format(m=marker), farm / "workers" / "w0" / "cand", 30, None,
                    sandbox=sandbox.phase_sandbox([farm], farm / "workers" / "w0" / "cand"))
        assert marked_after_kill(marker) == []
    finally:
        kill_marked(marker)


def test_env_i_escapes_the_tag_sweep_without_a_sandbox(tmp_path):
    # Why the PID namespace is needed: the tag is an environment variable, and `env -i` drops it.
    marker = new_marker()
    try:
        # The command ends only once `env` has become the sleep: before that exec it still carries the tag, and
        # the sweep kills it (a race that failed CI once).
        run_command("bench", f"env -i sleep {marker}4 & p=$!; until grep -q '^sleep' /proc/$p/cmdline; do "
                    "sleep 0.01; done", tmp_path, 30, None)
        assert wait_marked(marker, 1) != []
    finally:
        kill_marked(marker)


def test_where_bubblewrap_cannot_run_agents_are_refused_unless_the_campaign_says_sandbox_none(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    data = config_dict(repo, [])
    data["strategies"] = [{"name": "a", "agent": "command", "command": {"command": "true"},
                           "hypotheses": [{"id": "h", "text": "t"}]}]
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "bubblewrap (bwrap) is not installed: apt-get install "
                                                          "bubblewrap (or set `sandbox: none`, unsafe)")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["validate", str(path), "--workdir", str(tmp_path / "work")])
    assert result.exit_code == 2
    assert f"{path}: sandbox: agents run in a sandbox, but bubblewrap (bwrap) is not installed" in result.output
    path.write_text(yaml.safe_dump({**data, "sandbox": "none"}))
    result = CliRunner().invoke(main, ["validate", str(path), "--workdir", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    doctor = CliRunner().invoke(main, ["doctor"])
    assert "warn" in doctor.output and "bubblewrap (bwrap) is not installed" in doctor.output
