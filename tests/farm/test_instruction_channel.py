"""measurement.channels: [time, instructions] (issue 22): real instruction counts (perf, else cachegrind) of a
real benchmark in the pipeline, without Ray; the counts inform the time verdict and never make a keep."""
import fcntl
import os
import pathlib
import time

import pytest
from pydantic import ValidationError

from farm.campaign_file.config import CampaignConfig
from farm.experiment import instruction_counter
from farm.experiment.pipeline import ExperimentPipeline
from farm.experiment.runner import Pinning
from farm.node.measurement_lock import MeasurementLock
from farm.node.node_state import PhaseBoard
from farm.records import INSTRUCTIONS, Assignment, Hypothesis, Kind, Sample, Status
from tests.scheduler.tiny_repo import config_dict, make_patch, make_repo
from worktrees import SlotPool, TargetRepo


def _config(repo: pathlib.Path, **bench) -> dict:
    data = config_dict(repo, [], workers={"count": 1}, measurement={"channels": ["time", "instructions"]},
                       benchmarks={"loop": {}})
    data["phases"]["bench"].update(bench)
    return data


def _pipeline(data: dict, repo: pathlib.Path, work: pathlib.Path, lock: MeasurementLock, send_block, send_event):
    return ExperimentPipeline(CampaignConfig(**data), SlotPool(TargetRepo(repo), work / "workers" / "w0"),
                              Pinning((max(os.sched_getaffinity(0)),)), "w0", work / "logs", lock,
                              PhaseBoard(work / "workers", "tiny", "w0"), send_block, send_event)


