"""Paired, sequential A/B decisions on benchmark values.

A block gives one reference value r_i and one candidate value c_i measured
side by side; the statistic is d_i = log(c_i / r_i) (oriented so that < 0 is
better). The effect is exp(trimmed mean of d): Yuen's 20 % trimmed mean
(stats/robust.py), so that a few blocks hit by a burst on one arm cannot move
it. Its interval uses the experiment's own spread only (never the campaign's
A/A noise: a quiet A/A period would make a noisy experiment look precise) and
a critical value calibrated by simulation for the whole look schedule
(stats/sequential.py): a repeated confidence interval, valid however many of
the scheduled looks the experiment takes.

Per benchmark, with effect floor delta (a fraction, symmetric in log space):
  improved   the whole interval is below 1 / (1 + delta)
  regressed  the whole interval is above 1 + delta
  same       the interval lies inside [1 / (1 + delta), 1 + delta]
  unknown    none of these yet: more blocks would tell
  insufficient  fewer than two blocks, zero spread, NaN or non-positive values

Each side of the interval has error alpha across all looks, so a benchmark
whose true effect is no better than its floor is called improved with
probability at most alpha. Across benchmarks, `improved` is tested with Holm's
step-down procedure on repeated p-values, so the keep of an experiment is a
family-wise claim.

The core (`assess`, `outlooks`) works on arrays: the last axis of `d` is the
blocks, the leading axes anything (benchmarks, simulated experiments), so the
pipeline and bench/decisions.py run the same code. `decide_benchmark` and
`decide_experiment` wrap it for one experiment with readable reasons.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy import stats as scipy_stats

from stats.robust import TRIM, trimmed_location
from stats.sequential import critical_t, marginal_p, repeated_p, validate_schedule
from stats.verdicts import BenchmarkDecision, ExperimentDecision, Outlook, Verdict

VERDICTS = tuple(Verdict)  # array code i <-> VERDICTS[i]
OUTLOOKS = tuple(Outlook)
IMPROVED, REGRESSED, SAME, UNKNOWN, INSUFFICIENT = range(5)
KEEP, DISCARD, CONTINUE = range(3)
ZERO_SPREAD = 1e-12  # standard errors of log ratios at or below this are no spread at all
# The share of alpha for the benchmarks whose instruction counts improved (holm_mask), calibrated in
# bench/decisions.py: their wins gain nearly as much as with all of alpha, and a win elsewhere keeps a chance.
FIRST_SHARE = 0.8


# -- the array core -----------------------------------------------------------

def assess(d, floor, *, alpha: float, looks, beta: float, trim: float = TRIM) -> dict[str, np.ndarray]:
    """Classify log ratios `d` (..., blocks) against `floor` (a fraction, broadcast to d.shape[:-1]).

    NaN or infinite values anywhere in a row make it insufficient. Returns
    arrays over the leading axes, all in log space: centre, low, high (the
    repeated interval), screen_low, screen_high, p_improved (repeated p-value)
    and verdict (codes IMPROVED .. INSUFFICIENT).
    """
    d = np.asarray(d, dtype=float)
    looks = validate_schedule(looks)
    bound = np.log1p(np.broadcast_to(np.asarray(floor, dtype=float), d.shape[:-1]))
    valid = np.all(np.isfinite(d), axis=-1)
    centre, se, df = trimmed_location(np.where(np.isfinite(d), d, 0.0), trim)
    valid &= se > ZERO_SPREAD  # equal ratios give a few ulps of spread after the logs, not exactly 0
    se = np.where(valid, se, np.nan)
    half = critical_t(alpha, looks, df) * se
    screen = float(scipy_stats.t.isf(beta, df)) * se
    low, high = centre - half, centre + half
    verdict = np.full(centre.shape, UNKNOWN)
    verdict = np.where((low >= -bound) & (high <= bound), SAME, verdict)
    verdict = np.where(low > bound, REGRESSED, verdict)
    verdict = np.where(high < -bound, IMPROVED, verdict)
    verdict = np.where(valid, verdict, INSUFFICIENT)
    p_improved = repeated_p(np.where(valid, marginal_p((-bound - centre) / se, df), np.nan), looks, trim)
    return {"centre": centre, "low": low, "high": high, "screen_low": centre - screen,
            "screen_high": centre + screen, "p_improved": p_improved, "verdict": verdict, "bound": bound}


def holm_mask(p_improved, verdict, alpha: float, first=None) -> np.ndarray:
    """Which benchmarks (last axis) keep `improved` after Holm's step-down at family-wise level alpha.

    The i-th smallest repeated p-value of m (i = 0, 1, ...) must be <= alpha / (m - i); testing stops
    at the first failure. NaN p-values never pass.

    `first` (a mask like the verdicts, or None): a family chosen without looking at these p-values (the
    benchmarks whose instruction counts improved, measured in runs of their own). Alpha is split between
    the two families: Holm over `first` at FIRST_SHARE * alpha, Holm over the others at the rest; when every
    one of `first` passes, its share goes to the others, which are then tested at alpha (a graphical
    procedure with Holm inside each family: family-wise level alpha over all). A win the counts predicted
    is tested among fewer benchmarks, at a lower bar; a win they did not predict at a higher one, never
    shut out. With an empty `first` this is Holm over all.
    """
    if first is None:
        return _holm(p_improved, verdict, alpha, np.ones(np.shape(verdict), bool))
    member = np.asarray(first, bool)
    # all of alpha to a first family that is every benchmark: there is nobody to share with
    share = np.where((~member).any(axis=-1, keepdims=True), FIRST_SHARE, 1.0)
    primary = _holm(p_improved, verdict, share * alpha, member)
    gate_open = (primary | ~member).all(axis=-1, keepdims=True)
    others = np.where(gate_open, _holm(p_improved, verdict, alpha, ~member),
                      _holm(p_improved, verdict, (1 - FIRST_SHARE) * alpha, ~member))
    return primary | others


def _holm(p_improved, verdict, alpha: float, member) -> np.ndarray:
    """Holm's step-down over the benchmarks in `member` (a mask); the others never pass."""
    p = np.where(np.isnan(p_improved) | ~member, np.inf, p_improved)
    m = member.sum(axis=-1, keepdims=True)
    order = np.argsort(p, axis=-1, kind="stable")
    ordered_p = np.take_along_axis(p, order, axis=-1)
    ordered_improved = np.take_along_axis(verdict, order, axis=-1) == IMPROVED
    rank = np.arange(p.shape[-1])
    with np.errstate(divide="ignore"):
        bar = np.where(rank < m, alpha / np.maximum(m - rank, 1), -np.inf)
    passes = (ordered_p <= bar) & ordered_improved
    passes = np.cumprod(passes, axis=-1).astype(bool)
    mask = np.empty_like(passes)
    np.put_along_axis(mask, order, passes, axis=-1)
    return mask


