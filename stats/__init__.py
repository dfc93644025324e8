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
import importlib

# Imported when first used (PEP 562): scipy takes about a second to import, and `farm validate` needs only the
# look schedule of stats.sequential, whose import runs this file.
_HOMES = {**dict.fromkeys(["BenchmarkDecision", "ExperimentDecision", "Outlook", "Verdict"], "stats.verdicts"),
          **dict.fromkeys(["assess", "decide_benchmark", "decide_experiment", "holm_mask", "outlooks",
                           "ratio_interval"], "stats.decision"),
          **dict.fromkeys(["default_schedule", "nominal_level"], "stats.sequential")}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'stats' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
