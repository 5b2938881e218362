"""Ingest: follow the shipper's incoming directories and store every line exactly once.

Layout read (docs/shipper.md): ``<proxy dir>/<stream>/<seq>-<dev>-<ino>.log``.
A proxy directory is given by ``--proxy NAME=DIR`` or found under a root
(``--root /srv/logship``: each subdirectory is a proxy, named without its
``logship-`` prefix, read in its ``incoming`` subdirectory when it has one).

Exactly once: each segment's checkpoint (``segments.read_to``, bytes read up to
a line end) is updated in the same transaction as the rows of those bytes and
their rollups, and only if it still holds the value this process read before
(so two ingests on one database cannot both store a piece). A crash at any
moment leaves the database before or after a whole transaction: the next run
resumes at the stored checkpoint.

Only whole lines are read: a growing segment's last line waits for its
newline; a finished segment (one with a later segment beside it) may end
without one, and that last line counts as it is. Lines longer than
``max_line`` bytes are stored as unparsed (their first 65,536 bytes), never
held in memory whole. Symlinks, devices, FIFOs and sockets are never opened:
they are refused, logged once and recorded as a ``refused`` event.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import signal
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.errors import MonitorError
from squidguard_bloom.monitor.parse import (
    ACCESS,
    ACCESS_COLUMNS,
    DECISION_COLUMNS,
    EVENT_COLUMNS,
    HELPER,
    SHIPPER,
    Clock,
    parse_access,
    parse_helper,
    parse_shipper,
    sniff,
)
from squidguard_bloom.monitor.rollup import Rollups

log = logging.getLogger("squidguard_bloom.monitor")

SEGMENT_NAME = re.compile(r"^(\d{8,})-[0-9a-f]+-[0-9a-f]+\.log$")
UNPARSED_KEEP = 65536  # bytes of an unparsed line that are kept
UNPARSED_COLUMNS = ("proxy_id", "stream_id", "segment_id", "at", "length", "received",
                    "reason", "line")
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# Fault injection for the crash tests: "N" makes the process SIGKILL itself inside its Nth
# transaction, after every row is written and before COMMIT.
CRASH_ENV = "SQUIDGUARD_BLOOM_MONITOR_CRASH_AT"


class IngestBusyError(MonitorError):
    """Another ingest holds the database's ingest lock."""


class _Segment:
    __slots__ = ("finished", "id", "name", "read_to", "seq")

    def __init__(self, seg_id: int, name: str, seq: int, read_to: int, finished: bool) -> None:
        self.id = seg_id
        self.name = name
        self.seq = seq
        self.read_to = read_to
        self.finished = finished


class _Stream:
    __slots__ = ("id", "kind", "name", "proxy_id", "segments")

    def __init__(self, stream_id: int, proxy_id: int, name: str, kind: str | None) -> None:
        self.id = stream_id
        self.proxy_id = proxy_id
        self.name = name
        self.kind = kind
        self.segments: dict[str, _Segment] = {}


class _Advance:
    """What one transaction does to one segment's checkpoint."""

    __slots__ = ("finished", "lines", "read_from", "read_to", "segment", "unparsed")

    def __init__(self, segment: _Segment) -> None:
        self.segment = segment
        self.read_from = segment.read_to
        self.read_to = segment.read_to
        self.lines = 0
        self.unparsed = 0
        self.finished = False


class _Batch:
    """Rows and checkpoint moves of one transaction."""

    def __init__(self) -> None:
        self.access: list[tuple] = []
        self.decisions: list[tuple] = []
        self.events: list[tuple] = []
        self.unparsed: list[tuple] = []
        self.advances: dict[int, _Advance] = {}
        self.kinds: dict[int, str] = {}  # stream id -> kind decided in this batch
        self.rollups = Rollups()
        self.received: set[int] = set()  # proxies with lines in this batch
        self.bytes = 0
        self.count = 0

    def advance(self, segment: _Segment) -> _Advance:
        adv = self.advances.get(segment.id)
        if adv is None:
            adv = self.advances[segment.id] = _Advance(segment)
        return adv


