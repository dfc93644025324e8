"""Finding and killing the processes the farm started.

Every process a campaign starts carries the environment variable
AUTORESEARCH_FARM_TAG = "<campaign>:<worker>:<token>", the token unique per
command. Children inherit the environment, also the ones that call setsid or
double-fork out of the process group, so the tag finds what a process-group
kill misses, and it still finds a phase's processes after the worker that
started them was killed (they are reparented, but keep their environment).

A tag is matched by prefix: "<campaign>:" is the whole campaign,
"<campaign>:<worker>:" one worker, the full tag one command. A prefix always
ends with ":" (campaign_tag adds it) so that worker "w1" does not match "w10".

Limits: /proc/<pid>/environ is the environment a process was started with,
readable only for processes of the same user (others are skipped), and only
the processes of this machine and PID namespace are seen. A process that
clears its environment before exec (env -i) drops the tag.
"""
from __future__ import annotations

import os
import signal
import time

TAG_VARIABLE = "AUTORESEARCH_FARM_TAG"
KILL_GRACE_SECONDS = 2.0
KILL_ROUNDS = 10  # a process that keeps forking gets this many rounds before kill_tagged gives up
POLL_SECONDS = 0.02


def campaign_tag(campaign: str, worker: str | None = None) -> str:
    """The prefix that matches a whole campaign ("<campaign>:") or one of its workers ("<campaign>:<worker>:")."""
    if ":" in campaign or (worker is not None and ":" in worker):
        raise ValueError(f"a campaign or worker name with ':' would match others' tags: {campaign!r}, {worker!r}")
    return f"{campaign}:" if worker is None else f"{campaign}:{worker}:"


def ray_tag(campaign: str) -> str:
    """The prefix of the tags of the Ray processes (daemons, actors) a campaign's driver starts. Ray leaves some
    of them (its dashboard and runtime-env agents) running when the driver is killed; the next run of the
    campaign finds them by this prefix. "@" never starts a campaign name, so no campaign_tag matches it."""
    return f"@ray:{campaign}:"


def _tag_of(pid: int) -> str | None:
    """The farm tag of a live process; None if it has none, is a zombie, vanished or is not ours to read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            # The state follows the command name, which is in parentheses and may itself hold ")".
            if handle.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return None  # dead, only waiting for its parent to reap it: nothing to kill
        with open(f"/proc/{pid}/environ", "rb") as handle:
            environ = handle.read()
    except (OSError, IndexError):  # vanished, another user's process, or a kernel thread
        return None
    key = TAG_VARIABLE.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(key):
            return entry[len(key):].decode(errors="replace")
    return None


def _is_tagged(pid: int, prefix: str, keep: str | None = None) -> bool:
    tag = _tag_of(pid)
    return tag is not None and tag.startswith(prefix) and not (keep and tag.startswith(keep))


def tagged_pids(prefix: str, keep: str | None = None) -> list[int]:
    """The live processes whose tag starts with `prefix` and not with `keep` (not counting the calling
    process)."""
    if not prefix:
        raise ValueError("an empty prefix would match every tagged process")
    me = os.getpid()
    return [pid for pid in (int(name) for name in os.listdir("/proc") if name.isdigit())
            if pid != me and _is_tagged(pid, prefix, keep)]


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_gone(pids: list[int], prefix: str, seconds: float) -> list[int]:
    """Wait up to `seconds` for `pids` to die; returns those still alive (and still tagged: a pid may be reused)."""
    deadline = time.monotonic() + seconds
    while True:
        left = [pid for pid in pids if _is_tagged(pid, prefix)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(POLL_SECONDS)


def kill_tagged(prefix: str, grace: float = KILL_GRACE_SECONDS, keep: str | None = None) -> int:
    """Kill every process whose tag starts with `prefix` (and not with `keep`); returns how many there were.

    SIGTERM first, SIGKILL what is left after `grace` seconds. Processes may fork
    while being killed, so this repeats until none carry the tag, at most
    KILL_ROUNDS times.
    """
    killed: set[int] = set()
    for _ in range(KILL_ROUNDS):
        pids = tagged_pids(prefix, keep)
        if not pids:
            break
        killed.update(pids)
        _signal_all(pids, signal.SIGTERM)
        left = _wait_gone(pids, prefix, grace)
        _signal_all(left, signal.SIGKILL)
        _wait_gone(left, prefix, grace)  # SIGKILL is not instant either: let the next round see only new forks
    return len(killed)


def kill_campaign_leftovers(campaign: str, keep: str | None = None) -> int:
    """Kill what an earlier driver of `campaign` left running: its phases (they spoil the CPUs) and Ray's
    processes (orphaned agents poll; a surviving store actor holds the DuckDB file). `keep`: the tag of this
    driver's own Ray. Only safe when no other driver of the campaign runs (farm/campaign_lock.py)."""
    return kill_tagged(campaign_tag(campaign)) + kill_tagged(ray_tag(campaign), keep=keep)
