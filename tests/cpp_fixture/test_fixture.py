"""The fixture, built for real: guard, patches, header tracking, affinity, timeouts."""
import hashlib
import importlib.util
import json
import math
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

import pytest

import cpp_fixture

pytestmark = pytest.mark.slow
PY = sys.executable
ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(cwd, *cmd, timeout=600, check=True):
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=check)


def so_hash(repo):
    (so,) = (repo / "build").glob("_interp_core*.so")
    return hashlib.sha256(so.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    repo = cpp_fixture.init_repo(tmp_path_factory.mktemp("fixture") / "repo")
    run(repo, PY, "build.py")
    return repo


def reset(repo):
    run(repo, "git", "checkout", "-q", "-f", "main")
    run(repo, "git", "clean", "-q", "-fd")


def test_init_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(cpp_fixture.FixtureError, match="not empty"):
        cpp_fixture.init_repo(tmp_path)


def test_naive_build_passes_its_guard_on_any_thread_count(built):
    assert "guard: ok" in run(built, PY, "guard.py").stdout
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    assert subprocess.run([PY, "guard.py"], cwd=built, env=env, capture_output=True).returncode == 0


def test_harness_under_taskset_reports_cpu_1_and_one_thread(built):
    if 1 not in os.sched_getaffinity(0):
        pytest.skip("this machine has no CPU 1")  # environment limit, not a missing feature
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    out = subprocess.run(["taskset", "-c", "1", PY, "bench.py", "--only", "idw2d,kde", "--reps", "1"], cwd=built,
                         env=env, capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["name"] for r in rows] == ["idw2d", "kde"]
    for row in rows:
        assert row["cpus"] == [1] and row["threads"] == 1 and row["unit"] == "s" and row["value"] > 0
        assert len(row["checksum"]) == 16


BASE_FIELDS = {"name", "value", "unit", "checksum", "threads", "cpus", "reps", "pid"}


def bench_rows(repo, *args):
    out = run(repo, PY, "bench.py", *args).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_harness_reports_each_iteration_on_the_machine_wide_clock(built):
    (plain,) = bench_rows(built, "--only", "idw2d", "--reps", "2")
    assert set(plain) == BASE_FIELDS  # the default output is unchanged
    before = time.monotonic()
    rows = bench_rows(built, "--only", "idw2d,kde", "--reps", "3", "--iterations")
    after = time.monotonic()
    assert [r["name"] for r in rows] == ["idw2d", "kde"]
    for row in rows:
        assert set(row) == BASE_FIELDS | {"iterations"} and row["reps"] == 3
        iterations = row["iterations"]
        assert len(iterations) == 3 and all(len(pair) == 2 for pair in iterations)
        starts, seconds = zip(*iterations)
        assert row["value"] == statistics.median(seconds) and min(seconds) > 0
        # another process's monotonic clock: the starts fall inside this process's view of the run
        assert before < starts[0] and starts[-1] + seconds[-1] < after
        for (s0, t0), (s1, _) in zip(iterations, iterations[1:]):
            assert s1 >= s0 + t0 - 1e-4  # one after the other, each timed from its start


def test_harness_follows_a_shared_schedule_for_a_fixed_time(built):
    start_at = time.monotonic() + 2.0
    setup, duration = 0.5, 0.4
    rows = bench_rows(built, "--only", "idw2d,kde", "--duration", str(duration), "--start-at", repr(start_at),
                      "--setup-time", str(setup), "--iterations")
    for k, row in enumerate(rows):
        begin = start_at + k * (setup + duration) + setup
        starts = [s for s, _ in row["iterations"]]
        assert row["reps"] == len(starts) >= 2
        assert begin <= starts[0] < begin + 0.05          # timed calls begin on schedule
        assert starts[-1] < begin + duration               # and none starts after the window
    (row,) = bench_rows(built, "--only", "idw2d", "--duration", "0.3")
    assert row["reps"] >= 2 and "iterations" not in row
    failed = run(built, PY, "bench.py", "--start-at", "1", check=False)
    assert failed.returncode == 2 and "--start-at needs --duration" in failed.stderr


def test_duet_block_runs_both_arms_at_once_and_pairs_their_iterations(built, tmp_path):
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("this machine has no CPUs 0 and 1")  # environment limit, not a missing feature
    spec = importlib.util.spec_from_file_location("bench_duet", ROOT / "bench" / "duet.py")
    duet = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(duet)
    trees = duet.prepare(built, tmp_path)
    block = duet.duet_block(trees, (0, 1), 1, ["idw2d", "kde"], 0.4, 0.5, 1.5, 120)
    assert block["placement"] == {"A": 1, "B": 0} and block["orientation"] == -1  # odd blocks swap the CPUs
    for name in ("idw2d", "kde"):
        a, b = block["iterations"]["A"][name], block["iterations"]["B"][name]
        assert abs(a[0][0] - b[0][0]) < 0.05 and block["late"][name] < 0.05  # both began on schedule
        assert 2 <= block["pairs"][name] <= min(len(a), len(b))
        assert math.isfinite(block["d"][name]["duet"]) and abs(block["d"][name]["duet"]) < 0.7


def test_every_patch_applies_to_its_parent_builds_and_meets_its_guard_expectation(built):
    failures = {}
    for entry in cpp_fixture.load_manifest():
        reset(built)
        cpp_fixture.apply_patches(built, cpp_fixture.lineage(entry["id"]), commit=False)
        result = run(built, PY, "build.py", check=False)
        if (result.returncode == 0) != (entry["id"] != "no_compile"):
            failures[entry["id"]] = result.stdout[-400:] + result.stderr[-400:]
            continue
        outcome = entry["expected"]["outcome"]
        if outcome in ("crash", "timeout"):
            continue  # no library to check, or one whose guard never returns
        # Every correct patch passes the guard (tamper_harness edits only bench.py); only guard_fail fails it.
        guard = run(built, PY, "guard.py", check=False)
        if (guard.returncode == 0) != (outcome != "guard_fail"):
            failures[entry["id"]] = f"guard exited {guard.returncode}: {guard.stdout[-400:]}"
    reset(built)
    run(built, PY, "build.py")
    assert failures == {}


def test_combined_chain_applies_in_order_and_passes_the_guard(built):
    chain = cpp_fixture.load_manifest_document()["combined"]
    for position, hypothesis_id in enumerate(chain):
        # a hypothesis with a predecessor (kde_batch on kde_vectorise) applies only on top of it
        predecessor = cpp_fixture.hypothesis(hypothesis_id).get("predecessor")
        assert predecessor is None or predecessor in chain[:position], hypothesis_id
    reset(built)
    cpp_fixture.apply_patches(built, chain, commit=False)
    run(built, PY, "build.py")
    # the headline figure (README, "Measured") is of this tree: it must compute what the naive one does
    assert "guard: ok" in run(built, PY, "guard.py").stdout
    reset(built)
    run(built, PY, "build.py")


def test_guard_catches_the_wrong_patch_and_passes_after_its_fix(built):
    reset(built)
    cpp_fixture.apply_patches(built, ["wrong_weight"], commit=False)
    run(built, PY, "build.py")
    failed = run(built, PY, "guard.py", check=False)
    assert failed.returncode == 1 and "FAIL gridsearch" in failed.stdout
    cpp_fixture.apply_patches(built, ["wrong_weight_fix"], commit=False)
    run(built, PY, "build.py")
    assert run(built, PY, "guard.py").returncode == 0
    reset(built)
    run(built, PY, "build.py")


def test_header_only_edit_changes_the_built_artefact(built):
    reset(built)
    run(built, PY, "build.py")
    before = so_hash(built)
    entry = cpp_fixture.hypothesis("weight_square")
    assert entry["header_only"]
    cpp_fixture.apply_patches(built, ["weight_square"], commit=False)
    run(built, PY, "build.py")
    assert so_hash(built) != before
    reset(built)
    run(built, PY, "build.py")
    assert so_hash(built) == before  # and back: the build follows the sources both ways


def test_hanging_patch_is_stopped_by_a_timeout(built, tmp_path):
    hang = tmp_path / "hang"
    shutil.copytree(built, hang, ignore=shutil.ignore_patterns("build"))
    cpp_fixture.apply_patches(hang, ["hang_idw3d"], commit=False)
    run(hang, PY, "build.py")
    proc = subprocess.Popen([PY, "bench.py", "--only", "idw3d"], cwd=hang, stdout=subprocess.PIPE,
                            start_new_session=True)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=20)  # the naive idw3d takes about 0.5 s with its repetitions
    os.killpg(proc.pid, 9)
    assert proc.wait(timeout=10) == -9


def test_manifest_covers_every_outcome():
    manifest = cpp_fixture.load_manifest()
    outcomes = {e["expected"]["outcome"] for e in manifest}
    assert {"keep", "discard", "guard_fail", "crash", "timeout", "tampered"} <= outcomes
    assert len(manifest) >= 15
    for entry in manifest:
        assert cpp_fixture.patch_path(entry["id"]).exists()
        for other in entry.get("conflicts_with", []):
            cpp_fixture.hypothesis(other)
