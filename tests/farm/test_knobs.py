"""Knob settings: the grid and the seeded random draw, and how each kind of knob is written into a checkout."""
import pathlib
import re
import sys

import pytest

from farm.campaign_file import knobs
from farm.campaign_file.config import FARM_VARIABLES, KnobsConfig
from farm.experiment.runner import Pinning, run_command
from farm.node.processes import TAG_VARIABLE


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


# -- what a knob writes stays inside the checkout and on one line (issue 19) --

INJECTED = "-O3\nLD_PRELOAD=/tmp/evil.so"  # a value that would add a line, and a variable, to the env file


def with_unchecked_file(knobs_config: KnobsConfig, index: int, file: str) -> KnobsConfig:
    """The config with knob `index` writing `file`, not validated (model_copy does not): as if it got past the
    config's checks."""
    param = knobs_config.params[index]
    params = list(knobs_config.params)
    params[index] = param.model_copy(update={"write": param.write.model_copy(update={"file": file})})
    return knobs_config.model_copy(update={"params": params})


@pytest.mark.parametrize("write, words", [
    ({"file": "/etc/hosts", "pattern": "(x)"}, "'/etc/hosts' is not a file inside the checkout"),
    ({"file": "../ref/prog.py", "pattern": "(x)"}, "'../ref/prog.py' is not a file inside the checkout"),
    ({"file": "src/../../x.h", "pattern": "(x)"}, "is not a file inside the checkout"),
    ({"file": ".git/config", "pattern": "(x)"}, "is not a file inside the checkout"),
    ({"env": "PATH"}, "the farm sets PATH for every phase"),
    ({"flags": "OMP_NUM_THREADS"}, "the farm sets OMP_NUM_THREADS for every phase"),
])
def test_a_knob_writing_outside_the_checkout_or_a_variable_of_the_farm_is_refused(write, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        KnobsConfig(params=[{"name": "x", "values": ["1"], "write": write}])


@pytest.mark.parametrize("value", [INJECTED, "-O3\rLD_PRELOAD=x", "-O3\0", "-O3\u2028LD_PRELOAD=x", "-O3\x85x"])
def test_a_knob_value_that_is_not_one_line_is_refused_by_the_config(value):
    with pytest.raises(ValueError, match="holds a line break or NUL; a knob value is one line of text"):
        KnobsConfig(params=[{"name": "x", "values": ["-O2", value], "write": {"flags": "CXXFLAGS"}}])


def test_a_value_with_a_line_break_is_refused_at_write_time_and_nothing_is_written(tmp_path):
    # A setting that got past the config (say, restored from a stored campaign): the writer checks it again.
    (tmp_path / "knobs.cmake").write_text('set(OPT "-O3")\n')
    (tmp_path / ".farm-env").write_text("BLOCK=8\n")
    setting = (("opt", "-O2"), ("block", "16"), ("arch", INJECTED), ("math", "-ffast-math"))
    with pytest.raises(knobs.KnobError) as error:
        knobs.write(tmp_path, config(), setting, ".farm-env")
    assert str(error.value) == ("knob arch: the value '-O3\\nLD_PRELOAD=/tmp/evil.so' holds a line break or NUL; "
                                "a knob value is one line of text")
    assert (tmp_path / "knobs.cmake").read_text() == 'set(OPT "-O3")\n'
    assert (tmp_path / ".farm-env").read_text() == "BLOCK=8\n"


def test_a_knob_file_or_env_file_linked_out_of_the_checkout_is_refused_at_write_time(tmp_path):
    checkout, outside = tmp_path / "cand", tmp_path / "outside"
    checkout.mkdir()
    outside.mkdir()
    (outside / "prog.py").write_text('set(OPT "-O3")\n')
    (checkout / "knobs.cmake").symlink_to(outside / "prog.py")
    setting = knobs.settings(config())[0]
    with pytest.raises(knobs.KnobError, match=r"^knob opt: knobs.cmake leads outside the checkout \(to .*/outside/"
                                              r"prog.py\); refused$"):
        knobs.write(checkout, config(), setting, ".farm-env")
    assert (outside / "prog.py").read_text() == 'set(OPT "-O3")\n'
    # The env file through a link, and a file knob whose `..` slipped past the config (not validated here).
    (checkout / "knobs.cmake").unlink()
    (checkout / "knobs.cmake").write_text('set(OPT "-O3")\n')
    (checkout / ".farm-env").symlink_to(outside / "env")
    with pytest.raises(knobs.KnobError, match="^the env file: .farm-env leads outside the checkout"):
        knobs.write(checkout, config(), setting, ".farm-env")
    (checkout / ".farm-env").unlink()
    escaping = with_unchecked_file(config(), 0, "../outside/prog.py")
    with pytest.raises(knobs.KnobError, match=r"^knob opt: \.\./outside/prog.py leads outside the checkout"):
        knobs.write(checkout, escaping, setting, ".farm-env")
    assert sorted(p.name for p in outside.iterdir()) == ["prog.py"]
    assert (outside / "prog.py").read_text() == 'set(OPT "-O3")\n' and not (checkout / ".farm-env").exists()


def test_a_link_that_stays_inside_the_checkout_is_written_through(tmp_path):
    (tmp_path / "cmake").mkdir()
    (tmp_path / "cmake" / "knobs.cmake").write_text('set(OPT "-O3")\n')
    (tmp_path / "knobs.cmake").symlink_to("cmake/knobs.cmake")
    knobs.write(tmp_path, config(), knobs.settings(config())[0], ".farm-env")
    assert (tmp_path / "cmake" / "knobs.cmake").read_text() == 'set(OPT "-O2")\n'


def test_an_env_file_line_defines_one_variable_and_never_one_the_farm_sets(tmp_path):
    (tmp_path / "env").write_text("A=1\u2028LD_PRELOAD=/tmp/evil.so\nB=2\x85C=3\nD=4\x0bE=5\r\nF=6\r\n"
                                  "PATH=/tmp/evil\nOMP_NUM_THREADS=64\nAUTORESEARCH_FARM_TAG=x\n"
                                  "export G=7\nH I=8\nJ=a\0b\n")
    assert knobs.read_env_file(tmp_path / "env") == {"A": "1\u2028LD_PRELOAD=/tmp/evil.so", "B": "2\x85C=3",
                                                     "D": "4\x0bE=5", "F": "6"}


def test_a_phase_runs_with_the_farms_own_variables_whatever_the_env_file_says(tmp_path):
    (tmp_path / ".farm-env").write_text("PATH=/nowhere\nPYTHONDONTWRITEBYTECODE=\nOMP_NUM_THREADS=64\n"
                                        "AUTORESEARCH_FARM_TAG=farm:stolen\nBLOCK=32\n")
    result = run_command("bench", 'echo "$PATH|$PYTHONDONTWRITEBYTECODE|$OMP_NUM_THREADS|$AUTORESEARCH_FARM_TAG|'
                                  '$BLOCK"', tmp_path, 30, Pinning((0,)),
                         env=knobs.read_env_file(tmp_path / ".farm-env"))
    path, bytecode, threads, tag, block = result.stdout.strip().split("|")
    assert path.split(":")[0] == str(pathlib.Path(sys.executable).parent) and "/nowhere" not in path
    assert (bytecode, threads, block) == ("1", "1", "32") and not tag.startswith("farm:stolen")
    assert set(FARM_VARIABLES) >= {*Pinning((0,)).environment(), TAG_VARIABLE, "PATH", "PYTHONDONTWRITEBYTECODE"}
