"""The spool (farm/storage/spool.py): workers on the store's node append their observations to logs of their own,
the store actor takes what the logs gained in bulk. What travels must arrive exactly, in order, once; a bad record
costs only itself; a log goes only once its writer has ended and everything in it is stored."""
import errno
import math
import os
import pickle

import pytest

from farm.records import Block, Observations, Sample
from farm.storage import spool as spool_module
from farm.storage.packed import Packed, pack
from farm.storage.spool import LENGTH, Spool, SpoolWriter, spool_directory


def _block(experiment_id: str, number: int, worker: str = "w0", value: float = 1.0) -> tuple[Block, list[Sample]]:
    return (Block(experiment_id, number, worker, "ref,cand", 1.5e9, 1.5e9 + 1, 0.25, None, "w1:build", 0.0),
            [Sample(experiment_id, arm, number, "loop", value, "s", (0, 1), 2**40, 1.5e9, 1.5e9 + 0.5, None)
             for arm in ("ref", "cand")])


def _sent(experiment_id: str) -> Packed:
    return pack(Observations.of([_block(experiment_id, 0)]))


def _taken(spool: Spool) -> Observations:
    sends, unreadable = spool.take()
    assert unreadable == []
    return _merged(sends)


def _merged(sends: list[Packed]) -> Observations:
    merged = Observations()
    for send in sends:
        merged.extend(send.unpack())
    return merged


def _ids(observations: Observations | Spool) -> list[str]:
    observations = _taken(observations) if isinstance(observations, Spool) else observations
    return [block.experiment_id for block in observations.blocks]


def test_what_is_put_is_taken_exactly_once_each_log_in_order(tmp_path):
    spool = Spool(tmp_path / "spool")
    first = Observations.of([_block("c-0001", 0, value=math.nan)], events=[(1.0, "w0", "c-0001", "guard", "\ud800")])
    second = Observations.of([_block("c-0002", 0, "w1", value=1 / 3)], phases=[("w1", "c-0002", "build", 2.0, 3.0)])
    w0, w1 = SpoolWriter(spool.directory, "w0"), SpoolWriter(spool.directory, "w1")
    w0.put(pack(first))
    w1.put(pack(second))
    w0.put(_sent("c-0003"))
    taken = _taken(spool)
    assert _ids(taken) == ["c-0001", "c-0003", "c-0002"]  # w0's log is the older one
    assert taken.blocks[0] == first.blocks[0] and taken.sample_counts == [2, 2, 2]
    assert math.isnan(taken.samples["value"][0]) and taken.samples["value"][4:] == [1 / 3, 1 / 3]
    assert taken.samples["pid"] == [2**40] * 6 and taken.samples["cpus"][0] == (0, 1)
    assert taken.events == [(1.0, "w0", "c-0001", "guard", "\ud800")]
    assert taken.phases == [("w1", "c-0002", "build", 2.0, 3.0)]
    spool.committed()
    assert spool.take() == ([], [])  # taken once
    w1.put(_sent("c-0004"))
    assert _ids(spool) == ["c-0004"]


def test_a_record_being_written_is_taken_only_when_whole(tmp_path):
    writer = SpoolWriter(tmp_path, "w0")
    writer.put(_sent("c-0001"))
    payload = pickle.dumps(_sent("c-0002"))
    record = LENGTH.pack(len(payload)) + payload
    os.write(writer._fd, record[:20])
    spool = Spool(tmp_path)
    assert _ids(spool) == ["c-0001"]
    assert spool.take() == ([], [])
    os.write(writer._fd, record[20:])
    assert _ids(spool) == ["c-0002"]


class _Planted:
    def __reduce__(self):
        return (os.system, ("touch planted",))


def _disagreeing() -> Packed:
    send = _sent("c")
    send.sample_counts = [3]
    return send


@pytest.mark.parametrize("content", [b"not a pickle", pickle.dumps(_Planted()), pickle.dumps({"blocks": []}),
                                     pickle.dumps(Observations.of([_block("c", 0)])), pickle.dumps(_disagreeing()),
                                     pickle.dumps(Packed(events=[("an event of one field",)]))],
                         ids=["garbage", "code", "other-value", "records-not-packed", "columns-disagree",
                              "event-not-a-row"])
