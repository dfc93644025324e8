"""An honest no-op: a comment. Never faster, so never kept."""
import pathlib

from _where import add_comment

add_comment(pathlib.Path("prog.py"))