def _another_worker_could_hold(lock: pathlib.Path, mode: int) -> bool:
    """Whether another open file of the lock (flock's view of another worker) gets it in `mode` now."""
    with open(lock, "a") as another:
        try:
            fcntl.flock(another, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(another, fcntl.LOCK_UN)
        return True


def test_a_change_with_fewer_instructions_and_more_time_is_not_kept(tmp_path):
    counter, found = instruction_counter.find_counter()
    assert counter is not None, found  # .ci/run installs valgrind: a machine without a counter fails here
    repo = make_repo(tmp_path / "repo")
    # A quarter fewer iterations of the loop, and a sleep that costs more than they saved.
    patch = make_patch(repo, tmp_path / "h.patch", "N = 400000\nstart = time.perf_counter()\n",
                       "N = 300000\nstart = time.perf_counter()\ntime.sleep(0.05)\n")
    # A fixed hash seed: under cachegrind every run of an arm then counts the same, a ratio without spread that
    # is decided exactly (decide_benchmark's `exact`), not "insufficient".
    data = _config(repo, instructions_command="PYTHONHASHSEED=0 python prog.py")
    data["strategies"] = [{"name": "s", "hypotheses": [{"id": "h", "patch": str(patch)}]}]
    work = tmp_path / "work"
    samples, events = [], []
    pipeline = _pipeline(data, repo, work, MeasurementLock(None), lambda block, batch: samples.extend(batch),
                         lambda exp, kind, message: events.append((kind, message)))
    hypothesis = Hypothesis(id="h", strategy="s", category="c", text="t", agent="patch", patch=patch.read_text())
    result = pipeline.run(Assignment("tiny-0001", "tiny", Kind.SCREEN, hypothesis, TargetRepo(repo).resolve("main"),
                                     "farm/tiny/tiny-0001"))

    assert result.status is Status.DISCARD, result.reason
    counts = {arm: [s.value for s in samples if s.benchmark == "loop.instructions" and s.arm == arm]
              for arm in ("ref", "cand")}
    # counted in the first min_blocks blocks only: the first look decides the counts
    assert len(counts["ref"]) == len(counts["cand"]) == data["acceptance"]["min_blocks"] <= result.blocks
    assert {s.unit for s in samples if s.benchmark == "loop.instructions"} == {f"instructions/{counter}"}
    assert max(counts["cand"]) < 0.95 * min(counts["ref"])  # the counts saw the fewer instructions...
    said = [message for kind, message in events if kind == "instructions"]
    assert said and "loop.instructions" in said[-1] and "improved" in said[-1]
    times = {arm: sorted(s.value for s in samples if s.benchmark == "loop" and s.arm == arm) for arm in ("ref", "cand")}
    assert times["cand"][len(times["cand"]) // 2] > times["ref"][len(times["ref"]) // 2]  # ... and the time more
    assert [d.benchmark for d in result.decisions] == ["loop"]  # counts inform the verdict, they are not one
    assert [(d.benchmark, d.verdict.value) for d in result.counts] == [("loop.instructions", "improved")]


def test_several_benchmarks_need_an_instructions_command_per_benchmark(tmp_path):
    data = _config(tmp_path)
    data["strategies"] = [{"name": "s", "hypotheses": [{"id": "h", "patch": "h.patch"}]}]
    data["benchmarks"] = {"loop": {}, "other": {}}
    with pytest.raises(ValidationError, match=r"instructions_command with \{benchmark\}"):
        CampaignConfig(**data)
    data["phases"]["bench"]["instructions_command"] = "python prog.py --only {benchmark}"
    config = CampaignConfig(**data)
    assert config.instructions_command("a b") == "python prog.py --only 'a b'"
    with pytest.raises(ValidationError, match="time always decides"):
        CampaignConfig(**{**data, "measurement": {"channels": ["instructions"]}})


def test_counts_are_read_from_what_each_counter_prints():
    assert instruction_counter.read_count("perf", "noise\n123456,,instructions:u,1000,100.00,,\n") == 123456
    with pytest.raises(instruction_counter.CountError, match="not supported"):
        instruction_counter.read_count("perf", "<not supported>,,instructions:u,0,100.00,,\n")
    two_processes = "==11== I   refs:      1,000\n==12== I   refs:      2,500\n"
    assert instruction_counter.read_count("cachegrind", two_processes) == 3500
    with pytest.raises(instruction_counter.CountError):
        instruction_counter.read_count("cachegrind", "==11== I refs: 12 (printed by the benchmark itself)\n")


def test_a_campaign_that_counts_instructions_is_refused_where_no_counter_works(tmp_path, monkeypatch):
    from farm.campaign_file.validate import check_campaign
    from farm.errors import ConfigError

    repo = make_repo(tmp_path / "repo")
    data = _config(repo)
    data["strategies"] = [{"name": "s", "hypotheses": [{"id": "h", "patch": str(make_patch(
        repo, tmp_path / "h.patch", "N = 400000", "N = 300000"))}]}]
    config = CampaignConfig(**data)
    assert check_campaign(config, tmp_path / "work").base_commit  # a counter works here
    monkeypatch.setattr(instruction_counter, "find_counter", lambda: (None, "no instruction counter works here: x"))
    with pytest.raises(ConfigError, match="measurement.channels: instructions are counted, but no instruction "
                                          "counter works here"):
        check_campaign(config, tmp_path / "work")


def test_counts_hold_the_measurement_lock_shared_so_other_workers_can_count_or_build_meanwhile(tmp_path):
    # Under cachegrind a block's counts take minutes; held exclusively, they kept every other worker of the
    # node from counting or building all that time. Shared: no other worker times its runs beside them.
    repo = make_repo(tmp_path / "repo")
    data = _config(repo, instructions_command="python prog.py")
    patch = make_patch(repo, tmp_path / "h.patch", "N = 400000", "N = 300000")
    data["strategies"] = [{"name": "s", "hypotheses": [{"id": "h", "patch": str(patch)}]}]
    work, lock = tmp_path / "work", tmp_path / "measure.lock"
    pipeline = _pipeline(data, repo, work, MeasurementLock(lock), lambda block, batch: None,
                         lambda exp, kind, message: None)
    seen = []

    def count_while_probing_the_lock(slot, exp, arm, block):
        free = {"shared": _another_worker_could_hold(lock, fcntl.LOCK_SH),
                "exclusive": _another_worker_could_hold(lock, fcntl.LOCK_EX)}
        seen.append((arm, block, pipeline.board.current[0], free))
        now = time.time()
        return [Sample(exp, arm, block, "loop" + INSTRUCTIONS, 1000.0 if arm == "ref" else 750.0, "instructions/perf",
                       pipeline.pinning.cpus, os.getpid(), now, now)]

    pipeline._count_instructions = count_while_probing_the_lock
    hypothesis = Hypothesis(id="h", strategy="s", category="c", text="t", agent="patch", patch=patch.read_text())
    pipeline.run(Assignment("tiny-0001", "tiny", Kind.SCREEN, hypothesis, TargetRepo(repo).resolve("main"),
                            "farm/tiny/tiny-0001"))
    blocks = data["acceptance"]["min_blocks"]
    assert sorted((arm, block) for arm, block, _, _ in seen) == sorted(
        (arm, b) for arm in ("ref", "cand") for b in range(blocks))
    assert {(phase, free["shared"], free["exclusive"]) for _, _, phase, free in seen} == {("count", True, False)}
