"""Paired, sequential A/B decisions on benchmark values.

A block gives one reference value r_i and one candidate value c_i measured
side by side; the statistic is d_i = log(c_i / r_i) (oriented so that < 0 is
better). The effect is the geometric-mean ratio exp(mean(d)). Its interval
is a Student-t interval whose critical value comes from a group-sequential
boundary (stats/sequential.py), so it stays valid however many of the
scheduled looks the experiment takes: a repeated confidence interval.

Per benchmark, with effect floor delta (a fraction, symmetric in log space):
  improved   the whole interval is below 1 / (1 + delta)
  regressed  the whole interval is above 1 + delta
  same       the interval lies inside [1 / (1 + delta), 1 + delta]
  unknown    none of these yet: more blocks would tell
  insufficient  fewer than two blocks, zero spread, NaN or non-positive values

Each side of the interval has error alpha across all looks, so a benchmark
with no real improvement beyond its floor is called improved with
probability at most alpha. Across benchmarks, `improved` is tested with Holm's
step-down procedure, so the keep of an experiment is a family-wise claim.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as scipy_stats

from stats.sequential import critical_t, nominal_level, validate_schedule


class Verdict(str, enum.Enum):
    IMPROVED = "improved"
    REGRESSED = "regressed"
    SAME = "same"
    UNKNOWN = "unknown"  # the interval straddles the floor: more blocks would tell
    INSUFFICIENT = "insufficient"  # too few usable pairs, no spread, or invalid values


class Outlook(str, enum.Enum):
    KEEP = "keep"
    DISCARD = "discard"
    CONTINUE = "continue"  # not decided yet: measure up to the next look


@dataclass(frozen=True)
class BenchmarkDecision:
    """One benchmark's comparison. `ratio` is cand/ref oriented so that < 1 is
    better (for higher-is-better benchmarks it is ref/cand); NaN when undefined.
    `p_improved` is the one-sided p-value of "no improvement beyond the floor"
    at this look (compare with stats.sequential.nominal_level)."""

    benchmark: str
    ratio: float
    ci_low: float
    ci_high: float
    verdict: Verdict
    n_blocks: int
    effect_floor: float
    p_improved: float = math.nan
    screen_low: float = math.nan  # one-sided (1 - beta) bounds: futility and no-regression checks
    screen_high: float = math.nan
    note: str = ""


@dataclass(frozen=True)
class ExperimentDecision:
    outlook: Outlook
    reason: str
    decisions: tuple[BenchmarkDecision, ...]


def log_ratios(ref, cand, higher_is_better: bool = False) -> np.ndarray:
    """d_i = log(cand_i / ref_i), negated when higher is better. Raises ValueError on degenerate input."""
    ref = np.asarray(ref, dtype=float)
    cand = np.asarray(cand, dtype=float)
    if ref.shape != cand.shape or ref.ndim != 1:
        raise ValueError("ref and cand must be 1-D and of equal length")
    if ref.size < 2:
        raise ValueError(f"need at least 2 blocks, got {ref.size}")
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(cand)) and np.all(ref > 0) and np.all(cand > 0)):
        raise ValueError("values must be positive and finite")
    d = np.log(cand) - np.log(ref)
    return -d if higher_is_better else d


def _spread(d: np.ndarray, aa_sd: float, aa_df: int) -> tuple[float, int, bool]:
    """(standard deviation of d, its degrees of freedom, pooled?); ValueError on zero spread.

    The experiment's own spread is pooled with the worker's A/A spread of the
    same benchmark (the two estimate the same noise when the change does not
    make the benchmark noisier). When the experiment is noisier than the A/A
    blocks, its own spread alone is used, with its own few degrees of freedom.
    """
    n = d.size
    own = float(d.std(ddof=1))
    if not own > 0:
        raise ValueError("zero spread: every block gave the same ratio (timer resolution?)")
    if aa_df >= 1 and math.isfinite(aa_sd) and own <= aa_sd:
        pooled = math.sqrt(((n - 1) * own ** 2 + aa_df * aa_sd ** 2) / (n - 1 + aa_df))
        return pooled, n - 1 + aa_df, True
    return own, n - 1, False


def ratio_interval(ref, cand, alpha: float = 0.05, looks=None):
    """Geometric-mean ratio cand/ref of paired values and its repeated confidence interval.

    Each side of the interval has error `alpha` over the look schedule `looks`
    (default: a single look at the number of blocks given). Returns
    (ratio, low, high); raises ValueError on degenerate input or zero spread.
    """
    d = log_ratios(ref, cand)
    sd, df, _ = _spread(d, math.nan, 0)
    looks = validate_schedule(looks if looks is not None else (d.size,))
    centre, half = float(d.mean()), critical_t(alpha, looks, df) * sd / math.sqrt(d.size)
    return math.exp(centre), math.exp(centre - half), math.exp(centre + half)


def decide_benchmark(benchmark: str, ref, cand, effect_floor: float, *, higher_is_better: bool = False,
                     alpha: float = 0.05, looks=None, aa_sd: float = math.nan, aa_df: int = 0,
                     beta: float = 0.2) -> BenchmarkDecision:
    """Classify one benchmark at a look (see the module docstring).

    `aa_sd`, `aa_df`: the A/A spread of this benchmark's log ratios on this
    worker and its degrees of freedom, pooled into the experiment's spread.
    `beta`: one-sided level of the screening bounds used for futility and
    no-regression (see decide_experiment). Never raises on bad data:
    degenerate input gives Verdict.INSUFFICIENT with the reason in `note`.
    """
    n = int(np.size(ref))
    nan = math.nan
    try:
        d = log_ratios(ref, cand, higher_is_better)
        sd, df, pooled = _spread(d, aa_sd, aa_df)
    except ValueError as error:
        return BenchmarkDecision(benchmark, nan, nan, nan, Verdict.INSUFFICIENT, n, effect_floor, note=str(error))
    looks = validate_schedule(looks if looks is not None else (n,))
    centre, standard_error = float(d.mean()), sd / math.sqrt(n)
    half = critical_t(alpha, looks, df) * standard_error
    screen = float(scipy_stats.t.isf(beta, df)) * standard_error
    ratio, low, high = math.exp(centre), math.exp(centre - half), math.exp(centre + half)
    bound = 1.0 + effect_floor
    if high < 1.0 / bound:
        verdict = Verdict.IMPROVED
    elif low > bound:
        verdict = Verdict.REGRESSED
    elif low >= 1.0 / bound and high <= bound:
        verdict = Verdict.SAME
    else:
        verdict = Verdict.UNKNOWN
    p_improved = float(scipy_stats.t.cdf((centre + math.log(bound)) / standard_error, df))
    return BenchmarkDecision(benchmark, ratio, low, high, verdict, n, effect_floor, p_improved,
                             math.exp(centre - screen), math.exp(centre + screen),
                             "spread pooled with A/A blocks" if pooled else "")


def holm_improved(decisions, alpha: float, looks) -> set[str]:
    """Benchmarks whose improvement survives Holm's step-down procedure at family-wise level alpha.

    The i-th smallest p-value (i = 0, 1, ...) of m is tested at the nominal
    sequential level for alpha / (m - i); testing stops at the first failure.
    """
    candidates = sorted((d for d in decisions if not math.isnan(d.p_improved)), key=lambda d: d.p_improved)
    m = len(candidates)
    passed = set()
    for i, d in enumerate(candidates):
        if d.verdict is not Verdict.IMPROVED or d.p_improved > nominal_level(alpha / (m - i), looks):
            break
        passed.add(d.benchmark)
    return passed


def _describe(d: BenchmarkDecision) -> str:
    if d.verdict is Verdict.INSUFFICIENT:
        return f"{d.benchmark} insufficient ({d.note})"
    return f"{d.benchmark} {d.ratio:.3f}x [{d.ci_low:.3f}, {d.ci_high:.3f}] (floor {d.effect_floor:.1%})"


def decide_experiment(decisions, *, alpha: float = 0.05, looks=None, final: bool = True) -> ExperimentDecision:
    """Keep, discard, or measure more, from the benchmarks' decisions at one look.

    Keep when at least one benchmark improved (Holm across benchmarks) and no
    other benchmark shows a sign of regressing beyond its floor (its one-sided
    1 - beta screening bound is inside the floor; at the last look, that none
    regressed is enough). Discard as soon as a
    benchmark regressed, or when no benchmark shows a sign of improving beyond
    its floor (futility: every screening lower bound is above 1 / (1 + floor)).
    At the last look (`final`) whatever is not a keep is a discard. Futility
    only ever turns keeps into discards, so it cannot raise the false-keep
    rate. `looks` defaults to one look at the blocks measured.
    """
    decisions = list(decisions)
    if not decisions:
        return ExperimentDecision(Outlook.DISCARD, "no benchmark was measured", ())
    looks = validate_schedule(looks if looks is not None else (max(2, decisions[0].n_blocks),))
    improved = holm_improved(decisions, alpha, looks)
    demoted = [replace(d, verdict=Verdict.UNKNOWN, note=f"not improved after Holm across {len(decisions)} benchmarks")
               if d.verdict is Verdict.IMPROVED and d.benchmark not in improved else d for d in decisions]
    decided = tuple(demoted)

    def outcome(outlook: Outlook, reason: str) -> ExperimentDecision:
        return ExperimentDecision(outlook, reason, decided)

    regressed = [d for d in decided if d.verdict is Verdict.REGRESSED]
    if regressed:
        return outcome(Outlook.DISCARD, "regressed: " + "; ".join(map(_describe, regressed)))
    insufficient = [d for d in decided if d.verdict is Verdict.INSUFFICIENT]
    if insufficient:
        if final:
            return outcome(Outlook.DISCARD, "insufficient data: " + "; ".join(map(_describe, insufficient)))
        return outcome(Outlook.CONTINUE, "insufficient data so far")
    # Before the last look a keep also needs every other benchmark clear of its floor; at the last look the
    # budget is spent and only a proven regression (handled above) blocks it.
    unsafe = [] if final else [d for d in decided
                               if d.benchmark not in improved and d.screen_high > 1.0 + d.effect_floor]
    if improved and not unsafe:
        wins = [d for d in decided if d.benchmark in improved]
        return outcome(Outlook.KEEP, "improved: " + "; ".join(map(_describe, wins)))
    if all(d.screen_low >= 1.0 / (1.0 + d.effect_floor) for d in decided):
        best = min(decided, key=lambda d: d.ratio)
        return outcome(Outlook.DISCARD, f"no benchmark improved beyond its floor; best {_describe(best)}")
    if not final:
        return outcome(Outlook.CONTINUE, "undecided")
    best = min(decided, key=lambda d: d.ratio)
    return outcome(Outlook.DISCARD, f"no benchmark improved beyond its floor within the block budget; "
                                    f"best {_describe(best)}")
