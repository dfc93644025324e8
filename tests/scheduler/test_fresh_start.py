"""A new run on a repository that an earlier run of the campaign left branches in (no Ray needed)."""
import subprocess

import pytest

from farm.campaign_file.config import CampaignConfig
from farm.errors import TargetError
from scheduler.runtime.coordinator import Coordinator
from tests.scheduler.tiny_repo import config_dict, make_repo


def _earlier_run(repo):
    """What a finished run leaves: an integration branch one commit ahead and an experiment branch."""
    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                              capture_output=True, text=True).stdout.strip()
    git("checkout", "-qb", "farm/tiny/tiny-0002")
    (repo / "prog.py").write_text((repo / "prog.py").read_text().replace("N = 400000", "N = 100000"))
    git("commit", "-qam", "an earlier win")
    git("branch", "farm/tiny/integrated")
    git("checkout", "-q", "main")
    return git("rev-parse", "main"), git("rev-parse", "farm/tiny/integrated")


def test_a_new_run_refuses_an_earlier_runs_branches_and_fresh_archives_them(tmp_path):
    repo = make_repo(tmp_path / "repo")
    base, old_tip = _earlier_run(repo)
    (tmp_path / "h.patch").write_text("")
    config = CampaignConfig(**config_dict(repo, [{"id": "h", "patch": str(tmp_path / "h.patch")}]))
    with pytest.raises(TargetError, match="--resume to continue it or --fresh"):
        Coordinator(config, tmp_path / "work", tmp_path / "work" / "farm.duckdb", 1, None, echo=lambda line: None)
    # On main the second run silently started from the old integration tip, and `checkout -B` overwrote the
    # earlier experiment branches.
    coordinator = Coordinator(config, tmp_path / "work", tmp_path / "work" / "farm.duckdb", 1, None,
                              echo=lambda line: None, fresh=True)
    assert coordinator.repo.resolve("refs/heads/farm/tiny/integrated") == old_tip  # nothing moved before start
    coordinator.create_branches()  # what start() does once the store has the campaign
    assert coordinator.repo.resolve("refs/heads/farm/tiny/integrated") == base == coordinator.campaign.tip
    archived = coordinator.repo.git("for-each-ref", "--format=%(refname) %(objectname)", "refs/farm-archive/tiny/")
    kept = dict(line.split() for line in archived.splitlines())
    assert sorted(ref.rsplit("/", 1)[1] for ref in kept) == ["integrated", "tiny-0002"]
    assert set(kept.values()) == {old_tip}
    assert coordinator.repo.git("for-each-ref", "refs/heads/farm/tiny/tiny-0002") == ""
