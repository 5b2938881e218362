"""Ingest on real SQLite and real PostgreSQL: exact rows, checkpoints, bad input, retention."""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import signal
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.errors import MonitorError
from squidguard_bloom.monitor.ingest import Ingest
from squidguard_bloom.monitor.migrate import open_database
from squidguard_bloom.monitor.parse import Clock
from squidguard_bloom.monitor.report import as_table, collect
from squidguard_bloom.monitor.retention import prune

from .pgserver import PostgresServer
from .postings_check import assert_postings_match_rows

T0 = 1796320080.0  # 2026-12-03 17:48:00 UTC, a minute's start


def access(ts: float, n: int, result: str = "TCP_MISS/200", size: int = 1000,
           client: str = "10.0.0.1", host: str = "www.example.com") -> str:
    return (f"{ts:.3f}     12 {client} {result} {size} GET http://{host}/{n} - "
            "HIER_DIRECT/192.0.2.1 text/html\n")


def helper(second: int, body: str) -> str:
    return f"2026-12-03 17:48:{second:02d} [4242] {body}\n"


class Tree:
    """A monitor-side incoming tree: root/logship-NAME/incoming/STREAM/SEGMENT."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, proxy: str, stream: str, seq: int) -> Path:
        d = self.root / f"logship-{proxy}" / "incoming" / stream
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{seq:08d}-fe01-{seq:x}.log"

    def write(self, proxy: str, stream: str, seq: int, data: str | bytes) -> Path:
        p = self.path(proxy, stream, seq)
        with p.open("ab") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        return p


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path / "srv")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url)
    yield database
    database.close()


@pytest.fixture(params=[1, 2], ids=["in-process", "2-workers"])
def workers(request: pytest.FixtureRequest) -> int:
    """Ingest(workers=1) parses and stores in its own process; 2: in two worker processes."""
    return int(request.param)


def ingest(db: Database, tree: Tree, workers: int, *, batch_bytes: int = 8 << 20,
           max_line: int = 1 << 20) -> Ingest:
    """One ``run(once=True)`` (which closes its workers at the end)."""
    ing = Ingest(db, roots=[tree.root], clock=Clock(UTC), now=lambda: T0 + 600,
                 workers=workers, batch_bytes=batch_bytes, max_line=max_line)
    ing.run(once=True)
    return ing


def count(db: Database, table: str) -> int:
    return int(db.scalar(f"SELECT count(*) FROM {table}"))


def test_everything_lands_once_with_exact_rollups(db: Database, tree: Tree, workers: int) -> None:
    tree.write("a", "access", 1, access(T0 + 1, 1) + access(T0 + 2, 2, "TCP_MEM_HIT/200", 3000)
               + access(T0 + 61, 3, "TCP_REFRESH_UNMODIFIED/304", 500, "10.0.0.2"))
    tree.write("a", "blocked", 1,
               helper(5, "Request(default/porn/-) http://bad.example/x 10.0.0.1/- - GET REDIRECT")
               + helper(6, "Request(default/porn/-) http://bad.example/y 10.0.0.2/- - GET "
                           "REDIRECT")
               + helper(7, "Request(default/ads/-) http://ads.example/b 10.0.0.2/- - GET "
                           "REDIRECT"))
    tree.write("a", "welcome", 1,
               helper(8, "Request(default/welcome/-) http://www.example.com/ 10.0.0.3/- - GET "
                         "WELCOME"))
    tree.write("a", "squidGuard", 1, helper(0, "INFO: squidguard-bloom 0.1.0 started (1.0)")
               + helper(1, "INFO: squidguard-bloom ready for requests (1.5)"))
    tree.write("b", "access", 1, access(T0 + 3, 4))
    ing = ingest(db, tree, workers)
    assert (ing.stats.lines, ing.stats.unparsed) == (10, 0)
    assert db.execute("SELECT name FROM proxies ORDER BY name") == [("a",), ("b",)]
    assert db.execute("SELECT s.name, s.kind FROM streams s JOIN proxies p ON p.id = s.proxy_id"
                      " WHERE p.name = 'a' ORDER BY s.name") == [
        ("access", "access"), ("blocked", "helper"), ("squidGuard", "helper"),
        ("welcome", "helper")]
    assert db.execute("SELECT url, result, status, bytes FROM access ORDER BY ts") == [
        ("http://www.example.com/1", "TCP_MISS", 200, 1000),
        ("http://www.example.com/2", "TCP_MEM_HIT", 200, 3000),
        ("http://www.example.com/4", "TCP_MISS", 200, 1000),
        ("http://www.example.com/3", "TCP_REFRESH_UNMODIFIED", 304, 500)]
    assert db.execute("SELECT minute, result, status, hit, n, bytes FROM rollup_cache "
                      "ORDER BY minute, result, proxy_id") == [
        (T0, "TCP_MEM_HIT", 200, 1, 1, 3000), (T0, "TCP_MISS", 200, 0, 1, 1000),
        (T0, "TCP_MISS", 200, 0, 1, 1000), (T0 + 60, "TCP_REFRESH_UNMODIFIED", 304, 1, 1, 500)]
    assert db.execute("SELECT target, action, n FROM rollup_decisions ORDER BY target") == [
        ("ads", "REDIRECT", 1), ("porn", "REDIRECT", 2), ("welcome", "WELCOME", 1)]
    hour = int(T0 // 3600 * 3600)
    assert db.execute("SELECT hour, target, host, n FROM rollup_blocked_hosts ORDER BY host") == [
        (hour, "ads", "ads.example", 1), (hour, "porn", "bad.example", 2)]
    assert db.execute("SELECT client, requests, bytes, blocks FROM rollup_clients c JOIN proxies"
                      " p ON p.id = c.proxy_id WHERE p.name = 'a' ORDER BY client") == [
        ("10.0.0.1", 2, 4000, 1), ("10.0.0.2", 1, 500, 2)]
    assert db.execute("SELECT host, n, hits, bytes, hit_bytes FROM rollup_hosts h JOIN proxies p"
                      " ON p.id = h.proxy_id WHERE p.name = 'a'") == [
        ("www.example.com", 3, 2, 4500, 3500)]
    assert db.execute("SELECT minute, kind, lines, unparsed FROM rollup_lines l JOIN proxies p "
                      "ON p.id = l.proxy_id WHERE p.name = 'a' ORDER BY minute, kind") == [
        (T0, "access", 2, 0), (T0, "helper", 6, 0), (T0 + 60, "access", 1, 0)]
    assert db.execute("SELECT kind, message FROM events ORDER BY ts") == [
        ("started", "squidguard-bloom 0.1.0 started (1.0)"),
        ("ready", "squidguard-bloom ready for requests (1.5)")]
    assert db.execute("SELECT name, last_received, last_line_ts FROM proxies ORDER BY name") == [
        ("a", T0 + 600, T0 + 61), ("b", T0 + 600, T0 + 3)]
    # the report, from rollups only
    data = collect(db, T0 - 60, T0 + 600)
    a = data["proxies"][0]
    assert (a["proxy"], a["lines"], a["blocks"], a["welcomes"], a["requests"], a["hits"]) == (
        "a", 9, 3, 1, 3, 2)
    assert a["blocks_by_category"] == {"porn": 2, "ads": 1}
    assert a["top_blocked_domains"] == [["bad.example", 2], ["ads.example", 1]]
    assert (a["hit_ratio"], a["byte_hit_ratio"]) == (2 / 3, 3500 / 4500)
    assert a["helper_state"]["kind"] == "ready"
    # a second run finds nothing new
    again = ingest(db, tree, workers)
    assert (again.stats.lines, again.stats.unparsed) == (0, 0)
    assert count(db, "access") == 4


def test_partial_line_waits_and_is_stored_once_complete(
        db: Database, tree: Tree, workers: int) -> None:
    path = tree.write("a", "access", 1, access(T0, 1) + access(T0, 2)[:30])
    ingest(db, tree, workers)
    assert count(db, "access") == 1
    assert db.execute("SELECT read_to, lines, finished FROM segments") == [
        (len(access(T0, 1)), 1, 0)]
    with path.open("ab") as fh:
        fh.write(access(T0, 2)[30:].encode())
    ingest(db, tree, workers)
    assert db.execute("SELECT url FROM access ORDER BY id") == [
        ("http://www.example.com/1",), ("http://www.example.com/2",)]


def test_finished_segment_last_line_needs_no_newline(
        db: Database, tree: Tree, workers: int) -> None:
    """A rotation in the middle of a line: the finished segment's tail is a whole line."""
    tree.write("a", "access", 1, access(T0, 1) + access(T0, 2).rstrip("\n"))
    ingest(db, tree, workers)
    assert count(db, "access") == 1  # only segment: still growing, its tail waits
    tree.write("a", "access", 2, access(T0, 3))
    ingest(db, tree, workers)
    assert [u for (u,) in db.execute("SELECT url FROM access ORDER BY id")] == [
        "http://www.example.com/1", "http://www.example.com/2", "http://www.example.com/3"]
    assert db.execute("SELECT seq, finished FROM segments ORDER BY seq") == [(1, 1), (2, 0)]


