"""The repository a campaign optimises: the user's, or the bundled fixture materialised in the workdir.

    prepare_target(config, workdir)   open it (materialising the fixture if needed) for a campaign
    check_target(config, workdir)     the base commit it would start from, changing nothing

Both raise TargetError, `field.path: message` saying what to do.
"""
from __future__ import annotations

import pathlib
import tempfile

import cpp_fixture
from farm.config import CampaignConfig
from farm.errors import TargetError
from worktrees import TargetRepo, WorktreeError


def prepare_target(config: CampaignConfig, workdir: pathlib.Path) -> TargetRepo:
    """The target repository: the user's, or the fixture materialised in the workdir."""
    if config.target.fixture:
        path = workdir / "target"
        if not (path / ".git").exists():
            _check_fixture_place(path)
            _materialise(path)
        return _open(path, "target.fixture")
    return _user_repo(config)


def check_target(config: CampaignConfig, workdir: pathlib.Path) -> str:
    """The full base commit `prepare_target` would give, found without writing to the workdir or the repo."""
    if not config.target.fixture:
        return _base_commit(config, _user_repo(config))
    path = workdir / "target"
    if (path / ".git").exists():
        return _base_commit(config, _open(path, "target.fixture"))
    _check_fixture_place(path)
    # The fixture commits with a fixed identity and date, so a scratch copy has the very commits the run gets.
    with tempfile.TemporaryDirectory(prefix="farm-fixture-") as scratch:
        return _base_commit(config, _materialise(pathlib.Path(scratch) / "target"))


def _user_repo(config: CampaignConfig) -> TargetRepo:
    path = config.resolve(config.target.repo)
    if not path.exists():
        raise TargetError(f"target.repo: {path} does not exist; give the path of a git repository")
    return _open(path, "target.repo")


def _open(path: pathlib.Path, field: str) -> TargetRepo:
    try:
        return TargetRepo(path)
    except WorktreeError as error:
        raise TargetError(f"{field}: {error}; give the top directory of a git repository") from None


def _check_fixture_place(path: pathlib.Path) -> None:
    """The fixture goes into an absent or empty `<workdir>/target`; anything else there is not ours to replace."""
    try:
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise TargetError(f"target.fixture: {path} exists and is not a git repository, so the fixture cannot "
                              f"be materialised there; remove it or give another workdir")
    except OSError as error:
        raise TargetError(f"target.fixture: cannot look into {path}: {error.strerror}") from None


def _materialise(path: pathlib.Path) -> TargetRepo:
    try:
        cpp_fixture.init_repo(path)
    except cpp_fixture.FixtureError as error:
        # FixtureError may carry git's multi-line stderr; the CLI prints one line.
        detail = " / ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise TargetError(f"target.fixture: cannot materialise the fixture in {path}: {detail}") from None
    except OSError as error:
        raise TargetError(f"target.fixture: cannot materialise the fixture in {path}: {error.strerror or error}; "
                          f"give a writable workdir") from None
    return _open(path, "target.fixture")


def _base_commit(config: CampaignConfig, repo: TargetRepo) -> str:
    try:
        return repo.resolve(config.target.base_ref)
    except WorktreeError as error:
        raise TargetError(f"target.base_ref: {error}; give a branch, tag or commit of the repository") from None