def outlooks(a: dict[str, np.ndarray], *, alpha: float, final: bool, extend: bool = False, first=None):
    """Keep / discard / continue per experiment from `assess` output whose last axis is the benchmarks.

    Keep: at least one benchmark improved after Holm, and no benchmark shows a
    sign of regressing beyond its floor (its one-sided 1 - beta screening lower
    bound above the floor); at the last look only a proven regression blocks a
    keep. Discard: a
    benchmark regressed, or none can still improve (futility: every screening
    lower bound is above -floor), or the last look came. `extend`: this is the
    last regular look and extension looks follow; an experiment that is not a
    keep goes on only while some benchmark shows a one-sided 1 - beta sign of
    improving beyond its floor (an interval still narrowing towards a keep; a
    bare estimate beyond the floor would send one null in several benchmarks
    into the extension). Futility and the extension rule
    only ever turn keeps into discards, so they cannot add false keeps.
    `first`: the family that gets FIRST_SHARE of alpha (holm_mask), e.g. the benchmarks whose instruction counts
    improved.
    Returns (outlook codes, Holm mask).
    """
    verdict = a["verdict"]
    holm = holm_mask(a["p_improved"], verdict, alpha, first)
    regressed = (verdict == REGRESSED).any(axis=-1)
    insufficient = (verdict == INSUFFICIENT).any(axis=-1)
    last = final or extend
    unsafe = np.zeros(regressed.shape, bool) if last else (a["screen_low"] > a["bound"]).any(axis=-1)
    keep = holm.any(axis=-1) & ~unsafe
    futile = (a["screen_low"] >= -a["bound"]).all(axis=-1)
    promising = (a["screen_high"] < -a["bound"]).any(axis=-1)
    if final:
        undecided = DISCARD
    elif extend:
        undecided = np.where(promising, CONTINUE, DISCARD)
    else:
        undecided = CONTINUE
    out = np.where(futile, DISCARD, undecided)
    out = np.where(keep, KEEP, out)
    out = np.where(insufficient, DISCARD if final else CONTINUE, out)
    out = np.where(regressed, DISCARD, out)
    return out, holm


# -- one experiment, with reasons ---------------------------------------------

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


def ratio_interval(ref, cand, alpha: float = 0.05, looks=None) -> tuple[float, float, float]:
    """Trimmed geometric-mean ratio cand/ref of paired values and its repeated confidence interval.

    Each side of the interval has error `alpha` over the look schedule `looks`
    (default: a single look at the number of blocks given). Returns
    (ratio, low, high); raises ValueError on degenerate input or zero spread.
    """
    d = log_ratios(ref, cand)
    a = assess(d, 0.0, alpha=alpha, looks=looks if looks is not None else (max(d.size, 3),), beta=0.2)
    if a["verdict"] == INSUFFICIENT:
        raise ValueError("zero spread: every block gave the same ratio (timer resolution?)")
    return math.exp(a["centre"]), math.exp(a["low"]), math.exp(a["high"])