def test_new_proxies_and_generations_appear_by_themselves(
        db: Database, tree: Tree, workers: int) -> None:
    ing = Ingest(db, roots=[tree.root], clock=Clock(UTC), workers=workers)
    try:
        tree.write("a", "access", 1, access(T0, 1))
        assert ing.run_pass() == 1
        tree.write("b", "access", 1, access(T0, 2))
        tree.write("a", "access", 2, access(T0, 3))
        tree.write("a", "squidGuard", 1, helper(1, "INFO: squidguard-bloom stopped (2.0)"))
        assert ing.run_pass() == 3
        assert ing.run_pass() == 0
    finally:
        ing.close()
    assert count(db, "proxies") == 2 and count(db, "access") == 3 and count(db, "events") == 1


def test_bad_bytes_and_lines_are_kept_with_their_place(
        db: Database, tree: Tree, workers: int) -> None:
    good = access(T0, 1)
    weird = b"\x00\xff\xfe binary \r\x1b[31m\n"
    data = good.encode() + weird + b"\n" + good.replace("/1 ", "/2 ").encode()
    tree.write("a", "access", 1, data)
    ing = ingest(db, tree, workers)
    assert (ing.stats.lines, ing.stats.unparsed) == (2, 2)
    at = len(good)
    assert db.execute("SELECT at, length, reason, line FROM unparsed ORDER BY at") == [
        (at, len(weird) - 1, "Squid native format has 10 fields, this line 3", weird[:-1]),
        (at + len(weird), 0, "Squid native format has 10 fields, this line 0", b""),
    ]
    assert db.execute("SELECT lines, unparsed FROM segments") == [(4, 2)]
    # parsed lines by their own minute, unparsed ones by the minute they were received
    assert db.execute("SELECT minute, kind, lines, unparsed FROM rollup_lines "
                      "ORDER BY minute") == [(T0, "access", 2, 0), (T0 + 600, "access", 0, 2)]


