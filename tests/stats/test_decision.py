import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from stats import Outlook, Verdict, decide_benchmark, decide_experiment, ratio_interval
from stats.decision import holm_improved


def test_ratio_is_geometric_mean_of_pair_ratios():
    ref = [1.0, 2.0, 4.0]
    cand = [0.5, 1.0, 4.0]  # ratios 0.5, 0.5, 1.0
    ratio, low, high = ratio_interval(ref, cand)
    assert math.isclose(ratio, (0.5 * 0.5 * 1.0) ** (1 / 3))
    assert low <= ratio <= high


def test_single_look_interval_is_the_one_sided_t_interval():
    d = np.array([-0.05, -0.02, -0.04, -0.01, -0.03])
    ratio, low, high = ratio_interval(np.ones(5), np.exp(d), alpha=0.05)
    half = scipy_stats.t.isf(0.05, 4) * d.std(ddof=1) / math.sqrt(5)
    assert math.isclose(math.log(high), d.mean() + half, rel_tol=1e-9)
    assert math.isclose(math.log(low), d.mean() - half, rel_tol=1e-9)


def test_more_looks_widen_the_interval():
    d = np.exp(np.array([-0.05, -0.02, -0.04, -0.01, -0.03]))
    _, low1, high1 = ratio_interval(np.ones(5), d, looks=(5,))
    _, low3, high3 = ratio_interval(np.ones(5), d, looks=(3, 5, 8))
    assert low3 < low1 and high3 > high1


def test_p_improved_is_the_t_test_against_the_floor():
    ref = np.ones(6)
    d = np.array([-0.05, -0.03, -0.06, -0.02, -0.04, -0.05])
    decision = decide_benchmark("b", ref, np.exp(d), 0.02)
    t = (d.mean() + math.log(1.02)) / (d.std(ddof=1) / math.sqrt(6))
    assert math.isclose(decision.p_improved, scipy_stats.t.cdf(t, 5), rel_tol=1e-9)


def test_clear_improvement_regression_and_same():
    rng = np.random.default_rng(1)
    ref = 1.0 + 0.005 * rng.standard_normal(10)
    noise = np.exp(0.002 * rng.standard_normal(10))
    assert decide_benchmark("b", ref, ref * 0.8 * noise, 0.02).verdict is Verdict.IMPROVED
    assert decide_benchmark("b", ref, ref * 1.2 * noise, 0.02).verdict is Verdict.REGRESSED
    assert decide_benchmark("b", ref, ref * 1.001 * noise, 0.02).verdict is Verdict.SAME


def test_noisy_small_effect_is_unknown():
    rng = np.random.default_rng(2)
    ref = np.ones(4)
    cand = 0.98 * np.exp(0.05 * rng.standard_normal(4))
    assert decide_benchmark("b", ref, cand, 0.02).verdict is Verdict.UNKNOWN


def test_aa_spread_is_pooled_unless_the_experiment_is_noisier():
    ref = np.ones(3)
    cand = np.exp(np.array([-0.10, -0.08, -0.12]))  # own sd 0.02 on 2 degrees of freedom
    alone = decide_benchmark("b", ref, cand, 0.02)
    pooled = decide_benchmark("b", ref, cand, 0.02, aa_sd=0.03, aa_df=9)
    assert pooled.note == "spread pooled with A/A blocks" and pooled.ci_high < alone.ci_high
    quieter_aa = decide_benchmark("b", ref, cand, 0.02, aa_sd=0.01, aa_df=9)
    assert quieter_aa.note == "" and math.isclose(quieter_aa.ci_high, alone.ci_high)


def test_higher_is_better_inverts_the_orientation():
    ref = np.array([100.0, 101.0, 99.0, 100.0])
    decision = decide_benchmark("throughput", ref, ref * 1.5 * np.array([1, 1.01, 0.99, 1]), 0.02,
                                higher_is_better=True)
    assert decision.verdict is Verdict.IMPROVED
    assert decision.ratio < 1 / 1.4


@pytest.mark.parametrize("ref, cand", [([1.0], [1.0]), ([1.0, float("nan")], [1.0, 1.0]), ([1.0, 0.0], [1.0, 1.0]),
                                       ([1.0, -1.0], [1.0, 1.0]), ([], []), ([2.0, 2.0, 2.0], [1.0, 1.0, 1.0]),
                                       ([1.0, float("inf")], [1.0, 1.0])])
def test_degenerate_inputs_are_insufficient_not_errors(ref, cand):
    decision = decide_benchmark("b", ref, cand, 0.02)
    assert decision.verdict is Verdict.INSUFFICIENT
    assert decision.note
    outcome = decide_experiment([decision], final=True)
    assert outcome.outlook is Outlook.DISCARD and "insufficient" in outcome.reason
    assert decide_experiment([decision], final=False).outlook is Outlook.CONTINUE


