import numpy as np
import pytest
from scipy import stats as scipy_stats

from stats import Outlook, decide_benchmark, decide_experiment
from stats.sequential import crossing_probability, default_schedule, nominal_level, pocock_boundary


@pytest.mark.parametrize("looks, expected", [((2, 4), 2.178), ((3, 6, 9), 2.289), ((2, 4, 6, 8, 10), 2.413)])
def test_pocock_constants_match_the_published_table(looks, expected):
    # Jennison & Turnbull (2000), table 2.1: Pocock's constants for equally spaced looks, alpha 0.025 a side.
    assert pocock_boundary(0.025, looks) == pytest.approx(expected, abs=0.005)


def test_one_look_is_the_plain_normal_quantile():
    assert pocock_boundary(0.05, (7,)) == pytest.approx(scipy_stats.norm.isf(0.05))
    assert crossing_probability(scipy_stats.norm.isf(0.05), (7,)) == pytest.approx(0.05, abs=1e-3)


def test_crossing_probability_agrees_with_simulation():
    looks = (3, 5, 9, 14)
    c = 2.1
    rng = np.random.default_rng(0)
    walks = np.cumsum(rng.standard_normal((200_000, looks[-1])), axis=1)
    z = walks[:, np.array(looks) - 1] / np.sqrt(looks)
    simulated = float(np.mean((z >= c).any(axis=1)))
    assert crossing_probability(c, looks) == pytest.approx(simulated, abs=0.003)


def test_default_schedule_is_increasing_and_ends_at_the_maximum():
    looks = default_schedule(3, 20)
    assert looks[0] == 3 and looks[-1] == 20 and list(looks) == sorted(set(looks))
    assert nominal_level(0.05, looks) < 0.05
    with pytest.raises(ValueError):
        default_schedule(1, 5)


def test_false_keeps_at_the_floor_stay_below_alpha_despite_every_look():
    """The hardest null: the true effect sits exactly on the floor. Looking at every scheduled point
    must still keep the false-keep rate at alpha (checked by simulation, seeded)."""
    rng = np.random.default_rng(3)
    looks = default_schedule(3, 20)
    floor, sd, alpha, runs = 0.02, 0.02, 0.05, 2000
    true_log = -np.log1p(floor)
    keeps = 0
    for _ in range(runs):
        d = true_log + sd * rng.standard_normal(looks[-1])
        for n in looks:
            decision = decide_benchmark("b", np.ones(n), np.exp(d[:n]), floor, looks=looks, alpha=alpha)
            outcome = decide_experiment([decision], alpha=alpha, looks=looks, final=n == looks[-1])
            if outcome.outlook is not Outlook.CONTINUE:
                break
        keeps += outcome.outlook is Outlook.KEEP
    rate = keeps / runs
    assert rate <= alpha + 2 * np.sqrt(alpha * (1 - alpha) / runs)
    assert rate > 0.01  # not vacuous: the boundary is actually reached
