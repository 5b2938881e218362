"""A batch: the rows and checkpoint moves of one ingest transaction, parsed and stored.

:class:`BatchStore` parses whole lines of segments into a :class:`Batch` and
stores it in one transaction with the segments' checkpoints (see
monitor/ingest.py for exactly-once). It runs in the ingest process, or in
the worker processes (monitor/workers.py), which get batches holding the raw
lines (:class:`Piece`) from the ingest process and parse and store them there.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from squidguard_bloom.monitor.db import POSTGRESQL, Database
from squidguard_bloom.monitor.errors import MonitorError
from squidguard_bloom.monitor.parse import (
    ACCESS,
    ACCESS_COLUMNS,
    DECISION_COLUMNS,
    EVENT_COLUMNS,
    HELPER,
    SHIPPER,
    Clock,
    parse_access_data,
    parse_helper,
    parse_shipper,
    split_lines,
)
from squidguard_bloom.monitor.rollup import Rollups
from squidguard_bloom.records import Record

UNPARSED_KEEP = 65536  # bytes of an unparsed line that are kept
UNPARSED_COLUMNS = ("proxy_id", "stream_id", "segment_id", "at", "length", "received",
                    "reason", "line")


class Segment:
    """A segment file of a stream and its checkpoint."""

    __slots__ = ("finished", "id", "name", "queued_to", "read_to", "seq")

    def __init__(self, seg_id: int, name: str, seq: int, read_to: int, finished: bool) -> None:
        self.id = seg_id
        self.name = name
        self.seq = seq
        self.read_to = read_to  # committed
        self.queued_to = read_to  # read into batches so far (committed or handed to a worker)
        self.finished = finished


class Advance:
    """What one transaction does to one segment's checkpoint."""

    __slots__ = ("finished", "lines", "read_from", "read_to", "segment", "unparsed")

    def __init__(self, segment: Segment) -> None:
        self.segment = segment
        self.read_from = segment.queued_to
        self.read_to = segment.queued_to
        self.lines = 0
        self.unparsed = 0
        self.finished = False


class Piece(Record):
    """Whole lines of one segment (at: their offset in it; with tail, the last has no newline;
    their rows get ids from first_id on), to be parsed into a batch."""

    proxy_id: int
    stream_id: int
    kind: str | None
    segment_id: int
    at: int
    data: bytes
    tail: bool
    first_id: int


class Batch:
    """Rows and checkpoint moves of one transaction (with workers: the pieces to parse)."""

    def __init__(self) -> None:
        self.pieces: list[Piece] = []
        self.now: float | None = None  # when it was read, if a worker stores it (else: now)
        self.access: list[tuple] = []
        self.decisions: list[tuple] = []
        self.events: list[tuple] = []
        self.unparsed: list[tuple] = []
        self.advances: dict[int, Advance] = {}
        self.kinds: dict[int, str] = {}  # stream id -> kind decided in this batch
        self.rollups = Rollups()
        self.received: set[int] = set()  # proxies with lines in this batch
        self.bytes = 0
        self.count = 0

    def advance(self, segment: Segment) -> Advance:
        """segment's advance in this batch (from where the batches before left it)."""
        adv = self.advances.get(segment.id)
        if adv is None:
            adv = self.advances[segment.id] = Advance(segment)
        return adv

    def moved(self) -> list[Advance]:
        """The advances that change a checkpoint."""
        return [a for a in self.advances.values()
                if a.read_to != a.read_from or a.finished != a.segment.finished]


# What became of a batch a worker stored: (its number, OK / MOVED / FAILED, lines stored,
# of them unparsed, the reason when not OK).
Outcome = tuple[int, str, int, int, str]
OK, MOVED, FAILED = "ok", "moved", "failed"


class CheckpointMoved(MonitorError):
    """A segment's checkpoint, or a table's ids, moved on in another writer's transaction."""


