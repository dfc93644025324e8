"""The target repository of a campaign: the user's, or the fixture materialised in the workdir."""
from __future__ import annotations

import pathlib

import cpp_fixture
from farm.config import CampaignConfig
from farm.errors import TargetError
from worktrees import TargetRepo, WorktreeError


def prepare_target(config: CampaignConfig, workdir: pathlib.Path) -> TargetRepo:
    """The target repository: the user's, or the fixture materialised in the workdir."""
    if config.target.fixture:
        path = workdir / "target"
        if not (path / ".git").exists():
            cpp_fixture.init_repo(path)
        return TargetRepo(path)
    path = config.resolve(config.target.repo)
    if not path.exists():
        raise TargetError(f"target.repo: {path} does not exist; give the path of a git repository")
    try:
        return TargetRepo(path)
    except WorktreeError as error:
        raise TargetError(f"target.repo: {error}") from None
