"""An agent's scratch checkout: where a coding agent works, never what is measured.

A scratch is a clone that shares the repository's objects (`clone --shared`: no copy of the history), made
afresh for each experiment. The agent may do anything in it, its `.git` included. The farm never runs git with
the scratch's own configuration, index or hooks: it reads the agent's result as a change, with the
repository's git directory, a fresh index of its own and the scratch only as the work tree
(`read_change`), and the clean candidate slot takes that change (Slot.take_tree). So index flags, an
fsmonitor or filter driver in the scratch's config, and ignored files (a shadowing `.pyc`) never reach a
measurement.
"""
from __future__ import annotations

import os
import pathlib
import posixpath
import shutil
from dataclasses import dataclass

from worktrees.repo import TargetRepo, WorktreeError, run_git
from worktrees.slots import split_nul

SYMLINK_MODE = "120000"
GITLINK_MODE = "160000"


class ChangeRefused(WorktreeError):
    """The agent's change holds what the farm does not carry: a link out of the tree, an embedded repository."""


@dataclass(frozen=True)
class Change:
    tree: str  # the scratch's tracked and new files, as a tree object in the repository
    paths: tuple[str, ...]  # changed, added or deleted, relative to the base
    ignored: tuple[str, ...]  # ignored files in the scratch: not carried (a build directory, a shadowing .pyc)


class Scratch:
    """The scratch checkout at `path` of `repo`; `index` is the farm's own index file, outside the scratch."""

    def __init__(self, repo: TargetRepo, path: str | os.PathLike):
        self.repo = repo
        self.path = pathlib.Path(path)
        self.index = self.path.with_name(self.path.name + ".index")
        self._config: bytes | None = None

    def create(self, commit: str, branch: str) -> None:
        """A fresh clone at `commit` on `branch`, whatever an earlier agent left here."""
        self.remove()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        run_git(self.path.parent, "clone", "--quiet", "--shared", "--no-checkout", str(self.repo.path),
                str(self.path))
        run_git(self.path, "checkout", "--quiet", "--no-track", "-b", branch, commit)
        self._config = self._config_bytes()

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.index.unlink(missing_ok=True)

    def git_dir(self) -> pathlib.Path:
        return self.path / ".git"

    def config_changed(self) -> bool:
        """Whether the agent changed its checkout's git configuration (an fsmonitor or a filter driver is the
        usual way to make someone else's git run your program). Read as bytes: no git reads it."""
        return self._config is not None and self._config_bytes() != self._config

    def _config_bytes(self) -> bytes:
        try:
            return (self.git_dir() / "config").read_bytes()
        except OSError:
            return b""

    def read_change(self, base: str) -> Change:
        """The scratch's files against `base`: changed, added (ignored files not carried) and deleted. Read with
        the repository's git directory and a fresh index of the farm's, never the scratch's own `.git`. Refuses
        (ChangeRefused) a symbolic link that points outside the tree and an embedded repository."""
        self.index.unlink(missing_ok=True)
        env = {"GIT_INDEX_FILE": str(self.index)}
        here = ["--git-dir", str(self.repo.git_dir), "--work-tree", str(self.path)]

        def git(*args: str) -> str:
            return run_git(self.path, *here, *args, env=env)

        git("read-tree", base)
        git("add", "--all")
        raw = split_nul(git("diff", "--cached", "--raw", "-z", "--no-renames", "--no-ext-diff", "--no-textconv",
                            base))
        paths, refused = [], []
        for meta, path in zip(raw[0::2], raw[1::2]):
            mode, blob = meta.split()[1], meta.split()[3]
            if mode == GITLINK_MODE:
                refused.append(f"{path} is an embedded git repository")
            elif mode == SYMLINK_MODE and points_outside(path, git("cat-file", "blob", blob)):
                refused.append(f"{path} is a symbolic link out of the tree")
            paths.append(path)
        if refused:
            raise ChangeRefused("; ".join(refused))
        ignored = split_nul(git("ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"))
        return Change(git("write-tree"), tuple(paths), tuple(ignored))


def points_outside(link: str, target: str) -> bool:
    """Whether a symbolic link at `link` (relative to the top of the tree) to `target` may leave the tree.

    In a tree every directory above a link is a real directory (git puts nothing beneath a link), so leading
    `..` climb real directories and are counted. A `..` after another component may climb out of whatever
    that component links to (`d/../x` with `d -> sub/..`): refused, like an absolute target."""
    if posixpath.isabs(target):
        return True
    parts = [part for part in target.split("/") if part not in ("", ".")]
    climbs = next((i for i, part in enumerate(parts) if part != ".."), len(parts))
    depth = len([part for part in posixpath.dirname(link).split("/") if part])
    return ".." in parts[climbs:] or climbs > depth
