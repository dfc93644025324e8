"""Group-sequential boundaries: how strict each look must be so that looking
at the data several times still keeps the error rate at alpha.

An experiment adds blocks and looks at pre-set block counts (the schedule).
At every look the one-sided test statistic is compared with the same
boundary c (Pocock's design), chosen so that under the null hypothesis

    P(the statistic crosses c at any look of the schedule) = alpha.

The sum of the per-block statistics is a random walk observed at the looks;
c is solved from the walk's crossing probability, computed by numerical
integration (no simulation, so the same boundary on every machine). For the small-sample t statistics the farm uses, the
boundary is carried over as a nominal significance level 1 - Phi(c) per look
(Jennison & Turnbull, "Group Sequential Methods", 2000, section 3.8),
then turned into a Student-t critical value with n_k - 1 degrees of freedom.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from scipy import optimize, signal, stats


def validate_schedule(looks) -> tuple[int, ...]:
    """The schedule as a sorted tuple; raises ValueError unless it is increasing block counts >= 2."""
    schedule = tuple(int(n) for n in looks)
    if not schedule:
        raise ValueError("the look schedule is empty")
    if schedule[0] < 2 or any(b <= a for a, b in zip(schedule, schedule[1:])):
        raise ValueError(f"looks must be increasing block counts of at least 2, got {list(looks)}")
    return schedule


def crossing_probability(c: float, looks: tuple[int, ...], step: float = 0.005) -> float:
    """P(S_k >= c * sqrt(n_k) at some look k) for a standard random walk S observed at block counts `looks`.

    Armitage, McPherson and Rowe's recursion: carry the density of the walk
    among paths that have not crossed yet from look to look on a grid
    (convolving with the normal increment, cutting at the boundary); what is
    left at the end is the probability of never crossing.
    """
    top = c * math.sqrt(looks[-1])
    grid = np.arange(-8.0 * math.sqrt(looks[-1]), top + step, step)
    density = stats.norm.pdf(grid, scale=math.sqrt(looks[0]))
    density[grid >= c * math.sqrt(looks[0])] = 0.0
    for before, now in zip(looks, looks[1:]):
        spread = math.sqrt(now - before)
        offsets = np.arange(-8.0 * spread, 8.0 * spread + step, step)
        kernel = stats.norm.pdf(offsets, scale=spread) * step
        moved = signal.fftconvolve(density, kernel)  # index i + j  <->  grid[i] + offsets[j]
        first = int(round(-offsets[0] / step))
        density = moved[first:first + grid.size]
        density[grid >= c * math.sqrt(now)] = 0.0
    return float(1.0 - density.sum() * step)


@functools.lru_cache(maxsize=256)
def pocock_boundary(alpha: float, looks: tuple[int, ...]) -> float:
    """The constant one-sided z boundary c with P(max_k Z_k >= c) = alpha over `looks`."""
    looks = validate_schedule(looks)
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    single = float(stats.norm.isf(alpha))
    if len(looks) == 1:
        return single
    bonferroni = float(stats.norm.isf(alpha / len(looks)))
    return float(optimize.brentq(lambda c: crossing_probability(c, looks) - alpha, single, bonferroni + 0.01,
                                 xtol=1e-5))


def nominal_level(alpha: float, looks) -> float:
    """The one-sided significance level each single look is tested at."""
    return float(stats.norm.sf(pocock_boundary(alpha, validate_schedule(looks))))


def critical_t(alpha: float, looks, df: int) -> float:
    """The one-sided Student-t critical value at a look whose spread has `df` degrees of freedom."""
    return _critical_t(alpha, validate_schedule(looks), int(df))


@functools.lru_cache(maxsize=4096)
def _critical_t(alpha: float, looks: tuple[int, ...], df: int) -> float:
    if df < 1:
        return math.inf
    return float(stats.t.isf(nominal_level(alpha, looks), df))


def default_schedule(min_blocks: int, max_blocks: int) -> tuple[int, ...]:
    """Looks at min_blocks, then growing by about a quarter each time, ending at max_blocks.

    Looking at every block would force a higher boundary for little gain: each
    extra look at a nearby block count adds little information.
    """
    if not 2 <= min_blocks <= max_blocks:
        raise ValueError(f"need 2 <= min_blocks <= max_blocks, got {min_blocks} and {max_blocks}")
    looks = [min_blocks]
    while looks[-1] < max_blocks:
        step = max(looks[-1] + 1, math.ceil(looks[-1] * 1.25))
        looks.append(max_blocks if max_blocks - step < 2 else step)
    return tuple(looks)