def decide_benchmark(benchmark: str, ref, cand, effect_floor: float, *, higher_is_better: bool = False,
                     alpha: float = 0.05, looks=None, beta: float = 0.2, exact: bool = False) -> BenchmarkDecision:
    """Classify one benchmark at a look (see the module docstring).

    `looks`: the whole schedule (default: one look at the blocks given).
    `beta`: one-sided level of the screening bounds used for futility and
    no-regression (see `outlooks`). Never raises on bad data: degenerate input
    gives Verdict.INSUFFICIENT with the reason in `note`. `exact`: a measurement
    without noise (peak memory): when every block gives the same ratio, that
    ratio is the answer (its interval a point), not "insufficient".
    """
    n = int(np.size(ref))
    nan = math.nan
    try:
        d = log_ratios(ref, cand, higher_is_better)
    except ValueError as error:
        return BenchmarkDecision(benchmark, nan, nan, nan, Verdict.INSUFFICIENT, n, effect_floor, note=str(error))
    a = assess(d, effect_floor, alpha=alpha, looks=looks if looks is not None else (max(n, 3),), beta=beta)
    verdict = VERDICTS[int(a["verdict"])]
    if verdict is Verdict.INSUFFICIENT and exact and n >= 2 and np.all(d == d[0]):
        return _exact_decision(benchmark, float(d[0]), n, effect_floor)
    if verdict is Verdict.INSUFFICIENT:
        return BenchmarkDecision(benchmark, nan, nan, nan, verdict, n, effect_floor,
                                 note="zero spread: the kept blocks all gave the same ratio (timer resolution?)")
    e = {key: math.exp(float(a[key])) for key in ("centre", "low", "high", "screen_low", "screen_high")}
    return BenchmarkDecision(benchmark, e["centre"], e["low"], e["high"], verdict, n, effect_floor,
                             float(a["p_improved"]), e["screen_low"], e["screen_high"])


def _exact_decision(benchmark: str, log_ratio: float, n: int, effect_floor: float) -> BenchmarkDecision:
    """Every block gave the same log ratio: the ratio is known exactly, and decided against the floor."""
    bound = math.log1p(effect_floor)
    verdict = Verdict.IMPROVED if log_ratio < -bound else Verdict.REGRESSED if log_ratio > bound else Verdict.SAME
    ratio = math.exp(log_ratio)
    return BenchmarkDecision(benchmark, ratio, ratio, ratio, verdict, n, effect_floor,
                             0.0 if verdict is Verdict.IMPROVED else 1.0, ratio, ratio,
                             note="exact: every block gave this ratio")


def _describe(d: BenchmarkDecision) -> str:
    if d.verdict is Verdict.INSUFFICIENT:
        return f"{d.benchmark} insufficient ({d.note})"
    return f"{d.benchmark} {d.ratio:.3f}x [{d.ci_low:.3f}, {d.ci_high:.3f}] (floor {d.effect_floor:.1%})"


def _as_arrays(decisions: list[BenchmarkDecision]) -> dict[str, np.ndarray]:
    def logs(field):
        return np.array([math.log(getattr(d, field)) if getattr(d, field) > 0 else math.nan for d in decisions])
    return {"centre": logs("ratio"), "screen_low": logs("screen_low"), "screen_high": logs("screen_high"),
            "p_improved": np.array([d.p_improved for d in decisions]),
            "verdict": np.array([VERDICTS.index(d.verdict) for d in decisions]),
            "bound": np.log1p(np.array([d.effect_floor for d in decisions]))}


def decide_experiment(decisions, *, alpha: float = 0.05, final: bool = True, extend: bool = False,
                      first: frozenset[str] = frozenset()) -> ExperimentDecision:
    """Keep, discard, or measure more, from the benchmarks' decisions at one look (rules: `outlooks`).
    `first`: the benchmarks that get FIRST_SHARE of alpha (their instruction counts improved; holm_mask)."""
    decisions = list(decisions)
    if not decisions:
        return ExperimentDecision(Outlook.DISCARD, "no benchmark was measured", ())
    mask = np.array([d.benchmark in first for d in decisions]) if first else None
    code, holm = outlooks(_as_arrays(decisions), alpha=alpha, final=final, extend=extend, first=mask)
    outlook = OUTLOOKS[int(code)]
    decided = tuple(replace(d, verdict=Verdict.UNKNOWN, note=f"not improved after Holm across {len(decisions)} "
                                                               f"benchmarks")
                    if d.verdict is Verdict.IMPROVED and not passed else d for d, passed in zip(decisions, holm))
    regressed = [d for d in decided if d.verdict is Verdict.REGRESSED]
    insufficient = [d for d in decided if d.verdict is Verdict.INSUFFICIENT]
    wins = [d for d, passed in zip(decided, holm) if passed]
    best = min(decided, key=lambda d: d.ratio if d.ratio == d.ratio else math.inf)
    if outlook is Outlook.KEEP:
        reason = "improved: " + "; ".join(map(_describe, wins))
    elif regressed:
        reason = "regressed: " + "; ".join(map(_describe, regressed))
    elif insufficient:
        reason = "insufficient data" + (": " + "; ".join(map(_describe, insufficient)) if final else " so far")
    elif outlook is Outlook.CONTINUE:
        reason = "undecided"
    elif final or extend:
        reason = f"no benchmark improved beyond its floor within the block budget; best {_describe(best)}"
    else:
        reason = f"no benchmark improved beyond its floor; best {_describe(best)}"
    return ExperimentDecision(outlook, reason, decided)