def test_invalid_utf8_and_nul_inside_a_parsed_line(db: Database, tree: Tree, workers: int) -> None:
    line = access(T0, 1).replace("/1 ", "/\xe9\x00x ").encode("latin-1")
    tree.write("a", "access", 1, line)
    ingest(db, tree, workers)
    assert db.execute("SELECT url FROM access") == [("http://www.example.com/\ufffd\ufffdx",)]


def test_line_longer_than_max_line_is_kept_in_part(db: Database, tree: Tree, workers: int) -> None:
    huge = b"1764780000.000 1 c TCP_MISS/200 5 GET http://x/" + b"a" * 300_000 + b" - H/- -"
    data = access(T0, 1).encode() + huge + b"\n" + access(T0, 2).encode()
    tree.write("a", "access", 1, data)
    ing = ingest(db, tree, workers, max_line=100_000, batch_bytes=64_000)
    assert (ing.stats.lines, ing.stats.unparsed) == (2, 1)
    (row,) = db.execute("SELECT at, length, reason, line FROM unparsed")
    assert row[:3] == (len(access(T0, 1)), len(huge), "line longer than 100000 bytes")
    assert bytes(row[3]) == huge[:65536]
    assert count(db, "access") == 2


def test_long_line_still_growing_waits(db: Database, tree: Tree, workers: int) -> None:
    path = tree.write("a", "access", 1, access(T0, 1) + "x" * 200_000)
    ingest(db, tree, workers, max_line=100_000, batch_bytes=64_000)
    assert (count(db, "access"), count(db, "unparsed")) == (1, 0)
    with path.open("ab") as fh:
        fh.write(b"\n" + access(T0, 2).encode())
    ingest(db, tree, workers, max_line=100_000, batch_bytes=64_000)
    assert (count(db, "access"), count(db, "unparsed")) == (2, 1)


