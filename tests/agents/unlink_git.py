"""An agent that removes its checkout's .git (a worktree link on main; the scratch clone's directory now)."""
import pathlib
import shutil

pathlib.Path("prog.py").write_text(pathlib.Path("prog.py").read_text().replace("N = 400000", "N = 300000"))
git = pathlib.Path(".git")
git.unlink() if git.is_file() else shutil.rmtree(git)
