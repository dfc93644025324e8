"""An agent that removes its worktree's .git link."""
import pathlib

pathlib.Path("prog.py").write_text(pathlib.Path("prog.py").read_text().replace("N = 400000", "N = 300000"))
pathlib.Path(".git").unlink()
