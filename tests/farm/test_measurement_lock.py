"""The measurement lock across real processes: flock on a real file."""
import fcntl
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

from farm.node.measurement_lock import MeasurementLock

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
# A process that takes the lock `repeats` times at `start_at`, holding it `hold` seconds each time, and appends
# "enter T" / "exit T" lines to `out` (flushed, so the test can wait for "enter").
HOLDER = """
import sys, time
from farm.node.measurement_lock import MeasurementLock
path, kind, hold, repeats, start_at, out = sys.argv[1:]
lock = MeasurementLock(None if path == "-" else path)
time.sleep(max(0.0, float(start_at) - time.time()))
with open(out, "a", buffering=1) as log:
    for _ in range(int(repeats)):
        with getattr(lock, kind)():
            log.write(f"enter {time.time()}\\n")
            time.sleep(float(hold))
            log.write(f"exit {time.time()}\\n")
"""


def holder(lock_path, kind: str, hold: float, repeats: int, start_at: float, out: pathlib.Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_path), kind, str(hold), str(repeats),
                             str(start_at), str(out)], env=env)


def intervals(out: pathlib.Path) -> list[tuple[float, float]]:
    times = [float(line.split()[1]) for line in out.read_text().splitlines()]
    return list(zip(times[0::2], times[1::2]))


def wait_for_enter(out: pathlib.Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not (out.exists() and "enter" in out.read_text()):
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.01)


def overlapping(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    return any(start_a < end_b and start_b < end_a for start_a, end_a in a for start_b, end_b in b)


@pytest.mark.parametrize("exclusive", [True, False])
def test_exclusive_holders_in_two_processes_never_overlap(tmp_path, exclusive):
    # The parallel run is the control: the same two processes do overlap without the lock.
    lock_path = tmp_path / "measure.lock" if exclusive else "-"
    start_at = time.time() + 1.0  # both past their start-up by then
    outs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [holder(lock_path, "exclusive", 0.15, 4, start_at, out) for out in outs]
    assert [p.wait(timeout=30) for p in procs] == [0, 0]
    a, b = intervals(outs[0]), intervals(outs[1])
    assert len(a) == len(b) == 4
    assert overlapping(a, b) is not exclusive


def test_shared_holders_share_and_keep_the_exclusive_one_waiting(tmp_path):
    lock = MeasurementLock(tmp_path / "measure.lock")
    out = tmp_path / "build.log"
    proc = holder(lock.path, "shared", 1.0, 1, time.time(), out)  # a build on the other worker
    wait_for_enter(out)
    with lock.shared() as waited:  # a second build joins at once
        assert waited < 0.5
    with lock.exclusive() as waited:  # a measurement waits for the build to end
        entered = time.time()
    assert proc.wait(timeout=30) == 0
    (_, build_end), = intervals(out)
    assert waited > 0.3 and entered >= build_end


def test_an_exclusive_holder_keeps_builds_out(tmp_path):
    lock = MeasurementLock(tmp_path / "measure.lock")
    out = tmp_path / "measure.log"
    proc = holder(lock.path, "exclusive", 1.0, 1, time.time(), out)
    wait_for_enter(out)
    with lock.shared() as waited:
        entered = time.time()
    assert proc.wait(timeout=30) == 0
    (_, measure_end), = intervals(out)
    assert waited > 0.3 and entered >= measure_end


def test_a_killed_holder_frees_the_lock(tmp_path):
    lock = MeasurementLock(tmp_path / "measure.lock")
    out = tmp_path / "measure.log"
    proc = holder(lock.path, "exclusive", 60.0, 1, time.time(), out)
    wait_for_enter(out)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with lock.exclusive() as waited:
        assert waited < 5.0


def test_parallel_mode_never_waits():
    lock = MeasurementLock(None)
    with lock.exclusive() as first, lock.exclusive() as second:  # would wait forever on a real lock
        assert first == second == 0.0


def test_on_wait_is_called_only_when_the_lock_is_taken(tmp_path):
    lock = MeasurementLock(tmp_path / "measure.lock")
    waits = []
    with lock.exclusive(on_wait=lambda: waits.append("free?")):
        pass
    assert waits == []
    holder = os.open(tmp_path / "measure.lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    threading.Timer(0.2, lambda: os.close(holder)).start()  # closing the file releases its lock
    with lock.shared(on_wait=lambda: waits.append("waited")) as waited:
        assert waits == ["waited"] and waited >= 0.1
