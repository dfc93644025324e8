"""Agents and candidates that try to fake a win, in one real campaign on local Ray (issue 19).

Each attack of tests/redteam/agents/ is a command agent; three more are candidates whose own code (their build
or benchmark) attacks, as patches. Every attack must end `tampered`, `crash` with a one-line reason, or
measured as what it honestly is (a comment is a discard); nothing of it may reach another measurement: the
honest no-ops that run after the attacks on the same workers are discards, a real speed-up is still kept, no
process of any attack is alive afterwards, the repository's configuration is untouched, and the campaign
finishes. On main the index-flag and .pyc attacks ended `no_change` and poisoned the next no-ops (kept at
0.0001x), the fsmonitor script ran in the farm's own git calls, and the writes into the other worker's slots
and the lock went through.
"""
import pathlib
import subprocess
import sys

import duckdb
import pytest

from farm.campaign_file.config import CampaignConfig
from scheduler.runtime import run_campaign
from tests.marked import kill_marked, marked_after_kill, new_marker
from tests.scheduler.tiny_repo import config_dict, make_repo

pytestmark = pytest.mark.slow
AGENTS = pathlib.Path(__file__).resolve().parent / "agents"


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def _patch(repo: pathlib.Path, out: pathlib.Path, path: str, new_text: str) -> str:
    """A patch that gives `path` the text `new_text` (the repository is left as it was)."""
    file = repo / path
    old = file.read_text()
    file.write_text(new_text)
    out.write_text(_git(repo, "diff"))
    file.write_text(old)
    return str(out)


def _agent(name: str, *args: str) -> dict:
    command = " ".join([sys.executable, str(AGENTS / f"{name}.py"), *args])
    return {"name": name.replace("_", "-"), "agent": "command", "command": {"command": command, "timeout": 60},
            "hypotheses": [{"id": name, "category": "attack", "text": f"what {name}.py does"}]}


def test_attacks_are_stopped_and_leave_the_other_verdicts_alone(local_ray, tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "harness").mkdir()
    (repo / "harness" / "expected.txt").write_text("total += i * i\n")
    (repo / "data.txt").write_text("squares\n")
    (repo / "build.sh").write_text("true\n")
    (repo / ".gitignore").write_text("*.pyc\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "harness, build, ignores")
    config_before = (repo / ".git" / "config").read_text()
    marker = new_marker()
    fsmonitor_ran = tmp_path / "fsmonitor-ran"
    prog = (repo / "prog.py").read_text()
    other_ref = ('import pathlib\nhere = pathlib.Path.cwd()\nother = "w1" if here.parent.name == "w0" else "w0"\n'
                 'target = here.parent.parent / other / "ref" / "prog.py"\n'
                 'target.write_text("import time\\ntime.sleep(1)\\n" + target.read_text())\n')
    spawn = f'import subprocess\nsubprocess.Popen(["env", "-i", "sleep", "{marker}2"], start_new_session=True)\n'
    candidates = [
        {"id": "build_rewrites_guard",
         "patch": _patch(repo, tmp_path / "b.patch", "build.sh", "printf 'true\\n' > guard.sh\n")},
        {"id": "bench_writes_other_ref", "patch": _patch(repo, tmp_path / "r.patch", "prog.py", other_ref + prog)},
        {"id": "bench_env_i", "patch": _patch(repo, tmp_path / "e.patch", "prog.py", spawn + prog)},
        {"id": "real_speed_up", "patch": _patch(repo, tmp_path / "s.patch", "prog.py",
                                                prog.replace("N = 400000", "N = 100000"))},
    ]
    attacks = [_agent("index_flags"), _agent("pyc_shadow"), _agent("fsmonitor", str(fsmonitor_ran), str(repo)),
               _agent("other_ref"), _agent("lock"), _agent("phase_file"), _agent("env_i", marker),
               _agent("non_ascii"), _agent("symlink")]
    no_ops = {"name": "honest", "agent": "command",
              "command": {"command": f"{sys.executable} {AGENTS / 'comment.py'}"},
              "hypotheses": [{"id": f"no_op_{i}", "category": f"c{i}", "text": "a comment"} for i in range(4)]}
    data = config_dict(repo, [], measurement={"mode": "exclusive"}, merge={"enabled": False})
    data["phases"]["build"] = {"command": "bash build.sh"}
    data["protected_paths"] = ["guard.sh", "harness/", "data.txt"]
    data["strategies"] = [*attacks, {"name": "candidates", "hypotheses": candidates}, no_ops]
    try:
        run_campaign(CampaignConfig(**data), tmp_path / "work", tmp_path / "work" / "farm.duckdb",
                     echo=lambda line: None)
        assert marked_after_kill(marker) == []  # neither the agent's nor the benchmark's `env -i` process
    finally:
        kill_marked(marker)

    con = duckdb.connect(str(tmp_path / "work" / "farm.duckdb"), read_only=True)
    rows = dict(con.execute("SELECT hypothesis_id, status || ': ' || reason FROM experiments WHERE kind = 'screen'"
                            ).fetchall())
    expected = {
        "index_flags": "tampered: the change touches protected path(s): guard.sh",
        "pyc_shadow": "discard: ",  # the .pyc is ignored: not carried; the comment is measured as what it is
        "fsmonitor": "tampered: the agent changed its checkout's git configuration",
        "other_ref": "crash: agent failed: exit 1: ",  # its sandbox hides the farm's directories
        "lock": "crash: agent failed: exit 1: ",
        "phase_file": "crash: agent failed: exit 1: ",
        "env_i": "discard: ",
        "non_ascii": "tampered: the change touches protected path(s): harness/é.txt",
        "symlink": "tampered: the agent's change is refused: data.txt is a symbolic link out of the tree",
        "build_rewrites_guard": "tampered: the cand checkout is not its commit before the guard: ",
        "bench_writes_other_ref": "crash: benchmark run (cand, block 0) failed: ",
        "bench_env_i": "discard: ",
        "real_speed_up": "keep: ",
    }
    for hypothesis, start in expected.items():
        assert rows[hypothesis].startswith(start), (hypothesis, rows[hypothesis])
    assert "No such file or directory" in rows["other_ref"]  # hidden from agents
    assert "Read-only file system" in rows["bench_writes_other_ref"]  # read-only to phases
    assert "guard.sh differ(s) from the commit" in rows["build_rewrites_guard"]
    assert all(rows[f"no_op_{i}"].startswith("discard: ") for i in range(4)), rows
    assert con.execute("SELECT count(*) FROM events WHERE message LIKE 'ignored files in the agent''s checkout are "
                       "not carried: json.pyc%'").fetchone() == (1,)
    assert con.execute("SELECT status FROM campaigns").fetchone() == ("finished",)
    # Nothing reached the farm's own files or the user's repository.
    assert not fsmonitor_ran.exists()
    assert (repo / ".git" / "config").read_text() == config_before
    workers = tmp_path / "work" / "workers"
    assert (workers / "measure.lock").exists()
    for worker in ("w0", "w1"):
        assert not list((workers / worker).rglob("json.pyc"))
        assert "sleep(1)" not in (workers / worker / "ref" / "prog.py").read_text()
