import math

import numpy as np
import pytest

from stats.artifacts import canary_alarm, control_chart, stale_build, suspect_baseline
from stats.noise import aa_log_ratios, aa_noise, effect_floor, robust_noise


def test_aa_noise_is_the_sd_of_usable_log_ratios():
    logs = aa_log_ratios([1.0, 1.0, 1.0, 1.0, 2.0, 0.0], np.exp([0.01, -0.01, 0.02, -0.02, float("nan"), 0.0]))
    assert logs == pytest.approx([0.01, -0.01, 0.02, -0.02])  # NaN and non-positive blocks are dropped
    assert aa_noise(logs) == pytest.approx(np.std([0.01, -0.01, 0.02, -0.02], ddof=1))
    assert math.isnan(aa_noise([0.0, 0.1]))


def test_robust_noise_ignores_one_disturbed_block():
    quiet = [0.01, -0.01, 0.02, -0.02, 0.0, 0.01]
    spiked = quiet[:-1] + [0.35]
    assert robust_noise(spiked) < 2 * robust_noise(quiet)
    assert aa_noise(spiked) > 5 * aa_noise(quiet)
    assert math.isnan(robust_noise([0.1, 0.2]))


def test_effect_floor_is_the_larger_of_minimum_and_k_noise():
    assert effect_floor(0.01, 0.02, 2.0) == pytest.approx(math.expm1(0.04))
    assert effect_floor(0.05, 0.02, 1.0) == 0.05
    assert effect_floor(0.03, math.nan, 1.0) == 0.03


def test_canary_alarm_fires_only_beyond_chance():
    assert canary_alarm(1, 20, 0.05) is None  # one in twenty is what alpha allows
    assert canary_alarm(0, 20, 0.05) is None
    reason = canary_alarm(6, 20, 0.05)
    assert reason and "6 of 20" in reason


def test_control_chart_flags_a_reference_run_far_from_history():
    history = [1.00, 1.01, 0.99, 1.005, 0.995, 1.0]
    assert control_chart(history, 1.003, min_spread=0.005) is None
    reason = control_chart(history, 1.08, min_spread=0.005)
    assert reason and "sigma" in reason
    assert control_chart(history[:3], 1.5, min_spread=0.005) is None  # too little history to judge
    # a dead-quiet history does not make every wobble an alarm
    assert control_chart([1.0] * 6, 1.01, min_spread=0.005) is None


def test_suspect_baseline_fires_when_everyone_beats_the_parent():
    changed = {f"e{i}": frozenset({f"src/file{i}.cpp"}) for i in range(6)}
    everyone = {f"e{i}": 0.93 + 0.005 * i for i in range(6)}
    reason = suspect_baseline(everyone, changed, floor=0.02)
    assert reason and "6 of 6" in reason
    mixed = {"e0": 0.93, "e1": 1.0, "e2": 1.01, "e3": 0.99, "e4": 0.92, "e5": 1.0}
    assert suspect_baseline(mixed, changed, floor=0.02) is None
    hot_path = {"e0": 0.40, "e1": 0.72, "e2": 0.93, "e3": 0.10, "e4": 0.78, "e5": 1.0}
    assert suspect_baseline(hot_path, changed, floor=0.02) is None  # real wins of different sizes
    same_file = {e: frozenset({"src/idw.cpp"}) for e in changed}
    assert suspect_baseline(everyone, same_file, floor=0.02) is None  # one change, tried often, may be real
    assert suspect_baseline({"e0": 0.9, "e1": 0.9}, changed, floor=0.02) is None  # too few to judge


def test_stale_build_compares_source_and_artefact_times():
    assert stale_build({"include/a.hpp": 200.0}, {"build/core.so": 100.0})
    assert stale_build({"include/a.hpp": 100.0}, {"build/core.so": 200.0}) is None
    assert stale_build({}, {"build/core.so": 200.0}) is None
