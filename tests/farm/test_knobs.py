"""Knob settings: the grid and the seeded random draw, and how each kind of knob is written into a checkout."""
import re

import pytest

from farm import knobs
from farm.config import KnobsConfig


def config(**fields) -> KnobsConfig:
    params = [{"name": "opt", "values": ["-O2", "-O3"], "write": {"file": "knobs.cmake",
                                                                   "pattern": r'^set\(OPT "([^"]*)"\)$'}},
              {"name": "block", "range": {"min": 16, "max": 64, "step": 16}, "write": {"env": "BLOCK"}},
              {"name": "arch", "values": ["", "-march=native"], "write": {"flags": "CXXFLAGS"}},
              {"name": "math", "values": ["-ffast-math"], "write": {"flags": "CXXFLAGS"}}]
    return KnobsConfig(params=params, **fields)


def test_the_grid_is_every_combination_in_order():
    grid = knobs.settings(config())
    assert len(grid) == 2 * 4 * 2 * 1
    assert grid[0] == (("opt", "-O2"), ("block", "16"), ("arch", ""), ("math", "-ffast-math"))
    assert grid[-1] == (("opt", "-O3"), ("block", "64"), ("arch", "-march=native"), ("math", "-ffast-math"))
    assert len(set(grid)) == len(grid)


def test_a_random_search_draws_distinct_settings_the_same_for_the_same_seed():
    first = knobs.settings(config(search="random", samples=5, seed=7))
    assert len(first) == len(set(first)) == 5
    assert first == knobs.settings(config(search="random", samples=5, seed=7))
    assert first != knobs.settings(config(search="random", samples=5, seed=8))
    assert set(first) <= set(knobs.settings(config()))


def test_a_float_range_keeps_its_fractions():
    knob = KnobsConfig(params=[{"name": "x", "range": {"min": 0.5, "max": 1.5, "step": 0.25},
                                "write": {"env": "X"}}]).params[0]
    assert knob.choices() == ["0.5", "0.75", "1", "1.25", "1.5"]


def test_each_kind_is_written_where_it_says(tmp_path):
    (tmp_path / "knobs.cmake").write_text('# knobs\nset(OPT "-O3")\nset(OTHER "x")\n')
    (tmp_path / ".farm-env").write_text("KEEP=me\nBLOCK=8\n")
    setting = (("opt", "-O2"), ("block", "32"), ("arch", "-march=native"), ("math", "-ffast-math"))
    knobs.write(tmp_path, config(), setting, ".farm-env")
    assert (tmp_path / "knobs.cmake").read_text() == '# knobs\nset(OPT "-O2")\nset(OTHER "x")\n'
    assert knobs.read_env_file(tmp_path / ".farm-env") == {"KEEP": "me", "BLOCK": "32",
                                                           "CXXFLAGS": "-march=native -ffast-math"}
    knobs.write(tmp_path, config(), (("opt", "-O3"), ("block", "16"), ("arch", ""), ("math", "-ffast-math")),
                ".farm-env")
    assert knobs.read_env_file(tmp_path / ".farm-env")["CXXFLAGS"] == "-ffast-math"  # an empty value adds nothing


def test_a_missing_file_or_pattern_is_a_knob_error(tmp_path):
    with pytest.raises(knobs.KnobError, match="cannot read knobs.cmake"):
        knobs.write(tmp_path, config(), knobs.settings(config())[0], ".farm-env")
    (tmp_path / "knobs.cmake").write_text("set(OPTIMISE -O3)\n")
    with pytest.raises(knobs.KnobError, match="matches nothing in knobs.cmake"):
        knobs.write(tmp_path, config(), knobs.settings(config())[0], ".farm-env")


def test_an_env_file_skips_comments_and_blank_lines(tmp_path):
    (tmp_path / "env").write_text("# a comment\n\nA=1\nB=x=y\nnot a variable\n")
    assert knobs.read_env_file(tmp_path / "env") == {"A": "1", "B": "x=y"}
    assert knobs.read_env_file(tmp_path / "absent") == {}


def test_a_group_that_took_no_part_in_the_match_is_an_error_not_a_write_at_the_end(tmp_path):
    (tmp_path / "opt.h").write_text("#define OPT\nint x;\n")
    optional = KnobsConfig(params=[{"name": "opt", "values": ["3"],
                                    "write": {"file": "opt.h", "pattern": r"^#define OPT(?: (\d+))?$"}}])
    with pytest.raises(knobs.KnobError, match="its group"):
        knobs.write(tmp_path, optional, (("opt", "3"),), ".farm-env")
    assert (tmp_path / "opt.h").read_text() == "#define OPT\nint x;\n"


def test_a_crlf_file_keeps_its_line_ends_and_the_env_file_its_other_lines(tmp_path):
    (tmp_path / "knobs.cmake").write_bytes(b'set(OPT "-O3")\r\nset(OTHER "x")\r\n')
    (tmp_path / ".farm-env").write_text("# mine\nKEEP=me\nnot a variable\nBLOCK=8\n")
    crlf = config().model_dump()
    crlf["params"][0]["write"]["pattern"] = r'^set\(OPT "([^"]*)"\)'  # `$` would not match before \r
    knobs.write(tmp_path, KnobsConfig(**crlf), (("opt", "-O2"), ("block", "32"), ("arch", ""),
                                                ("math", "-ffast-math")), ".farm-env")
    assert (tmp_path / "knobs.cmake").read_bytes() == b'set(OPT "-O2")\r\nset(OTHER "x")\r\n'
    assert (tmp_path / ".farm-env").read_text() == ("# mine\nKEEP=me\nnot a variable\nBLOCK=32\n"
                                                    "CXXFLAGS=-ffast-math\n")


def test_a_random_search_over_a_huge_grid_never_lists_it():
    huge = KnobsConfig(search="random", samples=4, seed=3, params=[
        {"name": name, "range": {"min": 1, "max": 5000, "step": 1}, "write": {"env": name.upper()}}
        for name in ("a", "b", "c")])  # 1.25e11 settings
    drawn = knobs.settings(huge)
    assert len(set(drawn)) == 4 and drawn == sorted(drawn, key=lambda s: [int(v) for _, v in s])
    assert all(1 <= int(value) <= 5000 for setting in drawn for _, value in setting)


@pytest.mark.parametrize("params, message", [
    ([{"name": "x", "range": {"min": 10, "max": 5, "step": 1}, "write": {"env": "X"}}], "min (10) is larger than max"),
    ([{"name": "x", "values": [1, 2, 1], "write": {"env": "X"}}], "values repeat"),
    ([{"name": "x", "values": [1], "write": {"env": "X"}}, {"name": "y", "values": [2], "write": {"flags": "X"}}],
     "knobs x (env), y (flags) all write X"),
])
def test_knob_definitions_that_would_repeat_a_setting_or_fight_over_a_variable_are_refused(params, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        KnobsConfig(params=params)


def test_close_range_values_stay_distinct():
    knob = KnobsConfig(params=[{"name": "x", "range": {"min": 1000000, "max": 1000001, "step": 0.5},
                                "write": {"env": "X"}}]).params[0]
    assert knob.choices() == ["1000000", "1000000.5", "1000001"]
