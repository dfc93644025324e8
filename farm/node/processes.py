"""Finding and killing the processes the farm started.

Every process a campaign starts carries the environment variable
AUTORESEARCH_FARM_TAG = "<campaign>:<worker>:<token>", the token unique per
command. Children inherit the environment, also the ones that call setsid or
double-fork out of the process group, so the tag finds what a process-group
kill misses, and it still finds a phase's processes after the worker that
started them was killed (they are reparented, but keep their environment).

The campaign part of a tag is run_key(campaign, workdir), so runs of one campaign in two workdirs stay
apart. A tag is matched by prefix: "<campaign>:" is the whole campaign,
"<campaign>:<worker>:" one worker, the full tag one command. A prefix always
ends with ":" (campaign_tag adds it) so that worker "w1" does not match "w10".

The processes of the Ray a driver starts are found otherwise (kill_campaign_leftovers): some of them (its
agents) survive a killed driver, and Ray's process titles overwrite the environment in some of them, so
they are the processes with a file open in that Ray's session directory, which the driver writes in the
workdir.

Limits: /proc/<pid>/environ is the environment a process was started with,
readable only for processes of the same user (others are skipped), and only
the processes of this machine and PID namespace are seen. A process that
clears its environment before exec (env -i) drops the tag.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import signal
import time
from collections.abc import Callable

TAG_VARIABLE = "AUTORESEARCH_FARM_TAG"
KILL_GRACE_SECONDS = 2.0
RAY_SESSION_FILE = "ray-session"  # in the workdir: the session directory of the Ray a driver started
KILL_ROUNDS = 10  # a process that keeps forking gets this many rounds before kill_tagged gives up
POLL_SECONDS = 0.02
SETTLE_SECONDS = 0.005  # an exec is over well within this
PF_KTHREAD = 0x00200000  # /proc/<pid>/stat flags: a kernel thread (its environment is always empty)


def run_key(campaign: str, workdir: str | os.PathLike) -> str:
    """The name a run's tags carry: the campaign and its workdir, so that two runs of one campaign in two
    workdirs never kill each other's processes."""
    digest = hashlib.sha1(str(pathlib.Path(workdir).resolve()).encode()).hexdigest()[:10]
    return f"{campaign}.{digest}"


def campaign_tag(campaign: str, worker: str | None = None) -> str:
    """The prefix that matches a whole campaign ("<campaign>:") or one of its workers ("<campaign>:<worker>:")."""
    if ":" in campaign or (worker is not None and ":" in worker):
        raise ValueError(f"a campaign or worker name with ':' would match others' tags: {campaign!r}, {worker!r}")
    return f"{campaign}:" if worker is None else f"{campaign}:{worker}:"


def _tag_of(pid: int) -> str | None:
    """The farm tag of a live process; None if it has none, is a zombie, vanished or is not ours to read; "" if
    it cannot tell yet: a process in the middle of an exec shows an empty environment for an instant."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            # The state and the flags follow the command name, which is in parentheses and may itself hold ")".
            fields = handle.read().rsplit(b")", 1)[1].split()
        if fields[0] == b"Z":
            return None  # dead, only waiting for its parent to reap it: nothing to kill
        with open(f"/proc/{pid}/environ", "rb") as handle:
            environ = handle.read()
    except (OSError, IndexError):  # vanished, another user's process, or a kernel thread
        return None
    if not environ:
        return None if int(fields[6]) & PF_KTHREAD else ""
    key = TAG_VARIABLE.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(key):
            return entry[len(key):].decode(errors="replace")
    return None


def _pids() -> list[int]:
    """Every process but the calling one."""
    me = os.getpid()
    return [pid for pid in (int(name) for name in os.listdir("/proc") if name.isdigit()) if pid != me]


def _is_tagged(pid: int, prefix: str) -> bool | None:
    """Whether a process carries a tag starting with `prefix`; None if it cannot tell yet (see _tag_of)."""
    tag = _tag_of(pid)
    if tag == "":
        return None
    return tag is not None and tag.startswith(prefix)


def tagged_pids(prefix: str) -> list[int]:
    """The live processes whose tag starts with `prefix` (not counting the calling process)."""
    if not prefix:
        raise ValueError("an empty prefix would match every tagged process")
    return [pid for pid in _pids() if _is_tagged(pid, prefix)]


def _uses(pid: int, directory: str) -> bool:
    """Whether a live process has a file open under `directory`."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # vanished, or another user's
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(directory):
                return True
        except OSError:
            continue
    return False


