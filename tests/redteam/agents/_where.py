"""Where the farm's own files are, seen from an agent's checkout (workdir/workers/<me>/scratch)."""
import os
import pathlib

checkout = pathlib.Path(os.environ["FARM_WORKTREE"])
workers = checkout.parent.parent
me = checkout.parent.name
other = "w1" if me == "w0" else "w0"


def add_comment(path: pathlib.Path) -> None:
    """The honest-looking part of an attack: a comment, so the change is not empty."""
    path.write_text(path.read_text() + "# tuned\n")
