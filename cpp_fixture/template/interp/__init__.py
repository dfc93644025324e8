"""Naive spatial interpolation: IDW, leave-one-out cross-validation, KDE, grid search.

The compiled kernels live in build/_interp_core*.so (run `python build.py`).
"""
import pathlib
import sys

_BUILD = pathlib.Path(__file__).resolve().parent.parent / "build"
sys.path.insert(0, str(_BUILD))
try:
    import _interp_core as core  # noqa: E402
except ImportError as error:  # pragma: no cover - a message for people
    raise ImportError(f"the extension is not built in {_BUILD}: run `python build.py` first") from error
finally:
    sys.path.remove(str(_BUILD))

from interp.kde import density, scott_bandwidth  # noqa: E402
from interp.search import grid_search  # noqa: E402

__all__ = ["core", "density", "scott_bandwidth", "grid_search"]
