"""Worktree slots: a worker's checkouts, created once and reused.

A slot is a git worktree of the target repository in the worker's own
directory. Between experiments it is reset with `checkout --detach` and
`clean`: the declared build outputs (phases.build.outputs, such as the build
directory) survive, so builds stay incremental (the build system tracks what
changed); every other untracked or ignored file goes. Slots are never re-added:
after a restart an existing slot is found and reused.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import pathlib
import re
import shutil
import time
from dataclasses import dataclass

from worktrees.repo import ApplyError, TargetRepo, WorktreeError, run_git


@dataclass(frozen=True)
class Slot:
    """One checkout. All methods run git inside the slot."""

    name: str
    path: pathlib.Path

    def git(self, *args: str) -> str:
        return run_git(self.path, *args)

    def head(self) -> str:
        """The commit checked out. Read from the worktree's HEAD file and the loose branch ref it names (what
        checkout and commit write), without a git process; git's rev-parse where they say otherwise (a packed
        ref, a symbolic ref elsewhere)."""
        try:
            head, ref = self.head_files()
            target = (ref or head).decode(errors="replace").strip()
            if _COMMIT_ID.fullmatch(target):
                return target
        except OSError:
            pass
        return self.git("rev-parse", "HEAD")

    def head_files(self) -> tuple[bytes, bytes]:
        """The worktree's HEAD file, and the loose ref file it names (b"" when HEAD holds a commit); OSError when
        one cannot be read (a packed ref)."""
        admin = self.admin_dir()
        head = (admin / "HEAD").read_bytes()
        if not head.startswith(b"ref: "):
            return head, b""
        common = admin / (admin / "commondir").read_text().strip()
        return head, (common / head[len(b"ref: "):].strip().decode(errors="surrogateescape")).read_bytes()

    def admin_dir(self) -> pathlib.Path:
        """The worktree's administrative directory, read from its `.git` file (no git process)."""
        link = self.path / ".git"
        text = link.read_text(errors="replace").strip() if link.is_file() else ""
        if text.startswith("gitdir: "):
            return self.path / text[len("gitdir: "):]  # an absolute path stays as it is
        return pathlib.Path(self.git("rev-parse", "--absolute-git-dir"))

    def recover(self) -> None:
        """Undo what a killed worker left half-done in this slot: git's index lock and a cherry-pick in
        progress. Safe because a slot belongs to one worker, which runs one git command at a time."""
        git_dir = self.admin_dir()
        (git_dir / "index.lock").unlink(missing_ok=True)
        if (git_dir / "CHERRY_PICK_HEAD").exists():
            self.git("cherry-pick", "--quit")

    def branch(self) -> str:
        """The checked-out branch, "" when HEAD is detached."""
        try:
            return self.git("symbolic-ref", "-q", "--short", "HEAD")
        except WorktreeError:
            return ""

    def reset(self, commit: str, keep: list[str] = ()) -> None:
        """Detach at `commit`, discarding any change and every untracked or ignored file but the build outputs
        `keep` (directories ending in / or globs)."""
        self.recover()
        strays_possible = not self._unchanged_since_verified(keep)
        self.git("checkout", "--force", "--detach", commit)
        if strays_possible:
            self._clean(keep)

    def _clean(self, keep: list[str]) -> None:
        self.git("clean", "-fdxq", *(f"--exclude={pattern}" for pattern in keep))

    def _unchanged_since_verified(self, outputs: list[str]) -> bool:
        """Whether the last verify found this checkout clean with these build `outputs` and nothing changed since:
        then it holds no untracked or ignored file but those outputs, and a checkout of another commit adds none
        (`clean` has nothing to do)."""
        verified = _VERIFIED.get(self.path)
        return verified is not None and verified[0][1] == tuple(outputs) and _Fingerprint.of(self) == verified[1]

    def clean_build(self) -> None:
        """Remove ignored files too (the build directory): the next build starts from scratch."""
        self.git("clean", "-fdxq")

    def start_branch(self, branch: str, commit: str, keep: list[str] = ()) -> None:
        """Check out a new branch `branch` at `commit`, no upstream. An existing branch of that name is an
        error, never overwritten: experiment ids are used once, and an earlier run's branches are archived.
        Cleaned like `reset`."""
        self.recover()
        strays_possible = not self._unchanged_since_verified(keep)
        self.git("checkout", "--force", "--no-track", "-b", branch, commit)
        if strays_possible:
            self._clean(keep)

    def apply_patch(self, patch: str | os.PathLike) -> None:
        """`git apply` a patch file to the work tree; ApplyError if it does not apply."""
        try:
            self.git("apply", "--whitespace=nowarn", str(patch))
        except WorktreeError as error:
            raise ApplyError(str(error)) from None

    def cherry_pick(self, commit: str) -> None:
        """Apply the change of `commit` to the work tree and index (not committed);
        ApplyError and a clean tree if it conflicts."""
        try:
            self.git("cherry-pick", "--no-commit", commit)
        except WorktreeError as error:
            if self._picking():
                self.git("cherry-pick", "--abort")
            self.git("reset", "--hard", "-q")
            raise ApplyError(str(error)) from None

    def _picking(self) -> bool:
        return (pathlib.Path(self.git("rev-parse", "--git-dir")) / "CHERRY_PICK_HEAD").exists()

    def changed_paths(self) -> list[str]:
        """Paths that differ from HEAD, tracked or new (ignored files excluded), as they are: NUL-separated
        output, never git's quoting of unusual names (`"harness/\\303\\251.txt"` is not under harness/)."""
        self.git("add", "--all")
        return split_nul(self.git("diff", "--cached", "--name-only", "--no-renames", "--no-ext-diff", "-z"))

    def take_tree(self, tree: str) -> None:
        """Make the index and work tree those of `tree` (a change read from an agent's scratch checkout):
        tracked files written, deleted ones removed, ignored files (the build directory) left alone."""
        self.git("read-tree", "-u", "--reset", tree)

    def verify(self, protected: list[str], outputs: list[str]) -> list[str]:
        """What makes this checkout differ from its commit, worded for a reason; [] when it is the commit.
        Checked before every guard and benchmark run: no index flag hides a change (assume-unchanged,
        skip-worktree), every tracked file is as committed (protected ones hashed, not trusted to stat data),
        and no untracked or ignored file lies outside the declared build `outputs` (a shadowing `.pyc`).

        What it costs, since it runs before every benchmark run: nothing but a walk of the checkout when no
        file changed since the last verify found it clean (_Fingerprint); else one git process (the index read
        again only when it changed, protected files hashed here with git's own hash-object for one that
        differs, which applies the repository's filters)."""
        key = (tuple(protected), tuple(outputs))
        before = _Fingerprint.of(self)
        if before is not None and _VERIFIED.get(self.path) == (key, before):
            return []
        _VERIFIED.pop(self.path, None)
        problems = self._verify_with_git(protected, outputs)
        if not problems and before is not None and _Fingerprint.of(self) == before:  # as git saw it
            _VERIFIED[self.path] = (key, before)
        return problems

    def _verify_with_git(self, protected: list[str], outputs: list[str]) -> list[str]:
        problems = []
        entries = self._index_entries()
        flagged = [path for path, (tag, _) in entries.items() if tag.islower() or tag == "S"]
        if flagged:
            problems.append(f"index flags hide changes to {_listed(flagged)}")
        # --no-optional-locks: status must not write the index (its stat refresh), which would make the next
        # verify read the index again.
        status = split_nul(self.git("--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all",
                                    "--ignored=matching", "--no-renames"))
        changed = [e[3:] for e in status if e[:2] not in ("??", "!!")]
        stray = [e[3:] for e in status if e[:2] in ("??", "!!") and not is_output(e[3:], outputs)]
        if changed:
            problems.append(f"{_listed(changed)} differ(s) from the commit")
        if stray:
            problems.append(f"{_listed(stray)}: not in the commit and not a declared build output "
                            f"(phases.build.outputs)")
        if protected:
            # A protected file git sees changed is not as committed; the others are hashed, since their index
            # entries (here the committed blobs: their status is clean) could be trusted to stat data only.
            blobs = {path: blob for path, (_, blob) in entries.items() if _under(path, protected)}
            altered = [path for path in changed if path in blobs]
            clean = [path for path in blobs if path not in altered]
            missing = [path for path in clean if not (self.path / path).is_file() or (self.path / path).is_symlink()]
            differing = [path for path in clean if path not in missing and _blob_id(self.path / path) != blobs[path]]
            hashes = self.git("hash-object", "--", *differing).split() if differing else []
            rewritten = [path for path, blob in zip(differing, hashes) if blobs[path] != blob]
            if altered or missing or rewritten:
                problems.append(f"protected {_listed(altered + missing + rewritten)} not as committed")
        return problems

    def _index_entries(self) -> dict[str, tuple[str, str]]:
        """Every index entry: path -> (its `ls-files -v` tag, its blob id). Read with git only when the index
        changed: the last 20 bytes of an index file are the checksum of all of it."""
        index = self.admin_dir() / "index"
        try:
            with index.open("rb") as handle:
                handle.seek(-20, os.SEEK_END)
                key = (os.fstat(handle.fileno()).st_size, handle.read(20))
        except OSError:
            key = None
        if key is not None and key[1] != bytes(20) and _INDEX_ENTRIES.get(index, (None,))[0] == key:
            return _INDEX_ENTRIES[index][1]
        entries = {}
        for line in split_nul(self.git("ls-files", "-v", "-s", "-z")):
            meta, path = line.split("\t", 1)
            tag, _mode, blob, _stage = meta.split()
            entries[path] = (tag, blob)
        if key is not None:
            _INDEX_ENTRIES[index] = (key, entries)
        return entries

    def commit_all(self, message: str) -> str | None:
        """Commit every change; returns the new commit, or None when nothing changed."""
        if not self.changed_paths():
            return None
        return self.commit_staged(message)

    def commit_staged(self, message: str) -> str:
        """Commit what changed_paths just staged (every change); returns the new commit."""
        self.git("commit", "--quiet", "--no-verify", "-m", message)
        return self.head()


