"""What a decision says: the verdicts and outlooks, and the records of a benchmark's and an experiment's decision.

Apart from stats/decision.py (numpy, scipy), because these records travel: every experiment's result carries
them to the coordinator and the store actor, which unpickle them, and importing scipy there cost 0.7 s at the
campaign's first result.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass


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
    `p_improved` is the repeated p-value of "no improvement beyond the floor"
    (compare it with alpha)."""

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
