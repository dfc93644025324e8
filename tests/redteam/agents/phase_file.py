"""Writes the other worker's phase file as a JSON list: on main, every block of every worker of the node then
ended as an internal error."""
from _where import other, workers

(workers / "phases" / f"{other}.json").write_text("[1, 2, 3]\n")