def test_symlinks_and_special_files_are_refused_and_reported(
        db: Database, tree: Tree, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        workers: int) -> None:
    secret = tmp_path / "secret.log"
    secret.write_text(access(T0, 99))
    stream = tree.path("a", "access", 1).parent
    tree.write("a", "access", 1, access(T0, 1))
    (stream / "00000002-fe01-2.log").symlink_to(secret)
    os.mkfifo(stream / "00000003-fe01-3.log")
    os.mknod(stream / "00000004-fe01-4.log", stat.S_IFSOCK | 0o600)
    (stream.parent / "linked").symlink_to(stream)
    (stream / "notes.txt").write_text("hello\n")
    expected = []
    if os.geteuid() == 0:  # a device node (root only): /dev/zero's numbers
        os.mknod(stream / "00000005-fe01-5.log", stat.S_IFCHR | 0o600, os.makedev(1, 5))
        expected.append(f"refused {stream / '00000005-fe01-5.log'}: a device, not a regular "
                        "file")
    with caplog.at_level(logging.WARNING, "squidguard_bloom.monitor"):
        ingest(db, tree, workers)
    assert [u for (u,) in db.execute("SELECT url FROM access")] == ["http://www.example.com/1"]
    refused = sorted(m for (m,) in db.execute(
        "SELECT message FROM events WHERE origin = 'monitor' AND kind = 'refused'"))
    assert refused == sorted([
        f"refused {stream / '00000002-fe01-2.log'}: a symbolic link, not a regular file",
        f"refused {stream / '00000003-fe01-3.log'}: a FIFO, not a regular file",
        f"refused {stream / '00000004-fe01-4.log'}: a socket, not a regular file",
        f"refused {stream.parent / 'linked'}: a symbolic link where a directory was expected",
        f"refused {stream / 'notes.txt'}: not a segment name (SEQ-DEV-INODE.log, see "
        "docs/shipper.md)",
        *expected,
    ])
    assert sorted(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING) == \
        refused


def test_two_ingests_never_store_a_piece_twice(db_url: str, tree: Tree, workers: int) -> None:
    """Each checks the checkpoint it read before moving it: the loser reloads and skips (the
    second stores through its workers when it has them)."""
    tree.write("a", "access", 1, access(T0, 0))
    with open_database(db_url) as one, open_database(db_url) as two:
        first = Ingest(one, roots=[tree.root], clock=Clock(UTC))
        first.run(once=True)
        second = Ingest(two, roots=[tree.root], clock=Clock(UTC), workers=workers,
                        batch_bytes=500, max_line=1024)  # checkpoint: after line 0
        try:
            tree.write("a", "access", 1, "".join(access(T0, i) for i in range(1, 50)))
            first.run(once=True)
            assert first.stats.lines == 50
            # its checkpoint is stale: refused (and the batches after it), reloaded, nothing
            # stored
            assert second.run_pass() == -1
            assert (second.stats.conflicts, second.stats.lines) == (1, 0)
            assert second.run_pass() == 0  # reloaded: nothing is left
            tree.write("a", "access", 1, access(T0, 50))
            assert second.run_pass() == 1
            assert (second.stats.conflicts, second.stats.lines) == (1, 1)
        finally:
            second.close()
        assert [u for (u,) in one.execute("SELECT url FROM access ORDER BY id")] == [
            f"http://www.example.com/{i}" for i in range(51)]
        assert one.execute("SELECT read_to, lines FROM segments") == [
            (sum(len(access(T0, i)) for i in range(51)), 51)]
        assert one.scalar("SELECT sum(n) FROM rollup_cache") == 51


