"""The live view of a running campaign (farm run on a terminal, farm status for a running campaign)."""
import time

from rich.console import Console

from farm.node.node_state import PhaseBoard
from farm.storage.live import LiveState, Running, board_phases, render


def test_the_live_view_shows_each_worker_its_phase_the_queue_and_the_best(tmp_path):
    PhaseBoard(tmp_path, "c", "w0").set("measure", "c-0003")
    state = LiveState("c", [Running("w0", "c-0003", "quarter", "screen", time.time() - 30)], waiting=4, merging=1,
                      statuses={"keep": 2, "discard": 3, "crash": 1}, best=("quarter", 0.25), blocks=57, landed=1)
    console = Console(record=True, width=200)
    console.print(render(state, board_phases(tmp_path)))
    text = console.export_text()
    assert "c: 4 to screen, 1 to land, 1 landed; 2 kept, 3 discarded, 1 other; best 0.250x (quarter); 57 blocks" \
        in text
    row = next(line for line in text.splitlines() if "c-0003" in line)
    assert "w0" in row and "quarter" in row and "measure 0s" in row and "30s" in row
