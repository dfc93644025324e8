import numpy as np
import pytest
from scipy import stats as scipy_stats

from stats import Outlook, decide_benchmark, decide_experiment
from stats.decision import CONTINUE, IMPROVED, KEEP, assess, outlooks
from stats.sequential import CALIBRATION_SEED, default_schedule, nominal_level, repeated_p, validate_schedule

LOOKS = default_schedule(3, 20) + (25, 30)


def test_one_look_without_trimming_is_the_t_test():
    # 3 and 4 blocks trim nothing: the statistic is exactly Student t, so the calibrated level is alpha.
    assert nominal_level(0.05, (3,)) == pytest.approx(0.05, abs=0.002)
    assert nominal_level(0.05, (4,)) == pytest.approx(0.05, abs=0.002)


def test_the_level_tightens_with_every_extra_look():
    levels = [nominal_level(0.05, LOOKS[:k]) for k in (1, 3, 6, len(LOOKS))]
    assert levels == sorted(levels, reverse=True)
    assert levels[-1] < 0.5 * levels[0]  # ten looks cost more than a factor two in the per-look level


def test_repeated_p_of_the_nominal_level_is_alpha():
    for alpha in (0.01, 0.05, 0.1):
        assert float(repeated_p(nominal_level(alpha, LOOKS), LOOKS)) == pytest.approx(alpha, abs=2e-4)
    assert np.isnan(repeated_p(np.nan, LOOKS))


def _at_the_floor(runs: int, floor: float, sd: float, seed: int, benchmarks: int = 1):
    rng = np.random.default_rng(seed)
    assert seed != CALIBRATION_SEED  # an independent simulation, not the calibration's own paths
    d = -np.log1p(floor) + sd * rng.standard_normal((runs, benchmarks, LOOKS[-1]))
    return d


def test_false_keeps_at_the_floor_are_alpha_within_monte_carlo_error():
    """The hardest null, the true effect exactly on the floor, over 100k simulated experiments looking at
    every scheduled point: the boundary is crossed with probability alpha (+-0.003), and the whole rule
    (futility, the extension, Holm) keeps at most that often."""
    alpha, floor, runs = 0.05, 0.02, 100_000
    d = _at_the_floor(runs, floor, 0.05, seed=11)
    crossed = np.zeros(runs, bool)
    outcome = np.full(runs, CONTINUE)
    for n in LOOKS:
        a = assess(d[:, :, :n], floor, alpha=alpha, looks=LOOKS, beta=0.3)
        crossed |= (a["verdict"] == IMPROVED).any(axis=-1)
        running = outcome == CONTINUE
        out, _ = outlooks(a, alpha=alpha, final=n == LOOKS[-1], extend=n == 20)
        outcome[running] = out[running]
    assert crossed.mean() == pytest.approx(alpha, abs=0.003)
    false_keeps = (outcome == KEEP).mean()
    assert 0.01 < false_keeps <= alpha + 0.003


def test_heavy_tails_and_spikes_do_not_raise_false_keeps():
    """Not normal at all: Student t(3) noise plus 10 % of runs 40 % slow on one arm, at the floor."""
    alpha, floor, runs = 0.05, 0.02, 40_000
    rng = np.random.default_rng(12)
    noise = 0.05 * rng.standard_t(3, (runs, 1, LOOKS[-1])) / np.sqrt(3)
    spikes = np.log(1.4) * ((rng.random(noise.shape) < 0.1).astype(float) - (rng.random(noise.shape) < 0.1))
    d = -np.log1p(floor) + noise + spikes
    crossed = np.zeros(runs, bool)
    for n in LOOKS:
        crossed |= (assess(d[:, :, :n], floor, alpha=alpha, looks=LOOKS, beta=0.3)["verdict"] == IMPROVED)[:, 0]
    assert crossed.mean() <= alpha + 0.005


def test_the_pipeline_wrappers_agree_with_the_array_core():
    d = _at_the_floor(200, 0.02, 0.05, seed=13)[:, 0, :9] - 0.05
    a = assess(d, 0.02, alpha=0.05, looks=LOOKS, beta=0.3)
    for i in range(d.shape[0]):
        decision = decide_benchmark("b", np.ones(9), np.exp(d[i]), 0.02, looks=LOOKS, beta=0.3)
        assert decision.ci_high == pytest.approx(np.exp(a["high"][i]))
        assert decision.p_improved == pytest.approx(a["p_improved"][i])
        outcome = decide_experiment([decision], final=False)
        expected, _ = outlooks({k: v[i:i + 1] for k, v in a.items()}, alpha=0.05, final=False)
        assert outcome.outlook is list(Outlook)[int(expected)]


def test_schedules():
    looks = default_schedule(3, 20)
    assert looks[0] == 3 and looks[-1] == 20 and list(looks) == sorted(set(looks))
    with pytest.raises(ValueError):
        default_schedule(2, 5)
    with pytest.raises(ValueError):
        validate_schedule((5, 4))
    assert scipy_stats.t.isf(nominal_level(0.05, looks), 2) > scipy_stats.t.isf(0.05, 2)