def test_retention_removes_old_raw_rows_then_old_rollups(
        db: Database, tree: Tree, workers: int) -> None:
    day = 86400
    tree.write("a", "access", 1, access(T0 - 40 * day, 1) + access(T0 - 10 * day, 2)
               + access(T0, 3))
    ingest(db, tree, workers)
    removed = prune(db, raw_days=30, rollup_days=35, now=T0, slice_rows=1)
    assert removed["access"] == 1 and removed["rollup_cache"] == 1
    assert [u for (u,) in db.execute("SELECT url FROM access ORDER BY ts")] == [
        "http://www.example.com/2", "http://www.example.com/3"]
    assert count(db, "rollup_cache") == 2
    assert prune(db, raw_days=5, rollup_days=400, now=T0)["access"] == 1
    assert count(db, "rollup_cache") == 2  # rollups outlive raw rows


def test_report_table(db: Database, tree: Tree, workers: int) -> None:
    tree.write("a", "access", 1, access(T0, 1, "TCP_MEM_HIT/200", 2500) + access(T0, 2))
    tree.write("a", "blocked", 1, helper(
        5, "Request(default/porn/-) http://bad.example/x 10.0.0.1/- - GET REDIRECT"))
    tree.write("b", "access", 1, "garbage\n")
    ingest(db, tree, workers)
    text = as_table(collect(db, T0 + 600 - 3600, T0 + 600))
    lines = text.splitlines()
    assert lines[2:5] == [
        "proxy  lines  unparsed  last line  helper  blocks  welcomes  requests  hit req  "
        "hit bytes  from cache",
        "a          3         0     0s ago       -       1         0         2    50.0%"
        "      71.4%      2.5 KB",
        "b          1         1     0s ago       -       0         0         0        -"
        "          -         0 B",
    ]
    assert lines[5:] == ["", "a:", "  blocks: porn 1", "  top blocked: bad.example 1",
                         "  status: 200 2"]


class Mixed:
    """Every kind of line in many segments, and what ingest must make of them, in the order it
    reads them (proxy, stream, segment, offset): access, helper and shipper lines, garbage,
    NUL and invalid UTF-8 bytes, lines longer than max_line=1024, finished segments (the last
    line maybe without its newline) and a growing last segment whose last line is partial."""

    STREAMS = ("access", "blocked", "ship", "squidGuard")

    def __init__(self, tree: Tree, seed: int, lines_per_segment: int = 90) -> None:
        rng = random.Random(seed)
        self.rows: dict[str, list[object]] = {"access": [], "decisions": [], "events": [],
                                              "unparsed": []}
        self.segments: list[tuple[str, str, int, int, int, int, int]] = []
        n = 0
        for proxy in ("p1", "p2"):
            for stream in sorted(self.STREAMS):
                for seq in (1, 2, 3):
                    finished = seq < 3
                    data = b""
                    lines = unparsed = 0
                    for k in range(lines_per_segment):
                        n += 1
                        line = self._line(rng, proxy, stream, n, first=seq == 1 and k == 0)
                        last = k == lines_per_segment - 1
                        if last and finished and rng.random() < 0.5:
                            data += line  # rotated in the middle: the tail is a whole line
                        else:
                            data += line + b"\n"
                        lines += 1
                        unparsed += self._expect(stream, line)
                    read_to = len(data)
                    if not finished:  # a partial line waits for its newline
                        data += self._line(rng, proxy, stream, n + 1, first=False)[:40]
                    tree.write(proxy, stream, seq, data)
                    self.segments.append((proxy, stream, seq, read_to, lines, unparsed,
                                          int(finished)))

    def _line(self, rng: random.Random, proxy: str, stream: str, n: int, first: bool) -> bytes:
        pick = 1.0 if first else rng.random()
        if pick < 0.06:
            return f"garbage {proxy} {n} ".encode() + b"\xff\xfe\x00\x1b[31m"
        if pick < 0.09:
            return f"long {proxy} {n} ".encode() + b"x" * rng.randrange(1100, 3000)
        second = n % 60
        if stream == "access":
            return access(T0 + second, n, client=f"10.0.{n % 3}.{n % 5}",
                          host=f"h{n % 4}.{proxy}.example").rstrip("\n").encode()
        if stream == "blocked":
            return helper(second, f"Request(default/porn/-) http://bad{n % 3}.example/{n} "
                                  f"10.0.0.{n % 6}/- - GET REDIRECT").rstrip("\n").encode()
        if stream == "squidGuard":
            return helper(second, f"INFO: note {proxy} {n}").rstrip("\n").encode()
        return (f"2026-12-03 17:48:{second:02d},{n % 1000:03d} squidguard-bloom-ship INFO: "
                f"sent {proxy} {n}").encode()

    def _expect(self, stream: str, line: bytes) -> int:
        """Note what line becomes; 1 if it is stored as unparsed."""
        if line.startswith((b"garbage ", b"long ")):
            self.rows["unparsed"].append(line)
            return 1
        text = line.decode()
        if stream == "access":
            self.rows["access"].append(text.split()[6])
        elif stream == "blocked":
            self.rows["decisions"].append(text.split()[4])
        else:
            self.rows["events"].append(text.split(": ", 1)[1])
        return 0


