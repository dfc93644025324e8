"""The agent's scratch checkout and the slot check: what an agent can do to a checkout never reaches one that is
measured (worktrees/scratch.py, Slot.verify). Real git, no Ray."""
import os
import subprocess
import time

import pytest

from worktrees import ChangeRefused, Scratch, SlotPool, TargetRepo
from worktrees.scratch import points_outside


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    (path / "harness").mkdir(parents=True)
    (path / "bench.py").write_text("print('bench')\n")
    (path / "prog.py").write_text("x = 1\n")
    (path / "harness" / "data.txt").write_text("data\n")
    (path / ".gitignore").write_text("build/\n*.pyc\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return TargetRepo(path)


def _scratch(repo, tmp_path):
    scratch = Scratch(repo, tmp_path / "w0" / "scratch")
    scratch.create(repo.resolve("main"), "farm/t/t-0001")
    return scratch


def test_the_change_is_read_with_a_fresh_index_so_index_flags_hide_nothing(repo, tmp_path):
    scratch = _scratch(repo, tmp_path)
    git(scratch.path, "update-index", "--skip-worktree", "bench.py")
    git(scratch.path, "update-index", "--assume-unchanged", "prog.py")
    (scratch.path / "bench.py").write_text("print('fast')\n")
    (scratch.path / "prog.py").write_text("x = 2\n")
    assert git(scratch.path, "status", "--porcelain") == ""  # the scratch's own git sees nothing
    change = scratch.read_change(repo.resolve("main"))
    assert sorted(change.paths) == ["bench.py", "prog.py"]


def test_ignored_files_are_not_carried_and_deletions_and_non_ascii_names_are(repo, tmp_path):
    scratch = _scratch(repo, tmp_path)
    (scratch.path / "statistics.pyc").write_bytes(b"\x00shadow")
    (scratch.path / "build").mkdir()
    (scratch.path / "build" / "x.o").write_text("o")
    (scratch.path / "prog.py").unlink()
    (scratch.path / "harness" / "é.txt").write_text("new\n")
    change = scratch.read_change(repo.resolve("main"))
    assert sorted(change.paths) == ["harness/é.txt", "prog.py"]
    assert sorted(change.ignored) == ["build/", "statistics.pyc"]
    cand = SlotPool(repo, tmp_path / "w0").slot("cand", repo.resolve("main"))
    cand.start_branch("farm/t/t-0001", repo.resolve("main"))
    cand.take_tree(change.tree)
    assert sorted(cand.changed_paths()) == ["harness/é.txt", "prog.py"]  # not "harness/\303\251.txt", quoted
    assert not (cand.path / "statistics.pyc").exists() and not (cand.path / "prog.py").exists()


def test_the_farm_never_runs_the_scratch_configuration(repo, tmp_path):
    scratch = _scratch(repo, tmp_path)
    marker = tmp_path / "ran"
    script = tmp_path / "monitor.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    git(scratch.path, "config", "core.fsmonitor", str(script))
    git(scratch.path, "config", "filter.evil.clean", f"sh -c 'touch {marker}; cat'")
    (scratch.path / ".gitattributes").write_text("* filter=evil\n")
    (scratch.path / "prog.py").write_text("x = 3\n")
    marker.unlink(missing_ok=True)  # `git config` itself may have run the monitor above
    assert scratch.config_changed()
    change = scratch.read_change(repo.resolve("main"))
    assert sorted(change.paths) == [".gitattributes", "prog.py"]
    assert not marker.exists()


def test_links_out_of_the_tree_and_embedded_repositories_are_refused(repo, tmp_path):
    for name, target in [("link", "/etc/passwd"), ("harness/up", "../../x"), ("hop", "harness/../../x")]:
        scratch = _scratch(repo, tmp_path)
        (scratch.path / name).symlink_to(target)
        with pytest.raises(ChangeRefused, match="symbolic link out of the tree"):
            scratch.read_change(repo.resolve("main"))
    scratch = _scratch(repo, tmp_path)
    (scratch.path / "harness" / "ok").symlink_to("../prog.py")  # inside: carried
    git(scratch.path / "harness", "init", "-q", "nested")
    (scratch.path / "harness" / "nested" / "f").write_text("f")
    git(scratch.path / "harness" / "nested", "add", "f")
    git(scratch.path / "harness" / "nested", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "n")
    with pytest.raises(ChangeRefused, match="harness/nested is an embedded git repository"):
        scratch.read_change(repo.resolve("main"))


@pytest.mark.parametrize("link, target, outside", [
    ("a", "b", False), ("a", "../b", True), ("d/a", "../b", False), ("d/a", "../../b", True),
    ("a", "/b", True), ("a", "d/../b", True), ("d/e/a", "../../x/y", False), ("a", "./b", False)])
def test_points_outside(link, target, outside):
    assert points_outside(link, target) is outside


def test_verify_names_every_way_a_checkout_can_differ_from_its_commit(repo, tmp_path):
    base = repo.resolve("main")
    cand = SlotPool(repo, tmp_path / "w0").slot("cand", base)
    protected = ["bench.py", "harness/"]
    assert cand.verify(protected, ["build/"]) == []
    (cand.path / "build").mkdir()
    (cand.path / "build" / "x.o").write_text("o")
    assert cand.verify(protected, ["build/"]) == []  # a declared output
    (cand.path / "statistics.pyc").write_bytes(b"shadow")
    assert "statistics.pyc: not in the commit" in " ".join(cand.verify(protected, ["build/"]))
    cand.reset(base, keep=["build/"])
    cand.git("update-index", "--skip-worktree", "bench.py")
    (cand.path / "bench.py").write_text("print('fast')\n")
    problems = " ".join(cand.verify(protected, ["build/"]))
    assert "index flags hide changes to bench.py" in problems and "protected bench.py not as committed" in problems
    cand.git("update-index", "--no-skip-worktree", "bench.py")
    cand.reset(base, keep=["build/"])
    (cand.path / "harness" / "data.txt").unlink()
    assert "protected harness/data.txt not as committed" in " ".join(cand.verify(protected, []))


def test_verify_hashes_protected_files_and_does_not_trust_stat_data(repo, tmp_path):
    # With core.trustctime off (a setting some file systems need), git takes a file with its size and mtime for
    # unchanged: an edit of the same length with its mtime put back is invisible to status, not to the hash.
    repo.git("config", "core.trustctime", "false")
    cand = SlotPool(repo, tmp_path / "w0").slot("cand", repo.resolve("main"))
    bench = cand.path / "bench.py"
    hour_ago = time.time_ns() - 3600 * 10**9  # older than the index: not "racily clean", git trusts its stat
    os.utime(bench, ns=(hour_ago, hour_ago))
    cand.git("update-index", "--refresh")
    assert cand.verify(["bench.py"], []) == []  # the index is read and its entries kept
    bench.write_bytes(bytes(reversed(bench.read_bytes())))
    os.utime(bench, ns=(hour_ago, hour_ago))
    assert cand.git("--no-optional-locks", "status", "--porcelain") == ""  # git itself sees nothing
    assert cand.verify(["bench.py"], []) == ["protected bench.py not as committed"]


def test_verify_confirms_a_hash_with_git_where_a_filter_applies(repo, tmp_path):
    # A file git converts on the way in (here CRLF in the checkout, LF in the blob) hashes differently as bytes:
    # git's own hash-object decides, so a file as committed is not called rewritten.
    cand = SlotPool(repo, tmp_path / "w0").slot("cand", repo.resolve("main"))
    (cand.path / ".gitattributes").write_text("*.txt text eol=crlf\n")
    (cand.path / "notes.txt").write_bytes(b"one\r\ntwo\r\n")
    cand.git("add", ".gitattributes", "notes.txt")
    cand.git("commit", "-qm", "crlf")
    assert (cand.path / "notes.txt").read_bytes() == b"one\r\ntwo\r\n"
    assert cand.verify(["notes.txt"], []) == []


def _counting_git(monkeypatch) -> list:
    import worktrees.slots
    calls = []
    real = worktrees.slots.run_git
    monkeypatch.setattr(worktrees.slots, "run_git", lambda cwd, *args, **kw: calls.append(args) or real(cwd, *args,
                                                                                                        **kw))
    return calls


def test_a_checkout_unchanged_since_its_last_clean_verify_is_verified_without_git(repo, tmp_path, monkeypatch):
    cand = SlotPool(repo, tmp_path / "w0").slot("cand", repo.resolve("main"))
    time.sleep(0.1)  # the checkout's files older than the racy window
    calls = _counting_git(monkeypatch)
    assert cand.verify(["bench.py"], ["build/"]) == [] and calls  # git looked
    calls.clear()
    assert cand.verify(["bench.py"], ["build/"]) == [] and calls == []  # nothing changed: the walk is enough
    assert cand.verify(["bench.py", "harness/"], ["build/"]) == [] and calls  # asked something else: git again


@pytest.mark.parametrize("change", ["rewrite", "same size, mtime put back", "new file", "delete", "rename",
                                    "index flag"])
def test_any_change_after_a_clean_verify_is_seen_again(repo, tmp_path, change):
    cand = SlotPool(repo, tmp_path / "w0").slot("cand", repo.resolve("main"))
    time.sleep(0.1)
    assert cand.verify(["bench.py"], []) == []
    assert cand.verify(["bench.py"], []) == []  # from the fingerprint
    bench = cand.path / "bench.py"
    if change == "rewrite":
        bench.write_text("print('fast')\n")
    elif change == "same size, mtime put back":
        before = bench.stat()
        bench.write_bytes(bytes(reversed(bench.read_bytes())))
        os.utime(bench, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif change == "new file":
        (cand.path / "statistics.pyc").write_bytes(b"shadow")
    elif change == "delete":
        bench.unlink()
    elif change == "rename":
        bench.rename(cand.path / "bench2.py")
    else:
        cand.git("update-index", "--assume-unchanged", "bench.py")
    time.sleep(0.1)  # past the racy window: only the fingerprint's comparison can tell
    assert cand.verify(["bench.py"], []) != []


def test_a_checkout_changed_within_the_racy_window_is_verified_by_git_each_time(repo, tmp_path, monkeypatch):
    cand = SlotPool(repo, tmp_path / "w0").slot("cand", repo.resolve("main"))
    bench = cand.path / "bench.py"
    bench.write_bytes(bench.read_bytes())  # as committed, but written just now: a change in this tick could hide
    calls = _counting_git(monkeypatch)
    for _ in range(2):
        assert cand.verify([], []) == [] and calls
        calls.clear()


def test_a_reset_cleans_only_when_something_may_have_been_left(repo, tmp_path, monkeypatch):
    base = repo.resolve("main")
    cand = SlotPool(repo, tmp_path / "w0").slot("cand", base)
    time.sleep(0.1)
    assert cand.verify([], ["build/"]) == []
    calls = _counting_git(monkeypatch)
    cand.reset(base, keep=["build/"])  # as verified, nothing since: no `clean`
    assert [args[0] for args in calls] == ["checkout"]
    time.sleep(0.1)
    assert cand.verify([], ["build/"]) == []
    (cand.path / "statistics.pyc").write_bytes(b"shadow")  # left by a run after the verify
    calls.clear()
    cand.reset(base, keep=["build/"])
    assert [args[0] for args in calls] == ["checkout", "clean"] and not (cand.path / "statistics.pyc").exists()
