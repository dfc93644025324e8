"""The experiment store: one DuckDB file, written by exactly one process.

In a campaign the store actor (scheduler/runtime/store_actor.py) owns a Store; every
other process sends it whole batches. `farm query`, `farm status` and
reports open the file read-only with `open_readonly`. DuckDB lets no other
process open a file that one is writing, so while a campaign runs the store
actor keeps a consistent copy beside it (`snapshot_path`, a few seconds old),
which `open_readonly` reads instead.

What workers send is data from untrusted programs (benchmarks, agents): text
is made storable on the way in (`storable_text`), and a row the store still
refuses is left out and reported, never allowed to fail the rows sent with it
(`Store.add_observations`).
"""
from __future__ import annotations

import datetime
import itertools
import json
import operator
import os
import pathlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from farm.errors import StoreError
from farm.records import (
    BLOCK_COLUMNS,
    SAMPLE_COLUMNS,
    Block,
    ExperimentResult,
    Hypothesis,
    Observations,
    Sample,
    Status,
)
from farm.storage.packed import FLOAT_COLUMNS, Packed, pack

if TYPE_CHECKING:
    from farm.storage.store_writes import Write

SCHEMA_VERSION = 8
CHECKPOINT_THRESHOLD = "256MB"  # write-ahead log size at which DuckDB checkpoints (Store.__init__)
SCHEMA_FILE = pathlib.Path(__file__).with_name("schema.sql")
# version -> SQL that upgrades a store from version - 1. Frozen history: a later change to a table gets its own
# migration rather than an edit here.
MIGRATIONS: dict[int, str] = {
    2: """CREATE TABLE blocks (
              experiment_id VARCHAR NOT NULL,
              block INTEGER NOT NULL,
              worker VARCHAR NOT NULL,
              arm_order VARCHAR NOT NULL,
              started_at TIMESTAMP NOT NULL,
              finished_at TIMESTAMP NOT NULL,
              loadavg_1m DOUBLE NOT NULL,
              cpu_mhz DOUBLE,
              others VARCHAR,
              waited_s DOUBLE NOT NULL)""",
    3: """ALTER TABLE experiments ADD COLUMN retry_of VARCHAR;
          ALTER TABLE experiments ADD COLUMN agent_notes VARCHAR;
          CREATE TABLE campaign_state (
              campaign VARCHAR PRIMARY KEY,
              state JSON NOT NULL,
              saved_at TIMESTAMP NOT NULL)""",
    4: """ALTER TABLE experiments ADD COLUMN lineage VARCHAR;
          ALTER TABLE merges ADD COLUMN lineage VARCHAR;
          CREATE TABLE allocations (
              campaign VARCHAR NOT NULL,
              ts TIMESTAMP NOT NULL,
              rung INTEGER NOT NULL,
              strategy VARCHAR NOT NULL,
              status VARCHAR NOT NULL,
              workers DOUBLE NOT NULL,
              started INTEGER NOT NULL,
              screens INTEGER NOT NULL,
              kept INTEGER NOT NULL,
              landed INTEGER NOT NULL,
              landed_ratio DOUBLE NOT NULL,
              reason VARCHAR NOT NULL);
          CREATE VIEW race_results AS
              SELECT * EXCLUDE (last) FROM (
                  SELECT *, row_number() OVER (PARTITION BY campaign, strategy ORDER BY ts DESC, rung DESC) AS last
                  FROM allocations) WHERE last = 1""",
    5: """CREATE TABLE phases (
              campaign VARCHAR NOT NULL,
              worker VARCHAR NOT NULL,
              experiment_id VARCHAR,
              phase VARCHAR NOT NULL,
              started_at TIMESTAMP NOT NULL,
              finished_at TIMESTAMP NOT NULL)""",
    6: """ALTER TABLE samples ADD COLUMN peak_rss BIGINT;
          CREATE TABLE agent_runs (
              campaign VARCHAR NOT NULL,
              experiment_id VARCHAR NOT NULL,
              attempt INTEGER NOT NULL,
              strategy VARCHAR NOT NULL,
              cli VARCHAR,
              outcome VARCHAR NOT NULL,
              seconds DOUBLE NOT NULL,
              cost_usd DOUBLE,
              input_tokens BIGINT,
              output_tokens BIGINT,
              turns INTEGER,
              session_id VARCHAR,
              summary VARCHAR,
              finished_at TIMESTAMP NOT NULL)""",
    7: """CREATE TABLE campaign_state_parts (
              campaign VARCHAR NOT NULL,
              part VARCHAR NOT NULL,
              state JSON NOT NULL,
              saved_at TIMESTAMP NOT NULL,
              PRIMARY KEY (campaign, part));
          INSERT INTO campaign_state_parts
              SELECT campaign, part, json_extract(state, '$."' || part || '"'), saved_at
              FROM (SELECT campaign, state, saved_at, unnest(json_keys(state)) AS part FROM campaign_state);
          DROP TABLE campaign_state;
          CREATE VIEW campaign_state AS
              SELECT campaign, json_group_object(part, state) AS state, max(saved_at) AS saved_at
              FROM campaign_state_parts GROUP BY campaign""",
    8: """CREATE TABLE spool_positions (
              campaign VARCHAR NOT NULL,
              log VARCHAR NOT NULL,
              bytes_read BIGINT NOT NULL,
              PRIMARY KEY (campaign, log))""",
}


