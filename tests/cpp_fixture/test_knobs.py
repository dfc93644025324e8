"""The fixture's build knobs: knobs.cmake lines, and CXXFLAGS / INTERP_BLOCK_SIZE in build.py's environment."""
import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

import cpp_fixture

pytestmark = pytest.mark.slow
PY = sys.executable
ENV_KNOBS = ("CXXFLAGS", "INTERP_BLOCK_SIZE")
# The form a knob search rewrites: one `set(NAME "value")` per line of knobs.cmake.
KNOB_LINE = re.compile(r'^set\((?P<name>INTERP_[A-Z_]+) "(?P<value>[^"]*)"\)$', re.MULTILINE)
DEFAULTS = {"INTERP_OPT_LEVEL": "-O3", "INTERP_OMP_SCHEDULE": "static", "INTERP_OMP_CHUNK": "0"}
# loocv2d on awkward sizes (1, around a block, not a multiple of one) and finite radii (NaN rows):
# the sha256 of the raw output bytes, so "bit-identical" means bit-identical, not the guard's 9 digits.
LOOCV_BITS = """
import hashlib, numpy as np, interp
h = hashlib.sha256()
rng = np.random.default_rng(7)
for n in (1, 2, 15, 16, 17, 63, 64, 65, 301):
    x, y, v = rng.random(n), rng.random(n), rng.random(n)
    for power, p, radius in ((2.0, 2.0, float("inf")), (1.5, 1.3, 0.05), (3.0, 2.0, 0.2)):
        h.update(interp.core.loocv2d(x, y, v, power, p, radius).tobytes())
print(h.hexdigest())
"""


def run(cwd, *cmd, env=None, check=True):
    return subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=check)


def knob_env(**knobs):
    """os.environ without the build's environment knobs, plus these."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_KNOBS and not k.startswith("OMP_")}
    return {**env, **knobs}


def build(repo, check=True, **knobs):
    return run(repo, PY, "build.py", env=knob_env(**knobs), check=check)


def set_knob(repo, name, value):
    path = repo / "knobs.cmake"
    text, count = re.subn(rf'^set\({name} "[^"]*"\)$', f'set({name} "{value}")', path.read_text(), flags=re.M)
    assert count == 1, f"knobs.cmake has no single line for {name}"
    path.write_text(text)


def restore(repo):
    run(repo, "git", "checkout", "-q", "--", "knobs.cmake")
    build(repo)


def so_hash(repo):
    (so,) = (repo / "build").glob("_interp_core*.so")
    return hashlib.sha256(so.read_bytes()).hexdigest()


def loocv_bits(repo, threads="1"):
    return run(repo, PY, "-c", LOOCV_BITS, env={**knob_env(OMP_NUM_THREADS=threads), "PYTHONPATH": str(repo)}
               ).stdout.strip()


def compile_args(repo, source):
    """The compiler's arguments for src/<source> in the last generated build."""
    entries = json.loads((repo / "build" / "compile_commands.json").read_text())
    (entry,) = [e for e in entries if e["file"].endswith(f"src/{source}")]
    return entry["command"].split()


def opt_level(args):
    """The -O flag that wins (GCC and Clang take the last one)."""
    return [a for a in args if re.fullmatch(r"-O[0-3sg]?|-Ofast", a)][-1]


@pytest.fixture(scope="module")
def knob_repo(tmp_path_factory):
    repo = cpp_fixture.init_repo(tmp_path_factory.mktemp("knobs") / "repo")
    build(repo)
    return repo


@pytest.fixture(scope="module")
def reference(knob_repo):
    """The default build's artefact hash and loocv2d bits."""
    return {"so": so_hash(knob_repo), "loocv": loocv_bits(knob_repo)}


def test_knobs_file_holds_one_set_line_per_knob_at_its_default():
    text = (cpp_fixture.TEMPLATE / "knobs.cmake").read_text()
    found = {m["name"]: m["value"] for m in KNOB_LINE.finditer(text)}
    assert found == DEFAULTS
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if KNOB_LINE.fullmatch(line):
            assert lines[number - 1].startswith("# "), f"no comment with the allowed values above {line}"
    assert "knobs.cmake" in (cpp_fixture.TEMPLATE / "CMakeLists.txt").read_text()


def test_default_knobs_compile_to_todays_flags(knob_repo):
    args = compile_args(knob_repo, "loocv.cpp")
    assert opt_level(args) == "-O3"
    assert {"-DINTERP_OMP_SCHEDULE=static", "-DINTERP_OMP_CHUNK=0", "-DINTERP_BLOCK_SIZE=64"} <= set(args)
    assert json.loads((knob_repo / "build" / "knobs-env.json").read_text()) == {"CXXFLAGS": "",
                                                                                "INTERP_BLOCK_SIZE": "64"}


