"""Pure numeric code for the farm's acceptance decisions. Imports nothing of the farm.

Public:
    Verdict, Outlook          per-benchmark verdicts; keep | discard | continue
    BenchmarkDecision         one benchmark's ratio, repeated interval and verdict at a look
    ExperimentDecision        outlook, reason and the benchmarks' decisions
    ratio_interval            geometric-mean ratio of paired values and its repeated interval
    decide_benchmark          classification against an effect floor
    decide_experiment         keep / discard / continue with Holm across benchmarks
    default_schedule, nominal_level, pocock_boundary   the group-sequential looks (stats.sequential)
    noise floors and artifact detectors: stats.noise, stats.artifacts
"""
from stats.decision import (
    BenchmarkDecision,
    ExperimentDecision,
    Outlook,
    Verdict,
    decide_benchmark,
    decide_experiment,
    holm_improved,
    ratio_interval,
)
from stats.sequential import default_schedule, nominal_level, pocock_boundary

__all__ = ["BenchmarkDecision", "ExperimentDecision", "Outlook", "Verdict", "decide_benchmark", "decide_experiment",
           "default_schedule", "holm_improved", "nominal_level", "pocock_boundary", "ratio_interval"]
