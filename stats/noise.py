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


def aa_log_ratios(first, second) -> np.ndarray:
    """log(second / first) of the A/A blocks whose two values are both positive and finite."""
    first = np.asarray(first, dtype=float)
    second = np.asarray(second, dtype=float)
    if first.shape != second.shape:
        raise ValueError("the two arms of A/A blocks must have equal length")
    usable = np.isfinite(first) & np.isfinite(second) & (first > 0) & (second > 0)
    return np.log(second[usable]) - np.log(first[usable])


def aa_noise(logs) -> float:
    """Standard deviation of A/A log ratios (pooled into the experiment's spread); NaN with fewer than 3."""
    logs = np.asarray(logs, dtype=float)
    return float(np.std(logs, ddof=1)) if logs.size >= 3 else math.nan


def robust_noise(logs) -> float:
    """1.4826 x the median absolute deviation of A/A log ratios: the spread without the pull of a single
    disturbed block (one spike would otherwise set the floor for the whole campaign); NaN with fewer than 3."""
    logs = np.asarray(logs, dtype=float)
    if logs.size < 3:
        return math.nan
    return float(1.4826 * np.median(np.abs(logs - np.median(logs))))


def effect_floor(min_effect: float, noise: float, k: float) -> float:
    """max(min_effect, k x noise) as a fraction (noise is in log units); min_effect when noise is unknown."""
    if not math.isfinite(noise) or noise <= 0:
        return min_effect
    return max(min_effect, math.expm1(k * noise))
