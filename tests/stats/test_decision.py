import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from stats import Outlook, Verdict, decide_benchmark, decide_experiment, ratio_interval
from stats.decision import holm_mask
from stats.robust import trimmed_location
from stats.sequential import nominal_level, repeated_p


def test_ratio_is_the_trimmed_geometric_mean_and_the_interval_its_calibrated_t_interval():
    d = np.array([-0.05, -0.02, -0.04, -0.01, -0.03, -0.35, -0.02, -0.04, -0.03, 0.30])
    ratio, low, high = ratio_interval(np.ones(10), np.exp(d), alpha=0.05)
    centre, se, df = trimmed_location(d)
    assert math.isclose(ratio, math.exp(scipy_stats.trim_mean(d, 0.2)), rel_tol=1e-12)
    half = scipy_stats.t.isf(nominal_level(0.05, (10,)), df) * se
    assert math.isclose(math.log(high), centre + half, rel_tol=1e-9)
    assert math.isclose(math.log(low), centre - half, rel_tol=1e-9)


def test_more_looks_widen_the_interval():
    d = np.exp(np.array([-0.05, -0.02, -0.04, -0.01, -0.03]))
    _, low1, high1 = ratio_interval(np.ones(5), d, looks=(5,))
    _, low3, high3 = ratio_interval(np.ones(5), d, looks=(3, 5, 8))
    assert low3 < low1 and high3 > high1


def test_p_improved_is_the_repeated_p_value_of_the_trimmed_t_statistic_against_the_floor():
    d = np.array([-0.05, -0.03, -0.06, -0.02, -0.04, -0.05])
    decision = decide_benchmark("b", np.ones(6), np.exp(d), 0.02, looks=(3, 6, 9))
    centre, se, df = trimmed_location(d)
    t = (-math.log(1.02) - centre) / se
    assert math.isclose(decision.p_improved, float(repeated_p(scipy_stats.t.sf(t, df), (3, 6, 9))), rel_tol=1e-9)


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


def test_the_experiments_own_spread_decides_never_a_quieter_a_a_period():
    """No pooling pre-test: the same blocks give the same interval whatever the campaign measured before."""
    cand = np.exp(np.array([-0.10, -0.08, -0.12, -0.30, -0.09]))
    first = decide_benchmark("b", np.ones(5), cand, 0.02)
    assert "aa_sd" not in decide_benchmark.__code__.co_varnames
    assert first == decide_benchmark("b", np.ones(5), cand, 0.02)


def test_a_burst_on_one_arm_does_not_turn_a_clear_win_into_a_discard():
    """A 26 % win in 9 blocks on a noisy machine, one block hit by a 40 % spike on the candidate arm:
    the trimmed interval still keeps it (the plain mean would not be below the floor's boundary)."""
    rng = np.random.default_rng(8)
    d = np.log(0.74) + 0.08 * rng.standard_normal(9)
    d[4] += np.log(1.4)
    decision = decide_benchmark("b", np.ones(9), np.exp(d), 0.02, looks=(3, 4, 5, 7, 9))
    assert decision.verdict is Verdict.IMPROVED and 0.68 < decision.ratio < 0.80


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


@pytest.mark.parametrize("cand, verdict, outlook", [(55.0, Verdict.IMPROVED, Outlook.KEEP),
                                                     (101.0, Verdict.SAME, Outlook.DISCARD),
                                                     (130.0, Verdict.REGRESSED, Outlook.DISCARD)])
def test_an_exact_measurement_with_zero_spread_is_its_ratio(cand, verdict, outlook):
    # Peak memory: the same bytes in every block is the answer, not a timer's resolution.
    decision = decide_benchmark("mem", [100.0] * 4, [cand] * 4, 0.05, looks=(3, 4), exact=True)
    assert (decision.verdict, decision.ratio, decision.ci_low, decision.ci_high) == pytest.approx(
        (verdict, cand / 100, cand / 100, cand / 100))
    assert decide_experiment([decision], final=False).outlook is outlook
    # Two blocks that differ are decided by the usual statistics, exact or not.
    noisy = decide_benchmark("mem", [100.0, 100.2, 99.9, 100.0], [55.0, 55.0, 55.1, 55.0], 0.05, exact=True)
    assert noisy.note == "" and noisy.ci_low < noisy.ratio < noisy.ci_high


def _decision(name, ratios, floor=0.02, **kwargs):
    ratios = np.asarray(ratios, dtype=float)
    return decide_benchmark(name, np.ones(ratios.size), ratios, floor, **kwargs)


def test_experiment_keep_needs_one_improved_and_no_sign_of_regression():
    fast = _decision("a", [0.50, 0.51, 0.49, 0.50])
    slow = _decision("b", [2.0, 2.02, 1.98, 2.0])
    same = _decision("c", [1.0, 1.001, 0.999, 1.0])
    unclear = _decision("d", [1.10, 1.2, 1.0, 1.12])  # a sign of regressing, not proven
    assert unclear.verdict is Verdict.UNKNOWN
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
    assert decide_experiment([same], final=False).outlook is Outlook.DISCARD


@pytest.mark.parametrize("p_values, expected", [((0.01, 0.04), {"a", "b"}), ((0.03, 0.04), set()),
                                                   ((0.01, 0.06), {"a"}), ((0.02, 0.5), {"a"})])
