import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stats import Verdict, decide_benchmark, decide_experiment, ratio_interval


def test_ratio_is_geometric_mean_of_pair_ratios():
    ref = [1.0, 2.0, 4.0]
    cand = [0.5, 1.0, 4.0]  # ratios 0.5, 0.5, 1.0
    ratio, low, high = ratio_interval(ref, cand)
    assert math.isclose(ratio, (0.5 * 0.5 * 1.0) ** (1 / 3))
    assert low <= ratio <= high


def test_identical_pairs_give_a_point_interval():
    ratio, low, high = ratio_interval([2.0] * 5, [1.0] * 5)
    assert (ratio, low, high) == (0.5, 0.5, 0.5)


def test_clear_improvement_regression_and_same():
    rng = np.random.default_rng(1)
    ref = 1.0 + 0.005 * rng.standard_normal(10)
    assert decide_benchmark("b", ref, ref * 0.8, 0.02).verdict is Verdict.IMPROVED
    assert decide_benchmark("b", ref, ref * 1.2, 0.02).verdict is Verdict.REGRESSED
    assert decide_benchmark("b", ref, ref * 1.001, 0.02).verdict is Verdict.SAME


def test_noisy_small_effect_is_unknown():
    rng = np.random.default_rng(2)
    ref = np.ones(4)
    cand = 0.98 * np.exp(0.05 * rng.standard_normal(4))
    assert decide_benchmark("b", ref, cand, 0.02).verdict is Verdict.UNKNOWN


def test_higher_is_better_inverts_the_orientation():
    ref = np.array([100.0, 101.0, 99.0, 100.0])
    decision = decide_benchmark("throughput", ref, ref * 1.5, 0.02, higher_is_better=True)
    assert decision.verdict is Verdict.IMPROVED
    assert math.isclose(decision.ratio, 1 / 1.5)


def test_degenerate_inputs_are_insufficient_not_errors():
    for ref, cand in [([1.0], [1.0]), ([1.0, float("nan")], [1.0, 1.0]), ([1.0, 0.0], [1.0, 1.0]),
                      ([1.0, -1.0], [1.0, 1.0]), ([], [])]:
        decision = decide_benchmark("b", ref, cand, 0.02)
        assert decision.verdict is Verdict.INSUFFICIENT
        assert decision.note


def test_experiment_keep_needs_one_improved_and_none_regressed():
    fast = decide_benchmark("a", [1.0, 1.0, 1.0], [0.5, 0.5, 0.5], 0.02)
    slow = decide_benchmark("b", [1.0, 1.0, 1.0], [2.0, 2.0, 2.0], 0.02)
    same = decide_benchmark("c", [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], 0.02)
    assert decide_experiment([fast, same])[0] is True
    keep, reason = decide_experiment([fast, slow])
    assert keep is False and "regressed" in reason and "b" in reason
    keep, reason = decide_experiment([same])
    assert keep is False and "no benchmark improved" in reason
    assert decide_experiment([]) == (False, "no benchmark was measured")


positive = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)
pairs = st.lists(st.tuples(positive, positive), min_size=2, max_size=12)


@settings(max_examples=60, deadline=None)
@given(pairs, st.floats(min_value=1e-2, max_value=1e2))
def test_scaling_both_arms_leaves_the_ratio_unchanged(data, factor):
    ref, cand = map(np.array, zip(*data))
    a = ratio_interval(ref, cand)
    b = ratio_interval(ref * factor, cand * factor)
    assert np.allclose(a, b, rtol=1e-9)


@settings(max_examples=60, deadline=None)
@given(pairs)
def test_swapping_arms_inverts_the_ratio_and_interval(data):
    ref, cand = map(np.array, zip(*data))
    ratio, low, high = ratio_interval(ref, cand)
    ratio2, low2, high2 = ratio_interval(cand, ref)
    assert math.isclose(ratio2, 1 / ratio, rel_tol=1e-9)
    assert math.isclose(low2, 1 / high, rel_tol=1e-6) and math.isclose(high2, 1 / low, rel_tol=1e-6)
