"""Ingest on real SQLite and real PostgreSQL: exact rows, checkpoints, bad input, retention."""

from __future__ import annotations

import logging
import os
import stat
from datetime import UTC
from pathlib import Path

import pytest

from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.ingest import Ingest
from squidguard_bloom.monitor.migrate import open_database
from squidguard_bloom.monitor.parse import Clock
from squidguard_bloom.monitor.report import as_table, collect
from squidguard_bloom.monitor.retention import prune

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
def db(db_url: str) -> Database:
    database = open_database(db_url)
    yield database
    database.close()


def ingest(db: Database, tree: Tree, **kw: object) -> Ingest:
    ing = Ingest(db, roots=[tree.root], clock=Clock(UTC), now=lambda: T0 + 600, **kw)
    ing.run(once=True)
    return ing


def count(db: Database, table: str) -> int:
    return int(db.scalar(f"SELECT count(*) FROM {table}"))


def test_everything_lands_once_with_exact_rollups(db: Database, tree: Tree) -> None:
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
    ing = ingest(db, tree)
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
    again = ingest(db, tree)
    assert (again.stats.lines, again.stats.unparsed) == (0, 0)
    assert count(db, "access") == 4


def test_partial_line_waits_and_is_stored_once_complete(db: Database, tree: Tree) -> None:
    path = tree.write("a", "access", 1, access(T0, 1) + access(T0, 2)[:30])
    ingest(db, tree)
    assert count(db, "access") == 1
    assert db.execute("SELECT read_to, lines, finished FROM segments") == [
        (len(access(T0, 1)), 1, 0)]
    with path.open("ab") as fh:
        fh.write(access(T0, 2)[30:].encode())
    ingest(db, tree)
    assert db.execute("SELECT url FROM access ORDER BY id") == [
        ("http://www.example.com/1",), ("http://www.example.com/2",)]


def test_finished_segment_last_line_needs_no_newline(db: Database, tree: Tree) -> None:
    """A rotation in the middle of a line: the finished segment's tail is a whole line."""
    tree.write("a", "access", 1, access(T0, 1) + access(T0, 2).rstrip("\n"))
    ingest(db, tree)
    assert count(db, "access") == 1  # only segment: still growing, its tail waits
    tree.write("a", "access", 2, access(T0, 3))
    ingest(db, tree)
    assert [u for (u,) in db.execute("SELECT url FROM access ORDER BY id")] == [
        "http://www.example.com/1", "http://www.example.com/2", "http://www.example.com/3"]
    assert db.execute("SELECT seq, finished FROM segments ORDER BY seq") == [(1, 1), (2, 0)]


def test_new_proxies_and_generations_appear_by_themselves(db: Database, tree: Tree) -> None:
    ing = Ingest(db, roots=[tree.root], clock=Clock(UTC))
    tree.write("a", "access", 1, access(T0, 1))
    assert ing.run_pass() == 1
    tree.write("b", "access", 1, access(T0, 2))
    tree.write("a", "access", 2, access(T0, 3))
    tree.write("a", "squidGuard", 1, helper(1, "INFO: squidguard-bloom stopped (2.0)"))
    assert ing.run_pass() == 3
    assert ing.run_pass() == 0
    assert count(db, "proxies") == 2 and count(db, "access") == 3 and count(db, "events") == 1


def test_bad_bytes_and_lines_are_kept_with_their_place(db: Database, tree: Tree) -> None:
    good = access(T0, 1)
    weird = b"\x00\xff\xfe binary \r\x1b[31m\n"
    data = good.encode() + weird + b"\n" + good.replace("/1 ", "/2 ").encode()
    tree.write("a", "access", 1, data)
    ing = ingest(db, tree)
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


def test_invalid_utf8_and_nul_inside_a_parsed_line(db: Database, tree: Tree) -> None:
    line = access(T0, 1).replace("/1 ", "/\xe9\x00x ").encode("latin-1")
    tree.write("a", "access", 1, line)
    ingest(db, tree)
    assert db.execute("SELECT url FROM access") == [("http://www.example.com/\ufffd\ufffdx",)]


