"""Makes the farm's own git run its program: core.fsmonitor and a clean filter in its checkout's configuration
(and, if it could, in the repository's), then a comment."""
import pathlib
import subprocess
import sys

from _where import add_comment

marker, repo = sys.argv[1], sys.argv[2]
script = pathlib.Path(".git") / "monitor.sh"
script.write_text(f"#!/bin/sh\ntouch {marker}\n")
script.chmod(0o755)
subprocess.run(["git", "config", "--file", f"{repo}/.git/config", "core.fsmonitor", str(script.resolve())],
               check=False)  # hidden in the sandbox: fails
subprocess.run(["git", "config", "core.fsmonitor", str(script.resolve())], check=True)
subprocess.run(["git", "config", "filter.fast.clean", f"sh -c 'touch {marker}; cat'"], check=True)
pathlib.Path(".gitattributes").write_text("* filter=fast\n")
add_comment(pathlib.Path("prog.py"))
