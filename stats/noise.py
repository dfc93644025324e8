"""Noise floors from A/A blocks: the reference build measured against itself.

An A/A block runs the same build twice, side by side, exactly like an A/B
block. The spread of its log ratios is the noise a paired comparison on
this worker and benchmark cannot see through; an effect smaller than a few
times that is not worth keeping even when an interval says it is real
(layout and frequency effects move such small numbers between builds).
"""
from __future__ import annotations

import math

import numpy as np


def aa_noise(first, second) -> float:
    """Standard deviation of log(second / first) over A/A blocks; NaN with fewer than 3 usable blocks."""
    first = np.asarray(first, dtype=float)
    second = np.asarray(second, dtype=float)
    usable = np.isfinite(first) & np.isfinite(second) & (first > 0) & (second > 0)
    if first.shape != second.shape or int(usable.sum()) < 3:
        return math.nan
    return float(np.std(np.log(second[usable]) - np.log(first[usable]), ddof=1))


def robust_noise(first, second) -> float:
    """1.4826 x the median absolute deviation of log(second / first): the A/A spread without the pull of a
    single disturbed block (one spike would otherwise set the floor for the whole campaign); NaN with fewer
    than 3 usable blocks."""
    first = np.asarray(first, dtype=float)
    second = np.asarray(second, dtype=float)
    usable = np.isfinite(first) & np.isfinite(second) & (first > 0) & (second > 0)
    if first.shape != second.shape or int(usable.sum()) < 3:
        return math.nan
    d = np.log(second[usable]) - np.log(first[usable])
    return float(1.4826 * np.median(np.abs(d - np.median(d))))


def effect_floor(min_effect: float, noise: float, k: float) -> float:
    """max(min_effect, k x noise) as a fraction (noise is in log units); min_effect when noise is unknown."""
    if not math.isfinite(noise) or noise <= 0:
        return min_effect
    return max(min_effect, math.expm1(k * noise))
