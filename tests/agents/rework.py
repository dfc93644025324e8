"""An agent that breaks the guard on its first try and fixes it when shown the guard's output."""
import os
import pathlib

prompt = pathlib.Path(os.environ["FARM_PROMPT_FILE"]).read_text()
prog = pathlib.Path("prog.py")
if os.environ["FARM_ATTEMPT"] == "0":
    prog.write_text(prog.read_text().replace("N = 400000", "N = 100000").replace("total += i * i", "total += i"))
else:
    assert "The guard failed" in prompt and "```text" in prompt, prompt
    prog.write_text(prog.read_text().replace("total += i\n", "total += i * i\n"))
    pathlib.Path(os.environ["FARM_NOTES_FILE"]).write_text("restored the squares the guard checks\n")