# What one bad value in a row raises while it is written: DuckDB refusing it for its column (an integer beyond
# INTEGER), or Python converting it on the way (a timestamp out of range).
ROW_ERRORS = (duckdb.Error, ValueError, OverflowError, TypeError)


def storable_text(value):
    """`value` with each lone surrogate written as its escape (a str "\\ud800"); anything else as it is.

    DuckDB stores UTF-8, which has no lone surrogates; Python makes them from a JSON "\\ud800" escape. One
    in an event's message or an experiment's reason would fail the whole transaction that carries it."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _storable_column(values: list) -> list:
    """One column of a columnar INSERT with its text made storable (storable_text)."""
    first = next((v for v in values if v is not None), None)
    if not isinstance(first, str):
        return values  # numbers, timestamps, CPU lists: DuckDB checks them against the column's type
    try:
        "".join(values).encode("utf-8")  # text only and all of it valid: the common case, checked in C
        return values
    except (TypeError, UnicodeEncodeError):  # NULLs among the text, or a lone surrogate: value by value
        return [storable_text(v) for v in values]


def _first_line(error: Exception) -> str:
    """An error as one short line (DuckDB's messages go on with the statement and a caret)."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _ts(seconds: float | None) -> datetime.datetime | None:
    return None if seconds is None else datetime.datetime.fromtimestamp(seconds)


def _local_times(seconds: list[float]):
    """Unix times as NumPy datetime64[us] of local time, as _ts gives them: one UTC offset for the whole list
    when its earliest and latest time share it and are less than a day apart (no two changes of the offset
    between them), else time by time."""
    import numpy as np

    values = np.asarray(seconds, dtype=np.float64)
    offsets = {_utc_offset(values.min()), _utc_offset(values.max())}
    if len(offsets) > 1 or values.max() - values.min() > 86400:
        return np.array([_ts(value) for value in seconds], dtype="datetime64[us]")
    fraction, whole = np.modf(values)  # rounded as datetime.fromtimestamp rounds: the fraction alone, to even
    micros = (whole.astype(np.int64) + int(offsets.pop())) * 1_000_000 + np.round(fraction * 1e6).astype(np.int64)
    return micros.astype("datetime64[us]")


def _objects(values: list):
    """A NumPy array of the values as Python objects: DuckDB takes None as NULL and casts the others to the
    column's type, refusing a value beyond it (a row error) where a NumPy integer type would wrap or fail."""
    import numpy as np

    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _integers(values: list):
    """Integers as int64, which DuckDB scans in place and casts to the column's type (refusing a value beyond it,
    a row error); as objects when some are None or beyond int64."""
    import numpy as np

    try:
        return np.asarray(values, dtype=np.int64)
    except (TypeError, OverflowError):
        return _objects(values)


@dataclass(frozen=True)
class DistinctIndexed:
    """A column as each row's 0-based index into its distinct values, which DuckDB looks up in a list parameter:
    it converts a Python sequence per row slowly (a million CPU sets: 0.36 s), an index per row fast."""

    indices: object  # a NumPy int64 array
    values: list


def _block_columns(sends: list[Packed]) -> dict:
    import numpy as np  # here: the readers of the store (farm query, status, schema) need no NumPy

    each = {name: list(itertools.chain.from_iterable(send.blocks[name] for send in sends)) for name in BLOCK_COLUMNS}
    return {**{name: _objects(_storable_column(each[name])) for name in ("experiment_id", "worker", "arm_order",
                                                                         "others")},
            "block": _integers(each["block"]), "started_at": _local_times(each["started_at"]),
            "finished_at": _local_times(each["finished_at"]),
            "loadavg_1m": np.asarray(each["loadavg_1m"], dtype=np.float64), "cpu_mhz": _objects(each["cpu_mhz"]),
            "waited_s": np.asarray(each["waited_s"], dtype=np.float64)}


def _coded_column(coded: list[tuple[list, bytes]], rows, row_starts) -> tuple:
    """A coded sample column of many sends (each send's (distinct values, indices)) joined: every send's distinct
    values one after the other, and each row's index into them. ValueError if a send's index points past its own
    values. (Loops over the sends run in C: map and itemgetter.)"""
    import numpy as np

    distinct = list(map(operator.itemgetter(0), coded))
    counts = np.fromiter(map(len, distinct), dtype=np.int64, count=len(coded))
    local = np.frombuffer(b"".join(map(operator.itemgetter(1), coded)), dtype=np.uint32)
    if local.size and (np.maximum.reduceat(local, row_starts) >= counts[rows > 0]).any():  # the largest of a send's
        raise ValueError("a send's coded column points past its values")
    return list(itertools.chain.from_iterable(distinct)), np.repeat(np.cumsum(counts) - counts, rows) + local


def _float_column(sends: list[Packed], name: str):
    """A float sample column of many sends joined: float64, or objects when a send holds something else (which
    the store refuses)."""
    import numpy as np

    if all(name in send.floats for send in sends):
        return np.frombuffer(b"".join(send.floats[name] for send in sends), dtype=np.float64)
    return _objects(list(itertools.chain.from_iterable(send.column(name) for send in sends)))


def _sample_columns(sends: list[Packed]) -> dict:
    import numpy as np

    rows = np.fromiter((send.sample_count for send in sends), dtype=np.int64, count=len(sends))
    row_starts = (np.cumsum(rows) - rows)[rows > 0]
    floats = {name: _float_column(sends, name) for name in FLOAT_COLUMNS}
    coded = {name: _coded_column(list(map(operator.itemgetter(name), map(operator.attrgetter("coded"), sends))),
                                 rows, row_starts)
             for name in SAMPLE_COLUMNS if name not in FLOAT_COLUMNS}
    columns = {name: _objects(_storable_column(values))[index]
               for name, (values, index) in coded.items() if name in ("experiment_id", "arm", "benchmark", "unit")}
    columns.update({name: _integers(coded[name][0])[coded[name][1]] for name in ("block", "pid", "peak_rss")})
    cpus, index = coded["cpus"]
    workers = _objects(_storable_column(list(itertools.chain.from_iterable(send.blocks["worker"] for send in sends))))
    counts = list(itertools.chain.from_iterable(send.sample_counts for send in sends))
    return {**columns, "value": floats["value"], "cpus": DistinctIndexed(index, [list(value) for value in cpus]),
            "worker": np.repeat(workers, counts),  # each sample's, its block's
            "started_at": _local_times(floats["started_at"]), "finished_at": _local_times(floats["finished_at"])}


def _utc_offset(seconds: float) -> float:
    return datetime.datetime.fromtimestamp(seconds).astimezone().utcoffset().total_seconds()


def now() -> datetime.datetime:
    return datetime.datetime.now()


def snapshot_path(path: str | os.PathLike) -> pathlib.Path:
    """Where the store actor keeps the copy of a running campaign's store."""
    path = pathlib.Path(path)
    return path.with_name(path.name + ".snapshot")


def write_snapshot(con: duckdb.DuckDBPyConnection, path: pathlib.Path) -> None:
    """A consistent copy of the database `con` writes, replacing the previous one atomically: a reader that
    opened the old copy keeps reading it."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    (database,) = con.execute("SELECT current_database()").fetchone()
    con.execute("ATTACH ? AS farm_snapshot", [str(partial)])
    try:
        con.execute(f'COPY FROM DATABASE "{database}" TO farm_snapshot')
    finally:
        con.execute("DETACH farm_snapshot")
    os.replace(partial, path)


def open_readonly(path: str | os.PathLike, on_snapshot=None) -> duckdb.DuckDBPyConnection:
    """A read-only connection; StoreError with what to do if the file is missing or busy. A store that a
    running campaign writes is read from its snapshot; `on_snapshot(path, seconds_old)` is told so."""
    path = pathlib.Path(path)
    if not path.exists():
        raise StoreError(f"no store at {path}: run a campaign first or pass --db FILE")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as error:
        if isinstance(error, duckdb.IOException) and "lock" in str(error).lower():
            snapshot = snapshot_path(path)
            if not snapshot.exists():
                raise StoreError(f"{path} is being written by a running campaign that keeps no snapshot yet; "
                                 f"try again in a few seconds") from None
            if on_snapshot:
                on_snapshot(snapshot, time.time() - snapshot.stat().st_mtime)
            return open_readonly(snapshot)
        raise StoreError(f"cannot open {path}: {str(error).splitlines()[0]}") from None
    # Another program's DuckDB file opens fine but has none of the farm's tables: say so here rather than
    # fail in the first query (and keep `farm run --db` from adding the farm's tables to it).
    tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "schema_version" not in tables:
        con.close()
        raise StoreError(f"{path} is a DuckDB file but not a farm store (it has no farm tables); pass the "
                         f"farm.duckdb of a campaign")
    return con


class Store:
    """A read-write store. Not thread-safe; one per process."""

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._saved_parts: dict[str, dict[str, str]] = {}  # campaign -> the state's parts as stored (save_state)
        try:
            self.con = duckdb.connect(str(self.path))
        except duckdb.Error as error:
            raise StoreError(f"cannot open {self.path}: {error}") from None
        # DuckDB checkpoints the write-ahead log into the file whenever it passes 16 MB: with the store's batches
        # that was one checkpoint every 3-4 flushes at a high sample rate, and a third of the insert time (404k
        # against 573k samples/s). A bigger log costs disk space and a longer replay after a crash; the store
        # checkpoints when it closes.
        self.con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        # The rows of one INSERT may be stored in another order than given: a million samples go in a third
        # faster (0.65 s against 1.0 s), threads writing their parts of it as they come. Nothing reads rows in the
        # order they were written (every reader groups, or orders by a column).
        self.con.execute("SET preserve_insertion_order = false")
        self._migrate()

    def _migrate(self) -> None:
        tables = {row[0] for row in self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "schema_version" not in tables:
            self.con.execute(SCHEMA_FILE.read_text())
            self.con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION])
            return
        (version,) = self.con.execute("SELECT max(version) FROM schema_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {version}, newer than this farm's "
                             f"{SCHEMA_VERSION}: upgrade autoresearch-farm")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            self.con.begin()  # a step lands whole or not at all
            self.con.execute(MIGRATIONS[target])
            self.con.execute("INSERT INTO schema_version VALUES (?)", [target])
            self.con.commit()

    def close(self) -> None:
        self.con.close()

    # -- campaign set-up ---------------------------------------------------

    def start_campaign(self, campaign: str, config_json: str, repo: str, base_ref: str, base_commit: str,
                       integrated_branch: str, workers: int) -> None:
        self._execute("INSERT INTO campaigns VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, NULL)",
                      [campaign, config_json, repo, base_ref, base_commit, integrated_branch, workers, now()])

    def finish_campaign(self, campaign: str, status: str) -> None:
        self._execute("UPDATE campaigns SET status = ?, finished_at = ? WHERE id = ?", [status, now(), campaign])

    def resume_campaign(self, campaign: str) -> None:
        self._execute("UPDATE campaigns SET status = 'running', finished_at = NULL WHERE id = ?", [campaign])

    def save_state(self, campaign: str, state: dict) -> dict[str, str]:
        """The coordinator's state (scheduler/campaign.py), for --resume: its parts that changed since the last
        save (a top-level key each, the hypothesis queue's keys each), not the whole (248 KB with 64 workers,
        written every turn). Returns the parts' text, which `apply` keeps once the transaction is committed. A
        lone surrogate in it (text a worker sent) is stored as "?": DuckDB's JSON refuses it, raw or escaped."""
        parts = {**{key: value for key, value in state.items() if key != "hypotheses"},
                 **{f"hypotheses.{key}": value for key, value in state.get("hypotheses", {}).items()}}
        texts = {part: json.dumps(value, ensure_ascii=False).encode("utf-8", "replace").decode("utf-8")
                 for part, value in parts.items()}
        saved = self._saved_parts.get(campaign)
        if saved is None:
            saved = dict(self.con.execute("SELECT part, state FROM campaign_state_parts WHERE campaign = ?",
                                          [campaign]).fetchall())
        changed = [part for part, text in texts.items() if saved.get(part) != text]
        if changed:  # in one statement: a statement costs about a millisecond, whatever it writes
            self.con.execute("INSERT OR REPLACE INTO campaign_state_parts SELECT $1, unnest($2), unnest($3), $4",
                             [campaign, changed, [texts[part] for part in changed], now()])
        gone = sorted(set(saved) - set(texts))
        if gone:
            self.con.execute("DELETE FROM campaign_state_parts WHERE campaign = ? AND list_contains(?, part)",
                             [campaign, gone])
        return texts

    def load_state(self, campaign: str) -> dict | None:
        rows = self.con.execute("SELECT part, state FROM campaign_state_parts WHERE campaign = ?",
                                [campaign]).fetchall()
        if not rows:
            return None
        state: dict = {}
        for part, text in rows:
            if part.startswith("hypotheses."):
                state.setdefault("hypotheses", {})[part[len("hypotheses."):]] = json.loads(text)
            else:
                state[part] = json.loads(text)
        self._saved_parts[campaign] = dict(rows)
        return state

    def apply(self, campaign: str, writes: list[Write], state: dict | None) -> None:
        """The coordinator's writes of one step (farm/storage/store_writes.py) and the state they lead to (None: the
        state stays as it is), in one transaction: a coordinator that dies between two of them leaves the
        store as it was before both."""
        self.con.begin()
        try:
            # A run of writes of one kind that can be written together (apply_many) is one statement per table:
            # a turn with 64 workers finishing was 64 statements of each kind, most of the store's time.
            for kind, run in itertools.groupby(writes, key=type):
                run = list(run)
                if len(run) > 1 and hasattr(kind, "apply_many"):
                    kind.apply_many(self, run)
                else:
                    for write in run:
                        write.apply_to(self)
            saved = self.save_state(campaign, state) if state is not None else None
        except Exception:
            self.con.rollback()
            raise
        self.con.commit()
        if saved is not None:
            self._saved_parts[campaign] = saved  # what the store holds now: the next save writes what differs

    def add_hypotheses(self, campaign: str, hypotheses: Iterable[Hypothesis], agents: dict[str, str]) -> None:
        hypotheses = list(hypotheses)
        for strategy, agent in agents.items():
            count = sum(h.strategy == strategy for h in hypotheses)
            self._execute("INSERT INTO strategies VALUES (?, ?, ?, ?)", [campaign, strategy, agent, count])
        self._insert_rows("hypotheses", [[campaign, h.id, h.strategy, h.category, h.text, h.agent, h.source]
                                         for h in hypotheses])

    def add_planned(self, campaign: str, strategy: str, hypotheses: list[Hypothesis]) -> None:
        """Hypotheses a planner proposed while the campaign runs; its strategy's count follows."""
        self.add_hypotheses(campaign, hypotheses, {})
        self._execute("UPDATE strategies SET hypotheses = hypotheses + ? WHERE campaign = ? AND name = ?",
                      [len(hypotheses), campaign, strategy])

    # -- experiments -------------------------------------------------------

    def start_experiments(self, starts: list[tuple]) -> None:
        """Experiments that start: each (experiment_id, campaign, hypothesis, kind, parent_commit, branch,
        worker, cpus, screened_experiment, retry_of, lineage), in one statement."""
        at = now()
        self._insert_rows(
            "experiments", [[experiment_id, campaign, hypothesis.strategy, hypothesis.id, kind, screened, parent,
                             branch, Status.RUNNING.value, worker, list(cpus), at, retry_of, lineage]
                            for (experiment_id, campaign, hypothesis, kind, parent, branch, worker, cpus, screened,
                                 retry_of, lineage) in starts],
            columns=("id", "campaign", "strategy", "hypothesis_id", "kind", "screened_experiment", "parent_commit",
                     "branch", "status", "worker", "cpus", "started_at", "retry_of", "lineage"))

    def finish_experiments(self, results: list[ExperimentResult]) -> None:
        """Experiments' results: their rows updated and their decisions (and agent runs) added, a statement per
        table."""
        columns = ("id", "status", "reason", "commit", "worker", "cpus", "blocks", "effect", "reworked",
                   "ref_fingerprint", "cand_fingerprint", "started_at", "finished_at", "agent_notes")
        rows = [[r.experiment_id, r.status.value, r.reason, r.commit, r.worker, list(r.cpus), r.blocks, r.effect,
                 r.reworked, r.ref_fingerprint, r.cand_fingerprint, _ts(r.started_at), _ts(r.finished_at), r.notes]
                for r in results]
        values = ", ".join(f'unnest(${i + 1}) AS "{name}"' for i, name in enumerate(columns))
        assigned = ", ".join(f'"{name}" = v."{name}"' for name in columns[1:])
        self.con.execute(f"UPDATE experiments SET {assigned} FROM (SELECT {values}) AS v WHERE experiments.id = v.id",
                         [_storable_column(list(column)) for column in zip(*rows)])
        self._insert_rows("decisions", [[r.experiment_id, d.benchmark, _finite(d.ratio), _finite(d.ci_low),
                                         _finite(d.ci_high), d.verdict.value, d.n_blocks, d.effect_floor, d.note]
                                        for r in results for d in r.decisions + r.counts])
        for result in results:
            if result.agent_runs:
                campaign, strategy = self.con.execute("SELECT campaign, strategy FROM experiments WHERE id = ?",
                                                      [result.experiment_id]).fetchone()
                self._insert_rows("agent_runs", [[campaign, result.experiment_id, r.attempt, strategy, r.cli,
                                                  r.outcome, r.seconds, r.spend.cost_usd, r.spend.input_tokens,
                                                  r.spend.output_tokens, r.spend.turns, r.spend.session_id,
                                                  r.spend.summary, _ts(result.finished_at)]
                                                 for r in result.agent_runs])

    def mark_lost(self, experiment_id: str, reason: str) -> None:
        """An attempt that never ended: its samples and blocks stay, marked by the status; it runs again as a
        new experiment (retry_of), whose decision never sees them."""
        self._execute("UPDATE experiments SET status = 'lost', reason = ?, finished_at = ? WHERE id = ?",
                      [reason, now(), experiment_id])

    def invalidate_experiment(self, experiment_id: str, reason: str) -> None:
        """An artifact voided this verdict (kept as it was, after the new reason); the hypothesis is re-measured."""
        self._execute("UPDATE experiments SET status = 'invalidated', reason = ? || ' (verdict was: ' || status "
                      "|| ', ' || coalesce(reason, '') || ')' WHERE id = ?", [reason, experiment_id])

    def add_block(self, block: Block, samples: list[Sample]) -> int:
        """Insert a measurement block and its samples in one transaction; returns the sample count stored (0: the
        store refused the block, and a `store_error` event says why)."""
        observations = Observations()
        observations.add_block(block, samples)
        refused = self.add_observations("", observations)
        return 0 if refused else len(samples)

    def add_observations(self, campaign: str, sends: Observations | list[Packed],
                         spool_positions: dict[str, int] | None = None) -> list[tuple]:
        """Workers' sends (farm/storage/packed.py: blocks with their samples, events and phases) of `campaign`, in one
        transaction, with how far the spool's logs were read for them (`spool_positions`: farm/storage/spool.py).

        A row the store refuses (ROW_ERRORS: a value beyond its column's type) must not cost the rows sent with
        it, nor fail again at every later write: then each block with its samples, each event and each phase
        is written in a transaction of its own, and each one refused is left out and recorded as an event of
        kind `store_error`. Returns those events (empty: everything was stored)."""
        if isinstance(sends, Observations):
            sends = [pack(sends)]
        try:
            self._write_observations(campaign, sends, spool_positions)
            return []
        except ROW_ERRORS:
            pass  # something in the batch was refused: find it, one block, event or phase at a time
        refused = []

        def refuse(what: str, worker: str | None, experiment_id: str | None, why: str) -> None:
            refused.append((time.time(), storable_text(worker), storable_text(experiment_id), "store_error",
                            storable_text(f"{what} not stored, {why}")))

        for send in sends:
            try:
                parts = send.unpack().each_alone()
            except (ValueError, IndexError, TypeError) as error:
                refuse("a send", None, None, f"its columns do not agree: {error}")
                continue
            for what, worker, experiment_id, alone in parts:
                try:
                    self._write_observations(campaign, [pack(alone)])
                except ROW_ERRORS as error:
                    refuse(what, worker, experiment_id, f"the store refused it: {_first_line(error)}")
        # The spool's positions with the last of these transactions: a store that dies before it reads the rows
        # written one by one again on --resume (only after a refused row, and only up to this batch).
        self._write_observations(campaign, [Packed(events=refused)], spool_positions)
        return refused

    def spool_positions(self, campaign: str) -> dict[str, int]:
        """How far the campaign's spool logs were read for what the store holds."""
        return dict(self.con.execute("SELECT log, bytes_read FROM spool_positions WHERE campaign = ?",
                                     [campaign]).fetchall())

    def _write_observations(self, campaign: str, sends: list[Packed],
                            spool_positions: dict[str, int] | None = None) -> None:
        """add_observations' rows in one transaction, all or none."""
        event_rows = [[campaign, _ts(at), worker, exp, kind, msg]
                      for send in sends for at, worker, exp, kind, msg in send.events]
        phase_rows = [[campaign, worker, exp, phase, _ts(start), _ts(end)]
                      for send in sends for worker, exp, phase, start, end in send.phases]
        self.con.begin()
        try:
            if any(send.sample_counts for send in sends):
                self._insert_columns("blocks", _block_columns(sends))
            if any(send.sample_count for send in sends):
                self._insert_columns("samples", _sample_columns(sends))
            self._insert_rows("events", event_rows)
            self._insert_rows("phases", phase_rows)
            if spool_positions is not None:
                self.con.execute("DELETE FROM spool_positions WHERE campaign = ?", [campaign])
                self._insert_rows("spool_positions", [[campaign, log, at] for log, at in spool_positions.items()])
        except Exception:
            self.con.rollback()
            raise
        self.con.commit()

    def _insert_columns(self, table: str, columns: dict) -> None:
        """Rows given as NumPy arrays (or DistinctIndexed), one per column by name, in one statement that scans
        them in place: ten times faster for many rows than a list parameter per column (_insert_rows), whose values
        DuckDB converts one by one (a million samples: about 1 s against 9 s)."""
        # Registered under a fixed name, replaced by the next batch's: after a refused batch the transaction is
        # aborted and cannot unregister it.
        lookups = [name for name, column in columns.items() if isinstance(column, DistinctIndexed)]
        self.con.register("_columns_in", {name: columns[name].indices if name in lookups else column
                                          for name, column in columns.items()})
        selected = ", ".join(f'${lookups.index(name) + 1}["{name}" + 1]' if name in lookups else f'"{name}"'
                             for name in columns)
        self.con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {selected} FROM _columns_in",
                         [columns[name].values for name in lookups])
        self.con.unregister("_columns_in")

    def _insert_rows(self, table: str, rows: list[list], columns: tuple[str, ...] = ()) -> None:
        """Insert rows in one statement, a list parameter per column (`columns`: the table's, in order, when not
        given): executemany runs one INSERT per row, tens of times slower for a block's samples. Their text is
        made storable (storable_text)."""
        if not rows:
            return
        values = list(zip(*rows))
        unnest = ", ".join(f"unnest(${i + 1})" for i in range(len(values)))
        into = f"{table} ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)})" if columns else table
        self.con.execute(f"INSERT INTO {into} SELECT {unnest}", [_storable_column(list(column)) for column in values])

    def _execute(self, sql: str, params: list) -> None:
        """One write, its text parameters made storable (storable_text)."""
        self.con.execute(sql, [storable_text(p) for p in params])

    def add_merge(self, experiment_id: str, campaign: str, position: int | None, screening_ratio: float | None,
                  remeasured_ratio: float | None, remeasure_experiment_id: str | None, landed: bool,
                  integrated_commit: str | None, reason: str, lineage: str = "integrated") -> None:
        self._execute("INSERT INTO merges VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [experiment_id, campaign, position, screening_ratio, remeasured_ratio,
                       remeasure_experiment_id, landed, integrated_commit, reason, now(), lineage])

    def add_allocations(self, campaign: str, at: float, rung: int, rows: list[tuple]) -> None:
        """Every strategy's share of the workers after a change of the race (scheduler/race.py): (strategy,
        status, workers, started, screens, kept, landed, landed_ratio, reason)."""
        self._insert_rows("allocations", [[campaign, _ts(at), rung, *row] for row in rows])

    def add_artifact(self, campaign: str, experiment_id: str | None, kind: str, benchmark: str | None,
                     reason: str) -> None:
        self._execute("INSERT INTO artifacts VALUES (?, ?, ?, ?, ?, ?)",
                      [campaign, experiment_id, kind, benchmark, reason, now()])

    def add_events(self, campaign: str, events: list[tuple[float, str | None, str | None, str, str]]) -> None:
        """events: (unix time, worker, experiment_id, kind, message); inside the caller's transaction, if any."""
        self._insert_rows("events", [[campaign, _ts(at), worker, exp, kind, msg]
                                     for at, worker, exp, kind, msg in events])

    def query(self, sql: str, params: list | None = None) -> tuple[list[str], list[tuple]]:
        cursor = self.con.execute(sql, params or [])
        return [d[0] for d in cursor.description or []], cursor.fetchall()


def _finite(x: float) -> float | None:
    return None if x is None or x != x else x
