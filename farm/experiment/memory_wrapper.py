"""Which program measures a benchmark run's peak memory: farm/experiment/peak_rss.c compiled, else
farm/experiment/peak_rss.py.

Both take `FD ARGV...` and write the same report (see farm/experiment/peak_rss.py for why a wrapper is needed at all).
The
compiled one starts in about 1 ms, the Python one in about 10 ms (`python -I -S`), and a benchmark run pays it
once per run, so the C source is compiled on first use into the user's cache directory, under a name that
holds the hash of its source (a changed source is compiled again; a half-written binary is never used: it is
written under a temporary name and renamed). Where no C compiler is found, or it fails, the Python form runs.
"""
from __future__ import annotations

import functools
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

SOURCE = pathlib.Path(__file__).with_name("peak_rss.c")
PYTHON_FORM = pathlib.Path(__file__).with_name("peak_rss.py")
COMPILE_TIMEOUT_SECONDS = 60.0


def cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "autoresearch-farm"


@functools.cache
def compiled() -> pathlib.Path | None:
    """The compiled wrapper (compiled now if it is not yet), or None where it cannot be."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None or not SOURCE.is_file():
        return None
    digest = hashlib.sha256(SOURCE.read_bytes() + os.uname().machine.encode()).hexdigest()[:16]
    binary = cache_dir() / f"peak_rss-{digest}"
    if os.access(binary, os.X_OK):
        return binary
    try:
        binary.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=binary.parent, prefix=".peak_rss-")
        os.close(handle)
        done = subprocess.run([compiler, "-O2", "-o", partial, str(SOURCE)], capture_output=True,
                              timeout=COMPILE_TIMEOUT_SECONDS, check=False)
        if done.returncode != 0:
            os.unlink(partial)
            return None
        os.chmod(partial, 0o755)
        os.replace(partial, binary)  # another worker compiling at the same time writes the same bytes
    except (OSError, subprocess.TimeoutExpired):
        return None
    return binary


def wrapper_argv(report_fd: int) -> list[str]:
    """The argv that goes before the measured command."""
    binary = compiled()
    if binary is not None:
        return [str(binary), str(report_fd)]
    return [sys.executable, "-I", "-S", str(PYTHON_FORM), str(report_fd)]


def describe() -> str:
    """One line for `farm doctor`."""
    binary = compiled()
    if binary is not None:
        return f"compiled ({binary})"
    return "the Python form (no C compiler found, or it failed: about 10 ms more per benchmark run)"
