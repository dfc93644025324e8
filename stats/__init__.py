"""Pure numeric code for the farm's acceptance decisions. Imports nothing of the farm.

Public:
    Verdict                 improved | regressed | same | unknown | insufficient
    BenchmarkDecision       one benchmark's ratio, interval and verdict
    ratio_interval          bootstrap interval of the geometric-mean ratio of paired values
    decide_benchmark        ratio_interval + classification against an effect floor
    decide_experiment       keep or not, with the reason in words
"""
from stats.decision import (
    BenchmarkDecision,
    Verdict,
    decide_benchmark,
    decide_experiment,
    ratio_interval,
)

__all__ = ["BenchmarkDecision", "Verdict", "decide_benchmark", "decide_experiment", "ratio_interval"]
