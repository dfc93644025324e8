"""An agent that writes beside its checkout (into the worker's directory): read-only in its sandbox."""
import pathlib

pathlib.Path("prog.py").write_text(pathlib.Path("prog.py").read_text().replace("N = 400000", "N = 200000"))
pathlib.Path("../outside.txt").write_text("not mine to write\n")
