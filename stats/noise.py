"""Effect floors: the configured minimum effect plus the measured build-to-build bias.

The floor is what a change must beat to be worth keeping, and it does not
grow with per-block noise: noise is the interval's job, and the interval
narrows with more blocks. What the floor adds to the configured minimum is
a systematic shift that more blocks cannot remove: two builds of the same
source can run at different speeds (link order, code alignment, embedded
paths), so a candidate's build may differ from the reference by that much
with no change in the code.

The bias is measured by an A/A canary between two builds of the parent (the
worker's reference build and a second build in its candidate slot). Its
estimate is the trimmed mean of the canary's log ratios (stats/robust.py),
with a standard error; the canaries of a worker are pooled, so the error
shrinks as the campaign goes. The floor counts |estimate|: a systematic shift
then sits inside the floor about as often as not, which the interval's alpha
absorbs (bench/decisions.py, null_build_offset: 0.03 false keeps). Counting an
upper bound instead (|estimate| + one standard error) would make the floor grow
with the canary's noise, the failure this design exists to avoid (power at 3x
noise with 10 % one-arm spikes fell to 0.66 that way).
Byte-identical builds are no exception, nor are targets that build nothing:
two checkouts of the same files ran 12-20 % (C++ fixture) and 18 % (pure
Python) apart here, for a whole canary or experiment. The cause is not
established. The coordinator counts the measured bias for every target.
"""
from __future__ import annotations

import math

import numpy as np

from stats.robust import TRIM, trimmed_location


def aa_log_ratios(first, second) -> np.ndarray:
    """log(second / first) of the A/A blocks whose two values are both positive and finite."""
    first = np.asarray(first, dtype=float)
    second = np.asarray(second, dtype=float)
    if first.shape != second.shape:
        raise ValueError("the two arms of A/A blocks must have equal length")
    usable = np.isfinite(first) & np.isfinite(second) & (first > 0) & (second > 0)
    return np.log(second[usable]) - np.log(first[usable])


def robust_noise(logs) -> float:
    """1.4826 x the median absolute deviation of A/A log ratios: the per-block spread without the pull of a
    single disturbed block (for reports and the control chart, never for the floor); NaN with fewer than 3."""
    logs = np.asarray(logs, dtype=float)
    if logs.size < 3:
        return math.nan
    return float(1.4826 * np.median(np.abs(logs - np.median(logs))))


def build_bias(logs, trim: float = TRIM):
    """(estimate, standard error, counted) of the build-to-build shift, in log units, over the last axis.

    `counted` = |estimate|: what the floor adds for a target that builds something. Fewer than 3 usable
    blocks, or no spread: counted 0 (and NaN estimate and se for too few blocks).
    """
    logs = np.asarray(logs, dtype=float)
    if logs.shape[-1] < 3:
        nan = np.full(logs.shape[:-1], math.nan)
        return nan, nan, np.zeros(logs.shape[:-1])
    centre, se, _ = trimmed_location(logs, trim)
    counted = np.where(se > 0, np.abs(centre), 0.0)
    return centre, se, counted


def effect_floor(min_effect, bias_counted=0.0):
    """The floor as a fraction: (1 + min_effect) x exp(counted bias) - 1."""
    return np.expm1(np.log1p(min_effect) + np.asarray(bias_counted, dtype=float))
