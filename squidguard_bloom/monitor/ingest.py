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
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from squidguard_bloom.monitor.batch import (
    MOVED,
    OK,
    UNPARSED_KEEP,
    Advance,
    Batch,
    BatchStore,
    CheckpointMoved,
    Outcome,
    Piece,
    Segment,
)
from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.errors import MonitorError
from squidguard_bloom.monitor.parse import ACCESS, EVENT_COLUMNS, HELPER, Clock, sniff
from squidguard_bloom.monitor.workers import WorkerPool

log = logging.getLogger("squidguard_bloom.monitor")

SEGMENT_NAME = re.compile(r"^(\d{8,})-[0-9a-f]+-[0-9a-f]+\.log$")
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# Fault injection for the crash tests: "N" makes the process SIGKILL itself inside its Nth
# transaction, after every row is written and before COMMIT.
CRASH_ENV = "SQUIDGUARD_BLOOM_MONITOR_CRASH_AT"


class IngestBusyError(MonitorError):
    """Another ingest holds the database's ingest lock."""


class _Stream:
    __slots__ = ("id", "kind", "name", "proxy_id", "segments")

    def __init__(self, stream_id: int, proxy_id: int, name: str, kind: str | None) -> None:
        self.id = stream_id
        self.proxy_id = proxy_id
        self.name = name
        self.kind = kind
        self.segments: dict[str, Segment] = {}


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
                 now: Callable[[], float] = time.time, workers: int = 1) -> None:
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
        crash_at = int(os.environ.get(CRASH_ENV, "0") or 0)
        self.store = BatchStore(db, self.clock, now=now, crash_at=crash_at)
        # workers > 1: that many processes parse and store the batches this one reads
        # (monitor/workers.py); started with the first batch
        self.workers = workers
        self._pool: WorkerPool | None = None
        self._handed: dict[int, list[Advance]] = {}  # batch number -> its checkpoint moves
        self._failure: str | None = None  # a handed-out batch's checkpoint had moved
        self._error: str | None = None  # a worker could not store a batch
        self._stop = threading.Event()  # set: run_pass reads no further (see run)
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
            by_id[sid].segments[name] = Segment(seg_id, name, seq, read_to, bool(finished))

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

    def _segment(self, st: _Stream, name: str, seq: int) -> Segment:
        seg = st.segments.get(name)
        if seg is None:
            with self.db.transaction():
                self.db.execute("INSERT INTO segments (stream_id, name, seq, updated) "
                                "VALUES (?, ?, ?, ?) ON CONFLICT (stream_id, name) DO NOTHING",
                                (st.id, name, seq, self.now()))
                seg_id, read_to, finished = self.db.execute(
                    "SELECT id, read_to, finished FROM segments WHERE stream_id = ? AND name = ?",
                    (st.id, name))[0]
            seg = st.segments[name] = Segment(seg_id, name, seq, read_to, bool(finished))
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

    def _work(self) -> list[tuple[_Stream, Segment, str, bool]]:
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
        if self.workers > 1 and (self._pool is None or self._pool.closed):
            self._pool = WorkerPool(self.db.url, self.clock.tz, self.workers,
                                    crash_at=self.store.crash_at)
        batch: Batch | None = Batch()
        try:
            for st, seg, path, finished in self._work():
                if self._stop.is_set():  # stopping: what is left waits for the next start
                    break
                assert batch is not None
                batch = self._read_segment(st, seg, path, finished, batch)
                if batch is None:
                    break
            ok = batch is not None and self._flush(batch)
        except BaseException:
            if self._pool is not None:  # settle what was handed out, then start from the db
                try:
                    self._settle(self._pool.collect(keep=0))
                finally:
                    self._error = self._failure = None
                    self._handed.clear()
                    self._load()
            raise
        if self._pool is not None:  # every batch handed out is settled before the pass ends
            self._settle(self._pool.collect(keep=0))
            ok = self._after_pool() and ok
        if not ok:
            return -1
        return self.stats.lines + self.stats.unparsed - before

    def _read_segment(self, st: _Stream, seg: Segment, path: str, finished: bool,
                      batch: Batch) -> Batch | None:
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
            while adv.read_to < size and not self._stop.is_set():
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
                    if not self._flush(batch):
                        return None
                    batch = Batch()
                    adv = batch.advance(seg)
            if finished and adv.read_to >= size:
                adv.finished = True
        finally:
            os.close(fd)
        return batch

    def _long_line(self, fd: int, st: _Stream, seg: Segment, adv: Advance, size: int,
                   finished: bool, batch: Batch) -> bool:
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
        where = Piece(st.proxy_id, st.id, st.kind, seg.id, start, b"", False, 0)
        self.store.bad_line(where, batch, start, end - start, head,
                            f"line longer than {self.max_line} bytes")
        adv.read_to = min(end + 1, size)
        adv.lines += 1
        adv.unparsed += 1
        batch.bytes += adv.read_to - start
        return True

    def _take(self, st: _Stream, seg: Segment, adv: Advance, data: bytes, batch: Batch,
              tail: bool) -> None:
        """Whole lines of seg (with tail, the last one has no newline) into batch, as a piece
        that is parsed when the batch is stored (here, or in a worker)."""
        if st.kind is None:
            for raw in data.split(b"\n", 20)[:20]:
                kind = sniff(raw.decode("utf-8", "replace"), st.name)
                if kind is not None:
                    st.kind = batch.kinds[st.id] = kind
                    break
        table = _ID_TABLES.get(st.kind or "")
        first_id = 0
        if table is not None:  # ids of its rows, given here so that they rise with the batches
            first_id = self.db.reserve_ids(table, data.count(b"\n") + (1 if tail else 0))
        batch.pieces.append(Piece(st.proxy_id, st.id, st.kind, seg.id, adv.read_to, data, tail,
                                  first_id))
        adv.read_to += len(data)
        batch.bytes += len(data)

    # -- writing -------------------------------------------------------------------------

    def _flush(self, batch: Batch) -> bool:
        """Store batch (with workers: hand it to one); False if another ingest moved a
        checkpoint first (with workers: if a batch handed out earlier failed)."""
        moved = batch.moved()
        if not moved and not batch.kinds:
            return True
        if self._pool is None:
            try:
                lines, unparsed = self.store.store(batch, self.stats.transactions + 1)
            except CheckpointMoved as exc:
                self._conflict(str(exc))
                return False
            except Exception as exc:  # as a worker reports it (workers.py), and the CLI says
                raise MonitorError(_cannot_store(f"{type(exc).__name__}: {exc}")) from exc
            self._committed(moved, lines, unparsed)
            return True
        for adv in moved:
            adv.segment.queued_to = adv.read_to
        batch.now = self.now()
        number = self._pool.submit(batch)
        self._handed[number] = moved
        self._settle(self._pool.collect(keep=self._pool.size))
        return self._failure is None and self._error is None

    def _committed(self, moved: list[Advance], lines: int, unparsed: int) -> None:
        for adv in moved:
            seg = adv.segment
            seg.read_to = adv.read_to
            if self._pool is None:
                seg.queued_to = adv.read_to
            seg.finished = adv.finished
            self.stats.bytes += adv.read_to - adv.read_from
        self.stats.lines += lines
        self.stats.unparsed += unparsed
        self.stats.transactions += 1

    def _conflict(self, what: str) -> None:
        self.stats.conflicts += 1
        log.warning("%s moved on in another ingest's transaction; reloading the checkpoints "
                    "(is a second ingest running on this database?)", what)
        self._load()

    def _settle(self, outcomes: list[Outcome]) -> None:
        """Take in what the workers report about the batches handed to them."""
        if outcomes:
            self.db.checkpoint()  # the workers leave it to this process (workers.py)
        for number, status, lines, unparsed, message in outcomes:
            moved = self._handed.pop(number)
            if status == OK:
                self._committed(moved, lines, unparsed)
            elif status == MOVED:
                self._failure = self._failure or message
            else:
                self._error = self._error or message

    def _after_pool(self) -> bool:
        """After a pass with workers (all batches settled): raise a worker's error, reload
        after a conflict; whether the pass went through."""
        error, failure = self._error, self._failure
        self._error = self._failure = None
        if error is not None:
            self._load()
            raise MonitorError(_cannot_store(error, "an ingest worker"))
        if failure is not None:
            self._conflict(failure)
            return False
        return True

    # -- loops ---------------------------------------------------------------------------

    def run(self, *, once: bool = False, poll: float = 0.5,
            stop: threading.Event | None = None,
            every_pass: Callable[[], None] | None = None) -> Stats:
        """Ingest until stop is set (or, with once, until nothing is left)."""
        stop = self._stop = stop or threading.Event()
        # Batches allocate a tuple per line and no cycles: collect rarely (5-10 % faster).
        gc.set_threshold(100000, 50, 100)
        try:
            while not stop.is_set():
                stored = self.run_pass()
                if every_pass is not None:
                    every_pass()
                if once and stored == 0:
                    break
                if stored == 0:
                    stop.wait(poll)
        finally:
            self.close()
        return self.stats

    def close(self) -> None:
        """Stop the worker processes, if any (the database stays open: it is the caller's)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None


_ID_TABLES = {ACCESS: "access", HELPER: "decisions"}


def _cannot_store(error: str, who: str = "ingest") -> str:
    return (f"{who} could not store a batch ({error}); nothing of that batch is stored, and "
            "it is read again on the next start")


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
