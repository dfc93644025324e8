"""Bubblewrap around what the farm does not trust: agents, and the phases that run a candidate's code.

An agent optimises a number and will, sooner or later, find the cheapest way to move it; a candidate's build
and benchmark run code the agent wrote. So each runs in a mount and PID namespace of its own (bwrap):

- `agent_sandbox`: the whole filesystem read-only; the farm's directories (the workdir with every slot, the
  measurement lock, the phase board, the logs and the store; the hub's .git) replaced by an empty read-only
  tmpfs; writable only the agent's scratch checkout, its own files (prompt, notes, memory) and the state
  directories its CLI declares; a private /tmp; the network unless `sandbox.network` is false.
- `phase_sandbox`: a build, guard or benchmark run: the filesystem as it is, but the farm's directories
  read-only except the one checkout the phase runs in.

Both run in a PID namespace that dies with the command (bwrap's --unshare-pid and --die-with-parent): nothing
started inside outlives it, however it detached (`setsid`, a double fork, `env -i` that drops the farm's
tag). Where bwrap cannot run, phases fall back to the tag sweep of farm/node/processes.py, and agents run only if
the campaign says `sandbox: none` (unsafe: the agent then works with the farm's own rights).
"""
from __future__ import annotations

import functools
import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass

PROBE_TIMEOUT_SECONDS = 30.0


@functools.cache
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot run here (one line that says what to do), or None when it can."""
    path = shutil.which("bwrap")
    if path is None:
        return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap (or set `sandbox: none`, unsafe)"
    try:
        probe = subprocess.run([path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
                                "--die-with-parent", "true"], capture_output=True, text=True, check=False,
                               timeout=PROBE_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap cannot run here: {error}"
    if probe.returncode != 0:
        said = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        return (f"bubblewrap cannot run here ({said}): allow unprivileged user namespaces "
                f"(sysctl kernel.unprivileged_userns_clone=1) or run as root, or set `sandbox: none` (unsafe)")
    return None


def _existing(paths: Iterable[os.PathLike | str]) -> list[str]:
    """Absolute, de-duplicated paths that exist, shortest first (a parent is mounted before what is inside)."""
    found = {os.path.realpath(p) for p in paths if p is not None and os.path.exists(p)}
    return sorted(found, key=lambda p: (p.count(os.sep), p))


def _outermost(paths: list[str]) -> list[str]:
    """The paths that lie inside none of the others (mounting those covers the rest)."""
    return [path for path in paths if not any(path.startswith(outer + os.sep) for outer in paths)]


@dataclass(frozen=True)
class Sandbox:
    """One bwrap command line: `argv()` goes before `bash -c COMMAND`. With `info_fd`, bwrap writes there (as
    JSON) the pid of the namespace's init, whose end is the end of everything started inside."""

    root_writable: bool  # the filesystem as it is (a phase) or read-only (an agent)
    hidden: tuple[str, ...] = ()  # replaced by an empty read-only tmpfs
    readonly: tuple[str, ...] = ()  # read-only (inside a hidden directory: shown again, read-only)
    writable: tuple[str, ...] = ()  # writable (inside a hidden or read-only directory)
    optional_writable: tuple[str, ...] = ()  # writable where they exist (an agent's declared state directories)
    private_tmp: bool = False
    tmp_visible: tuple[str, ...] = ()  # under /tmp, shown read-only in the private /tmp (the farm's Python, ...)
    network: bool = True

    def argv(self, info_fd: int | None = None) -> list[str]:
        argv = ["bwrap", "--die-with-parent", "--unshare-pid", "--new-session"]
        if info_fd is not None:
            argv += ["--info-fd", str(info_fd)]
        if self.root_writable:
            argv += ["--bind", "/", "/", "--dev-bind", "/dev", "/dev"]
        else:
            argv += ["--ro-bind", "/", "/", "--dev", "/dev"]
        argv += ["--proc", "/proc"]
        if self.private_tmp:
            argv += ["--tmpfs", "/tmp"]
            for path in self.tmp_visible:  # before the hidden directories, which may lie inside them
                argv += ["--ro-bind", path, path]
        for path in self.hidden:
            argv += ["--tmpfs", path]
        for path in self.readonly:
            argv += ["--ro-bind", path, path]
        for path in self.writable:
            argv += ["--bind", path, path]
        for path in self.optional_writable:
            argv += ["--bind-try", path, path]
        for path in self.hidden:  # after the mounts inside them: their mount points are made, then frozen
            argv += ["--remount-ro", path]
        if not self.network:
            argv += ["--unshare-net"]
        return argv + ["--"]


def agent_sandbox(farm_dirs: Iterable[os.PathLike | str], shown: Iterable[os.PathLike | str],
                  writable: Iterable[os.PathLike | str], state_dirs: Iterable[str], network: bool,
                  visible: Iterable[os.PathLike | str] = ()) -> Sandbox:
    """An agent's sandbox: `farm_dirs` hidden, `shown` (inside them) read-only again, `writable` writable (they
    must exist), `state_dirs` (~ expanded; one ending in / is made if missing) writable where they exist. Its
    /tmp is its own, but for what lies there and the agent needs: the farm's Python and code, and `visible`
    (the campaign file's directory, where a relative agent command points; a planner's files), read-only."""
    state = []
    for entry in state_dirs:
        path = os.path.expanduser(entry)
        if entry.endswith("/"):  # a CLI's own directory: made, so that its first run can write there
            os.makedirs(path, exist_ok=True)
        state.append(os.path.realpath(path))
    hidden = _outermost(_existing(farm_dirs))
    under_tmp = [path for path in _existing([sys.prefix, sys.base_prefix, pathlib.Path(__file__).parents[1],
                                             *visible]) if path.startswith("/tmp/")]
    return Sandbox(root_writable=False, hidden=tuple(hidden), readonly=tuple(_existing(shown)),
                   writable=tuple(_existing(writable)), optional_writable=tuple(state), private_tmp=True,
                   tmp_visible=tuple(_outermost(under_tmp)), network=network)


def phase_sandbox(farm_dirs: Iterable[os.PathLike | str], checkout: os.PathLike | str) -> Sandbox:
    """A phase's sandbox: `farm_dirs` read-only, `checkout` (inside them) writable."""
    return Sandbox(root_writable=True, readonly=tuple(_existing(farm_dirs)), writable=(os.path.realpath(checkout),))

