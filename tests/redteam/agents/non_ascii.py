"""Adds a file with a non-ASCII name to the protected harness/ (git quotes such names unless told not to)."""
import pathlib

pathlib.Path("harness", "é.txt").write_text("expected: anything\n")
