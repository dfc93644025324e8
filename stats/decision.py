"""Paired A/B decisions on benchmark values.

A block gives one reference value r_i and one candidate value c_i measured
side by side. The effect is the geometric-mean ratio exp(mean(log(c_i/r_i)));
its interval is a bootstrap over blocks. A benchmark improved only when the
whole interval lies beyond the effect floor, regressed only when it lies
beyond the floor the other way, and is `same` when it lies inside the floor.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np


class Verdict(str, enum.Enum):
    IMPROVED = "improved"
    REGRESSED = "regressed"
    SAME = "same"
    UNKNOWN = "unknown"  # the interval straddles the floor: more blocks would tell
    INSUFFICIENT = "insufficient"  # too few usable pairs, or invalid values

    def is_decisive(self) -> bool:
        return self in (Verdict.IMPROVED, Verdict.REGRESSED, Verdict.SAME)


@dataclass(frozen=True)
class BenchmarkDecision:
    """One benchmark's comparison. `ratio` is cand/ref oriented so that < 1 is
    better (for higher-is-better benchmarks it is ref/cand); NaN when undefined."""

    benchmark: str
    ratio: float
    ci_low: float
    ci_high: float
    verdict: Verdict
    n_blocks: int
    effect_floor: float
    note: str = ""


def ratio_interval(ref, cand, confidence: float = 0.95, resamples: int = 2000, seed: int = 0):
    """Geometric-mean ratio cand/ref of paired values and its bootstrap interval.

    Input: two equal-length sequences of positive finite values (pair i is block i).
    Returns (ratio, low, high). Raises ValueError for unequal lengths, fewer than
    two pairs or values that are not positive and finite; decide_benchmark turns
    those into an `insufficient` verdict.

    The percentile bootstrap of a mean is too narrow for small n (it behaves
    like a z-interval with the n-divisor variance); the resampled deviations are
    widened by sqrt(n / (n - 1)) to correct the variance divisor.
    """
    ref = np.asarray(ref, dtype=float)
    cand = np.asarray(cand, dtype=float)
    if ref.shape != cand.shape or ref.ndim != 1:
        raise ValueError("ref and cand must be 1-D and of equal length")
    if ref.size < 2:
        raise ValueError(f"need at least 2 pairs, got {ref.size}")
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(cand)) and np.all(ref > 0) and np.all(cand > 0)):
        raise ValueError("values must be positive and finite")
    logs = np.log(cand) - np.log(ref)
    n = logs.size
    centre = float(logs.mean())
    rng = np.random.default_rng(seed)
    means = logs[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    spread = (means - centre) * math.sqrt(n / (n - 1))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(spread, [tail, 1.0 - tail])
    return math.exp(centre), math.exp(centre + low), math.exp(centre + high)


def decide_benchmark(benchmark: str, ref, cand, min_effect: float, *, higher_is_better: bool = False,
                     confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> BenchmarkDecision:
    """Classify one benchmark from paired values against the effect floor `min_effect`
    (a fraction: 0.02 means 2 %, applied symmetrically in log space).

    Never raises on bad data: fewer than two pairs, NaN, zero or negative values
    give Verdict.INSUFFICIENT with the reason in `note`.
    """
    ref = np.asarray(ref, dtype=float)
    cand = np.asarray(cand, dtype=float)
    if higher_is_better:
        ref, cand = cand, ref
    try:
        ratio, low, high = ratio_interval(ref, cand, confidence, resamples, seed)
    except ValueError as error:
        nan = float("nan")
        return BenchmarkDecision(benchmark, nan, nan, nan, Verdict.INSUFFICIENT, int(ref.size), min_effect, str(error))
    bound = 1.0 + min_effect
    if high < 1.0 / bound:
        verdict = Verdict.IMPROVED
    elif low > bound:
        verdict = Verdict.REGRESSED
    elif low >= 1.0 / bound and high <= bound:
        verdict = Verdict.SAME
    else:
        verdict = Verdict.UNKNOWN
    return BenchmarkDecision(benchmark, ratio, low, high, verdict, int(ref.size), min_effect)


def _describe(d: BenchmarkDecision) -> str:
    if d.verdict is Verdict.INSUFFICIENT:
        return f"{d.benchmark} insufficient ({d.note})"
    return f"{d.benchmark} {d.ratio:.3f}x [{d.ci_low:.3f}, {d.ci_high:.3f}]"


def decide_experiment(decisions: list[BenchmarkDecision]) -> tuple[bool, str]:
    """Keep only if at least one benchmark improved and none regressed.

    Returns (keep, reason in words). An empty list is not a keep.
    """
    if not decisions:
        return False, "no benchmark was measured"
    improved = [d for d in decisions if d.verdict is Verdict.IMPROVED]
    regressed = [d for d in decisions if d.verdict is Verdict.REGRESSED]
    if regressed:
        return False, "regressed: " + "; ".join(map(_describe, regressed))
    if improved:
        return True, "improved: " + "; ".join(map(_describe, improved))
    best = min((d for d in decisions if not math.isnan(d.ratio)), key=lambda d: d.ratio, default=None)
    floor = decisions[0].effect_floor
    detail = f"; best {_describe(best)}" if best else ""
    return False, f"no benchmark improved beyond the {floor:.1%} floor{detail}"
