import math

import numpy as np
import pytest

from stats.artifacts import canary_alarm, control_chart, stale_build, suspect_baseline
from stats.noise import aa_log_ratios, build_bias, effect_floor, robust_noise


def test_aa_log_ratios_drop_unusable_blocks():
    logs = aa_log_ratios([1.0, 1.0, 1.0, 1.0, 2.0, 0.0], np.exp([0.01, -0.01, 0.02, -0.02, float("nan"), 0.0]))
    assert logs == pytest.approx([0.01, -0.01, 0.02, -0.02])  # NaN and non-positive blocks are dropped


def test_robust_noise_ignores_one_disturbed_block():
    quiet = [0.01, -0.01, 0.02, -0.02, 0.0, 0.01]
    spiked = quiet[:-1] + [0.35]
    assert robust_noise(spiked) < 2 * robust_noise(quiet)
    assert math.isnan(robust_noise([0.1, 0.2]))


def test_build_bias_counts_the_measured_shift():
    logs = np.array([-0.031, -0.029, -0.030, -0.032, -0.028, -0.030, -0.031, -0.029])
    estimate, se, counted = build_bias(logs)
    assert estimate == pytest.approx(-0.030, abs=5e-4)
    assert counted == pytest.approx(abs(estimate))
    assert se < 0.001
    assert build_bias([0.1, 0.2])[2] == 0.0  # too few blocks to say anything


def test_the_floor_is_the_minimum_plus_the_bias_and_does_not_scale_with_noise():
    assert effect_floor(0.02) == pytest.approx(0.02)
    assert effect_floor(0.02, math.log(1.03)) == pytest.approx(1.02 * 1.03 - 1)
    # identical builds count no bias, however noisy the A/A blocks were: the floor is the configured minimum
    assert effect_floor(0.02, 0.0) == pytest.approx(0.02)


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
