"""An agent whose changes only slow the target down; it copies the strategy memory it was given into its notes."""
import os
import pathlib

prog = pathlib.Path("prog.py")
prog.write_text(prog.read_text().replace("N = 400000", "N = 1200000"))
memory = pathlib.Path(os.environ["FARM_MEMORY_FILE"]).read_text()
pathlib.Path(os.environ["FARM_NOTES_FILE"]).write_text(memory)
