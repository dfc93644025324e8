"""bench/duet.py's pure parts against known answers: pairing by time, per-block d, spreads, verdicts."""
import importlib.util
import math
import pathlib

import numpy as np
import pytest

_PATH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "duet.py"
_spec = importlib.util.spec_from_file_location("bench_duet", _PATH)
duet = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(duet)


@pytest.mark.parametrize("a, b, max_gap, expected", [
    ([0, 1, 2], [0.1, 1.2, 1.9], None, [(0, 0), (1, 1), (2, 2)]),
    ([0, 1], [0, 0.4, 0.9, 1.6], None, [(0, 0), (1, 2)]),            # a has fewer: each a finds its nearest b
    ([0, 0.4, 0.9, 1.6], [0, 1], None, [(0, 0), (2, 1)]),            # b has fewer: pairs still (a index, b index)
    ([1.0], [0.5, 1.5], None, [(0, 0)]),                             # a tie goes to the earlier start
    ([0, 5], [0.1, 1.0], 0.5, [(0, 0)]),                             # 5 is 4 s from its nearest: dropped
    ([2, 0, 1], [0, 1, 2], None, [(1, 0), (2, 1), (0, 2)]),          # unsorted input, indices into the input
    ([], [1, 2], None, []),
])
def test_pair_by_time_known_answers(a, b, max_gap, expected):
    assert duet.pair_by_time(a, b, max_gap) == expected


def test_pairing_is_by_start_time_not_by_index():
    # A machine-wide slowdown s(t) hits both arms; B is 10 % slower and missed A's first iteration.
    slow = [1.0, 1.5, 1.0, 2.0]
    a = [[t, 0.1 * f] for t, f in zip([0, 1, 2, 3], slow)]
    b = [[t + 0.02, 0.11 * f] for t, f in zip([1, 2, 3], slow[1:])]
    block = duet.duet_block_d(a, b)
    assert block["pairs"] == 3
    assert block["duet"] == pytest.approx(math.log(1.1))
    assert block["duet_mean"] == pytest.approx(math.log(1.1))
    # whole-process medians see the slowdown that only A's unpaired first iteration escaped
    assert block["duet_unpaired"] == pytest.approx(math.log(0.11 * 1.5 / (0.1 * 1.25)))
    assert duet.pair_correlation(a, b) == pytest.approx(1.0)


def test_iteration_floor_known_answer():
    a = [[0, 0.1], [1, 0.1 * math.e], [2, 0.1]]          # log times 0, 1, 0 (+ log 0.1): var 1/3
    b = [[0, 0.2], [1, 0.2]]                              # no scatter
    assert duet.iteration_floor(a, b) == pytest.approx(math.sqrt((1 / 3) / 3))
    assert math.isnan(duet.iteration_floor(a, [[0, 0.2]]))  # one iteration: no scatter to measure
    block = duet.duet_block_d(a, b)
    assert block["floor"] == pytest.approx(1 / 3)


def test_auto_max_gap_drops_an_iteration_outside_the_other_arms_window():
    window = [[0.0, 0.1], [0.1, 0.1], [0.2, 0.1], [0.3, 0.1], [0.4, 0.1]]
    assert duet.paired_log_ratios([[0.24, 0.1]], window).size == 1       # 0.04 from 0.2: kept (gap 0.05)
    assert duet.paired_log_ratios(window, [[0.24, 0.1]]).size == 1       # either arm may be the shorter
    assert duet.paired_log_ratios([[0.9, 0.1]], window).size == 0        # 0.5 after the last start: dropped
    assert duet.paired_log_ratios([[0.9, 0.1]], window, max_gap=None).size == 1


def test_spread_summary_separates_a_position_effect():
    d = [0.02, -0.02, 0.02, -0.02, 0.02, -0.02]
    s = duet.spread_summary(d, [1, -1, 1, -1, 1, -1])
    assert s["n"] == 6 and s["mean"] == pytest.approx(0.0)
    assert s["position"] == pytest.approx(0.02)
    assert s["sd"] == pytest.approx(np.std(d, ddof=1))
    assert s["sd_within"] == pytest.approx(0.0) and s["mad_within"] == pytest.approx(0.0)
    r = duet.spread_summary([1, 2, 3, 4, 100], [1, 1, 1, 1, 1])
    assert r["mad"] == pytest.approx(1.4826) and r["mean"] == pytest.approx(22.0)
    assert math.isnan(r["position"])  # one orientation only


