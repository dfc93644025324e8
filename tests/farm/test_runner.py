import os
import time

import pytest

from farm.errors import PhaseError, PhaseTimeout
from farm.experiment.runner import Pinning, Stall, run_command
from tests.marked import kill_marked, marked_after_kill, new_marker


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split(")")[-1].split()[0] != "Z"


def test_timeout_kills_the_whole_process_group(tmp_path):
    pids = tmp_path / "pids"
    # The parent starts two children that would outlive it, then waits forever.
    command = f"(sleep 300 & echo $! >> {pids}); (sleep 300 & echo $! >> {pids}); sleep 300"
    started = time.monotonic()
    with pytest.raises(PhaseTimeout, match="timed out after 1s"):
        run_command("bench", command, tmp_path, timeout=1, pinning=None)
    assert time.monotonic() - started < 10
    children = [int(p) for p in pids.read_text().split()]
    assert len(children) == 2
    deadline = time.monotonic() + 5
    while any(map(_alive, children)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, children))


def test_pinning_reaches_the_child_with_matching_openmp_environment(tmp_path):
    cpu = max(os.sched_getaffinity(0))
    result = run_command("probe", "python -c 'import os; print(sorted(os.sched_getaffinity(0)), "
                         "os.environ[\"OMP_NUM_THREADS\"], os.environ[\"OMP_PLACES\"])'", tmp_path, 30,
                         Pinning((cpu,)))
    assert result.stdout.split() == [f"[{cpu}]", "1", f"{{{cpu}}}"]


