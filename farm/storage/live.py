"""The live view of a running campaign: per worker what it runs, in which phase and for how long; the queue;
kept and discarded; the best effect so far; blocks spent. `farm run` redraws it in place (rich) while its log
lines scroll above; `farm status` prints it once for a campaign running in another terminal, from the store's
snapshot and the workers' phase files (farm/node/node_state.py)."""
from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table
from rich.text import Text

from farm.node.node_state import read_phase_files


@dataclass
class Running:
    worker: str
    experiment: str
    hypothesis: str
    kind: str
    started: float  # unix time


@dataclass
class LiveState:
    campaign: str
    running: list[Running]
    waiting: int  # hypotheses still to screen
    merging: int  # kept screens waiting to land, or landing
    statuses: dict[str, int] = field(default_factory=dict)
    best: tuple[str, float] | None = None  # (hypothesis, effect) of the best kept screen
    blocks: int = 0
    landed: int = 0


def board_phases(workers_dir: pathlib.Path) -> dict[str, tuple[str, float]]:
    """{worker: (phase, since)} from the phase files of the workers of a node."""
    return {record["worker"]: (record["phase"], record["since"])
            for record in read_phase_files(workers_dir / "phases")}


def render(state: LiveState, phases: dict[str, tuple[str, float]]) -> Group:
    now = time.time()
    kept, discarded = state.statuses.get("keep", 0), state.statuses.get("discard", 0)
    others = sum(state.statuses.values()) - kept - discarded
    best = f"{state.best[1]:.3f}x ({state.best[0]})" if state.best else "-"
    summary = Text(f"{state.campaign}: {state.waiting} to screen, {state.merging} to land, {state.landed} landed; "
                   f"{kept} kept, {discarded} discarded, {others} other; best {best}; {state.blocks} blocks")
    table = Table()
    for column in ("worker", "experiment", "hypothesis", "kind", "phase", "for"):
        table.add_column(column)
    for row in sorted(state.running, key=lambda r: r.worker):
        phase, since = phases.get(row.worker, ("?", row.started))
        table.add_row(row.worker, row.experiment, row.hypothesis, row.kind, f"{phase} {now - since:.0f}s",
                      f"{now - row.started:.0f}s")
    return Group(summary, table)


def from_store(con, campaign: str) -> LiveState:
    """The live state of a campaign from its store (a running one: its snapshot)."""
    running = [Running(w, e, h, k, started.timestamp()) for e, w, h, k, started in con.execute(
        "SELECT id, worker, hypothesis_id, kind, started_at FROM experiments WHERE campaign = ? AND status = "
        "'running'", [campaign]).fetchall()]
    statuses = dict(con.execute("SELECT status, count(*) FROM experiments WHERE campaign = ? AND kind = 'screen' "
                                "AND status <> 'running' GROUP BY 1", [campaign]).fetchall())
    best = con.execute("SELECT hypothesis_id, effect FROM experiments WHERE campaign = ? AND kind = 'screen' AND "
                       "status = 'keep' ORDER BY effect LIMIT 1", [campaign]).fetchall()
    screened, hypotheses, blocks, landed, kept_merges = con.execute("""
        SELECT (SELECT count(DISTINCT hypothesis_id) FROM experiments WHERE campaign = $c AND kind = 'screen'),
               (SELECT count(*) FROM hypotheses WHERE campaign = $c),
               (SELECT coalesce(sum(blocks), 0) FROM experiments WHERE campaign = $c),
               (SELECT count(*) FROM merges WHERE campaign = $c AND landed),
               (SELECT count(*) FROM experiments WHERE campaign = $c AND kind = 'screen' AND status = 'keep')
                 - (SELECT count(*) FROM merges WHERE campaign = $c)""", {"c": campaign}).fetchall()[0]
    return LiveState(campaign, running, hypotheses - screened, max(kept_merges, 0), statuses,
                     best[0] if best else None, int(blocks), landed)
