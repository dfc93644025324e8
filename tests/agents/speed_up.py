"""An agent that makes the tiny target faster, commits its change itself (as some agents do) and leaves notes."""
import os
import pathlib
import subprocess

assert "Task:" in pathlib.Path(os.environ["FARM_PROMPT_FILE"]).read_text()
prog = pathlib.Path("prog.py")
prog.write_text(prog.read_text().replace("N = 400000", "N = 100000"))
subprocess.run(["git", "-c", "user.name=agent", "-c", "user.email=agent@x", "commit", "-qam", "fewer iterations"],
               check=True)
pathlib.Path(os.environ["FARM_NOTES_FILE"]).write_text("Cut the loop to a quarter; expect about 4x on loop.\n")
