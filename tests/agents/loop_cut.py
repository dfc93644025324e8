"""An agent that cuts the tiny target's loop: to N/DIVISOR on its first run; asked to make its change again on a
tip that moved (the prompt says it no longer applies), it quarters whatever N is there now (4x: a 2x change
measured with 3 blocks on a noisy day of this VM, 39 % A/A noise per block, was once not called)."""
import os
import pathlib
import re
import sys

prompt = pathlib.Path(os.environ["FARM_PROMPT_FILE"]).read_text()
prog = pathlib.Path("prog.py")
n = int(re.search(r"^N = (\d+)$", prog.read_text(), re.MULTILINE).group(1))
again = "## Your change no longer applies" in prompt
new = n // 4 if again else 400000 // int(sys.argv[1])
prog.write_text(prog.read_text().replace(f"N = {n}", f"N = {new}"))
where = " (again, on the moved tip)" if again else ""
pathlib.Path(os.environ["FARM_NOTES_FILE"]).write_text(f"N {n} -> {new}{where}\n")
