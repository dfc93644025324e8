import subprocess
import time

import pytest

from tests.marked import kill_marked, marked_after_kill, new_marker
from worktrees import ApplyError, SlotPool, TargetRepo, WorktreeError
from worktrees.repo import run_git


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "a.txt").write_text("one\ntwo\nthree\n")
    (path / ".gitignore").write_text("build/\n")
    git(path, "add", "-A")
    git(path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return TargetRepo(path)


def test_slots_are_created_once_and_reused(repo, tmp_path):
    base = repo.resolve("main")
    pool = SlotPool(repo, tmp_path / "w0")
    cand = pool.slot("cand", base)
    (cand.path / "build").mkdir()
    (cand.path / "build" / "obj").write_text("kept")  # a declared build output: survives resets
    (cand.path / "junk.txt").write_text("x")  # untracked: removed by reset
    (cand.path / "statistics.pyc").write_text("x")  # ignored but not an output: removed too
    (cand.path / ".gitignore").write_text("build/\n*.pyc\n")
    again = SlotPool(repo, tmp_path / "w0").slot("cand", base)  # e.g. after a worker restart
    assert again.path == cand.path
    again.reset(base, keep=["build/"])
    assert (cand.path / "build" / "obj").read_text() == "kept"
    assert not (cand.path / "junk.txt").exists() and not (cand.path / "statistics.pyc").exists()
    assert repo.git("worktree", "list").count(str(tmp_path / "w0")) == 1


def test_experiment_branch_commit_and_integration(repo, tmp_path):
    base = repo.resolve("main")
    cand = SlotPool(repo, tmp_path / "w0").slot("cand", base)
    cand.start_branch("farm/c/c-0001", base)
    assert cand.commit_all("nothing") is None
    (cand.path / "a.txt").write_text("one\nTWO\nthree\n")
    assert cand.changed_paths() == ["a.txt"]
    commit = cand.commit_all("farm: h1")
    assert repo.resolve("refs/heads/farm/c/c-0001") == commit
    assert repo.git("for-each-ref", "--format=%(upstream)", "refs/heads/farm/c/c-0001") == ""  # --no-track
    repo.git("branch", "--no-track", "farm/c/integrated", base)
    repo.advance_branch("farm/c/integrated", commit, base)
    assert repo.commits_between(base, "farm/c/integrated") == [commit]
    with pytest.raises(WorktreeError):  # compare-and-swap: the old value no longer matches
        repo.advance_branch("farm/c/integrated", base, base)


def test_conflicting_cherry_pick_and_patch_raise_apply_error_and_leave_a_clean_tree(repo, tmp_path):
    base = repo.resolve("main")
    pool = SlotPool(repo, tmp_path / "w0")
    cand = pool.slot("cand", base)
    cand.start_branch("farm/c/a", base)
    (cand.path / "a.txt").write_text("one\nA\nthree\n")
    first = cand.commit_all("a")
    cand.start_branch("farm/c/b", base)
    (cand.path / "a.txt").write_text("one\nB\nthree\n")
    second = cand.commit_all("b")
    cand.start_branch("farm/c/merge", first)
    with pytest.raises(ApplyError):
        cand.cherry_pick(f"{base}..{second}")
    assert cand.changed_paths() == []
    patch = tmp_path / "p.patch"
    patch.write_text(git(repo.path, "diff", base, second) + "\n")
    with pytest.raises(ApplyError, match="patch failed"):
        cand.apply_patch(patch)


def test_not_a_repository(tmp_path):
    with pytest.raises(WorktreeError, match="is not a git repository"):
        TargetRepo(tmp_path)


def test_a_hanging_git_call_is_killed_with_a_clear_error(repo):
    marker = new_marker()
    try:
        started = time.monotonic()
        with pytest.raises(WorktreeError, match=r"^git -c alias.hang=!sleep .* hang timed out after 1s$"):
            run_git(repo.path, "-c", f"alias.hang=!sleep {marker}", "hang", timeout=1)
        assert time.monotonic() - started < 10
        assert marked_after_kill(marker) == []
    finally:
        kill_marked(marker)


def test_the_target_repositorys_hooks_do_not_run_in_farm_checkouts(repo, tmp_path):
    ran = tmp_path / "hook-ran"
    hook = repo.path / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {ran}\n")
    hook.chmod(0o755)
    git(repo.path, "checkout", "-q", "--detach", "main")
    assert ran.exists()  # the hook works for the user's own git
    ran.unlink()
    base = repo.resolve("main")
    cand = SlotPool(repo, tmp_path / "w0").slot("cand", base)
    cand.reset(base)
    cand.start_branch("farm/c/h", base)
    assert not ran.exists()


def test_a_slot_left_half_done_by_a_killed_worker_is_usable_again(repo, tmp_path):
    base = repo.resolve("main")
    slot = SlotPool(repo, tmp_path / "w0").slot("cand", base)
    git_dir = slot.git("rev-parse", "--absolute-git-dir")
    (tmp_path / git_dir / "index.lock").write_text("")  # git was killed while it held the index
    slot.reset(base)
    slot.start_branch("farm/c/c-0001", base)
    assert slot.git("rev-parse", "--abbrev-ref", "HEAD") == "farm/c/c-0001"


def test_starting_a_branch_never_overwrites_an_existing_one(repo, tmp_path):
    base = repo.resolve("main")
    slot = SlotPool(repo, tmp_path / "w0").slot("cand", base)
    slot.start_branch("farm/c/c-0001", base)
    (slot.path / "a.txt").write_text("changed\n")
    kept = slot.commit_all("an earlier run's experiment")
    slot.reset(base)
    with pytest.raises(WorktreeError):
        slot.start_branch("farm/c/c-0001", base)
    assert repo.resolve("farm/c/c-0001") == kept


def test_head_is_read_from_files_and_agrees_with_git_detached_on_a_branch_and_packed(repo, tmp_path):
    base = repo.resolve("main")
    slot = SlotPool(repo, tmp_path / "w0").slot("cand", base)
    assert slot.head() == base  # detached: HEAD holds the commit
    slot.start_branch("farm/c/c-0001", base)
    (slot.path / "a.txt").write_text("changed\n")
    slot.changed_paths()
    commit = slot.commit_staged("m")  # on a branch: HEAD names its loose ref
    assert commit == git(slot.path, "rev-parse", "HEAD") != base
    git(repo.path, "pack-refs", "--all")  # the branch only in packed-refs now: git's answer
    assert slot.head() == commit
    slot.reset(base)
    assert slot.head() == base