def test_a_bad_record_is_reported_and_costs_no_other(tmp_path, content, monkeypatch):
    monkeypatch.chdir(tmp_path)
    writer = SpoolWriter(tmp_path / "spool", "w0")
    writer.put(_sent("c-0001"))
    os.write(writer._fd, LENGTH.pack(len(content)) + content)
    writer.put(_sent("c-0002"))
    sends, unreadable = Spool(tmp_path / "spool").take()
    assert _ids(_merged(sends)) == ["c-0001", "c-0002"] and _merged(sends).sample_count == 4
    assert len(unreadable) == 1 and "could not be read" in unreadable[0]
    assert not (tmp_path / "planted").exists()


def test_a_log_goes_once_its_writer_has_ended_and_what_it_held_is_committed(tmp_path):
    spool = Spool(tmp_path)
    live, ended = SpoolWriter(tmp_path, "w0"), SpoolWriter(tmp_path, "w1")
    live.put(_sent("c-0001"))
    ended.put(_sent("c-0002"))
    os.write(ended._fd, LENGTH.pack(1000) + b"half a send")  # the writer is killed in the middle of a send
    ended.close()
    sends, unreadable = spool.take()
    assert _ids(_merged(sends)) == ["c-0001", "c-0002"]
    assert len(unreadable) == 1 and "writer ended in the middle of a send" in unreadable[0]
    assert len(spool.logs()) == 2  # not before the store holds what was taken
    spool.committed()
    assert [name.split("-")[1] for name in spool.logs()] == ["w0"]  # the live writer's
    live.put(_sent("c-0003"))
    assert _ids(spool) == ["c-0003"]


def test_positions_saved_with_what_was_taken_make_a_new_reader_go_on_from_there(tmp_path):
    # The store actor writes `unsaved()` with the rows; after it dies, the next one starts from those positions.
    writer = SpoolWriter(tmp_path, "w0")
    writer.put(_sent("c-0001"))
    first = Spool(tmp_path)
    first.take()
    saved = first.unsaved()
    first.committed()
    assert first.unsaved() is None
    writer.put(_sent("c-0002"))
    first.take()  # taken, but the store actor died before it committed
    writer.close()
    assert _ids(Spool(tmp_path, saved)) == ["c-0002"]
    assert _ids(Spool(tmp_path)) == ["c-0001", "c-0002"]  # (without the positions: both again)


def test_a_failed_write_leaves_no_partial_record(tmp_path, monkeypatch):
    writer = SpoolWriter(tmp_path, "w0")
    writer.put(_sent("c-0001"))
    real_write = os.write

    def disk_full(fd, data):
        real_write(fd, data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_module.os, "write", disk_full)
    with pytest.raises(OSError):
        writer.put(_sent("c-0002"))
    monkeypatch.setattr(spool_module.os, "write", real_write)
    writer.put(_sent("c-0003"))
    writer.close()
    assert _taken(Spool(tmp_path)) == Observations.of([_block("c-0001", 0), _block("c-0003", 0)])


def test_clear_removes_what_a_killed_run_left(tmp_path):
    spool = Spool(spool_directory(tmp_path / "farm.duckdb", "demo"))
    assert spool.directory == tmp_path / "farm.duckdb.spool" / "demo"
    writer = SpoolWriter(spool.directory, "w0")
    writer.put(_sent("demo-0001"))
    writer.close()
    spool.clear()
    assert spool.take() == ([], []) and not list(spool.directory.iterdir())


def test_a_closed_store_leaves_no_empty_spool_but_keeps_one_that_holds_something(tmp_path):
    spools = [Spool(spool_directory(tmp_path / "farm.duckdb", name)) for name in ("a", "b")]
    writer = SpoolWriter(spools[1].directory, "w0")
    writer.put(_sent("b-0001"))
    spools[0].remove_if_empty()
    assert not spools[0].directory.exists() and spools[1].directory.exists()  # b's spool has a live log
    writer.close()
    spools[1].take()
    spools[1].committed()
    spools[1].remove_if_empty()
    assert not (tmp_path / "farm.duckdb.spool").exists()
