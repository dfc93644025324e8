"""Processes marked by a unique command line, to see what was left behind without trusting the farm's tags.

A test starts `sleep <marker><digit>` (a number of seconds no other process uses: hours long, random digits)
and afterwards walks /proc for command lines with an argument that starts with the marker.
"""
from __future__ import annotations

import os
import random
import signal
import time


def new_marker() -> str:
    return f"31415.{random.randrange(10**8):08d}"


def marked_pids(marker: str) -> list[int]:
    """Live processes with an argument that starts with `marker`, the sleeps (not the shell or Python that started
    them, whose code only contains it); zombies have no command line, and are dead anyway."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                if any(arg.startswith(marker.encode()) for arg in handle.read().split(b"\0")):
                    pids.append(int(name))
        except OSError:
            pass
    return pids


def wait_marked(marker: str, count: int, seconds: float = 10.0) -> list[int]:
    """Wait until at least `count` marked processes run; returns them (fewer if the time ran out)."""
    deadline = time.monotonic() + seconds
    while len(pids := marked_pids(marker)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def marked_after_kill(marker: str, seconds: float = 5.0) -> list[int]:
    """The marked processes still alive after up to `seconds`: a process sent SIGKILL keeps its command line
    until the kernel runs its exit, which on a loaded machine can be a moment after the kill returned. A
    process nobody killed (an hours-long sleep) is still there when the time runs out."""
    deadline = time.monotonic() + seconds
    while (pids := marked_pids(marker)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return pids


def kill_marked(marker: str) -> None:
    """Clean up after a failed test: nothing it started may keep running."""
    for pid in marked_pids(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