def pids_using(directory: str | os.PathLike) -> list[int]:
    """The live processes with a file open under `directory` (not counting the calling process).

    This finds a Ray session's processes: each keeps its log files in the session directory open. Their
    environment is no help: Ray's process titles overwrite it in some of them."""
    directory = os.path.join(os.path.abspath(directory), "")
    return [pid for pid in _pids() if _uses(pid, directory)]


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_gone(pids: list[int], still: Callable[[int], bool], seconds: float) -> list[int]:
    """Wait up to `seconds` for `pids` to die; returns those still alive (and `still` matching: a pid may be
    reused)."""
    deadline = time.monotonic() + seconds
    while True:
        left = [pid for pid in pids if still(pid)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(POLL_SECONDS)


def _kill_matching(matches: Callable[[int], bool | None], grace: float) -> int:
    """Kill every process that `matches`: SIGTERM first, SIGKILL what is left after `grace` seconds. Processes
    may fork while being killed, so this repeats until none match, at most KILL_ROUNDS times. A process that
    `matches` cannot tell yet (None: in the middle of an exec) is looked at again once, SETTLE_SECONDS later:
    a command's child caught between fork and exec would otherwise outlive it. Returns how many there were."""
    killed: set[int] = set()
    looked_again: set[int] = set()
    for _ in range(KILL_ROUNDS):
        seen = {pid: matches(pid) for pid in _pids()}
        pids = [pid for pid, match in seen.items() if match]
        if not pids:
            unsettled = {pid for pid, match in seen.items() if match is None} - looked_again
            if not unsettled:
                break
            looked_again |= unsettled
            time.sleep(SETTLE_SECONDS)
            continue
        killed.update(pids)
        _signal_all(pids, signal.SIGTERM)
        left = _wait_gone(pids, matches, grace)
        _signal_all(left, signal.SIGKILL)
        _wait_gone(left, matches, grace)  # SIGKILL is not instant either: let the next round see only new forks
    return len(killed)


def kill_tagged(prefix: str, grace: float = KILL_GRACE_SECONDS) -> int:
    """Kill every process whose tag starts with `prefix`; returns how many there were."""
    if not prefix:
        raise ValueError("an empty prefix would match every tagged process")
    return _kill_matching(lambda pid: _is_tagged(pid, prefix), grace)


def kill_campaign_leftovers(campaign: str, workdir: pathlib.Path) -> int:
    """Kill what an earlier driver of `campaign` in `workdir` left running: its phases (they spoil the CPUs)
    and the processes of the Ray it started (written in RAY_SESSION_FILE): Ray's agents outlive a killed
    driver, and its store actor may still hold the DuckDB file. Only safe when no other driver of the
    campaign runs (farm/node/campaign_lock.py)."""
    killed = kill_tagged(campaign_tag(run_key(campaign, workdir)))
    session = workdir / RAY_SESSION_FILE
    if session.exists():
        directory = session.read_text().strip()
        # Only ever a Ray session directory: an empty or odd line must not match every open file.
        if os.path.isabs(directory) and os.path.basename(directory).startswith("session_"):
            prefix = os.path.join(directory, "")
            killed += _kill_matching(lambda pid: _uses(pid, prefix), KILL_GRACE_SECONDS)
        session.unlink()
    return killed