@pytest.mark.parametrize("caller_pinned", [False, True])
def test_pinning_reaches_the_child_from_an_unpinned_or_a_pinned_caller(tmp_path, caller_pinned):
    # A worker runs its experiment on its own CPUs (scheduler/runtime/worker.py): its children inherit them and
    # taskset is not started; from anywhere else taskset pins them.
    from farm.node import sandbox
    cpu = max(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    if caller_pinned:
        os.sched_setaffinity(0, {cpu})
    try:
        result = run_command("probe", "grep Cpus_allowed_list /proc/self/status",
                             tmp_path, 30, Pinning((cpu,)), sandbox=sandbox.phase_sandbox([tmp_path / "f"], tmp_path))
    finally:
        os.sched_setaffinity(0, before)
    assert f"Cpus_allowed_list:\t{cpu}" in result.stdout


def test_variables_given_to_a_phase_cannot_unpin_it(tmp_path):
    # A checkout's env file reaches run_command as `env`: it must not change the OpenMP pinning.
    cpu = min(os.sched_getaffinity(0))
    result = run_command("bench", "echo $OMP_NUM_THREADS $OMP_PLACES $MINE", tmp_path, 10, Pinning((cpu,)),
                         env={"OMP_NUM_THREADS": "8", "OMP_PLACES": "cores", "MINE": "kept"})
    assert result.stdout.split() == ["1", f"{{{cpu}}}", "kept"]


def test_failure_shows_exit_code_and_the_telling_line(tmp_path, ):
    with pytest.raises(PhaseError) as info:
        run_command("build", "echo compiling; echo 'x.cpp:3: error: expected ;' >&2; exit 3", tmp_path, 30, None)
    assert str(info.value) == "exit 3: x.cpp:3: error: expected ;"
    assert info.value.returncode == 3 and "compiling" in info.value.tail


def test_log_file_records_command_and_output(tmp_path):
    log = tmp_path / "logs" / "guard.log"
    run_command("guard", "echo hello", tmp_path, 30, None, log_path=log)
    text = log.read_text()
    assert "$ echo hello" in text and "hello" in text and "exit 0" in text


@pytest.fixture
def marker():
    marker = new_marker()
    yield marker
    kill_marked(marker)


def test_timeout_leaves_nothing_behind_not_even_children_that_left_the_process_group(tmp_path, marker):
    # One child calls setsid, one double-forks into its own session: a process-group kill misses both.
    command = (f"setsid sleep {marker}1 >/dev/null 2>&1 & "
               f"( setsid sleep {marker}2 >/dev/null 2>&1 & ) ; "
               f"sleep {marker}3")
    with pytest.raises(PhaseTimeout, match="timed out after 1s"):
        run_command("bench", command, tmp_path, timeout=1, pinning=None)
    assert marked_after_kill(marker) == []


def test_a_command_that_exits_leaves_nothing_behind(tmp_path, marker):
    # The first background child detaches from the output, the second holds it: neither may outlive the command,
    # and the second must not keep the phase waiting after the command ended.
    command = f"nohup sleep {marker}1 >/dev/null 2>&1 & sleep {marker}2 & echo done"
    started = time.monotonic()
    result = run_command("build", command, tmp_path, timeout=20, pinning=None)
    assert result.returncode == 0 and result.stdout == "done\n"
    assert time.monotonic() - started < 10
    assert marked_after_kill(marker) == []


def test_a_failing_command_leaves_nothing_behind(tmp_path, marker):
    with pytest.raises(PhaseError, match="exit 2"):
        run_command("guard", f"setsid sleep {marker}1 >/dev/null 2>&1 & exit 2", tmp_path, timeout=20, pinning=None)
    assert marked_after_kill(marker) == []


def test_the_command_carries_its_tag(tmp_path):
    result = run_command("probe", "echo $AUTORESEARCH_FARM_TAG", tmp_path, 30, None, tag="c1:w1")
    campaign, worker, token = result.stdout.strip().split(":")
    assert (campaign, worker) == ("c1", "w1") and len(token) == 32
    assert run_command("probe", "echo $AUTORESEARCH_FARM_TAG", tmp_path, 30, None).stdout.startswith("farm:-:")


def test_a_command_that_prints_nothing_and_changes_no_file_is_killed_as_stalled(tmp_path):
    started = time.monotonic()
    with pytest.raises(PhaseTimeout, match="agent stalled: no output and no file changed for 2s"):
        run_command("agent", "sleep 60", tmp_path, 60, None, stall=Stall(2, tmp_path))
    assert time.monotonic() - started < 10
    # Working slowly is not stalling: a file changed every second, for longer than the stall time.
    result = run_command("agent", "for i in 1 2 3 4; do sleep 1; touch f$i; done; echo done", tmp_path, 60, None,
                         stall=Stall(2, tmp_path))
    assert result.stdout.strip() == "done"


ALLOCATE = "python3 -c 'x = bytearray({mb} * 2**20); x[::4096] = b\"1\" * len(x[::4096])'"


@pytest.fixture(params=["compiled", "python"])
def wrapper_form(request, monkeypatch):
    """Each memory test runs with both forms of the wrapper (farm/experiment/memory_wrapper.py): the compiled one (a C
    compiler is here: the fixture needs one) and the Python fallback."""
    from farm.experiment import memory_wrapper
    if request.param == "compiled":
        assert memory_wrapper.compiled() is not None
        assert memory_wrapper.wrapper_argv(3)[0] == str(memory_wrapper.compiled())
    else:
        monkeypatch.setattr(memory_wrapper, "compiled", lambda: None)
        assert memory_wrapper.wrapper_argv(3)[2:4] == ["-S", str(memory_wrapper.PYTHON_FORM)]
    return request.param


@pytest.mark.parametrize("contained", [False, True])
def test_the_peak_memory_of_a_run_is_its_largest_process_and_the_command_cannot_forge_it(tmp_path, contained,
                                                                                         wrapper_form):
    from farm.node import sandbox
    box = sandbox.phase_sandbox([tmp_path / "farm"], tmp_path) if contained else None
    runs = {mb: run_command("bench", ALLOCATE.format(mb=mb), tmp_path, 60, Pinning((0,)), sandbox=box,
                            measure_memory=True).peak_rss for mb in (50, 150)}
    assert 50 * 2**20 < runs[50] < 80 * 2**20 and 150 * 2**20 < runs[150] < 180 * 2**20
    # A child's peak counts (not only the shell's); the report's descriptor is not the command's to write.
    nested = run_command("bench", f"{ALLOCATE.format(mb=100)} & wait; echo 1 >&3", tmp_path, 60, None, sandbox=box,
                         measure_memory=True, check=False)
    assert 100 * 2**20 < nested.peak_rss < 130 * 2**20 and "Bad file descriptor" in nested.stderr
    assert run_command("bench", "true", tmp_path, 60, None).peak_rss is None  # not asked for


def test_the_peak_memory_of_a_run_is_not_the_farm_processes_own(tmp_path, wrapper_form):
    # ru_maxrss keeps the memory a child shared with its parent before exec: measured from a Ray worker of 300 MB,
    # every run would be at least 300 MB. The wrapper forks the command from a process of its own size.
    from farm.node import sandbox
    held = bytearray(300 * 2**20)
    held[::4096] = b"1" * len(held[::4096])
    for box in (None, sandbox.phase_sandbox([tmp_path / "farm"], tmp_path)):
        peak = run_command("bench", "true", tmp_path, 60, None, sandbox=box, measure_memory=True).peak_rss
        assert peak < 50 * 2**20, peak
    del held


def test_the_compiled_wrapper_is_made_once_and_again_when_its_source_changes(tmp_path, monkeypatch):
    from farm.experiment import memory_wrapper
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    memory_wrapper.compiled.cache_clear()
    try:
        first = memory_wrapper.compiled()
        assert first is not None and first.parent == tmp_path / "cache" / "autoresearch-farm"
        stamp = first.stat().st_mtime_ns
        memory_wrapper.compiled.cache_clear()
        assert memory_wrapper.compiled() == first and first.stat().st_mtime_ns == stamp  # found, not compiled again
        source = tmp_path / "peak_rss.c"
        source.write_text(memory_wrapper.SOURCE.read_text() + "/* changed */\n")
        monkeypatch.setattr(memory_wrapper, "SOURCE", source)
        memory_wrapper.compiled.cache_clear()
        second = memory_wrapper.compiled()
        assert second is not None and second != first
        source.write_text("this is not C\n")  # a compiler that fails: the Python form runs
        memory_wrapper.compiled.cache_clear()
        assert memory_wrapper.compiled() is None
        assert memory_wrapper.wrapper_argv(3)[-2:] == [str(memory_wrapper.PYTHON_FORM), "3"]
        assert [p.name for p in first.parent.iterdir() if p.name.startswith(".")] == []  # no half-written binary
    finally:
        memory_wrapper.compiled.cache_clear()