class Stats:
    """Totals of one ingest run."""

    def __init__(self) -> None:
        self.lines = 0
        self.unparsed = 0
        self.bytes = 0
        self.transactions = 0
        self.conflicts = 0

    def __repr__(self) -> str:
        return (f"Stats(lines={self.lines}, unparsed={self.unparsed}, bytes={self.bytes}, "
                f"transactions={self.transactions})")


class Ingest:
    """Reads every proxy's segments into the database; see the module docstring."""

    def __init__(self, db: Database, *, roots: list[Path] | None = None,
                 proxies: dict[str, Path] | None = None, clock: Clock | None = None,
                 batch_bytes: int = 8 << 20, max_line: int = 1 << 20,
                 now: Callable[[], float] = time.time) -> None:
        self.db = db
        self.roots = list(roots or [])
        self.explicit = dict(proxies or {})
        self.clock = clock or Clock()
        self.batch_bytes = batch_bytes
        self.max_line = max(max_line, 1024)
        self.chunk = max(batch_bytes // 2, self.max_line + 1)
        self.now = now
        self.stats = Stats()
        self._proxies: dict[str, int] = {}
        self._streams: dict[tuple[int, str], _Stream] = {}
        self._reported: set[str] = set()
        self._crash_at = int(os.environ.get(CRASH_ENV, "0") or 0)
        self._load()

    # -- state -------------------------------------------------------------------------

    def _load(self) -> None:
        self._proxies = {name: pid for pid, name in self.db.execute(
            "SELECT id, name FROM proxies")}
        self._streams = {}
        by_id: dict[int, _Stream] = {}
        for sid, proxy_id, name, kind in self.db.execute(
                "SELECT id, proxy_id, name, kind FROM streams"):
            by_id[sid] = self._streams[(proxy_id, name)] = _Stream(sid, proxy_id, name, kind)
        for seg_id, sid, name, seq, read_to, finished in self.db.execute(
                "SELECT id, stream_id, name, seq, read_to, finished FROM segments"):
            by_id[sid].segments[name] = _Segment(seg_id, name, seq, read_to, bool(finished))

    def _proxy(self, name: str) -> int:
        pid = self._proxies.get(name)
        if pid is None:
            with self.db.transaction():
                self.db.execute("INSERT INTO proxies (name, first_seen) VALUES (?, ?) "
                                "ON CONFLICT (name) DO NOTHING", (name, self.now()))
                pid = self.db.scalar("SELECT id FROM proxies WHERE name = ?", (name,))
            self._proxies[name] = pid
            log.info("new proxy %s", name)
        return pid

    def _stream(self, proxy_id: int, name: str) -> _Stream:
        st = self._streams.get((proxy_id, name))
        if st is None:
            with self.db.transaction():
                self.db.execute("INSERT INTO streams (proxy_id, name) VALUES (?, ?) "
                                "ON CONFLICT (proxy_id, name) DO NOTHING", (proxy_id, name))
                sid, kind = self.db.execute("SELECT id, kind FROM streams WHERE proxy_id = ? "
                                            "AND name = ?", (proxy_id, name))[0]
            st = self._streams[(proxy_id, name)] = _Stream(sid, proxy_id, name, kind)
        return st

    def _segment(self, st: _Stream, name: str, seq: int) -> _Segment:
        seg = st.segments.get(name)
        if seg is None:
            with self.db.transaction():
                self.db.execute("INSERT INTO segments (stream_id, name, seq, updated) "
                                "VALUES (?, ?, ?, ?) ON CONFLICT (stream_id, name) DO NOTHING",
                                (st.id, name, seq, self.now()))
                seg_id, read_to, finished = self.db.execute(
                    "SELECT id, read_to, finished FROM segments WHERE stream_id = ? AND name = ?",
                    (st.id, name))[0]
            seg = st.segments[name] = _Segment(seg_id, name, seq, read_to, bool(finished))
        return seg

    # -- discovery -----------------------------------------------------------------------

    def sources(self) -> list[tuple[str, Path]]:
        """(proxy name, directory of its streams) for every proxy, explicit ones first."""
        found = dict(self.explicit)
        for root in self.roots:
            try:
                entries = sorted(os.scandir(root), key=lambda e: e.name)
            except OSError as exc:
                self._refuse(None, str(root), f"cannot list it: {exc.strerror}")
                continue
            for entry in entries:
                if not self._is_real_dir(None, entry):
                    continue
                name = entry.name.removeprefix("logship-")
                path = Path(entry.path)
                incoming = path / "incoming"
                try:
                    if stat.S_ISDIR(incoming.lstat().st_mode):
                        path = incoming
                except OSError:
                    pass
                found.setdefault(name, path)
        return sorted(found.items())

    def _is_real_dir(self, proxy_id: int | None, entry: os.DirEntry[str]) -> bool:
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError:
            return False
        if stat.S_ISDIR(mode):
            return True
        self._refuse(proxy_id, entry.path, _what(mode) + " where a directory was expected")
        return False

    def _refuse(self, proxy_id: int | None, path: str, why: str) -> None:
        key = f"{path}: {why}"
        if key in self._reported:
            return
        self._reported.add(key)
        log.warning("refused %s: %s", path, why)
        if proxy_id is not None:
            with self.db.transaction():
                self.db.insert_rows("events", EVENT_COLUMNS, [
                    (proxy_id, None, self.now(), "monitor", None, "WARN", "refused",
                     f"refused {path}: {why}")])

    def _work(self) -> list[tuple[_Stream, _Segment, str, bool]]:
        """(stream, segment, path, finished) for every segment with something left to read."""
        work = []
        for proxy_name, pdir in self.sources():
            try:
                entries = sorted(os.scandir(pdir), key=lambda e: e.name)
            except OSError as exc:
                if self._proxies.get(proxy_name) is not None or pdir.exists():
                    self._refuse(None, str(pdir), f"cannot list it: {exc.strerror}")
                continue
            proxy_id = self._proxy(proxy_name)
            for entry in entries:
                if not self._is_real_dir(proxy_id, entry):
                    continue
                st = self._stream(proxy_id, entry.name)
                segs = []
                try:
                    files = list(os.scandir(entry.path))
                except OSError as exc:
                    self._refuse(proxy_id, entry.path, f"cannot list it: {exc.strerror}")
                    continue
                for f in files:
                    m = SEGMENT_NAME.match(f.name)
                    if m is None:
                        if f.name not in st.segments:
                            self._refuse(proxy_id, f.path, "not a segment name "
                                         "(SEQ-DEV-INODE.log, see docs/shipper.md)")
                        continue
                    try:
                        mode = f.stat(follow_symlinks=False).st_mode
                    except OSError:
                        continue
                    if not stat.S_ISREG(mode):
                        self._refuse(proxy_id, f.path, _what(mode) + ", not a regular file")
                        continue
                    segs.append((int(m.group(1)), f.name, f.path))
                segs.sort()
                for k, (seq, name, path) in enumerate(segs):
                    seg = self._segment(st, name, seq)
                    if not seg.finished:
                        work.append((st, seg, path, k < len(segs) - 1))
        return work

    # -- reading -------------------------------------------------------------------------

    def run_pass(self) -> int:
        """Read everything complete now (several transactions); the lines stored, or -1
        when another ingest moved a checkpoint first (state reloaded: pass again)."""
        before = self.stats.lines + self.stats.unparsed
        batch = _Batch()
        for st, seg, path, finished in self._work():
            read = self._read_segment(st, seg, path, finished, batch)
            if read is None:
                return -1
            batch = read
        if not self._commit(batch):
            return -1
        return self.stats.lines + self.stats.unparsed - before

    def _read_segment(self, st: _Stream, seg: _Segment, path: str, finished: bool,
                      batch: _Batch) -> _Batch | None:
        try:
            fd = os.open(path, OPEN_FLAGS)
        except OSError as exc:
            self._refuse(st.proxy_id, path, f"cannot open it: {exc.strerror}")
            return batch
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                self._refuse(st.proxy_id, path, _what(info.st_mode) + ", not a regular file")
                return batch
            size = info.st_size
            adv = batch.advance(seg)
            if size < adv.read_to:
                self._refuse(st.proxy_id, path, f"is {size} bytes, shorter than the "
                             f"{adv.read_to} already ingested; waiting for the shipper to "
                             "re-send the rest")
                return batch
            while adv.read_to < size:
                data = os.pread(fd, min(self.chunk, size - adv.read_to), adv.read_to)
                if not data:
                    break
                end = data.rfind(b"\n") + 1
                if end == 0:  # no line end in this chunk
                    if len(data) > self.max_line:
                        if not self._long_line(fd, st, seg, adv, size, finished, batch):
                            break
                    elif finished and adv.read_to + len(data) == size:
                        self._take(st, seg, adv, data, batch, tail=True)
                    else:
                        break  # a partial last line waits for its newline
                else:
                    tail = finished and adv.read_to + len(data) == size and end < len(data)
                    self._take(st, seg, adv, data if tail else data[:end], batch, tail=tail)
                if batch.bytes >= self.batch_bytes:
                    if not self._commit(batch):
                        return None
                    batch = _Batch()
                    adv = batch.advance(seg)
            if finished and adv.read_to >= size:
                adv.finished = True
        finally:
            os.close(fd)
        return batch

    def _long_line(self, fd: int, st: _Stream, seg: _Segment, adv: _Advance, size: int,
                   finished: bool, batch: _Batch) -> bool:
        """A line that does not fit in max_line bytes, at adv.read_to: stored as unparsed
        (its head only) once its newline is there; False while it is still growing."""
        start = pos = adv.read_to
        end = -1
        while pos < size:
            block = os.pread(fd, min(1 << 20, size - pos), pos)
            if not block:
                break
            nl = block.find(b"\n")
            if nl >= 0:
                end = pos + nl
                break
            pos += len(block)
        if end < 0:
            if not finished:
                return False
            end = size  # the last line of a finished segment needs no newline
        head = os.pread(fd, min(UNPARSED_KEEP, end - start), start)
        self._bad_line(st, seg, batch, start, end - start, head,
                       f"line longer than {self.max_line} bytes")
        adv.read_to = min(end + 1, size)
        adv.lines += 1
        adv.unparsed += 1
        batch.bytes += adv.read_to - start
        return True

    def _bad_line(self, st: _Stream, seg: _Segment, batch: _Batch, at: int, length: int,
                  head: bytes, reason: str) -> None:
        now = self.now()
        batch.unparsed.append((st.proxy_id, st.id, seg.id, at, length, now, reason,
                               bytes(head[:UNPARSED_KEEP])))
        batch.rollups.count_lines(now, st.proxy_id, st.kind or "unknown", 0, 1)
        batch.received.add(st.proxy_id)

    def _take(self, st: _Stream, seg: _Segment, adv: _Advance, data: bytes, batch: _Batch,
              tail: bool) -> None:
        """Parse data (whole lines; with tail, the last one has no newline) into batch."""
        text = data.decode("utf-8", "replace")
        if "\x00" in text:  # PostgreSQL text cannot hold NUL; the raw bytes stay in unparsed
            text = text.replace("\x00", "\ufffd")
        lines = text.split("\n")
        if not tail:
            lines.pop()  # the empty piece after the last newline
        if st.kind is None:
            for line in lines[:20]:
                kind = sniff(line, st.name)
                if kind is not None:
                    st.kind = batch.kinds[st.id] = kind
                    break
        bad: list[tuple[int, str]] = []
        kind = st.kind
        rollups = batch.rollups
        if kind == ACCESS:
            first = len(batch.access)
            parse_access(lines, st.proxy_id, batch.access, bad,
                         self.db.reserve_ids("access", len(lines)))
            rollups.add_access(batch.access, first)
        elif kind == HELPER:
            first, first_event = len(batch.decisions), len(batch.events)
            parse_helper(lines, st.proxy_id, st.id, self.clock, batch.decisions, batch.events,
                         bad, self.db.reserve_ids("decisions", len(lines)))
            rollups.add_decisions(batch.decisions, first)
            rollups.add_events(batch.events, HELPER, first_event)
        elif kind == SHIPPER:
            first_event = len(batch.events)
            parse_shipper(lines, st.proxy_id, st.id, self.clock, batch.events, bad)
            rollups.add_events(batch.events, SHIPPER, first_event)
        else:
            bad = [(i, "not a known log format (Squid native access.log, squidGuard-format, "
                    "shipper log)") for i in range(len(lines))]
        if bad:
            raw = data.split(b"\n")
            offsets = [adv.read_to]
            for piece in raw[:-1]:
                offsets.append(offsets[-1] + len(piece) + 1)
            for i, reason in bad:
                raw_line = raw[i]
                self._bad_line(st, seg, batch, offsets[i], len(raw_line), raw_line, reason)
        n = len(lines)
        adv.lines += n
        adv.unparsed += len(bad)
        adv.read_to += len(data)
        batch.bytes += len(data)
        batch.count += n
        if n > len(bad):
            batch.received.add(st.proxy_id)

    # -- writing -------------------------------------------------------------------------

    def _commit(self, batch: _Batch | None) -> bool:
        """Store batch in one transaction; False if another ingest got there first."""
        if batch is None:
            return False
        moved = [a for a in batch.advances.values()
                 if a.read_to != a.read_from or a.finished != a.segment.finished]
        if not moved and not batch.kinds:
            return True
        db = self.db
        now = self.now()
        try:
            with db.transaction():
                for adv in moved:
                    if not db.execute(
                            "UPDATE segments SET read_to = ?, lines = lines + ?, "
                            "unparsed = unparsed + ?, finished = ?, updated = ? "
                            "WHERE id = ? AND read_to = ? RETURNING id",
                            (adv.read_to, adv.lines, adv.unparsed, int(adv.finished), now,
                             adv.segment.id, adv.read_from)):
                        raise _Conflict(f"segment {adv.segment.name}")
                for sid, kind in batch.kinds.items():
                    db.execute("UPDATE streams SET kind = ? WHERE id = ?", (kind, sid))
                for table, rows in (("access", batch.access), ("decisions", batch.decisions)):
                    # ids come from reserve_ids; another writer's rows above them: start again
                    if rows and db.scalar(f"SELECT coalesce(max(id), 0) FROM {table}"
                                          ) >= rows[0][0]:
                        raise _Conflict(f"the {table} table's ids")
                db.insert_rows("access", ACCESS_COLUMNS, batch.access)
                db.insert_rows("decisions", DECISION_COLUMNS, batch.decisions)
                batch.rollups.postings().write(db)
                db.insert_rows("events", EVENT_COLUMNS, batch.events)
                db.insert_rows("unparsed", UNPARSED_COLUMNS, batch.unparsed)
                batch.rollups.write(db)
                newest = batch.rollups.newest
                for proxy_id in batch.received - set(newest):
                    db.execute("UPDATE proxies SET last_received = ? WHERE id = ?",
                               (now, proxy_id))
                for proxy_id, ts in newest.items():
                    db.execute(
                        "UPDATE proxies SET last_received = ?, last_line_ts = CASE WHEN "
                        "last_line_ts IS NULL OR last_line_ts < ? THEN ? ELSE last_line_ts END "
                        "WHERE id = ?", (now, ts, ts, proxy_id))
                if self._crash_at and self.stats.transactions + 1 >= self._crash_at:
                    os.kill(os.getpid(), signal.SIGKILL)
        except _Conflict as exc:
            self.stats.conflicts += 1
            log.warning("%s moved on in another ingest's transaction; reloading the checkpoints "
                        "(is a second ingest running on this database?)", exc)
            self._load()
            return False
        for adv in moved:
            adv.segment.read_to = adv.read_to
            adv.segment.finished = adv.finished
            self.stats.lines += adv.lines - adv.unparsed
            self.stats.unparsed += adv.unparsed
            self.stats.bytes += adv.read_to - adv.read_from
        self.stats.transactions += 1
        return True

    # -- loops ---------------------------------------------------------------------------

    def run(self, *, once: bool = False, poll: float = 0.5,
            stop: threading.Event | None = None,
            every_pass: Callable[[], None] | None = None) -> Stats:
        """Ingest until stop is set (or, with once, until nothing is left)."""
        stop = stop or threading.Event()
        # Batches allocate a tuple per line and no cycles: collect rarely (5-10 % faster).
        gc.set_threshold(100000, 50, 100)
        while not stop.is_set():
            stored = self.run_pass()
            if every_pass is not None:
                every_pass()
            if once and stored == 0:
                break
            if stored == 0:
                stop.wait(poll)
        return self.stats


class _Conflict(Exception):
    pass


def _what(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "a special file"
