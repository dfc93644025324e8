"""Commits between the hub and a node's own clone, as git bundles (no shared filesystem, no git server).

The hub is the target repository on the coordinator's node. A worker on another node works in a bare clone
under that node's own directory: it is seeded once with a bundle of the hub's refs, gets the commits an
experiment needs in a small bundle with the assignment, and sends its experiment branch back as a bundle
with the result. Bundles are bytes, so they travel through Ray like any argument.
"""
from __future__ import annotations

import os
import pathlib
import tempfile

from worktrees.file_lock import file_lock
from worktrees.repo import TargetRepo, run_git

SHIP_PREFIX = "refs/farm-ship/"  # the refs a bundle carries its commits under (a bundle needs refs, not ids)
MAX_KNOWN = 64  # above this many known tips, they are reduced to the independent ones


def _bundle(repo: TargetRepo, *revisions: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="farm-bundle-") as scratch:
        path = pathlib.Path(scratch) / "out.bundle"
        repo.git("bundle", "create", "--quiet", str(path), *revisions)
        return path.read_bytes()


def seed_bundle(repo: TargetRepo) -> bytes:
    """Every ref of the hub: what a new node's clone starts from."""
    return _bundle(repo, "--all")


def ref_tips(repo: TargetRepo) -> list[str]:
    """The commits the hub's refs point at, tags peeled (what a clone seeded now holds), reduced to the
    independent ones."""
    listing = repo.git("for-each-ref", "--format=%(objecttype) %(objectname) %(*objecttype) %(*objectname)")
    commits = set()
    for line in listing.splitlines():
        kind, name, peeled_kind, peeled = (line.split() + ["", ""])[:4]
        if kind == "commit" or peeled_kind == "commit":
            commits.add(name if kind == "commit" else peeled)
    return independent(repo, sorted(commits))


def independent(repo: TargetRepo, commits: list[str]) -> list[str]:
    """The commits of `commits` that are no ancestor of another: they cover the same history."""
    return repo.git("merge-base", "--independent", *commits).split() if len(commits) > 1 else commits


def commits_bundle(repo: TargetRepo, wanted: list[str], known: list[str]) -> bytes | None:
    """A bundle with the `wanted` commits and their history beyond the `known` ones (which the receiver holds);
    None when the receiver needs nothing."""
    exclude = [f"^{commit}" for commit in known]
    if repo.git("rev-list", "--count", *wanted, *exclude) == "0":
        return None
    refs = [f"{SHIP_PREFIX}{commit}" for commit in wanted]
    for ref, commit in zip(refs, wanted):
        repo.git("update-ref", ref, commit)
    try:
        return _bundle(repo, *refs, *exclude)
    finally:
        for ref in refs:
            repo.git("update-ref", "-d", ref)


def branch_bundle(repo: TargetRepo, branch: str, parent: str) -> bytes:
    """A worker's experiment branch and its commits beyond `parent` (which the hub holds)."""
    return _bundle(repo, f"refs/heads/{branch}", f"^{parent}")


def fetch_bundle(repo: TargetRepo, data: bytes, refspec: str) -> None:
    """Fetch `refspec` from a bundle's bytes into `repo`, under the repository's lock (the workers of a node share
    their clone)."""
    descriptor, name = tempfile.mkstemp(prefix="farm-", suffix=".bundle")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        with repo.lock():
            repo.git("fetch", "--quiet", "--no-tags", name, refspec)
    finally:
        os.unlink(name)


def node_clone(path: pathlib.Path, seed: bytes) -> TargetRepo:
    """A node's bare clone at `path`, created from the seed bundle if absent; fetched into again if present (a
    resumed campaign, or a worker restarted on the node). The hub's refs go under refs/hub/, apart from the
    experiment branches the node's workers make."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.parent / f"{path.name}.lock"):  # the workers of a node start together
        if not (path / "HEAD").exists():
            path.mkdir(exist_ok=True)
            run_git(path, "init", "--quiet", "--bare")
    repo = TargetRepo(path)
    fetch_bundle(repo, seed, "+refs/*:refs/hub/*")
    return repo


class NodeCommits:
    """The coordinator's account of what each remote worker can find in its node's clone: the hub's ref tips when
    the seed bundle was made, and every commit shipped to that worker or made by it since. Kept per worker, not
    per node: a commit shipped to the other worker of a node may not be fetched yet when this one starts. What
    a worker may lack is shipped with its next assignment."""

    def __init__(self, hub: TargetRepo):
        self.hub = hub
        self.seed: bytes | None = None
        self.seed_tips: list[str] = []
        self.known: dict[str, list[str]] = {}

    def seed_bundle(self) -> bytes:
        """The seed of every new node's clone, made once (its tips are what each worker is then known to hold)."""
        if self.seed is None:
            self.seed_tips = ref_tips(self.hub)
            self.seed = seed_bundle(self.hub)
        return self.seed

    def bundle_for(self, worker: str, wanted: list[str]) -> bytes | None:
        """The commits `wanted` by `worker` beyond what it holds; None when it holds them all."""
        data = commits_bundle(self.hub, wanted, self.known.setdefault(worker, list(self.seed_tips)))
        self._add(worker, wanted)
        return data

    def received(self, worker: str, commit: str) -> None:
        self._add(worker, [commit])

    def forget(self, worker: str) -> None:
        """A worker died, perhaps before it fetched what was shipped: its replacement is known to hold the seed."""
        self.known.pop(worker, None)

    def _add(self, worker: str, commits: list[str]) -> None:
        known = self.known.setdefault(worker, list(self.seed_tips))
        known += [c for c in commits if c not in known]
        if len(known) > MAX_KNOWN:
            self.known[worker] = independent(self.hub, known)