def _decision(name, ratios, floor=0.02, **kwargs):
    ratios = np.asarray(ratios, dtype=float)
    return decide_benchmark(name, np.ones(ratios.size), ratios, floor, **kwargs)


def test_experiment_keep_needs_one_improved_and_no_sign_of_regression():
    fast = _decision("a", [0.50, 0.51, 0.49, 0.50])
    slow = _decision("b", [2.0, 2.02, 1.98, 2.0])
    same = _decision("c", [1.0, 1.001, 0.999, 1.0])
    unclear = _decision("d", [1.0, 1.2, 0.9, 1.1])
    assert decide_experiment([fast, same]).outlook is Outlook.KEEP
    outcome = decide_experiment([fast, slow])
    assert outcome.outlook is Outlook.DISCARD and "regressed" in outcome.reason and "b" in outcome.reason
    assert decide_experiment([fast, unclear], final=False).outlook is Outlook.CONTINUE
    # at the last look an unclear benchmark no longer holds the keep back; only a proven regression does
    assert decide_experiment([fast, unclear], final=True).outlook is Outlook.KEEP
    outcome = decide_experiment([same])
    assert outcome.outlook is Outlook.DISCARD and "no benchmark improved" in outcome.reason
    assert decide_experiment([]).outlook is Outlook.DISCARD


def test_futility_stops_before_the_last_look():
    same = _decision("c", [1.0, 1.001, 0.999, 1.0, 1.0005], looks=(3, 5, 10))
    assert decide_experiment([same], looks=(3, 5, 10), final=False).outlook is Outlook.DISCARD


@pytest.mark.parametrize("p_values, expected", [((0.01, 0.04), {"a", "b"}), ((0.03, 0.04), set()),
                                                   ((0.01, 0.06), {"a"}), ((0.02, 0.5), {"a"})])
def test_holm_step_down_known_answers(p_values, expected):
    base = _decision("x", [0.9, 0.91, 0.89, 0.9, 0.905])  # improved, single look at 5 blocks: level = alpha
    decisions = [replace(base, benchmark=name, p_improved=p) for name, p in zip("ab", p_values)]
    assert holm_improved(decisions, 0.05, (5,)) == expected
    kept = decide_experiment(decisions, alpha=0.05, looks=(5,))
    demoted = {d.benchmark for d in kept.decisions if d.verdict is Verdict.UNKNOWN}
    assert demoted == {"a", "b"} - expected


positive = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)
pairs = st.lists(st.tuples(positive, positive), min_size=2, max_size=12)


def _spread_ok(ref, cand):
    d = np.log(cand) - np.log(ref)
    return d.std(ddof=1) > 1e-9


@settings(max_examples=60, deadline=None)
@given(pairs, st.floats(min_value=1e-2, max_value=1e2))
def test_scaling_both_arms_leaves_the_ratio_unchanged(data, factor):
    ref, cand = map(np.array, zip(*data))
    assume(_spread_ok(ref, cand))
    a = ratio_interval(ref, cand)
    b = ratio_interval(ref * factor, cand * factor)
    assert np.allclose(a, b, rtol=1e-9)


@settings(max_examples=60, deadline=None)
@given(pairs)
def test_swapping_arms_inverts_the_ratio_and_interval(data):
    ref, cand = map(np.array, zip(*data))
    assume(_spread_ok(ref, cand))
    ratio, low, high = ratio_interval(ref, cand)
    ratio2, low2, high2 = ratio_interval(cand, ref)
    assert math.isclose(ratio2, 1 / ratio, rel_tol=1e-9)
    assert math.isclose(low2, 1 / high, rel_tol=1e-6) and math.isclose(high2, 1 / low, rel_tol=1e-6)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(min_value=-0.05, max_value=0.05), min_size=2, max_size=10),
       st.integers(min_value=1, max_value=20), st.floats(min_value=0.005, max_value=0.1))
def test_identical_pairs_never_flip_same_to_improved(logs, extra, floor):
    logs = np.array(logs)
    assume(logs.std(ddof=1) > 1e-6)
    before = decide_benchmark("b", np.ones(logs.size), np.exp(logs), floor)
    assume(before.verdict is Verdict.SAME)
    grown = np.concatenate([logs, np.zeros(extra)])
    after = decide_benchmark("b", np.ones(grown.size), np.exp(grown), floor)
    assert after.verdict is not Verdict.IMPROVED
    assert decide_experiment([after]).outlook is not Outlook.KEEP