def split_nul(output: str) -> list[str]:
    return [entry for entry in output.split("\0") if entry]


def is_output(path: str, outputs: list[str]) -> bool:
    """Whether `path` is a declared build output: under a directory entry (`build/`) or matching a glob."""
    return any(path.startswith(entry) if entry.endswith("/") else fnmatch.fnmatch(path, entry) for entry in outputs)


# The checkouts a verify found clean, with what they were then (Slot.verify).
_VERIFIED: dict[pathlib.Path, tuple[tuple, "_Fingerprint"]] = {}


@dataclass(frozen=True)
class _Fingerprint:
    """What a checkout is, as far as stat can tell: every path under it (the `.git` file aside) with its type,
    size, inode, mtime and ctime, the worktree's HEAD and the branch ref it names, and the index's stat.
    A process can set a file's mtime back, never its ctime: a write, a new file, a rename or a deleted one all
    change this. Equal fingerprints therefore mean an unchanged checkout, provided no time in it is so recent
    that a change within the same clock tick would keep it (git's "racily clean" problem): a checkout with
    such a time, or on a file system whose times are whole milliseconds, or larger than MAX_ENTRIES (where
    the walk costs more than git), has no fingerprint (None) and is verified by git."""

    entries: tuple
    refs: tuple

    MAX_ENTRIES = 5000
    RACY_SECONDS = 0.025  # two ticks and more of the kernel's coarse clock (1-10 ms), which stamps file times

    @classmethod
    def of(cls, slot: Slot) -> _Fingerprint | None:
        now = time.time_ns()
        entries = []
        stack = [""]
        while stack:
            directory = stack.pop()
            try:
                scanned = list(os.scandir(slot.path / directory))
            except OSError:
                return None
            for entry in scanned:
                relative = f"{directory}{entry.name}"
                if relative == ".git":
                    continue
                info = entry.stat(follow_symlinks=False)
                newest = max(info.st_mtime_ns, info.st_ctime_ns)
                if newest > now - cls.RACY_SECONDS * 1e9 or newest % 1_000_000 == 0:
                    return None
                entries.append((relative, info.st_mode, info.st_size, info.st_ino, info.st_mtime_ns,
                                info.st_ctime_ns))
                if entry.is_dir(follow_symlinks=False):
                    stack.append(relative + "/")
                if len(entries) > cls.MAX_ENTRIES:
                    return None
        try:
            head, ref = slot.head_files()  # a branch's packed ref: no fingerprint
            index = (slot.admin_dir() / "index").stat()
        except OSError:
            return None
        return cls(tuple(sorted(entries)), (head, ref, index.st_size, index.st_ino, index.st_mtime_ns,
                                            index.st_ctime_ns))


_COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# The index entries of each slot as last read, with the index's size and checksum then (Slot._index_entries).
_INDEX_ENTRIES: dict[pathlib.Path, tuple[tuple[int, bytes], dict[str, tuple[str, str]]]] = {}


def _under(path: str, entries: list[str]) -> bool:
    """Whether `path` is one of `entries` (files, or directories ending in /), as protected_paths means it."""
    return any(path.startswith(entry) if entry.endswith("/") else path == entry for entry in entries)


def _blob_id(path: pathlib.Path) -> str:
    """The id git gives the file's bytes as a blob (no filter applied)."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _listed(paths: list[str], shown: int = 5) -> str:
    return ", ".join(paths[:shown]) + (f" and {len(paths) - shown} more" if len(paths) > shown else "")


class SlotPool:
    """The slots of one worker, under `root`, for `repo`."""

    def __init__(self, repo: TargetRepo, root: str | os.PathLike):
        self.repo = repo
        self.root = pathlib.Path(root).resolve()
        self.checked: set[str] = set()  # slots this pool found or made registered: not listed again

    def slot(self, name: str, commit: str) -> Slot:
        """The slot `name`, created at `commit` if it does not exist yet, else reused as is."""
        path = self.root / name
        if name in self.checked and (path / ".git").exists():
            return Slot(name, path)
        with self.repo.lock():
            if not self._registered(path):
                self.repo.git("worktree", "prune")
                if path.exists() and any(path.iterdir()):
                    raise WorktreeError(f"{path} exists but is not a worktree of {self.repo.path}; remove it")
                path.parent.mkdir(parents=True, exist_ok=True)
                self.repo.git("worktree", "add", "--detach", str(path), commit)
        self.checked.add(name)
        return Slot(name, path)

    def remove(self, name: str) -> None:
        """Delete the slot `name`; the next `slot(name, ...)` checks it out afresh."""
        self.checked.discard(name)
        with self.repo.lock():
            shutil.rmtree(self.root / name, ignore_errors=True)
            self.repo.git("worktree", "prune")

    def _registered(self, path: pathlib.Path) -> bool:
        listing = self.repo.git("worktree", "list", "--porcelain")
        registered = {line[len("worktree "):] for line in listing.splitlines() if line.startswith("worktree ")}
        return str(path) in registered and (path / ".git").exists()
