"""The pipeline's slot checks without Ray (farm/experiment/pipeline.py with real git, real phases, real bubblewrap): a
reference checkout found changed before a benchmark run is rebuilt and its block run again; a candidate found
changed is `tampered` and nothing of it is measured after."""
import os
import pathlib

from farm.campaign_file.config import CampaignConfig
from farm.experiment.pipeline import ExperimentPipeline
from farm.experiment.runner import Pinning
from farm.node.measurement_lock import MeasurementLock
from farm.node.node_state import PhaseBoard
from farm.records import Assignment, Hypothesis, Kind, Status
from tests.scheduler.tiny_repo import config_dict, make_patch, make_repo
from worktrees import SlotPool, TargetRepo


def _run(tmp_path: pathlib.Path, after_block):
    """A screen of a small real change in w0's slots, `after_block(blocks sent so far)` called after each block
    is sent; returns its result, the blocks sent and the events."""
    repo = make_repo(tmp_path / "repo")
    patch = make_patch(repo, tmp_path / "h.patch", "N = 400000", "N = 390000")
    data = config_dict(repo, [], workers={"count": 1})
    data["strategies"] = [{"name": "s", "hypotheses": [{"id": "h", "patch": str(patch)}]}]
    work = tmp_path / "work"
    blocks, events = [], []

    def on_block(block, samples):
        blocks.append(block.block)
        after_block(blocks)

    pipeline = ExperimentPipeline(CampaignConfig(**data), SlotPool(TargetRepo(repo), work / "workers" / "w0"),
                                  Pinning((max(os.sched_getaffinity(0)),)), "w0", work / "logs",
                                  MeasurementLock(None), PhaseBoard(work / "workers", "tiny", "w0"), on_block,
                                  lambda exp, kind, message: events.append((kind, message)))
    hypothesis = Hypothesis(id="h", strategy="s", category="c", text="t", agent="patch", patch=patch.read_text())
    result = pipeline.run(Assignment("tiny-0001", "tiny", Kind.SCREEN, hypothesis, TargetRepo(repo).resolve("main"),
                                     "farm/tiny/tiny-0001"))
    return result, blocks, events


def test_a_changed_reference_is_rebuilt_and_its_block_run_again(tmp_path):
    stray = tmp_path / "work" / "workers" / "w0" / "ref" / "statistics.pyc"

    def after_block(blocks):
        if len(blocks) == 1:  # after the first block something writes into the reference checkout
            stray.write_bytes(b"shadow")

    result, blocks, events = _run(tmp_path, after_block)
    assert result.status in (Status.KEEP, Status.DISCARD), result.reason
    assert blocks == list(range(result.blocks))  # the discarded block is not sent: block 1 once, after the rebuild
    assert any(kind == "tampered" and "ref checkout before benchmark block 2" in message and "statistics.pyc" in
               message for kind, message in events), events
    assert any("the reference checkout is rebuilt from scratch" in message for _, message in events)
    assert not stray.exists()


def test_a_changed_candidate_is_tampered_and_measured_no_further(tmp_path):
    def after_block(blocks):
        (tmp_path / "work" / "workers" / "w0" / "cand" / "prog.py").write_text(
            "print('{\"name\": \"loop\", \"value\": 0.0001}')\n")

    result, blocks, _ = _run(tmp_path, after_block)
    assert result.status is Status.TAMPERED
    assert result.reason.startswith("the cand checkout is not its commit before benchmark block 2: prog.py "
                                    "differ(s) from the commit")
    assert blocks == [0]
    assert not (tmp_path / "work" / "workers" / "w0" / "cand").exists()  # made afresh for the next experiment
