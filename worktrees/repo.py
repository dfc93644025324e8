"""The target repository: resolving refs, the integration branch, a process lock."""
from __future__ import annotations

import contextlib
import functools
import os
import pathlib
import selectors
import signal
import subprocess
import time

from worktrees.file_lock import file_lock

# Farm commits carry a fixed identity, whatever the user's git config says.
FARM_IDENTITY = {
    "GIT_AUTHOR_NAME": "autoresearch-farm", "GIT_AUTHOR_EMAIL": "farm@localhost",
    "GIT_COMMITTER_NAME": "autoresearch-farm", "GIT_COMMITTER_EMAIL": "farm@localhost",
}
# Never let an automatic gc run while several worktrees write to one repository. No hooks: a farm checkout or
# commit must not run the user's hooks (interactive ones would hang the worker; the others would run unpinned and
# untagged, outside the farm's control); core.hooksPath=/dev/null is a directory that holds no hook. No program
# named by configuration either: core.fsmonitor is a command git runs on every status, add and checkout, and
# the untracked cache would trust what a monitor said.
GIT_OPTIONS = ["-c", "gc.auto=0", "-c", "advice.detachedHead=false", "-c", "core.hooksPath=/dev/null",
               "-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false"]
# Only the repository's own configuration counts, never the user's global or the system's: an agent run without
# the sandbox could write ~/.gitconfig (an fsmonitor, a filter driver, an external diff) and every later git call
# of the farm would run it. The repository's configuration is the user's: no sandbox can write it.
GIT_ENVIRONMENT = {**FARM_IDENTITY, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
                   "GIT_TERMINAL_PROMPT": "0", "LANGUAGE": "C", "LC_ALL": "C"}  # git's own words, in English
# A git call that takes longer is killed (with its children): a stuck git must not hang a worker for good.
GIT_TIMEOUT_SECONDS = 300.0


class WorktreeError(Exception):
    """A git operation failed; the message holds the command and git's own words."""


class ApplyError(WorktreeError):
    """A patch or cherry-pick does not apply on the given parent."""


def run_git(cwd: str | os.PathLike, *args: str, timeout: float = GIT_TIMEOUT_SECONDS,
            env: dict[str, str] | None = None) -> str:
    """Run git in `cwd` with the farm's identity and options (`env` added to its environment); returns stdout
    without its final newline, raises WorktreeError (also after `timeout` seconds, when git and whatever it
    started have been killed). A plain subprocess in a session of its own, not GitPython's execute: a worker
    calls git about 20 times an experiment, and GitPython's watchdog thread cost about 1 ms a call."""
    proc = subprocess.Popen(["git", *GIT_OPTIONS, *args], cwd=cwd, env={**os.environ, **GIT_ENVIRONMENT, **(env or {})},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        stdout, stderr = _read_until_closed(proc, timeout)
        proc.wait()  # not Popen.communicate(timeout): its wait after the output polls in sleeps of about 1 ms
    except TimeoutError:
        _kill_session(proc)
        raise WorktreeError(f"git {' '.join(args)} timed out after {timeout:g}s") from None
    except BaseException:  # interrupted: git does not outlive the call
        _kill_session(proc)
        raise
    if proc.returncode != 0:
        said = stderr.decode(errors="replace").strip()
        raise WorktreeError(f"git {' '.join(args)}: {said or f'exit {proc.returncode}'}")
    text = stdout.decode(errors="surrogateescape")
    return text[:-1] if text.endswith("\n") else text


def _read_until_closed(proc: subprocess.Popen, timeout: float) -> tuple[bytes, bytes]:
    """Everything git writes to stdout and stderr, until it closes both (it exits then); TimeoutError after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    out, err = proc.stdout.fileno(), proc.stderr.fileno()
    chunks: dict[int, list[bytes]] = {out: [], err: []}
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            for key, _ in selector.select(remaining):
                data = os.read(key.fd, 1 << 16)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
    proc.stdout.close()
    proc.stderr.close()
    return b"".join(chunks[out]), b"".join(chunks[err])


def _kill_session(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class TargetRepo:
    """The repository a campaign optimises. Holds no live handle: safe to pickle."""

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path).resolve()
        try:  # the repository itself (its work tree's top, or a bare repository), not a directory inside one
            bare = run_git(self.path, "rev-parse", "--is-bare-repository") == "true"
            top = run_git(self.path, "rev-parse", "--absolute-git-dir" if bare else "--show-toplevel")
        except (OSError, WorktreeError):
            top = None
        if top is None or pathlib.Path(top).resolve() != self.path:
            raise WorktreeError(f"{self.path} is not a git repository")

    def git(self, *args: str) -> str:
        return run_git(self.path, *args)

    def resolve(self, ref: str) -> str:
        """The full commit id of a ref; WorktreeError if it names no commit."""
        try:
            return self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        except WorktreeError:
            raise WorktreeError(f"{ref!r} names no commit in {self.path}") from None

    def advance_branch(self, branch: str, new: str, old: str) -> None:
        """Move `branch` from `old` to `new` atomically; WorktreeError if it no longer points at `old` (old "":
        the branch must not exist yet)."""
        self.git("update-ref", f"refs/heads/{branch}", new, old)

    def commits_between(self, base: str, tip: str) -> list[str]:
        """Commits reachable from tip but not base, oldest first."""
        out = self.git("rev-list", "--reverse", f"{base}..{tip}")
        return out.split() if out else []

    @functools.cached_property
    def git_dir(self) -> pathlib.Path:
        """The repository's own git directory (`.git` of a work tree, a bare repository itself); asked once."""
        path = pathlib.Path(self.git("rev-parse", "--git-common-dir"))
        return path if path.is_absolute() else self.path / path

    @contextlib.contextmanager
    def lock(self):
        """An exclusive lock across processes, held around worktree add/remove/prune."""
        with file_lock(self.git_dir / "farm-worktrees.lock"):
            yield