class BatchStore:
    """Parses whole lines into a batch and stores batches, one transaction each: the part of
    ingest that also runs in the worker processes (monitor/workers.py)."""

    def __init__(self, db: Database, clock: Clock, *, now: Callable[[], float] = time.time,
                 crash_at: int = 0, kill_parent: bool = False) -> None:
        self.db = db
        self.clock = clock
        self.now = now
        self.crash_at = crash_at
        self.kill_parent = kill_parent

    def bad_line(self, src: Piece, batch: Batch, at: int, length: int, head: bytes,
                 reason: str) -> None:
        """Keep a line that does not parse (its head), counted in its minute."""
        now = batch.now or self.now()
        batch.unparsed.append((src.proxy_id, src.stream_id, src.segment_id, at, length, now,
                               reason, bytes(head[:UNPARSED_KEEP])))
        batch.rollups.count_lines(now, src.proxy_id, src.kind or "unknown", 0, 1)
        batch.received.add(src.proxy_id)

    def _parse_next(self, batch: Batch) -> bool:
        """Parse batch's next piece into its rows; False when none is left."""
        if not batch.pieces:
            return False
        piece = batch.pieces.pop(0)
        self._parse(piece, batch.advances[piece.segment_id], batch)
        return True

    def _parse(self, piece: Piece, adv: Advance, batch: Batch) -> None:
        """Parse a piece's lines into batch, counting them on its segment's advance."""
        data = piece.data
        bad: list[tuple[int, str]] = []
        kind = piece.kind
        rollups = batch.rollups
        if kind == ACCESS:
            first = len(batch.access)
            n = parse_access_data(data, piece.tail, piece.proxy_id, batch.access, bad,
                                  piece.first_id)
            rollups.add_access(batch.access, first)
        else:
            lines = split_lines(data, piece.tail)
            n = len(lines)
            if kind == HELPER:
                first, first_event = len(batch.decisions), len(batch.events)
                parse_helper(lines, piece.proxy_id, piece.stream_id, self.clock,
                             batch.decisions, batch.events, bad, piece.first_id)
                rollups.add_decisions(batch.decisions, first)
                rollups.add_events(batch.events, HELPER, first_event)
            elif kind == SHIPPER:
                first_event = len(batch.events)
                parse_shipper(lines, piece.proxy_id, piece.stream_id, self.clock, batch.events,
                              bad)
                rollups.add_events(batch.events, SHIPPER, first_event)
            else:
                bad = [(i, "not a known log format (Squid native access.log, squidGuard-format, "
                        "shipper log)") for i in range(n)]
        if bad:
            raw = data.split(b"\n")
            offsets = [piece.at]
            for chunk in raw[:-1]:
                offsets.append(offsets[-1] + len(chunk) + 1)
            for i, reason in bad:
                raw_line = raw[i]
                self.bad_line(piece, batch, offsets[i], len(raw_line), raw_line, reason)
        adv.lines += n
        adv.unparsed += len(bad)
        batch.count += n
        if n > len(bad):
            batch.received.add(piece.proxy_id)

    def store(self, batch: Batch, number: int,
              wait_turn: Callable[[], None] | None = None) -> tuple[int, int]:
        """Parse batch's pieces and store it all in one transaction with its checkpoint
        moves; (lines, of them unparsed) stored. number: its place in this run (for the
        crash tests). CheckpointMoved if another writer moved a checkpoint or a table's ids
        first: nothing of the batch is stored then.

        wait_turn (workers): returns once the batches before this one are settled; called
        before any checkpoint is touched. On PostgreSQL each piece's access and decisions
        rows are copied as soon as it is parsed, before the turn (raw rows take no lock
        another batch waits for, and their ids are given in read order), so a batch's memory
        is one piece's rows however large the batch; its events and unparsed lines take
        their ids as they are inserted, so they wait for the turn (ids in read order).
        SQLite has one writer at a time: there the batch is parsed, then waits for its
        turn, then is written."""
        moved = batch.moved()
        db = self.db
        now = batch.now or self.now()
        if db.dialect == POSTGRESQL:
            with db.transaction():
                while self._parse_next(batch):
                    self._write_rows(batch)
                batch.rollups.postings().write(db)
                if wait_turn is not None:
                    wait_turn()
                self._write_logged(batch)
                self._write_state(batch, moved, number, now)
        else:
            while self._parse_next(batch):
                pass
            postings = batch.rollups.postings()  # built before the turn: Python work only
            if wait_turn is not None:
                wait_turn()
            with db.transaction():
                self._write_rows(batch)
                postings.write(db)
                self._write_logged(batch)
                self._write_state(batch, moved, number, now)
        unparsed = sum(a.unparsed for a in moved)
        return sum(a.lines for a in moved) - unparsed, unparsed

    def _write_rows(self, batch: Batch) -> None:
        """Store the access and decisions rows parsed so far (ids given by the coordinator)
        and let them go."""
        db = self.db
        for table, rows in (("access", batch.access), ("decisions", batch.decisions)):
            # ids come from reserve_ids; another writer's rows above them: start again
            if (rows and not db.ids_unique_across_connections
                    and db.scalar(f"SELECT coalesce(max(id), 0) FROM {table}") >= rows[0][0]):
                raise CheckpointMoved(f"the {table} table's ids")
        for table, columns, rows in (("access", ACCESS_COLUMNS, batch.access),
                                     ("decisions", DECISION_COLUMNS, batch.decisions)):
            db.insert_rows(table, columns, rows)
            rows.clear()

    def _write_logged(self, batch: Batch) -> None:
        """Store the batch's events and unparsed lines, in read order (their ids are given
        as they are inserted)."""
        if len(batch.unparsed) > 1:
            # the coordinator's too-long lines came first, the lines the parsers refused after
            # them: segments in the order read, then by offset
            order = {seg_id: i for i, seg_id in enumerate(batch.advances)}
            batch.unparsed.sort(key=lambda row: (order[row[2]], row[3]))
        self.db.insert_rows("events", EVENT_COLUMNS, batch.events)
        self.db.insert_rows("unparsed", UNPARSED_COLUMNS, batch.unparsed)
        batch.events.clear()
        batch.unparsed.clear()

    def _write_state(self, batch: Batch, moved: list[Advance], number: int, now: float
                     ) -> None:
        """The checkpoint moves, stream kinds, rollups and proxies' freshness of batch."""
        db = self.db
        for adv in moved:
            if not db.execute(
                    "UPDATE segments SET read_to = ?, lines = lines + ?, "
                    "unparsed = unparsed + ?, finished = ?, updated = ? "
                    "WHERE id = ? AND read_to = ? RETURNING id",
                    (adv.read_to, adv.lines, adv.unparsed, int(adv.finished), now,
                     adv.segment.id, adv.read_from)):
                raise CheckpointMoved(f"segment {adv.segment.name}")
        for sid, kind in batch.kinds.items():
            db.execute("UPDATE streams SET kind = ? WHERE id = ?", (kind, sid))
        batch.rollups.write(db)
        newest = batch.rollups.newest
        for proxy_id in batch.received - set(newest):
            db.execute("UPDATE proxies SET last_received = ? WHERE id = ?", (now, proxy_id))
        for proxy_id, ts in newest.items():
            db.execute(
                "UPDATE proxies SET last_received = ?, last_line_ts = CASE WHEN "
                "last_line_ts IS NULL OR last_line_ts < ? THEN ? ELSE last_line_ts END "
                "WHERE id = ?", (now, ts, ts, proxy_id))
        if self.crash_at and number >= self.crash_at:
            if self.kill_parent:  # a worker: the whole ingest dies, as with kill -9
                os.kill(os.getppid(), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
