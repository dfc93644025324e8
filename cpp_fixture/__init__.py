"""The farm's optimisation target: a naive C++/OpenMP/pybind11 interpolation library.

`template/` holds the library as a user would keep it in its own repository;
`hypotheses/` holds patches against it with their ground truth.

    init_repo(dest)      materialise the template as a standalone git repository
    load_manifest()      the hypothesis pack's manifest, as a list of dicts
    patch_path(id)       the .patch file of one hypothesis
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import yaml

PACKAGE = pathlib.Path(__file__).resolve().parent
TEMPLATE = PACKAGE / "template"
HYPOTHESES = PACKAGE / "hypotheses"
MANIFEST = HYPOTHESES / "manifest.yaml"

# Fixed identity and date: the same template always gives the same base commit.
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "cpp_fixture", "GIT_AUTHOR_EMAIL": "cpp_fixture@localhost",
    "GIT_COMMITTER_NAME": "cpp_fixture", "GIT_COMMITTER_EMAIL": "cpp_fixture@localhost",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}
_IGNORED = shutil.ignore_patterns("build", "__pycache__", "*.pyc")


class FixtureError(Exception):
    """The fixture could not be materialised or a hypothesis is unknown."""


def _git(cwd: pathlib.Path, *args: str) -> str:
    env = {**os.environ, **_GIT_ENV}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise FixtureError(f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip()}")
    return done.stdout.strip()


def init_repo(dest: str | os.PathLike, branch: str = "main") -> pathlib.Path:
    """Copy the naive library into `dest` (absent or empty) and commit it.

    Returns the repository path. Raises FixtureError if `dest` holds files.
    """
    dest = pathlib.Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise FixtureError(f"{dest} is not empty; give a new directory")
    shutil.copytree(TEMPLATE, dest, ignore=_IGNORED, dirs_exist_ok=True)
    _git(dest, "init", "-q", "-b", branch)
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "naive interpolation library (cpp_fixture)")
    return dest


def load_manifest_document() -> dict:
    """The whole manifest: {"hypotheses": [...], "combined": [...]}."""
    return yaml.safe_load(MANIFEST.read_text())


def load_manifest() -> list[dict]:
    """The hypotheses of the pack, in manifest order."""
    return load_manifest_document()["hypotheses"]


def hypothesis(hypothesis_id: str) -> dict:
    """One manifest entry by id; FixtureError lists the known ids if absent."""
    entries = {entry["id"]: entry for entry in load_manifest()}
    if hypothesis_id not in entries:
        raise FixtureError(f"unknown hypothesis {hypothesis_id!r}; known: {', '.join(entries)}")
    return entries[hypothesis_id]


def patch_path(hypothesis_id: str) -> pathlib.Path:
    """The .patch file of a hypothesis."""
    return HYPOTHESES / f"{hypothesis(hypothesis_id)['id']}.patch"


def lineage(hypothesis_id: str) -> list[str]:
    """The ids to apply, in order, to reach this hypothesis from the naive tree."""
    chain = [hypothesis_id]
    while (predecessor := hypothesis(chain[-1]).get("predecessor")):
        chain.append(predecessor)
    return chain[::-1]


def apply_patches(repo: str | os.PathLike, hypothesis_ids: list[str], commit: bool = True) -> None:
    """`git apply` each hypothesis' patch in `repo`, committing each if asked."""
    repo = pathlib.Path(repo)
    for hypothesis_id in hypothesis_ids:
        _git(repo, "apply", str(patch_path(hypothesis_id)))
        if commit:
            _git(repo, "add", "-A")
            _git(repo, "commit", "-q", "-m", f"hypothesis {hypothesis_id}")
