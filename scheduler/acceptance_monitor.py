"""The campaign's acceptance state across experiments, in a form that is stored and restored.

The verdict of one experiment is stats/decision.py's; this is what the campaign learns over many of them:
each worker's A/A log ratios (its build bias for the floor, its noise for the control chart) and canary
count, the reference arm's history per worker and parent (the control chart), the screens measured on each
parent (the suspect-baseline detector), and which hypotheses were already measured again. It is plain data
(`to_dict` / `from_dict`), saved in the store with every change, so a campaign whose coordinator died
resumes with the same floors and charts.
"""
from __future__ import annotations

import math

from farm.records import ExperimentResult, Status
from stats.artifacts import canary_alarm, control_chart, suspect_baseline
from stats.noise import build_bias, robust_noise

MIN_CHART_SPREAD = 0.002  # log units: a quiet history does not turn every wobble into an alarm
CANARY_VERDICTS = (Status.AA_CLEAN, Status.AA_FALSE_POSITIVE)  # a canary that measured something


def _key(*parts: str) -> str:
    return "|".join(parts)


class AcceptanceMonitor:
    def __init__(self, alpha: float, canary_every: int):
        self.alpha = alpha
        self.canary_every = canary_every
        self.aa_logs: dict[str, dict[str, list[float]]] = {}  # worker -> benchmark -> A/A log ratios
        self.since_canary: dict[str, int] = {}  # worker -> experiments since its last canary
        self.canaries: dict[str, list[int]] = {}  # worker -> [canaries, false positives]
        self.canary_failed: set[str] = set()  # workers whose last canary ended without a verdict (crash, timeout)
        self.alarmed: set[str] = set()  # workers whose canary alarm was raised
        self.ref_history: dict[str, list[float]] = {}  # worker|parent|benchmark -> reference means
        # parent -> experiment -> {hypothesis, status, effect, ratios, changed}
        self.screens: dict[str, dict[str, dict]] = {}
        self.suspected: set[str] = set()  # parent|benchmark already flagged
        self.remeasured: set[str] = set()  # hypothesis ids already measured again after an artifact
        self.rebuild_ref: set[str] = set()  # worker|parent: rebuild the reference from scratch next time

    # -- canaries (a) --------------------------------------------------------

    def canary_due(self, worker: str) -> bool:
        """A/A before a worker's first experiment, and again every canary_every experiments. A canary that ended
        without a verdict is due again, but after the experiment held for it (the next one `counted`): a parent
        whose benchmark does not run must not keep its worker running canaries for ever."""
        if worker in self.canary_failed:
            return False
        return worker not in self.aa_logs or self.since_canary.get(worker, 0) >= self.canary_every

    def build_bias(self, worker: str) -> tuple[tuple[str, float], ...]:
        """The worker's build-to-build bias per benchmark, pooled over its canaries, counted into the floor.
        Every target: two checkouts of the same pure-Python source ran 18 % apart for a whole experiment here."""
        return tuple((name, float(build_bias(logs)[2]))
                     for name, logs in sorted(self.aa_logs.get(worker, {}).items()) if len(logs) >= 3)

    def on_canary(self, worker: str, result: ExperimentResult) -> str | None:
        """Pool a canary's log ratios; the alarm's reason the first time the worker has too many false
        positives, else None. A canary that crashed or timed out measured nothing: it is not counted (no build
        bias, not in the false-positive rate) and the worker's canary stays due."""
        if result.status not in CANARY_VERDICTS:
            self.canary_failed.add(worker)
            return None
        logs = self.aa_logs.setdefault(worker, {})
        for name, values in result.aa_log_ratios:
            logs.setdefault(name, []).extend(values)
        self.since_canary[worker] = 0
        counts = self.canaries.setdefault(worker, [0, 0])
        counts[0] += 1
        counts[1] += result.status is Status.AA_FALSE_POSITIVE
        reason = canary_alarm(counts[1], counts[0], self.alpha)
        if reason and worker not in self.alarmed:
            self.alarmed.add(worker)
            return f"worker {worker}: {reason}"
        return None

    def counted(self, worker: str) -> None:
        """A worker's experiment (not a canary) ended."""
        self.since_canary[worker] = self.since_canary.get(worker, 0) + 1
        self.canary_failed.discard(worker)

    # -- the reference's control chart (b) -----------------------------------

    def off_control_chart(self, worker: str, parent: str, result: ExperimentResult) -> list[tuple[str, str]]:
        """(benchmark, reason) for each reference arm far from its history on this parent and worker."""
        noise = {name: robust_noise(logs) for name, logs in self.aa_logs.get(worker, {}).items()}
        flagged = []
        for name, value in result.ref_means:
            history = self.ref_history.setdefault(_key(worker, parent, name), [])
            reason = control_chart(history, value, min_spread=max(noise.get(name, 0.0) or 0.0, MIN_CHART_SPREAD))
            if reason:
                flagged.append((name, reason))
            history.append(value)  # the median ignores one outlier but follows a lasting change of the machine
        return flagged

    # -- screens on one parent (c) -------------------------------------------

    def record_screen(self, parent: str, result: ExperimentResult, hypothesis_id: str) -> None:
        self.screens.setdefault(parent, {})[result.experiment_id] = {
            "hypothesis": hypothesis_id, "status": result.status.value, "effect": result.effect,
            "ratios": {d.benchmark: d.ratio for d in result.decisions}, "changed": list(result.changed_paths)}

    def forget_screen(self, parent: str, experiment_id: str) -> dict:
        """Drop a screen from the parent's record (it is measured again); returns what was recorded."""
        return self.screens.get(parent, {}).pop(experiment_id)

    def suspect_baselines(self, parent: str, result: ExperimentResult) -> list[tuple[str, str, list[str]]]:
        """(benchmark, reason, experiments measured on `parent`) for each benchmark that nearly every
        experiment on this parent "improves" whatever it changed. Flags a (parent, benchmark) once, and marks
        the parent's reference for a rebuild from scratch on every worker."""
        screens = self.screens.get(parent, {})
        found = []
        for d in result.decisions:
            key = _key(parent, d.benchmark)
            if key in self.suspected:
                continue
            ratios = {exp: s["ratios"].get(d.benchmark, math.nan) for exp, s in screens.items()}
            changed = {exp: frozenset(s["changed"]) for exp, s in screens.items()}
            reason = suspect_baseline(ratios, changed, d.effect_floor)
            if reason:
                self.suspected.add(key)
                found.append((d.benchmark, reason, list(screens)))
        return found

    def rebuild_everywhere(self, workers: list[str], parent: str) -> None:
        self.rebuild_ref.update(_key(worker, parent) for worker in workers)

    def take_rebuild(self, worker: str, parent: str) -> bool:
        """Whether this worker must rebuild `parent`'s reference from scratch (asked once)."""
        key = _key(worker, parent)
        if key in self.rebuild_ref:
            self.rebuild_ref.discard(key)
            return True
        return False

    # -- stored form ---------------------------------------------------------

    _SETS = ("alarmed", "suspected", "remeasured", "rebuild_ref", "canary_failed")
    _DICTS = ("aa_logs", "since_canary", "canaries", "ref_history", "screens")

    def to_dict(self) -> dict:
        return {**{name: sorted(getattr(self, name)) for name in self._SETS},
                **{name: getattr(self, name) for name in self._DICTS}}

    @classmethod
    def from_dict(cls, alpha: float, canary_every: int, data: dict) -> AcceptanceMonitor:
        monitor = cls(alpha, canary_every)
        for name in cls._SETS:
            setattr(monitor, name, set(data.get(name, ())))
        for name in cls._DICTS:
            setattr(monitor, name, data.get(name, {}))
        return monitor