def _read_order(db: Database) -> dict[str, list[object]]:
    return {"access": [u for (u,) in db.execute("SELECT url FROM access ORDER BY id")],
            "decisions": [u for (u,) in db.execute("SELECT url FROM decisions ORDER BY id")],
            "events": [m for (m,) in db.execute("SELECT message FROM events ORDER BY id")],
            "unparsed": [bytes(b) for (b,) in db.execute("SELECT line FROM unparsed ORDER BY id")]}


def _tables(db: Database) -> list[str]:
    if db.dialect == "sqlite":
        names = [n for (n,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    else:
        names = [n for (n,) in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_type = 'BASE TABLE'")]
    return sorted(n for n in names if n != "schema_migrations")  # holds when it was applied


def _contents(db: Database) -> dict[str, list[tuple]]:
    """Every row of every table (ids and stamps included), in a fixed order."""
    return {t: sorted((tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                       for row in db.execute(f"SELECT * FROM {t}")), key=repr)
            for t in _tables(db)}


def test_tiny_batches_in_workers_store_exactly_what_one_process_stores(
        db_url: str, tree: Tree, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Batches of a few hundred bytes (hundreds of them, several in flight at once): the
    workers store every line once, ids in the order read, and the database ends up identical,
    row for row, to the one the in-process path fills."""
    mixed = Mixed(tree, seed=11)
    other_url = (str(tmp_path / "other.db") if not db_url.startswith("postgresql")
                 else request.getfixturevalue("pg_server").new_database())
    contents = {}
    for url, workers in ((db_url, 1), (other_url, 2)):
        with open_database(url) as db:
            ing = ingest(db, tree, workers, batch_bytes=300, max_line=1024)
            assert ing.stats.transactions > 150  # a batch per chunk of 1,025 bytes at most
            assert (ing.stats.lines + ing.stats.unparsed, ing.stats.unparsed) == (
                sum(s[4] for s in mixed.segments), len(mixed.rows["unparsed"]))
            assert _read_order(db) == mixed.rows, workers
            assert db.execute(
                "SELECT p.name, st.name, sg.seq, sg.read_to, sg.lines, sg.unparsed, "
                "sg.finished FROM segments sg JOIN streams st ON st.id = sg.stream_id "
                "JOIN proxies p ON p.id = st.proxy_id ORDER BY p.name, st.name, sg.seq"
            ) == sorted(mixed.segments), workers
            assert db.scalar("SELECT sum(n) FROM rollup_cache") == len(mixed.rows["access"])
            assert db.scalar("SELECT sum(n) FROM rollup_decisions") == len(
                mixed.rows["decisions"])
            assert (db.scalar("SELECT sum(lines) FROM rollup_lines"),
                    db.scalar("SELECT sum(unparsed) FROM rollup_lines")) == (
                sum(len(mixed.rows[t]) for t in ("access", "decisions", "events")),
                len(mixed.rows["unparsed"]))
            assert_postings_match_rows(db)
            contents[workers] = _contents(db)
    assert contents[2] == contents[1]


def test_postgresql_event_ids_follow_the_file_when_an_earlier_batch_is_held_up(
        pg_server: PostgresServer, tree: Tree) -> None:
    """On PostgreSQL a worker writes a batch's raw rows before the batches ahead of it are
    committed. Events and unparsed lines take their ids as they are inserted (access and
    decision ids are given by the coordinator), so a batch whose writing is held up (here: by
    a lock on decisions) must not let the batch after it insert its events first: their ids
    would not follow the file, and the newest helper state (the event with the largest id)
    would be an older one."""
    url = pg_server.new_database()
    # read 1,025 bytes at a time (max_line=1024), a batch each: the first holds the start
    # and the decisions, exactly 1,000 bytes; the second the helper's ready and notes only
    first = [helper(1, "INFO: squidguard-bloom 0.1.0 started (1.0)")]
    first += [helper(1, f"Request(default/porn/-) http://bad.example/{i} 10.0.0.1/- - GET "
                        "REDIRECT") for i in range(9)]
    pad = 1000 - len("".join(first))
    assert 0 < pad < 200
    first[-1] = first[-1].replace("/8 ", "/8" + "x" * pad + " ")
    lines = [*first, helper(2, "INFO: squidguard-bloom ready for requests (1.5)")]
    lines += [helper(3, f"INFO: note {i}") for i in range(30)]
    tree.write("a", "squidGuard", 1, "".join(lines))
    events = [line[27:].removeprefix("INFO: ").rstrip("\n") for line in lines
              if "Request(" not in line]
    held, released = threading.Event(), threading.Event()
    problems: list[str] = []

    def hold_decisions() -> None:
        """Lock decisions until one worker waits for it and the other is in its transaction,
        as far as it goes before its turn."""
        with open_database(url) as blocker, blocker.transaction():
            blocker.execute("LOCK TABLE decisions IN EXCLUSIVE MODE")
            held.set()
            me = blocker.scalar("SELECT pg_backend_pid()")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                blocker.execute("SELECT pg_stat_clear_snapshot()")  # else one per transaction
                states = blocker.execute(
                    "SELECT state, wait_event_type FROM pg_stat_activity WHERE datname = "
                    "current_database() AND pid <> ?", (me,))
                if (("active", "Lock") in states
                        and any(s == "idle in transaction" for s, _w in states)):
                    break
                time.sleep(0.02)
            else:
                problems.append(f"the workers never got there: {states}")
        released.set()

    with open_database(url) as db:
        ing = Ingest(db, roots=[tree.root], clock=Clock(UTC), now=lambda: T0 + 600,
                     workers=2, batch_bytes=300, max_line=1024)
        blocker = threading.Thread(target=hold_decisions, daemon=True)
        blocker.start()
        assert held.wait(30)
        try:
            assert ing.run_pass() == len(lines)
        finally:
            ing.close()
            blocker.join(60)
        assert released.is_set() and problems == []
        assert ing.stats.transactions >= 3  # the batch held up, the one after it, and more
        assert [m for (m,) in db.execute("SELECT message FROM events ORDER BY id")] == events
        state = collect(db, T0 - 3600, T0 + 600)["proxies"][0]["helper_state"]
        assert state["kind"] == "ready"


def _stored_prefix(db: Database, lines: list[str]) -> int:
    """How many of lines (one access segment) are stored, checking that exactly those are:
    rows in file order, the checkpoint at their end, counted once in segments and rollups."""
    urls = [u for (u,) in db.execute("SELECT url FROM access ORDER BY id")]
    k = len(urls)
    assert urls == [line.split()[6] for line in lines[:k]]
    assert db.execute("SELECT read_to, lines, unparsed FROM segments") == [
        (len("".join(lines[:k]).encode()), k, 0)]
    assert db.scalar("SELECT coalesce(sum(n), 0) FROM rollup_cache") == k
    assert_postings_match_rows(db)
    return k


def test_a_batch_that_cannot_be_stored_stops_the_pass_and_nothing_of_it_is_stored(
        db: Database, tree: Tree, workers: int) -> None:
    """A real failure inside the transaction of one batch (its unparsed line goes to a table
    that is not there): the pass raises MonitorError, naming the cause (in one process as with
    workers), nothing of that batch or of any later one is stored, the checkpoint stays at the
    end of the batches before it, and once the table is back the next pass stores the rest,
    once."""
    lines = [access(T0, i) for i in range(60)]
    lines[30] = "garbage line 30\n"
    tree.write("a", "access", 1, "".join(lines))
    ing = Ingest(db, roots=[tree.root], clock=Clock(UTC), now=lambda: T0 + 600,
                 workers=workers, batch_bytes=300, max_line=1024)
    try:
        db.execute("ALTER TABLE unparsed RENAME TO unparsed_away")
        with pytest.raises(MonitorError, match=r"could not store a batch \(.*\bunparsed\b.*"
                           r"\); nothing of that batch is stored"):
            ing.run_pass()
        k = _stored_prefix(db, lines)
        assert 0 < k < 30  # the batches before the garbage line's went in
        assert (ing.stats.lines, ing.stats.unparsed) == (k, 0)
        assert count(db, "unparsed_away") == 0
        db.execute("ALTER TABLE unparsed_away RENAME TO unparsed")
        assert ing.run_pass() == 60 - k
    finally:
        ing.close()
    assert [u for (u,) in db.execute("SELECT url FROM access ORDER BY id")] == [
        line.split()[6] for line in lines if not line.startswith("garbage")]
    assert db.execute("SELECT at, line FROM unparsed") == [
        (len("".join(lines[:30])), b"garbage line 30")]
    assert db.execute("SELECT read_to, lines, unparsed FROM segments") == [
        (len("".join(lines)), 60, 1)]
    assert db.scalar("SELECT sum(n) FROM rollup_cache") == 59
    assert_postings_match_rows(db)


def test_workers_killed_under_ingest_stop_the_pass_with_that_error(
        db: Database, tree: Tree) -> None:
    """Both worker processes die (SIGKILL, as from the OOM killer) while idle: the next pass
    hands them batches nobody takes, finds them dead and says so, nothing is stored twice
    or lost, and a new ingest (as after a restart) stores everything once."""
    lines = [access(T0, i) for i in range(60)]
    tree.write("a", "access", 1, "".join(lines[:10]))
    ing = Ingest(db, roots=[tree.root], clock=Clock(UTC), workers=2, batch_bytes=300,
                 max_line=1024)
    try:
        assert ing.run_pass() == 10
        pool = [p for p in multiprocessing.active_children()
                if p.name.startswith("ingest-worker-")]
        assert len(pool) == 2
        for proc in pool:
            assert proc.pid is not None
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(10)
            assert proc.exitcode == -signal.SIGKILL
        tree.write("a", "access", 1, "".join(lines[10:]))
        with pytest.raises(MonitorError, match=r"^ingest's ingest-worker-\d died \(exit "
                           r"status -9\); what it did not commit is read again"):
            ing.run_pass()
    finally:
        ing.close()
    assert _stored_prefix(db, lines) == 10
    again = Ingest(db, roots=[tree.root], clock=Clock(UTC), workers=2, batch_bytes=300,
                   max_line=1024)
    again.run(once=True)
    assert _stored_prefix(db, lines) == 60


def test_stop_ends_a_pass_between_batches(db: Database, tree: Tree, workers: int) -> None:
    """SIGTERM (run's stop event) takes effect between batches, not after the whole backlog:
    what was stored is a prefix of the file, and the next start stores exactly the rest."""
    lines = [access(T0, i) for i in range(200)]
    tree.write("a", "access", 1, "".join(lines))
    stop = threading.Event()

    def now() -> float:  # asked once per batch stored: stop once rows are committed
        if db.scalar("SELECT count(*) FROM access"):
            stop.set()
        return T0 + 600

    ing = Ingest(db, roots=[tree.root], clock=Clock(UTC), now=now, batch_bytes=2000,
                 max_line=1024, workers=workers)
    ing.run(stop=stop)  # not --once: without the stop it would never return
    stored = _stored_prefix(db, lines)
    assert 0 < stored < 100  # the batches stored or handed out before the stop, no more
    Ingest(db, roots=[tree.root], clock=Clock(UTC), now=lambda: T0 + 600, max_line=1024,
           workers=workers).run(once=True)
    assert _stored_prefix(db, lines) == 200