@pytest.mark.parametrize("opt, schedule, chunk, block, cxxflags", [
    ("-O2", "dynamic", "8", "16", "-O1"),
    ("-O1", "guided", "3", "1", "-fno-inline"),
], ids=["dynamic8-block16", "guided3-block1"])
def test_non_default_knobs_build_pass_the_guard_and_keep_loocv_bit_identical(knob_repo, reference, opt, schedule,
                                                                              chunk, block, cxxflags):
    set_knob(knob_repo, "INTERP_OPT_LEVEL", opt)
    set_knob(knob_repo, "INTERP_OMP_SCHEDULE", schedule)
    set_knob(knob_repo, "INTERP_OMP_CHUNK", chunk)
    try:
        build(knob_repo, CXXFLAGS=cxxflags, INTERP_BLOCK_SIZE=block)
        args = compile_args(knob_repo, "loocv.cpp")
        assert {f"-DINTERP_OMP_SCHEDULE={schedule}", f"-DINTERP_OMP_CHUNK={chunk}",
                f"-DINTERP_BLOCK_SIZE={block}", opt, cxxflags} <= set(args)
        assert args.index(opt) > args.index("-O3")  # after CMake's Release -O3, so it wins
        assert opt_level(args) == (cxxflags if cxxflags.startswith("-O") else opt)  # and $CXXFLAGS comes last
        assert opt_level(compile_args(knob_repo, "idw.cpp")) == opt_level(args)  # every kernel gets the level
        assert "guard: ok" in run(knob_repo, PY, "guard.py", env=knob_env(OMP_NUM_THREADS="2")).stdout
        assert loocv_bits(knob_repo) == loocv_bits(knob_repo, threads="2") == reference["loocv"]
    finally:
        restore(knob_repo)
    assert so_hash(knob_repo) == reference["so"]


def test_editing_knobs_cmake_rebuilds_the_kernels(knob_repo, reference):
    assert so_hash(knob_repo) == reference["so"]
    try:
        set_knob(knob_repo, "INTERP_OMP_SCHEDULE", "dynamic")
        build(knob_repo)
        assert "-DINTERP_OMP_SCHEDULE=dynamic" in compile_args(knob_repo, "loocv.cpp")
        assert so_hash(knob_repo) != reference["so"]
        set_knob(knob_repo, "INTERP_OMP_SCHEDULE", "static")
        set_knob(knob_repo, "INTERP_OPT_LEVEL", "-O1")
        build(knob_repo)
        assert opt_level(compile_args(knob_repo, "kde.cpp")) == "-O1"
        assert so_hash(knob_repo) != reference["so"]
    finally:
        restore(knob_repo)
    assert so_hash(knob_repo) == reference["so"]  # and back: the build follows knobs.cmake both ways


def test_a_changed_environment_reconfigures_the_build_directory(knob_repo, reference):
    try:
        # A fresh configure with CXXFLAGS set: CMake alone would seed CMAKE_CXX_FLAGS from it and keep it.
        run(knob_repo, "rm", "-rf", "build")
        build(knob_repo, CXXFLAGS="-O1 -fno-inline")
        assert opt_level(compile_args(knob_repo, "idw.cpp")) == "-O1"
        assert "-fno-inline" in compile_args(knob_repo, "loocv.cpp")
        assert "-O1" not in compile_args(knob_repo, "module.cpp")  # the bindings are not rebuilt per knob
        flagged = so_hash(knob_repo)
        assert flagged != reference["so"]
        done = build(knob_repo, CXXFLAGS="-O1 -fno-inline", INTERP_BLOCK_SIZE="32")
        assert "re-configuring" in done.stdout
        assert "-DINTERP_BLOCK_SIZE=32" in compile_args(knob_repo, "loocv.cpp")
        assert "-O1" in compile_args(knob_repo, "loocv.cpp")
        assert "INTERP_BLOCK_SIZE:STRING=32" in (knob_repo / "build" / "CMakeCache.txt").read_text()
        same = build(knob_repo, CXXFLAGS="-O1 -fno-inline", INTERP_BLOCK_SIZE="32")
        assert "re-configuring" not in same.stdout and "cmake -S" not in same.stdout  # unchanged: no configure
        build(knob_repo)  # both unset again
        for source in ("idw.cpp", "loocv.cpp", "module.cpp"):
            args = compile_args(knob_repo, source)
            assert "-O1" not in args and "-fno-inline" not in args
        assert "-DINTERP_BLOCK_SIZE=64" in compile_args(knob_repo, "loocv.cpp")
    finally:
        restore(knob_repo)
    assert so_hash(knob_repo) == reference["so"]


@pytest.mark.parametrize("edit, message", [
    (("INTERP_OMP_SCHEDULE", "auto"), "INTERP_OMP_SCHEDULE must be static, dynamic or guided"),
    (("INTERP_OPT_LEVEL", "-Ofast"), "INTERP_OPT_LEVEL must be -O1, -O2 or -O3"),
    (("INTERP_OMP_CHUNK", "08"), "INTERP_OMP_CHUNK must be 0 or a positive integer"),
    ({"INTERP_BLOCK_SIZE": "0"}, "INTERP_BLOCK_SIZE must be an integer from 1 to 4096"),
], ids=["schedule", "opt-level", "chunk", "block-size"])
def test_an_invalid_knob_value_fails_the_build_naming_the_knob(knob_repo, reference, edit, message):
    try:
        if isinstance(edit, tuple):
            set_knob(knob_repo, *edit)
            failed = build(knob_repo, check=False)
        else:
            failed = build(knob_repo, check=False, **edit)
        assert failed.returncode != 0
        assert message in " ".join((failed.stdout + failed.stderr).split())
    finally:
        restore(knob_repo)
    assert so_hash(knob_repo) == reference["so"]
