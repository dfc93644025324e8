"""The repository a campaign optimises: the user's, or the bundled fixture materialised in the workdir.

    prepare_target(config, workdir)   open it (materialising the fixture if needed) for a campaign
    inspect_target(config, workdir)   the repository to read, changing nothing (a context manager)
    base_commit(config, repo)         the full commit of target.base_ref in it

Both raise TargetError, `field.path: message` saying what to do.
"""
from __future__ import annotations

import contextlib
import pathlib
import tempfile
from collections.abc import Iterator

import cpp_fixture
from farm.campaign_file.config import CampaignConfig
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


@contextlib.contextmanager
def inspect_target(config: CampaignConfig, workdir: pathlib.Path) -> Iterator[TargetRepo]:
    """The repository `prepare_target` would give, to read only: the user's, the fixture already in the
    workdir, or a scratch copy of the fixture (removed afterwards)."""
    if not config.target.fixture:
        yield _user_repo(config)
        return
    path = workdir / "target"
    if (path / ".git").exists():
        yield _open(path, "target.fixture")
        return
    _check_fixture_place(path)
    # The fixture commits with a fixed identity and date, so a scratch copy has the very commits the run gets.
    with tempfile.TemporaryDirectory(prefix="farm-fixture-") as scratch:
        yield _materialise(pathlib.Path(scratch) / "target")


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


def base_commit(config: CampaignConfig, repo: TargetRepo) -> str:
    try:
        return repo.resolve(config.target.base_ref)
    except WorktreeError as error:
        raise TargetError(f"target.base_ref: {error}; give a branch, tag or commit of the repository") from None
