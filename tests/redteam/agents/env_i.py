"""Leaves a process behind without the farm's tag (env -i drops the environment), in a session of its own."""
import pathlib
import subprocess
import sys

from _where import add_comment

subprocess.Popen(["env", "-i", "sleep", f"{sys.argv[1]}1"], start_new_session=True)
add_comment(pathlib.Path("prog.py"))