def test_trim_spread_is_the_sd_without_trimming_and_ignores_one_wild_block():
    d = [0.01, -0.02, 0.015, 0.0]  # n = 4: nothing trimmed, the trimmed mean's se x sqrt(n) is the sd
    s = duet.spread_summary(d, [1, -1, 1, -1])
    assert s["trim"] == pytest.approx(np.std(d, ddof=1))
    wild = duet.spread_summary([0.0, 0.0, 0.0, 0.0, 1.0], [1] * 5)  # 20 % of 5: one winsorised at each end
    assert wild["trim"] == 0.0 and wild["sd"] > 0.4


def test_figure_of_merit_and_verdicts():
    assert duet.figure_of_merit(0.01, 16.0) == pytest.approx(0.04)
    assert duet.verdict(0.04, 0.02).startswith("duet wins by 2.00x (the same precision in 0.25x")
    assert duet.verdict(0.02, 0.04).startswith("ABBA wins by 2.00x (the duet needs 4.00x")
    assert duet.verdict(math.nan, 0.02).startswith("no verdict")


def test_bootstrap_ratio_known_answers():
    rng = np.random.default_rng(3)
    d = rng.normal(0, 0.01, 20)
    assert duet.bootstrap_ratio(d, d, 10.0, 10.0, "sd", draws=200) == pytest.approx((1.0, 1.0))
    assert duet.bootstrap_ratio(d, d / 2, 10.0, 10.0, "sd", draws=200) == pytest.approx((2.0, 2.0))
    assert duet.bootstrap_ratio(d, d / 2, 10.0, 40.0, "mad", draws=200) == pytest.approx((1.0, 1.0))
    assert duet.bootstrap_ratio(d, d / 4, 10.0, 10.0, "trim", draws=200) == pytest.approx((4.0, 4.0))


def test_matched_duration_fills_the_abba_block():
    # 12.3 s of abba, 5 benchmarks, 0.5 s setup, 1 s startup: 5 x (0.5 + D) = 11.15
    assert duet.matched_duration(12.3, 5, 0.5, 1.0, 1.0) == pytest.approx(1.73)
    assert duet.matched_duration(2.0, 5, 0.5, 1.0, 1.0) == pytest.approx(0.25)  # floor: a quarter of abba's


def synthetic_blocks(abba_d, duet_d, wall=10.0):
    """Blocks as abba_block / duet_block return them, for one benchmark `b`."""
    abba = [{"wall": wall, "orientation": 1 - 2 * (k % 2), "d": {"b": x}, "floor": {"b": 0.01}}
            for k, x in enumerate(abba_d)]
    duet_blocks = [{"wall": wall, "orientation": 1 - 2 * (k % 2), "pairs": {"b": 10}, "corr": {"b": 0.5},
                    "floor": {"b": {"duet": 0.002, "duet_unpaired": 0.004}},
                    "d": {"b": {"duet": x, "duet_mean": x, "duet_unpaired": 4 * x}}} for k, x in enumerate(duet_d)]
    return abba, duet_blocks


def test_summary_and_report_on_known_spreads(capsys):
    d = np.random.default_rng(5).normal(0, 0.02, 12)
    abba, duet_blocks = synthetic_blocks(d, d / 2)
    summary = duet.summarise(abba, duet_blocks, ["b"])
    entry = summary["benchmarks"]["b"]
    assert entry["ratio_duet"]["trim"] == pytest.approx(2.0) and entry["ratio_duet"]["sd"] == pytest.approx(2.0)
    assert entry["ratio_duet_unpaired"]["trim"] == pytest.approx(0.5)
    assert entry["ratio_duet"]["verdict"].startswith("duet wins by 2.00x")
    assert summary["overall_duet_unpaired"]["verdict"].startswith("ABBA wins by 2.00x")
    assert entry["methods"]["abba"]["iteration_floor"] == 0.01
    assert entry["methods"]["duet_mean"]["iteration_floor"] == 0.002
    assert entry["methods"]["duet_unpaired"]["iteration_floor"] == 0.004
    duet.report(summary, ["b"], 12)
    out = capsys.readouterr().out
    assert "verdict b           duet wins by 2.00x" in out and "verdict overall     duet wins by 2.00x" in out
