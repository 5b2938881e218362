"""Line parsers: Squid's native access.log, the helper's squidGuard-format logs, the shipper's log.

Each parser takes a list of lines (text, without their newlines) and appends
row tuples, in the column order of its table, to the lists it is given; a
line it cannot read goes to ``bad`` as ``(index, reason)`` and never stops the
others. Parsers work on whole batches so the per-line cost stays a split and
a few conversions: ingest speed is the point. Ingest hands access.log over as
raw bytes (:func:`parse_access_data`): C (native/accesslog.py) reads the
lines it can, :func:`parse_access`'s Python code the others.

Formats (see docs/monitor.md, "What each parser reads"):

* Squid native: ``%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt``
* helper: ``YYYY-MM-DD HH:MM:SS [PID] Request(SOURCE/TARGET/REWRITE) URL CLIENT/FQDN USER
  METHOD ACTION`` for decisions, ``YYYY-MM-DD HH:MM:SS [PID] LEVEL: message`` for the rest
  of squidGuard.log (local time of the proxy)
* shipper: ``YYYY-MM-DD HH:MM:SS,mmm squidguard-bloom-ship LEVEL: message``
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime, tzinfo
from itertools import count, repeat

from squidguard_bloom.native.accesslog import Scanned, scan

ACCESS = "access"
HELPER = "helper"
SHIPPER = "shipper"
KINDS = (ACCESS, HELPER, SHIPPER)

ACCESS_COLUMNS = ("id", "proxy_id", "ts", "elapsed_ms", "client", "result", "status", "bytes",
                  "method", "url", "host", "ident", "hierarchy", "peer", "mime")
DECISION_COLUMNS = ("id", "proxy_id", "ts", "pid", "source", "target", "rewrite", "url", "host",
                    "client", "fqdn", "ident", "method", "action")
EVENT_COLUMNS = ("proxy_id", "stream_id", "ts", "origin", "pid", "level", "kind", "message")

_INT32 = 2**31 - 1
_INT64 = 2**63 - 1
_TS_MAX = 1e11  # year 5138: anything later is a garbled field, not a time

_SNIFF = (
    (re.compile(r"\d{9,11}\.\d{3} +-?\d+ "), ACCESS),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} squidguard-bloom-ship "), SHIPPER),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[\d+\] "), HELPER),
)


def sniff(line: str, stream_name: str) -> str | None:
    """The parser for a stream, from its first line (or its name); None: not known yet."""
    for pattern, kind in _SNIFF:
        if pattern.match(line):
            return kind
    if stream_name.lower().startswith("access"):
        return ACCESS
    return None


def host_of(url: str) -> str:
    """Lower-case host of a URL (``scheme://[user@]host[:port]/...``) or of ``host:port``."""
    i = url.find("://")
    if i < 0:
        authority = url
    else:
        j = url.find("/", i + 3)
        authority = url[i + 3:] if j < 0 else url[i + 3:j]
    host = _HOSTS.get(authority)
    if host is None:
        if len(_HOSTS) >= 100000:
            _HOSTS.clear()
        host = _HOSTS[authority] = _host(authority)
    return host


_HOSTS: dict[str, str] = {}  # authority -> host: a batch sees the same few thousand


def _host(authority: str) -> str:
    for sep in "?#":
        authority = authority.partition(sep)[0]
    if "@" in authority:
        authority = authority.rpartition("@")[2]
    if authority.startswith("["):
        close = authority.find("]")
        return authority[1:close if close > 0 else None].lower()
    return authority.partition(":")[0].lower()


class Clock:
    """Turns the proxies' local ``YYYY-MM-DD HH:MM:SS`` stamps into epoch seconds.

    tz: the proxies' time zone (None: this host's local time). The hour's start
    is computed once per distinct hour, so a line costs two int() calls.
    """

    def __init__(self, tz: tzinfo | None = None) -> None:
        self.tz = tz
        self._hours: dict[str, float] = {}

    def __call__(self, stamp: str) -> float:
        """Epoch seconds of stamp; ValueError if it is not a valid stamp."""
        if stamp[13] != ":" or stamp[16] != ":":
            raise ValueError("not a time")
        hour = stamp[:13]
        base = self._hours.get(hour)
        if base is None:
            if hour[4] != "-" or hour[7] != "-" or hour[10] != " ":
                raise ValueError("not a time")
            base = datetime(int(hour[:4]), int(hour[5:7]), int(hour[8:10]), int(hour[11:13]),
                            tzinfo=self.tz).timestamp()
            if len(self._hours) > 10000:
                self._hours.clear()
            self._hours[hour] = base
        minute, second = int(stamp[14:16]), int(stamp[17:19])
        if not (0 <= minute < 60 and 0 <= second < 61):
            raise ValueError("not a time")
        return base + minute * 60 + second


def split_lines(data: bytes, tail: bool) -> list[str]:
    """A piece's whole lines as text (invalid UTF-8 and NUL as U+FFFD); with tail, the text
    after the last newline is a line too."""
    text = data.decode("utf-8", "replace")
    if "\x00" in text:  # PostgreSQL text cannot hold NUL; the raw bytes stay in unparsed
        text = text.replace("\x00", "\ufffd")
    lines = text.split("\n")
    if not tail:
        lines.pop()  # the empty piece after the last newline
    return lines


def parse_access(lines: list[str], proxy_id: int, rows: list[tuple], bad: list[tuple[int, str]],
                 first_id: int = 1) -> None:
    """Squid native access.log lines -> ``access`` rows; line i's row gets id first_id + i.
    Python alone: the reference for :func:`parse_access_data`."""
    _access_rows(lines, None, proxy_id, rows, bad, first_id)


def parse_access_data(data: bytes, tail: bool, proxy_id: int, rows: list[tuple],
                      bad: list[tuple[int, str]], first_id: int = 1) -> int:
    """:func:`parse_access` of :func:`split_lines` (data, tail), with C reading the lines it
    can (squidguard_bloom.native.accesslog) and Python the others; the number of lines."""
    n = data.count(b"\n") + (1 if tail else 0)
    scanned = scan(data, n)
    _access_rows(split_lines(data, tail) if 0 in scanned.fast else None, scanned, proxy_id,
                 rows, bad, first_id)
    return n


_Fields = tuple[float, int, int, int, str, str, str, str, str, str, str, str, str]


def _access_fields(line: str) -> _Fields | str:
    """(ts, elapsed, status, size, client, result, method, url, ident, hierarchy, peer, mime,
    host) of an access.log line as Python reads it, or why it cannot be read."""
    f = line.split()
    if len(f) != 10:
        return f"Squid native format has 10 fields, this line {len(f)}"
    result, _, status = f[3].partition("/")
    try:
        ts = float(f[0])
        elapsed = int(f[1])
        code = int(status)
        size = int(f[4])
    except ValueError:
        return "time, elapsed, status or size is not a number"
    hierarchy, _, peer = f[8].partition("/")
    url = f[6]
    return (ts, elapsed, code, size, f[2], result, f[5], url, f[7], hierarchy, peer, f[9],
            host_of(url))


def _access_rows(lines: list[str] | None, scanned: Scanned | None, proxy_id: int,
                 rows: list[tuple], bad: list[tuple[int, str]], first_id: int) -> None:
    """The rows of the lines scanned read (fast) and of the others in lines (slow; all of
    them when scanned is None), in line order."""
    append = rows.append
    marks: Iterable[int]
    tss: Iterable[float]
    els: Iterable[int]
    codes: Iterable[int]
    sizes: Iterable[int]
    fields: Iterator[str]
    if scanned is None:
        assert lines is not None
        marks = repeat(0, len(lines))
        tss = repeat(0.0)
        els = codes = sizes = repeat(0)
        fields = repeat("")
    else:
        marks, tss, els, codes, sizes = (scanned.fast, scanned.ts, scanned.elapsed,
                                         scanned.status, scanned.size)
        fields = iter(scanned.fields)
    f = fields
    for (i, fast, ts, elapsed, code, size, client, result, method, url, ident, hierarchy, peer,
         mime, host) in zip(count(), marks, tss, els, codes, sizes, f, f, f, f, f, f, f, f, f):
        if not fast:
            assert lines is not None
            got = _access_fields(lines[i])
            if isinstance(got, str):
                bad.append((i, got))
                continue
            (ts, elapsed, code, size, client, result, method, url, ident, hierarchy,  # noqa: PLW2901
             peer, mime, host) = got  # noqa: PLW2901 (a slow line: Python read its fields)
        if not (0.0 < ts < _TS_MAX and 0 <= elapsed <= _INT32 and 0 <= code <= 999
                and 0 <= size <= _INT64):
            bad.append((i, "time, elapsed, status or size out of range"))
            continue
        append((first_id + i, proxy_id, ts, elapsed, client, result, code, size, method, url,
                host, ident, hierarchy, peer, mime))


_HELPER_KINDS = (
    # (kind, test on the message) in order; the first that matches names the event
    ("status", re.compile(r"^status: ")),
    ("emergency", re.compile(r"emergency mode", re.I)),
    ("reload_failed", re.compile(r"reload failed", re.I)),
    ("reload", re.compile(r"sighup|reload", re.I)),
    ("stopped", re.compile(r" stopped\b")),
    ("ready", re.compile(r"ready for requests")),
    ("started", re.compile(r" started\b")),
)
_LEVEL = re.compile(r"([A-Z]{3,8}): ")


def helper_event_kind(message: str) -> str:
    """What a squidGuard.log message reports: started, ready, stopped, reload, ... or other."""
    for kind, test in _HELPER_KINDS:
        if test.search(message):
            return kind
    return "other"


_STATUS_WORD = re.compile(r"([a-z_]+)=(\S*)")


def parse_helper_status(message: str) -> dict[str, str] | None:
    """The ``key=value`` fields of a helper status message (``status: answered=…``),
    None when message is not one. Keys: see squidguard_bloom.helper.health (new keys may follow)."""
    if not message.startswith("status: "):
        return None
    fields = dict(_STATUS_WORD.findall(message, 8))
    return fields if "answered" in fields and "emergency" in fields else None


_SHIP_FILE = re.compile(r"^([^:;]+): (\d+) lines / (\d+) bytes shipped, (\d+) bytes behind, "
                        r"lag ([0-9.]+) s$")


def parse_shipper_status(message: str) -> tuple[str, dict[str, tuple[int, int, int, float]]] | None:
    """(link, {file: (lines, bytes, bytes behind, lag seconds)}) of a shipper status
    message (``status: link up; NAME: N lines / N bytes shipped, N bytes behind, lag X s; …``),
    None when message is not one. link is the state and its fault tag, if any:
    ``up``, ``down [fault=refused]``."""
    if not message.startswith("status: link "):
        return None
    parts = message[8:].split("; ")
    link = parts[0].removeprefix("link ")
    files: dict[str, tuple[int, int, int, float]] = {}
    for part in parts[1:]:
        m = _SHIP_FILE.match(part)
        if m is None:
            return None
        files[m.group(1)] = (int(m.group(2)), int(m.group(3)), int(m.group(4)),
                             float(m.group(5)))
    return link, files


def parse_helper(lines: list[str], proxy_id: int, stream_id: int, clock: Clock,
                 decisions: list[tuple], events: list[tuple], bad: list[tuple[int, str]],
                 first_id: int = 1) -> None:
    """squidGuard-format lines -> ``decisions`` rows (Request lines; line i's row gets id
    first_id + i) and ``events`` rows."""
    dappend = decisions.append
    for i, line in enumerate(lines):
        try:
            ts = clock(line[:19])
        except (ValueError, IndexError):
            bad.append((i, "no 'YYYY-MM-DD HH:MM:SS [PID] ' at the start"))
            continue
        close = line.find("] ", 21)
        if line[19:21] != " [" or close < 0:
            bad.append((i, "no 'YYYY-MM-DD HH:MM:SS [PID] ' at the start"))
            continue
        try:
            pid = int(line[21:close])
        except ValueError:
            bad.append((i, "the PID is not a number"))
            continue
        if not 0 <= pid <= _INT32:
            bad.append((i, "the PID is out of range"))
            continue
        rest = line[close + 2:]
        if rest.startswith("Request("):
            f = rest.split(" ")
            if len(f) != 6 or not f[0].endswith(")"):
                bad.append((i, "a Request line has 6 space-separated fields"))
                continue
            names = f[0][8:-1].split("/")
            if len(names) != 3:
                bad.append((i, "Request(...) holds SOURCE/TARGET/REWRITE"))
                continue
            client, _, fqdn = f[2].partition("/")
            url = f[1]
            dappend((first_id + i, proxy_id, ts, pid, names[0], names[1], names[2], url,
                     host_of(url), client, fqdn, f[3], f[4], f[5]))
            continue
        m = _LEVEL.match(rest)
        level, message = (m.group(1), rest[m.end():]) if m else ("INFO", rest)
        events.append((proxy_id, stream_id, ts, HELPER, pid, level,
                       helper_event_kind(message), message))


_SHIPPER_PREFIX = " squidguard-bloom-ship "


def shipper_event_kind(message: str) -> str:
    """What a shipper log message reports: status, link_up, link_down, gave_up or other."""
    if message.startswith("status: "):
        return "status"
    if message.startswith("link to ") and (message.endswith(" up") or " restored " in message):
        return "link_up"
    if "retrying with back-off" in message:
        return "link_down"
    if message.startswith("giving up"):
        return "gave_up"
    return "other"


def parse_shipper(lines: list[str], proxy_id: int, stream_id: int, clock: Clock,
                  events: list[tuple], bad: list[tuple[int, str]]) -> None:
    """The shipper's own log lines -> ``events`` rows."""
    for i, line in enumerate(lines):
        try:
            ts = clock(line[:19])
            if line[19] != ",":
                raise ValueError
            ts += int(line[20:23]) / 1000.0
        except (ValueError, IndexError):
            bad.append((i, "no 'YYYY-MM-DD HH:MM:SS,mmm squidguard-bloom-ship ' at the start"))
            continue
        if not line.startswith(_SHIPPER_PREFIX, 23):
            bad.append((i, "no 'YYYY-MM-DD HH:MM:SS,mmm squidguard-bloom-ship ' at the start"))
            continue
        rest = line[23 + len(_SHIPPER_PREFIX):]
        m = _LEVEL.match(rest)
        level, message = (m.group(1), rest[m.end():]) if m else ("INFO", rest)
        events.append((proxy_id, stream_id, ts, SHIPPER, None, level,
                       shipper_event_kind(message), message))
