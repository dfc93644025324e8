"""An agent that hangs, with children: one in its process group, one in a session of its own."""
import subprocess
import sys
import time

marker = sys.argv[1]
subprocess.Popen(["sleep", f"{marker}1"])
subprocess.Popen(["setsid", "sleep", f"{marker}2"])
time.sleep(3600)
