"""Pure numeric code for the farm's acceptance decisions. Imports nothing of the farm.

Public:
    Verdict, Outlook          per-benchmark verdicts; keep | discard | continue
    BenchmarkDecision         one benchmark's ratio, repeated interval and verdict at a look
    ExperimentDecision        outlook, reason and the benchmarks' decisions
    ratio_interval            trimmed geometric-mean ratio of paired values and its repeated interval
    decide_benchmark          classification against an effect floor
    decide_experiment         keep / discard / continue with Holm across benchmarks
    assess, outlooks          the same rules on arrays (many benchmarks or simulated experiments at once)
    default_schedule, nominal_level   the group-sequential looks (stats.sequential)
    robust location: stats.robust; floors: stats.noise; artifact detectors: stats.artifacts
"""
from stats.decision import (
    BenchmarkDecision,
    ExperimentDecision,
    Outlook,
    Verdict,
    assess,
    decide_benchmark,
    decide_experiment,
    holm_mask,
    outlooks,
    ratio_interval,
)
from stats.sequential import default_schedule, nominal_level

__all__ = ["BenchmarkDecision", "ExperimentDecision", "Outlook", "Verdict", "assess", "decide_benchmark",
           "decide_experiment", "default_schedule", "holm_mask", "nominal_level", "outlooks", "ratio_interval"]
