"""Detectors of measurement artifacts across experiments. Each returns the
reason in words when it fires and None when it stays quiet; the coordinator
turns a reason into an `artifacts` row and acts on it.

(a) canary_alarm      A/A canaries are kept or flagged more often than alpha allows
(b) control_chart     a reference run far from the history of the same parent on the same worker
(c) suspect_baseline  most experiments on one parent "improve" the same benchmark, whatever they changed
(d) stale_build       a source that feeds the artefact is newer than the artefact after the build
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import stats as scipy_stats


def canary_alarm(false_positives: int, canaries: int, alpha: float, confidence: float = 0.01) -> str | None:
    """Fires when `false_positives` of `canaries` A/A comparisons is more than chance allows at rate alpha
    (one-sided binomial test at `confidence`)."""
    if canaries <= 0 or false_positives <= 0:
        return None
    p_value = float(scipy_stats.binom.sf(false_positives - 1, canaries, alpha))
    if p_value >= confidence:
        return None
    return (f"{false_positives} of {canaries} A/A canaries were called different (expected at most "
            f"{alpha:.0%}; binomial p = {p_value:.2g}): the measurements on this worker are not trustworthy")


def control_chart(history, value: float, min_spread: float, limit: float = 4.0, min_history: int = 5) -> str | None:
    """Fires when `value` (a reference arm's geometric mean) is more than `limit` robust standard deviations
    from the median of `history` (earlier reference means of the same parent on the same worker), in log
    space. The spread is 1.4826 x MAD, at least `min_spread` (log units), so a very quiet history does not
    turn every wobble into an alarm."""
    history = np.asarray([h for h in history if h > 0 and math.isfinite(h)], dtype=float)
    if history.size < min_history or not (value > 0 and math.isfinite(value)):
        return None
    logs = np.log(history)
    centre = float(np.median(logs))
    spread = max(1.4826 * float(np.median(np.abs(logs - centre))), min_spread)
    distance = (math.log(value) - centre) / spread
    if abs(distance) <= limit:
        return None
    return (f"reference run {value:.4g} is {distance:+.1f} sigma from the median {math.exp(centre):.4g} of "
            f"{history.size} earlier reference runs on this parent and worker")


def suspect_baseline(ratios: Mapping[str, float], changed: Mapping[str, frozenset[str]], floor: float,
                     share: float = 0.75, min_experiments: int = 4) -> str | None:
    """The case study's rule for one benchmark on one parent.

    `ratios`: experiment id -> this benchmark's ratio (< 1 is better), every experiment measured against
    the parent, discards included; `changed`: experiment id -> the paths it changed. Fires when at least
    `min_experiments` and at least `share` of them "improved" the benchmark beyond `floor`, by the same
    factor (all within `floor` of their median), and they changed at least two different sets of files:
    then the reference measurement is the suspect.
    """
    measured = {e: r for e, r in ratios.items() if math.isfinite(r)}
    better = sorted(e for e, r in measured.items() if r < 1.0 / (1.0 + floor))
    if len(better) < min_experiments or len(better) < share * len(measured):
        return None
    if len({changed.get(e, frozenset()) for e in better}) < 2:
        return None
    logs = np.log([measured[e] for e in better])
    if np.max(np.abs(logs - np.median(logs))) > math.log1p(floor):
        return None  # different sizes of improvement: real wins on a shared hot path, not one shifted baseline
    typical = float(np.exp(np.median(logs)))
    return (f"{len(better)} of {len(measured)} experiments on this parent show it {typical:.3f}x whatever they "
            f"changed: the reference measurement is suspect")


def stale_build(source_mtimes: Mapping[str, float], artefact_mtimes: Mapping[str, float]) -> str | None:
    """Fires when a changed source that feeds the artefacts is newer than the oldest artefact after the build:
    the build did not rebuild what the change touched (missing header dependencies, a cached wheel)."""
    if not source_mtimes or not artefact_mtimes:
        return None
    newest_source = max(source_mtimes, key=source_mtimes.get)
    oldest_artefact = min(artefact_mtimes, key=artefact_mtimes.get)
    if source_mtimes[newest_source] <= artefact_mtimes[oldest_artefact]:
        return None
    return (f"{newest_source} changed after {oldest_artefact} was last built: the build did not rebuild what "
            f"the change touched")
