"""Group-sequential boundaries: how strict each look must be so that looking
at the data several times still keeps the error rate at alpha.

An experiment adds blocks and looks at pre-set block counts (the schedule).
At every look the statistic (Yuen's trimmed mean of the log ratios against
the floor, stats/robust.py) gives a marginal one-sided p-value from Student t
with its degrees of freedom. Every look is tested at the same nominal level
nu (Pocock's design on the p-value scale), chosen so that under the null

    P(the marginal p-value is <= nu at any look of the schedule) = alpha.

The t distribution is only an approximation for a trimmed mean, and the looks
are correlated, so nu is not computed from a formula: it is calibrated by
simulating the statistic actually used (normal blocks, true effect exactly on
the floor) along the whole schedule, seeded, and cached per schedule and trim.
The same simulation gives repeated p-values: the probability, under the null,
that the smallest marginal p-value over the schedule is at most the observed
one. Comparing repeated p-values with alpha / k is what Holm's procedure needs.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from stats.robust import TRIM, trimmed_location
from stats.schedule import default_schedule, validate_schedule  # noqa: F401 -- part of this module's API

CALIBRATION_PATHS = 400_000  # Monte-Carlo error of the calibrated level at alpha 0.05: about 0.0003
CALIBRATION_SEED = 20_261_123  # fixed: the same boundary on every machine and in every process
_CHUNK_VALUES = 1_000_000  # simulated log ratios held at once (8 MB)


def marginal_p(t_statistic, df) -> np.ndarray:
    """One-sided p-value of a look: P(T >= t) for Student t with `df` degrees of freedom (NaN stays NaN)."""
    from scipy import stats  # here, not at the top: `farm validate` imports this module for its schedule

    return stats.t.sf(t_statistic, df)


@functools.lru_cache(maxsize=64)
def null_min_p(looks: tuple[int, ...], trim: float = TRIM) -> np.ndarray:
    """Sorted smallest marginal p-value over the schedule, for CALIBRATION_PATHS simulated null experiments.

    Null: independent normal log ratios whose true location is exactly on the
    tested boundary (the statistic is location- and scale-free, so N(0, 1)
    stands for every floor and noise level).
    """
    looks = validate_schedule(looks)
    rng = np.random.default_rng(CALIBRATION_SEED)
    minima = []
    chunk = max(_CHUNK_VALUES // looks[-1], 1_000)
    for start in range(0, CALIBRATION_PATHS, chunk):
        d = rng.standard_normal((min(chunk, CALIBRATION_PATHS - start), looks[-1]))
        smallest = np.ones(d.shape[0])
        for n in looks:
            centre, se, df = trimmed_location(d[:, :n], trim)
            smallest = np.minimum(smallest, marginal_p(-centre / se, df))
        minima.append(smallest)
    return np.sort(np.concatenate(minima))


def nominal_level(alpha: float, looks, trim: float = TRIM) -> float:
    """The one-sided level nu every look is tested at, so that the whole schedule has error alpha."""
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    minima = null_min_p(validate_schedule(looks), trim)
    return float(minima[max(int(math.floor(alpha * minima.size)) - 1, 0)])


def repeated_p(p_marginal, looks, trim: float = TRIM) -> np.ndarray:
    """P(the smallest marginal p-value over the schedule <= p_marginal) under the null; NaN stays NaN."""
    minima = null_min_p(validate_schedule(looks), trim)
    p_marginal = np.asarray(p_marginal, dtype=float)
    counted = np.searchsorted(minima, np.nan_to_num(p_marginal, nan=1.0), side="right") / minima.size
    return np.where(np.isnan(p_marginal), np.nan, np.maximum(counted, 1.0 / minima.size))


def critical_t(alpha: float, looks, df, trim: float = TRIM):
    """The one-sided critical value of the trimmed-mean t statistic at a look with `df` degrees of freedom."""
    from scipy import stats

    return stats.t.isf(nominal_level(alpha, looks, trim), df)


