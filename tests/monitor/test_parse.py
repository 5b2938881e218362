"""The line parsers: exact rows for good lines, a reason for every bad one."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from squidguard_bloom.core.logline import request_line
from squidguard_bloom.monitor.cache import is_hit
from squidguard_bloom.monitor.parse import (
    Clock,
    helper_event_kind,
    host_of,
    parse_access,
    parse_helper,
    parse_shipper,
    shipper_event_kind,
    sniff,
)

UTC_CLOCK = Clock(UTC)


def test_access_line_to_row() -> None:
    rows: list[tuple] = []
    bad: list[tuple[int, str]] = []
    parse_access([
        "1764780000.123    245 192.168.1.5 TCP_MISS/200 5120 GET http://Example.COM:8080/a?b "
        "alice HIER_DIRECT/93.184.216.34 text/html",
        "1764780001.000      0 10.0.0.9 TCP_TUNNEL/200 999 CONNECT www.x.org:443 - "
        "HIER_DIRECT/1.2.3.4 -",
        "1764780002.500      1 10.0.0.9 NONE/000 0 NONE error:invalid-request - HIER_NONE/- -",
    ], 7, rows, bad, first_id=500)
    assert bad == []
    assert rows == [
        (500, 7, 1764780000.123, 245, "192.168.1.5", "TCP_MISS", 200, 5120, "GET",
         "http://Example.COM:8080/a?b", "example.com", "alice", "HIER_DIRECT", "93.184.216.34",
         "text/html"),
        (501, 7, 1764780001.0, 0, "10.0.0.9", "TCP_TUNNEL", 200, 999, "CONNECT", "www.x.org:443",
         "www.x.org", "-", "HIER_DIRECT", "1.2.3.4", "-"),
        (502, 7, 1764780002.5, 1, "10.0.0.9", "NONE", 0, 0, "NONE", "error:invalid-request",
         "error", "-", "HIER_NONE", "-", "-"),
    ]


@pytest.mark.parametrize(("line", "reason"), [
    ("", "Squid native format has 10 fields, this line 0"),
    ("garbage", "Squid native format has 10 fields, this line 1"),
    ("x 1 c TCP_MISS/200 5 GET u - HIER_NONE/- -", "time, elapsed, status or size is not a number"),
    ("1.0 1 c TCP_MISS/abc 5 GET u - HIER_NONE/- -",
     "time, elapsed, status or size is not a number"),
    ("nan 1 c TCP_MISS/200 5 GET u - HIER_NONE/- -", "time, elapsed, status or size out of range"),
    ("1.0 99999999999 c TCP_MISS/200 5 GET u - HIER_NONE/- -",
     "time, elapsed, status or size out of range"),
    ("1.0 1 c TCP_MISS/200 -5 GET u - HIER_NONE/- -", "time, elapsed, status or size out of range"),
    ("1.0 1 c TCP_MISS/2000 5 GET u - HIER_NONE/- -",
     "time, elapsed, status or size out of range"),
])
def test_bad_access_lines_give_reasons(line: str, reason: str) -> None:
    rows: list[tuple] = []
    bad: list[tuple[int, str]] = []
    parse_access(["1.0 1 c TCP_MISS/200 5 GET http://a/ - HIER_NONE/- -", line], 1, rows, bad)
    assert [r[0] for r in rows] == [1]  # the good line's id: first_id (1) + its index
    assert bad == [(1, reason)]


@pytest.mark.parametrize(("url", "host"), [
    ("http://www.Example.com/x", "www.example.com"),
    ("https://user:pw@h.example:8443/p", "h.example"),
    ("http://[2001:db8::1]:8080/x", "2001:db8::1"),
    ("http://h.example?q=1", "h.example"),
    ("http://h.example#frag", "h.example"),
    ("h.example:443", "h.example"),
    ("ftp://files.example", "files.example"),
])
def test_host_of(url: str, host: str) -> None:
    assert host_of(url) == host


def test_helper_request_lines_as_the_helper_writes_them() -> None:
    """The helper's own request_line() output, behind reqlog's stamp, parses back."""
    body = request_line("kids", "porn", "-", "http://bad.example/a b\x01", "10.0.0.9",
                        "pc7.lan", "Bob Smith", "GET", "REDIRECT")
    decisions: list[tuple] = []
    events: list[tuple] = []
    bad: list[tuple[int, str]] = []
    parse_helper([f"2026-12-03 17:48:16 [1234] {body}"], 3, 9, UTC_CLOCK, decisions, events, bad)
    ts = datetime(2026, 12, 3, 17, 48, 16, tzinfo=UTC).timestamp()
    assert (events, bad) == ([], [])
    assert decisions == [(1, 3, ts, 1234, "kids", "porn", "-", "http://bad.example/a%20b%01",
                          "bad.example", "10.0.0.9", "pc7.lan", "Bob%20Smith", "GET",
                          "REDIRECT")]


@pytest.mark.parametrize(("message", "kind"), [
    ("squidguard-bloom 0.1.0 started (1796320000.123)", "started"),
    ("squidguard-bloom ready for requests (1796320000.200)", "ready"),
    ("squidguard-bloom stopped (1796320001.000)", "stopped"),
    ("Received sigHUP, reloaded configuration", "reload"),
    ("reload failed, configuration unchanged (see stderr)", "reload_failed"),
    ("Going into emergency mode", "emergency"),
    ("squidGuard 1.6.0 started (1796320000.5)", "started"),
    ("New setting: dbhome: /var/lib/squidguard/db", "other"),
])
def test_helper_event_kinds(message: str, kind: str) -> None:
    assert helper_event_kind(message) == kind


def test_helper_events_and_bad_lines() -> None:
    decisions: list[tuple] = []
    events: list[tuple] = []
    bad: list[tuple[int, str]] = []
    parse_helper([
        "2026-12-03 17:48:16 [1234] INFO: squidguard-bloom 0.1.0 started (1796320000.123)",
        "2026-12-03 17:48:17 [1234] WARN: Received sigHUP, reloaded configuration",
        "2026-12-03 17:48:18 [99] a line without a level",
        "2026-13-03 17:48:16 [1234] INFO: month 13",
        "2026-12-03 17:48:16 1234 INFO: no brackets",
        "2026-12-03 17:48:16 [12x] INFO: bad pid",
        "2026-12-03 17:48:16 [1] Request(a/b) http://x/ 1.2.3.4/- - GET PASS",
        "2026-12-03 17:48:16 [1] Request(a/b/c) http://x/ 1.2.3.4/- - GET",
        "short",
    ], 1, 2, UTC_CLOCK, decisions, events, bad)
    base = datetime(2026, 12, 3, 17, 48, 16, tzinfo=UTC).timestamp()
    assert decisions == []
    assert events == [
        (1, 2, base, "helper", 1234, "INFO", "started",
         "squidguard-bloom 0.1.0 started (1796320000.123)"),
        (1, 2, base + 1, "helper", 1234, "WARN", "reload",
         "Received sigHUP, reloaded configuration"),
        (1, 2, base + 2, "helper", 99, "INFO", "other", "a line without a level"),
    ]
    assert bad == [
        (3, "no 'YYYY-MM-DD HH:MM:SS [PID] ' at the start"),
        (4, "no 'YYYY-MM-DD HH:MM:SS [PID] ' at the start"),
        (5, "the PID is not a number"),
        (6, "Request(...) holds SOURCE/TARGET/REWRITE"),
        (7, "a Request line has 6 space-separated fields"),
        (8, "no 'YYYY-MM-DD HH:MM:SS [PID] ' at the start"),
    ]


def test_shipper_lines() -> None:
    events: list[tuple] = []
    bad: list[tuple[int, str]] = []
    parse_shipper([
        "2026-12-03 17:48:16,250 squidguard-bloom-ship INFO: status: link up; squidGuard: 10 "
        "lines / 900 bytes shipped, 0 bytes behind, lag 0.0 s",
        "2026-12-03 17:48:17,000 squidguard-bloom-ship WARNING: cannot connect to m:22; "
        "retrying with back-off (next in 1.0 s, at most every 60 s)",
        "2026-12-03 17:48:18,000 squidguard-bloom-ship INFO: link to m:22 restored after 2.0 s "
        "and 1 failed attempts",
        "Traceback (most recent call last):",
    ], 4, 5, UTC_CLOCK, events, bad)
    base = datetime(2026, 12, 3, 17, 48, 16, tzinfo=UTC).timestamp()
    assert [(e[2], e[5], e[6]) for e in events] == [
        (base + 0.25, "INFO", "status"), (base + 1, "WARNING", "link_down"),
        (base + 2, "INFO", "link_up")]
    assert events[0][:2] == (4, 5) and events[0][3:5] == ("shipper", None)
    assert bad == [(3, "no 'YYYY-MM-DD HH:MM:SS,mmm squidguard-bloom-ship ' at the start")]
    assert shipper_event_kind("giving up: the host key is unknown") == "gave_up"
    assert shipper_event_kind("link to m:22 up") == "link_up"


def test_clock_reads_the_proxies_zone_across_dst() -> None:
    berlin = Clock(ZoneInfo("Europe/Berlin"))
    assert berlin("2026-07-01 12:00:00") == datetime(2026, 7, 1, 10, 0, tzinfo=UTC).timestamp()
    assert berlin("2026-12-01 12:00:00") == datetime(2026, 12, 1, 11, 0, tzinfo=UTC).timestamp()
    for bad in ("2026-12-01 12:61:00", "2026-12-01T12:00:00", "2026-12-01 1a:00:00"):
        with pytest.raises(ValueError):
            berlin(bad)


def test_sniff_decides_the_parser_from_a_line_or_the_name() -> None:
    assert sniff("1764780000.123    245 10.0.0.1 TCP_MISS/200 1 GET u - H/- -", "x") == "access"
    assert sniff("2026-12-03 17:48:16 [1] INFO: x", "blocked") == "helper"
    assert sniff("2026-12-03 17:48:16,000 squidguard-bloom-ship INFO: x", "ship") == "shipper"
    assert sniff("junk", "access") == "access"
    assert sniff("junk", "blocked") is None


@pytest.mark.parametrize(("result", "hit"), [
    ("TCP_HIT", True), ("TCP_MEM_HIT", True), ("TCP_IMS_HIT", True),
    ("TCP_REFRESH_UNMODIFIED", True), ("TCP_REFRESH_FAIL_OLD", True), ("TCP_HIT_ABORTED", True),
    ("TCP_MISS", False), ("TCP_REFRESH_MODIFIED", False), ("TCP_TUNNEL", False),
    ("TCP_DENIED", False), ("NONE", False), ("TCP_SWAPFAIL_MISS", False),
])
def test_cache_hit_codes(result: str, hit: bool) -> None:
    assert is_hit(result) is hit
