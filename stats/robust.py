"""A location estimate that a few disturbed blocks cannot move: Yuen's trimmed mean.

Shared machines slow down in bursts that hit one arm of a block (a run 40 %
slower, a speed regime that switches between the two runs). Such a block
gives a log ratio far from the others; the plain mean moves with it and the
plain standard deviation balloons. The trimmed mean drops the `trim` share
of the sorted values at each end; its standard error comes from the
winsorised variance (the dropped values replaced by the nearest kept ones):

    g = floor(trim * n),  h = n - 2g
    centre = mean of the sorted values g .. n-g-1
    se     = sqrt((n - 1) * winsorised variance / (h * (h - 1))),  df = h - 1

(Yuen 1974; Wilcox, "Introduction to Robust Estimation", section 4.3). For
normal data (centre - mu) / se is close to Student t with h - 1 degrees of
freedom; stats/sequential.py calibrates the exact boundary by simulation.

Every function works on the last axis and broadcasts over the others, so the
pipeline (one experiment) and the simulations (a million) run the same code.
"""
from __future__ import annotations

import numpy as np

TRIM = 0.2  # Wilcox's recommendation: near the mean's efficiency for normal data, robust to 20 % bad blocks


def trimmed_count(n: int, trim: float = TRIM) -> int:
    """g: how many values are dropped at each end of n."""
    return int(np.floor(trim * n + 1e-9))


def trimmed_location(d, trim: float = TRIM) -> tuple[np.ndarray, np.ndarray, int]:
    """(centre, standard error, degrees of freedom) of Yuen's trimmed mean over the last axis of `d`.

    `d` has at least 2 values on its last axis and no NaN (the caller checks);
    the standard error is 0 when all kept values are equal. Raises ValueError
    for fewer than 2 values.
    """
    d = np.asarray(d, dtype=float)
    n = d.shape[-1]
    if n < 2:
        raise ValueError(f"need at least 2 blocks, got {n}")
    g = trimmed_count(n, trim)
    h = n - 2 * g
    ordered = np.sort(d, axis=-1)
    centre = ordered[..., g:n - g].mean(axis=-1)
    winsorised = np.clip(ordered, ordered[..., g:g + 1], ordered[..., n - g - 1:n - g])
    variance = winsorised.var(axis=-1, ddof=1)
    se = np.sqrt((n - 1) * variance / (h * (h - 1)))
    return centre, se, h - 1