def test_holm_step_down_known_answers(p_values, expected):
    base = _decision("x", [0.9, 0.91, 0.89, 0.9, 0.905])  # improved, single look at 5 blocks: level = alpha
    decisions = [replace(base, benchmark=name, p_improved=p) for name, p in zip("ab", p_values)]
    mask = holm_mask(np.array([d.p_improved for d in decisions]), np.zeros(2, int), 0.05)
    assert {name for name, passed in zip("ab", mask) if passed} == expected
    kept = decide_experiment(decisions, alpha=0.05)
    demoted = {d.benchmark for d in kept.decisions if d.verdict is Verdict.UNKNOWN}
    assert demoted == {"a", "b"} - expected


@pytest.mark.parametrize("p_values, first, expected", [
    ((0.035, 0.5, 0.5), {"a"}, {"a"}),  # Holm over all three needs 0.035 <= 0.05 / 3; the first family: 0.04
    ((0.035, 0.5, 0.5), set(), set()),  # no first family: Holm over all
    ((0.045, 0.5, 0.5), {"a"}, set()),  # 0.045 > 0.8 * 0.05
    ((0.04, 0.006, 0.5), {"c"}, set()),  # the first family fails: the others at 0.2 * 0.05, Holm: 0.006 > 0.005
    ((0.5, 0.004, 0.5), {"a"}, {"b"}),  # ... 0.004 <= 0.005: a win the counts did not predict still passes
    ((0.001, 0.04, 0.5), {"a"}, {"a"}),  # a passes and hands its share on: Holm over b and c at 0.05, 0.04 > 0.025
    ((0.001, 0.02, 0.5), {"a"}, {"a", "b"}),  # ... 0.02 <= 0.025
    ((0.015, 0.035, 0.5), {"a", "b"}, {"a", "b"}),  # Holm within the first family of two at 0.04: 0.02, 0.04
    ((0.025, 0.035, 0.5), {"a", "b"}, set()),  # ... 0.025 > 0.02
    ((0.012, 0.02, 0.045), {"a", "b", "c"}, {"a", "b", "c"}),  # every benchmark first: all of alpha (0.045 > 0.04)
])
def test_holm_with_a_first_family_splits_alpha_and_passes_it_on(p_values, first, expected):
    # The benchmarks whose instruction counts improved get 0.8 of alpha (stats.decision.holm_mask), the others
    # the rest, and all of it once every one of the first family passed.
    base = _decision("x", [0.9, 0.91, 0.89, 0.9, 0.905])
    decisions = [replace(base, benchmark=name, p_improved=p) for name, p in zip("abc", p_values)]
    kept = decide_experiment(decisions, alpha=0.05, first=frozenset(first))
    improved = {d.benchmark for d in kept.decisions if d.verdict is Verdict.IMPROVED}
    assert improved == expected
    assert kept.outlook is (Outlook.KEEP if expected else Outlook.DISCARD)


positive = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)
pairs = st.lists(st.tuples(positive, positive), min_size=3, max_size=12)


@settings(max_examples=60, deadline=None)
@given(pairs, st.floats(min_value=1e-2, max_value=1e2))
def test_scaling_both_arms_leaves_the_decision_unchanged(data, factor):
    ref, cand = map(np.array, zip(*data))
    a = decide_benchmark("b", ref, cand, 0.02)
    b = decide_benchmark("b", ref * factor, cand * factor, 0.02)
    assert a.verdict is b.verdict
    if a.verdict is not Verdict.INSUFFICIENT:
        assert np.allclose([a.ratio, a.ci_low, a.ci_high], [b.ratio, b.ci_low, b.ci_high], rtol=1e-9)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(min_value=-0.05, max_value=0.05), min_size=3, max_size=10),
       st.floats(min_value=0.005, max_value=0.1))
def test_improved_needs_the_trimmed_interval_beyond_the_floor(logs, floor):
    """The verdict follows the interval exactly: improved iff its upper end is below 1 / (1 + floor)."""
    logs = np.array(logs)
    decision = decide_benchmark("b", np.ones(logs.size), np.exp(logs), floor)
    assume(decision.verdict is not Verdict.INSUFFICIENT)
    assert (decision.verdict is Verdict.IMPROVED) == (decision.ci_high < 1 / (1 + floor))
    assert (decision.verdict is Verdict.REGRESSED) == (decision.ci_low > 1 + floor)


def test_the_extension_is_only_for_an_interval_still_narrowing_towards_a_keep():
    looks = (3, 5, 8, 12)
    narrowing = _decision("a", [0.90, 0.97, 0.88, 0.99, 0.91], looks=looks)  # a sign of a win, not proven yet
    assert narrowing.verdict is Verdict.UNKNOWN and narrowing.screen_high < 1 / 1.02
    flat = _decision("a", [0.99, 1.03, 0.96, 1.02, 0.98], looks=looks)
    assert decide_experiment([narrowing], final=False, extend=True).outlook is Outlook.CONTINUE
    assert decide_experiment([flat], final=False, extend=True).outlook is Outlook.DISCARD
    outcome = decide_experiment([narrowing], final=True)
    assert outcome.outlook is Outlook.DISCARD and "block budget" in outcome.reason
