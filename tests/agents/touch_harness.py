"""An agent that makes the guard pass whatever the code does."""
import pathlib

pathlib.Path("guard.sh").write_text("true\n")
pathlib.Path("prog.py").write_text(pathlib.Path("prog.py").read_text().replace("N = 400000", "N = 1000"))
