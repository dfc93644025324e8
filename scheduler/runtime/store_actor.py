"""The store actor: the only process that writes the DuckDB file.

Workers and the coordinator send it whole batches: a worker's blocks, events and phase rows come every
measurement.send_every seconds and at the end of each experiment, appended to the campaign's spool by a
worker on this node (farm/storage/spool.py: no call) and as an `observe` call from a worker on any other node.
It also keeps the recent events in memory so the coordinator can print progress without reading the file.

The workers' blocks, events and phases are taken (from the spool, or acknowledged at once) and written together
in one transaction before anything else touches the file: when the coordinator drains the events (at least every
second), writes a step, queries, or closes. One commit per block would cap the store at a few thousand samples a
second; a block held here is lost only with the store actor itself, which ends the campaign (its running
experiments are run again on --resume; what is still in the spool is written then). A row the store refuses is
left out of that transaction, the others are written, and a `store_error` event says what was lost
(farm/storage/store.py, add_observations): it is never held for the next write, which it would fail again, and
every one after it.
"""
from __future__ import annotations

import gc
import time

import ray

from farm.node.processes import KILL_GRACE_SECONDS
from farm.records import Observations
from farm.storage.live import LiveState, from_store
from farm.storage.packed import Packed, pack
from farm.storage.spool import Spool, spool_directory
from farm.storage.store import Store, snapshot_path, storable_text, write_snapshot
from farm.storage.store_writes import Write

SNAPSHOT_SECONDS = 5.0  # the snapshot for readers is at most about this old (longer when copying takes long)


@ray.remote(num_cpus=0, max_concurrency=1)
class StoreActor:
    def __init__(self, path: str, campaign: str):
        self.store = Store(path)
        self.campaign = campaign
        # What the workers on this node leave, and on --resume what the killed run's workers left after what the
        # store holds.
        self.spool = Spool(spool_directory(path, campaign), self.store.spool_positions(campaign))
        self.snapshot = snapshot_path(path)
        self.snapshot_due = 0.0  # when the next snapshot may be written
        self.pending_events: list[tuple] = []  # not yet drained by the coordinator
        self.unwritten: list[Packed] = []  # sends not yet in the file: written in batches

    def observe(self, send: Packed | Observations) -> int:
        """What a worker on another node observed since its last call (farm/storage/packed.py), written with the
        next flush. Returns the samples taken."""
        send = pack(send) if isinstance(send, Observations) else send
        self._take_in(send)
        return send.sample_count

    def _take_in(self, send: Packed) -> None:
        # Storable text from here on: the coordinator prints these too, and a lone surrogate fails that as well.
        send.events = [(ts, storable_text(worker), storable_text(experiment), kind, storable_text(message))
                       for ts, worker, experiment, kind, message in send.events]
        self.pending_events += send.events
        self.unwritten.append(send)

    def apply(self, writes: list[Write], state: dict | None) -> list[tuple]:
        """The coordinator's writes of one step (farm/storage/store_writes.py) and the campaign state they lead to
        (None:
        unchanged), in one transaction; returns the events since the last drain (as drain_events), so that a
        turn of the coordinator is one call."""
        self._flush()
        self.store.apply(self.campaign, writes, state)
        # The coordinator waits for this call: a snapshot here only when the idle turns' drains did not take one.
        self._snapshot(late_by=2 * SNAPSHOT_SECONDS)
        events, self.pending_events = self.pending_events, []
        return events

    def load_state(self) -> dict | None:
        """The campaign's saved state (--resume)."""
        return self.store.load_state(self.campaign)

    def _flush(self) -> None:
        """The blocks, events and phases received since the last flush, in one transaction (rows the store
        refuses left out, with a `store_error` event each, which the coordinator shows)."""
        # Without Python's cyclic garbage collector: taking a million samples makes millions of objects (none in a
        # cycle), and each full collection it triggers walks all of them again (about a fifth of the flush).
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._take_and_write()
        finally:
            if collecting:
                gc.enable()

    def _take_and_write(self) -> None:
        spooled, unreadable = self.spool.take()
        if unreadable:
            spooled.append(Packed(events=[(time.time(), None, None, "store_error", line) for line in unreadable]))
        for send in spooled:
            self._take_in(send)
        positions = self.spool.unsaved()
        if self.unwritten or positions is not None:
            # Taken out before the write: whatever happens to it, no row stays here to fail the next one.
            sends, self.unwritten = self.unwritten, []
            self.pending_events += self.store.add_observations(self.campaign, sends, positions)
        self.spool.committed()

    def drain_events(self) -> list[tuple]:
        """Events since the last call, oldest first (and writes what was received to the file as one batch)."""
        self._flush()
        self._snapshot()
        events, self.pending_events = self.pending_events, []
        return events

    def _snapshot(self, late_by: float = 0.0) -> None:
        """A copy of the store for `farm query` and `farm status` while the campaign runs (DuckDB lets nobody
        else open the file): at most every SNAPSHOT_SECONDS (`late_by` seconds later), and never more than a
        tenth of the time."""
        now = time.time()
        if now < self.snapshot_due + late_by:
            return
        write_snapshot(self.store.con, self.snapshot)
        self.snapshot_due = now + max(SNAPSHOT_SECONDS, 10 * (time.time() - now))

    def live_state(self) -> LiveState:
        """The campaign's live view, computed as `farm status` computes it (farm/storage/live.py), from the
        store: the same counts in both, and the same after --resume."""
        self._flush()
        return from_store(self.store.con, self.campaign)

    def query(self, sql: str, params: list | None = None):
        self._flush()
        return self.store.query(sql, params)

    def close(self) -> None:
        self._flush()
        # The coordinator has just killed the workers (ray.kill returns before their processes end): their logs
        # go once the kernel drops their locks. A writer still alive after the kill grace keeps its log for a
        # --resume, which reads on from the positions stored.
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        while self.spool.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
            self._flush()
        self.store.con.execute("CHECKPOINT")
        self.store.close()
        self.snapshot.unlink(missing_ok=True)  # the store itself can be opened now
        self.spool.remove_if_empty()
