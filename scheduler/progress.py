"""Progress lines of a running campaign: time since start, then what happened."""
from __future__ import annotations

import time
from collections.abc import Callable

SHOWN_EVENTS = ("build", "guard", "measure")  # the workers' events worth a line; all of them are in the store


class Progress:
    def __init__(self, echo: Callable[[str], None] = print):
        self.echo = echo
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        self.echo(f"[{time.monotonic() - self.started:6.0f}s] {message}")

    def events(self, rows) -> None:
        """Rows of the store actor's drain_events: (time, worker, experiment id, kind, message)."""
        for _at, worker, experiment_id, kind, message in rows:
            if kind in SHOWN_EVENTS:
                self.say(f"{worker} {experiment_id}: {message}")
