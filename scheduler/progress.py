"""Progress of a running campaign: log lines (time since start, then what happened) and, on a terminal, the
live view of farm/storage/live.py redrawn in place below them."""
from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.live import Live

from farm.storage.live import LiveState, render

SHOWN_EVENTS = ("build", "guard", "measure", "store_error")  # worth a line; all events are in the store
REDRAW_SECONDS = 0.5  # the live view's state comes from the store actor: a query, not every turn


class Progress:
    def __init__(self, echo: Callable[[str], None] = print, live: bool = False):
        self.echo = echo
        self.started = time.monotonic()
        self.live = Live(console=Console(), auto_refresh=False, transient=True) if live else None
        self.drawn_at = 0.0

    def say(self, message: str) -> None:
        line = f"[{time.monotonic() - self.started:6.0f}s] {message}"
        if self.live is not None and self.live.is_started:
            self.live.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            self.echo(line)

    def events(self, rows) -> None:
        """Rows of the store actor's drain_events: (time, worker, experiment id, kind, message)."""
        for _at, worker, experiment_id, kind, message in rows:
            if kind in SHOWN_EVENTS:
                self.say(f"{worker} {experiment_id}: {message}")

    def show(self, state: Callable[[], LiveState], phases: Callable[[], dict]) -> None:
        """Redraw the live view (only on a terminal, and at most every REDRAW_SECONDS: the callables are not
        called otherwise)."""
        if self.live is None or time.monotonic() - self.drawn_at < REDRAW_SECONDS:
            return
        if not self.live.is_started:
            self.live.start()
        self.live.update(render(state(), phases()), refresh=True)
        self.drawn_at = time.monotonic()

    def stop(self) -> None:
        if self.live is not None and self.live.is_started:
            self.live.stop()
