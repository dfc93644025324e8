import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from scipy.stats import mstats

from stats.robust import trimmed_count, trimmed_location


def test_trimmed_location_matches_yuen_by_independent_implementations():
    d = np.array([0.3, -0.02, -0.05, -0.01, -0.04, -0.03, -0.06, 0.01, -0.02, -0.5])
    centre, se, df = trimmed_location(d)
    g = 2  # floor(0.2 * 10)
    assert centre == pytest.approx(scipy_stats.trim_mean(d, 0.2))
    winsorised = np.asarray(mstats.winsorize(d, limits=(0.2, 0.2)))
    h = d.size - 2 * g
    assert se == pytest.approx(math.sqrt((d.size - 1) * winsorised.var(ddof=1) / (h * (h - 1))))
    assert df == h - 1 == 5


def test_without_trimming_it_is_the_mean_and_its_standard_error():
    d = np.array([0.1, -0.2, 0.05, 0.0])  # n = 4: floor(0.8) = 0 values trimmed
    centre, se, df = trimmed_location(d)
    assert trimmed_count(4) == 0
    assert centre == pytest.approx(d.mean()) and se == pytest.approx(d.std(ddof=1) / 2) and df == 3


def test_rows_are_independent_and_match_one_at_a_time():
    rng = np.random.default_rng(4)
    d = rng.standard_normal((5, 3, 12))
    centre, se, _ = trimmed_location(d)
    for i in range(5):
        for j in range(3):
            c, s, _ = trimmed_location(d[i, j])
            assert centre[i, j] == pytest.approx(c) and se[i, j] == pytest.approx(s)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=-0.1, max_value=0.1), min_size=5, max_size=20),
       st.floats(min_value=-50, max_value=50))
def test_one_disturbed_block_cannot_move_the_centre_out_of_the_others_range(values, spike):
    """A burst that hits one arm of one block (any size) leaves the estimate among the undisturbed blocks;
    a plain mean fails this for any spike larger than n times the range."""
    clean = np.array(values)
    disturbed = np.append(clean, spike)
    centre, _, _ = trimmed_location(disturbed)
    assert clean.min() - 1e-12 <= centre <= clean.max() + 1e-12


def test_fewer_than_two_values_is_an_error():
    with pytest.raises(ValueError):
        trimmed_location([0.1])