def test_line_longer_than_max_line_is_kept_in_part(db: Database, tree: Tree) -> None:
    huge = b"1764780000.000 1 c TCP_MISS/200 5 GET http://x/" + b"a" * 300_000 + b" - H/- -"
    data = access(T0, 1).encode() + huge + b"\n" + access(T0, 2).encode()
    tree.write("a", "access", 1, data)
    ing = ingest(db, tree, max_line=100_000, batch_bytes=64_000)
    assert (ing.stats.lines, ing.stats.unparsed) == (2, 1)
    (row,) = db.execute("SELECT at, length, reason, line FROM unparsed")
    assert row[:3] == (len(access(T0, 1)), len(huge), "line longer than 100000 bytes")
    assert bytes(row[3]) == huge[:65536]
    assert count(db, "access") == 2


def test_long_line_still_growing_waits(db: Database, tree: Tree) -> None:
    path = tree.write("a", "access", 1, access(T0, 1) + "x" * 200_000)
    ingest(db, tree, max_line=100_000, batch_bytes=64_000)
    assert (count(db, "access"), count(db, "unparsed")) == (1, 0)
    with path.open("ab") as fh:
        fh.write(b"\n" + access(T0, 2).encode())
    ingest(db, tree, max_line=100_000, batch_bytes=64_000)
    assert (count(db, "access"), count(db, "unparsed")) == (2, 1)


def test_symlinks_and_special_files_are_refused_and_reported(
        db: Database, tree: Tree, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
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
        ingest(db, tree)
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


def test_two_ingests_never_store_a_piece_twice(db_url: str, tree: Tree) -> None:
    """Each checks the checkpoint it read before moving it: the loser reloads and skips."""
    tree.write("a", "access", 1, access(T0, 0))
    with open_database(db_url) as one, open_database(db_url) as two:
        first = Ingest(one, roots=[tree.root], clock=Clock(UTC))
        first.run(once=True)
        second = Ingest(two, roots=[tree.root], clock=Clock(UTC))  # checkpoint after line 0
        tree.write("a", "access", 1, "".join(access(T0, i) for i in range(1, 50)))
        first.run(once=True)
        second.run(once=True)  # its checkpoint is stale: refused, reloaded, nothing stored
        assert (second.stats.conflicts, second.stats.lines) == (1, 0)
        tree.write("a", "access", 1, access(T0, 50))
        second.run(once=True)
        assert second.stats.lines == 1
        assert one.scalar("SELECT count(*) FROM access") == 51
        assert one.scalar("SELECT count(DISTINCT url) FROM access") == 51


def test_retention_removes_old_raw_rows_then_old_rollups(db: Database, tree: Tree) -> None:
    day = 86400
    tree.write("a", "access", 1, access(T0 - 40 * day, 1) + access(T0 - 10 * day, 2)
               + access(T0, 3))
    ingest(db, tree)
    removed = prune(db, raw_days=30, rollup_days=35, now=T0, slice_rows=1)
    assert removed["access"] == 1 and removed["rollup_cache"] == 1
    assert [u for (u,) in db.execute("SELECT url FROM access ORDER BY ts")] == [
        "http://www.example.com/2", "http://www.example.com/3"]
    assert count(db, "rollup_cache") == 2
    assert prune(db, raw_days=5, rollup_days=400, now=T0)["access"] == 1
    assert count(db, "rollup_cache") == 2  # rollups outlive raw rows


def test_report_table(db: Database, tree: Tree) -> None:
    tree.write("a", "access", 1, access(T0, 1, "TCP_MEM_HIT/200", 2500) + access(T0, 2))
    tree.write("a", "blocked", 1, helper(
        5, "Request(default/porn/-) http://bad.example/x 10.0.0.1/- - GET REDIRECT"))
    tree.write("b", "access", 1, "garbage\n")
    ingest(db, tree)
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
