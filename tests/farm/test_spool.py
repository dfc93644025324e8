"""The spool (farm/storage/spool.py): workers on the store's node leave their observations as files, the store
actor takes them in bulk. What travels must arrive exactly, in order, once; a bad file costs only itself."""
import math
import os
import pickle

import pytest

from farm.records import Block, Observations, Sample
from farm.storage.spool import SUFFIX, Spool, spool_directory


def _block(experiment_id: str, number: int, worker: str = "w0", value: float = 1.0) -> tuple[Block, list[Sample]]:
    return (Block(experiment_id, number, worker, "ref,cand", 1.5e9, 1.5e9 + 1, 0.25, None, "w1:build", 0.0),
            [Sample(experiment_id, arm, number, "loop", value, "s", (0, 1), 2**40, 1.5e9, 1.5e9 + 0.5, None)
             for arm in ("ref", "cand")])


def test_what_is_put_is_taken_exactly_once_oldest_first(tmp_path):
    spool = Spool(tmp_path / "spool")
    first = Observations.of([_block("c-0001", 0, value=math.nan)], events=[(1.0, "w0", "c-0001", "guard", "\ud800")])
    second = Observations.of([_block("c-0002", 0, "w1", value=1 / 3)], phases=[("w1", "c-0002", "build", 2.0, 3.0)])
    spool.put(first, "w0")
    spool.put(second, "w1")
    taken, unreadable = spool.take()
    assert unreadable == []
    assert [b.experiment_id for b in taken.blocks] == ["c-0001", "c-0002"]
    assert taken.blocks[0] == first.blocks[0] and taken.sample_counts == [2, 2]
    assert math.isnan(taken.samples["value"][0]) and taken.samples["value"][2:] == [1 / 3, 1 / 3]
    assert taken.samples["pid"] == [2**40] * 4 and taken.samples["cpus"][0] == (0, 1)
    assert taken.events == [(1.0, "w0", "c-0001", "guard", "\ud800")]
    assert taken.phases == [("w1", "c-0002", "build", 2.0, 3.0)]
    assert spool.take()[0].sample_count == 0  # taken once


def test_a_file_being_written_is_not_taken(tmp_path):
    spool = Spool(tmp_path)
    (tmp_path / ".late.partial").write_bytes(pickle.dumps(Observations.of([_block("c-0001", 0)])))
    taken, unreadable = spool.take()
    assert not taken and unreadable == [] and (tmp_path / ".late.partial").exists()


class _Planted:
    def __reduce__(self):
        return (os.system, ("touch planted",))


@pytest.mark.parametrize("content", [b"not a pickle", pickle.dumps(_Planted()), pickle.dumps({"blocks": []}),
                                     pickle.dumps(Observations([Block("c", 0, "w0", "ref", 0, 0, 0, None, None, 0)],
                                                               [3]))],
                         ids=["garbage", "code", "other-value", "columns-disagree"])
def test_a_bad_file_is_reported_removed_and_costs_no_other(tmp_path, content, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spool = Spool(tmp_path / "spool")
    spool.put(Observations.of([_block("c-0001", 0)]), "w0")
    (spool.directory / ("00000000000000000001-bad" + SUFFIX)).write_bytes(content)
    spool.put(Observations.of([_block("c-0002", 0)]), "w0")
    taken, unreadable = spool.take()
    assert [b.experiment_id for b in taken.blocks] == ["c-0001", "c-0002"] and taken.sample_count == 4
    assert len(unreadable) == 1 and "00000000000000000001-bad" in unreadable[0]
    assert not list(spool.directory.iterdir()) and not (tmp_path / "planted").exists()


def test_clear_removes_what_a_killed_run_left(tmp_path):
    spool = Spool(spool_directory(tmp_path / "farm.duckdb", "demo"))
    assert spool.directory == tmp_path / "farm.duckdb.spool" / "demo"
    spool.put(Observations.of([_block("demo-0001", 0)]), "w0")
    spool.clear()
    assert not spool.take()[0]


def test_a_closed_store_leaves_no_empty_spool_but_keeps_one_that_holds_something(tmp_path):
    spools = [Spool(spool_directory(tmp_path / "farm.duckdb", name)) for name in ("a", "b")]
    spools[1].put(Observations.of([_block("b-0001", 0)]), "w0")
    spools[0].remove_if_empty()
    assert not spools[0].directory.exists() and spools[1].directory.exists()  # b's spool holds a send
    spools[1].take()
    spools[1].remove_if_empty()
    assert not (tmp_path / "farm.duckdb.spool").exists()
