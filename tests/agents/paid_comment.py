"""An agent that adds a comment (a null change) and reports what it cost as Claude Code's
`--output-format json` does: $0.40, 1,500 tokens in (500 of them from the cache), 200 out. On hypothesis `a1`
it fails after reporting: a failed run costs too."""
import json
import os
import pathlib
import sys

hypothesis = os.environ["FARM_HYPOTHESIS_ID"]
prog = pathlib.Path("prog.py")
prog.write_text(prog.read_text() + f"# {hypothesis}\n")
print("working...")
print(json.dumps({"type": "result", "subtype": "success", "is_error": False, "num_turns": 3,
                  "session_id": f"session-{hypothesis}", "total_cost_usd": 0.4,
                  "usage": {"input_tokens": 1000, "cache_read_input_tokens": 500, "output_tokens": 200}}))
sys.exit(1 if hypothesis == "a1" else 0)
