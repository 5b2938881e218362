"""The C access.log scanner: parse_access_data gives exactly parse_access's rows and bad lines.

parse_access (Python alone) is the reference; parse_access_data has C read the lines it can
(csrc/accesslog.c) and Python the others. Hypothesis feeds both the same pieces: lines built
from valid and odd fields, odd whitespace, Unicode, control bytes, and raw random bytes.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squidguard_bloom.monitor.parse import parse_access, parse_access_data, split_lines
from squidguard_bloom.native.accesslog import FIELDS, scan

GOOD = ("1796300000.010   1234 10.0.0.1 TCP_MISS/200 5123 GET "
        "http://www.site1.example/p/1/item.html?id=1 - HIER_DIRECT/192.0.2.1 text/html")


def both(data: bytes, tail: bool) -> tuple[list[tuple], list[tuple[int, str]]]:
    """parse_access_data's rows and bad lines of data, checked against parse_access's."""
    want_rows: list[tuple] = []
    want_bad: list[tuple[int, str]] = []
    lines = split_lines(data, tail)
    parse_access(lines, 3, want_rows, want_bad, first_id=100)
    rows: list[tuple] = []
    bad: list[tuple[int, str]] = []
    assert parse_access_data(data, tail, 3, rows, bad, first_id=100) == len(lines)
    assert bad == want_bad
    assert rows == want_rows
    assert [[type(v) for v in row] for row in rows] == [[type(v) for v in row]
                                                       for row in want_rows]
    return rows, bad


# -- strategies -------------------------------------------------------------------------------

def mostly(good: st.SearchStrategy[str], odd: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """good about 15 times in 16, else odd: most lines stay readable by C, some do not."""
    return st.sampled_from([True] * 15 + [False]).flatmap(lambda ok: good if ok else odd)


ODD_SPACE = ["\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u2003",
             "\u3000", "\x00"]
TOKEN_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7e)
digits = st.text("0123456789", min_size=1, max_size=6)
long_digits = st.text("0123456789", min_size=15, max_size=24)
odd_number = st.sampled_from(["", "-1", "+1", "1_0", "1e5", "0x10", "nan", "inf", "1.", ".5",
                              "\u0661\u0662", "\uff11", "1.5", "\u0967"])
number = mostly(digits, odd_number | long_digits)
ts = mostly(
    st.builds(lambda a, b: f"{a}.{b}", st.integers(1, 10**11).map(str),
              st.text("0123456789", min_size=1, max_size=4)),
    st.builds(lambda a, b: f"{a}.{b}", long_digits, digits) | digits | odd_number,
)
token = mostly(st.text(TOKEN_CHARS, min_size=1, max_size=12),
               st.text(min_size=1, max_size=6).filter(lambda s: s.split() == [s]))
host = st.sampled_from(["www.example.com", "WWW.Example.COM", "h", "", "[2001:DB8::1]",
                        "[::1", "[]", "xn--bcher-kva.example", "10.0.0.1", "a@b", "H:x",
                        "[V6]x", "Z"])
url = mostly(
    st.builds(lambda scheme, user, h, port, path, query: scheme + user + h + port + path + query,
              st.sampled_from(["", "http://", "HTTPS://", "ftp://", "x:/", "://", "a:///"]),
              st.sampled_from(["", "", "", "u@", "u:p@", "@", "a@b@", "u?x@", "u#@", "U/@"]),
              host,
              st.sampled_from(["", ":80", ":", ":443:1", ":8080"]),
              st.sampled_from(["", "/", "/a/b", "/x://y", "/@z", "/p?q", "//"]),
              st.sampled_from(["", "?q=@x", "?a#b", "#f", "?u=http://z/", "#@x", "?[y]"])),
    token,
)
field_of = {
    "result": st.builds(lambda r, sep, code: r + sep + code,
                        st.sampled_from(["TCP_MISS", "TCP_HIT", "", "NONE", "TCP_DENIED"]),
                        mostly(st.just("/"), st.sampled_from(["", "//", "/x/"])), number),
    "hierarchy": st.builds(lambda h, sep, p: h + sep + p,
                           st.sampled_from(["HIER_DIRECT", "HIER_NONE", "", "FIRSTUP_PARENT"]),
                           st.sampled_from(["/", "/", "/", "", "//"]),
                           st.sampled_from(["192.0.2.1", "-", "", "peer/x"])),
}
separator = mostly(st.just(" ") | st.text(" \t", min_size=1, max_size=3),
                   st.sampled_from(ODD_SPACE))


@st.composite
def access_line(draw: st.DrawFn) -> str:
    fields = [draw(ts), draw(number), draw(token), draw(field_of["result"]), draw(number),
              draw(st.sampled_from(["GET", "CONNECT", "POST", "get"]) | token), draw(url),
              draw(token | st.just("-")), draw(field_of["hierarchy"]),
              draw(st.sampled_from(["text/html", "-", "image/png"]) | token)]
    count = draw(st.sampled_from([10] * 30 + [0, 1, 9, 11]))
    fields = [*fields, draw(token)][:count]
    line = draw(st.text(" \t", max_size=2))
    for k, field in enumerate(fields):
        line += (draw(separator) if k else "") + field
    return line + draw(st.text(" \t", max_size=2))


@st.composite
def piece(draw: st.DrawFn) -> tuple[bytes, bool]:
    lines = [draw(access_line()).encode("utf-8") for _ in range(draw(st.integers(0, 6)))]
    if lines and draw(st.integers(0, 7)) == 0:  # a raw byte anywhere: control bytes, invalid UTF-8
        k = draw(st.integers(0, len(lines) - 1))
        at = draw(st.integers(0, len(lines[k])))
        lines[k] = lines[k][:at] + bytes([draw(st.integers(0, 255))]) + lines[k][at:]
    tail = draw(st.booleans())
    data = b"\n".join(lines) + (b"" if tail else b"\n" * bool(lines))
    return data, tail


# -- differential tests -----------------------------------------------------------------------

@given(piece())
def test_scanner_gives_pythons_rows_and_bad_lines(args: tuple[bytes, bool]) -> None:
    both(*args)


@given(st.binary(max_size=300), st.booleans())
def test_scanner_on_random_bytes(data: bytes, tail: bool) -> None:
    both(data, tail)


@given(st.text("0123456789", min_size=1, max_size=22), st.text("0123456789", max_size=22))
def test_time_stamps_round_as_pythons_float(whole: str, fraction: str) -> None:
    stamp = f"{whole}.{fraction}" if fraction else whole
    data = GOOD.replace("1796300000.010", stamp, 1).encode()
    got = scan(data, 1)
    assert got.fast == [1 if len(whole + fraction) <= 15 else 0]  # longer: Python reads it
    if got.fast[0]:
        assert got.ts == [float(stamp)]
    both(data, True)


# -- explicit cases ---------------------------------------------------------------------------

def test_typical_lines_are_read_in_c() -> None:
    lines = [GOOD,
             "1796300000.020      7 10.0.0.2 TCP_TUNNEL/200 999 CONNECT WWW.Site2.Example:443 - "
             "HIER_DIRECT/192.0.2.2 -",
             "1796300000.030\t0\t10.0.0.3\tNONE/000\t0\tNONE\terror:invalid-request\t-\tHIER_NONE/-"
             "\t-"]
    data = "\n".join(lines).encode() + b"\n"
    got = scan(data, 3)
    assert got.fast == [1, 1, 1]
    assert got.ts == [1796300000.01, 1796300000.02, 1796300000.03]
    assert (got.elapsed, got.status, got.size) == ([1234, 7, 0], [200, 200, 0], [5123, 999, 0])
    assert len(FIELDS) == 9
    assert got.fields == [
        "10.0.0.1", "TCP_MISS", "GET", "http://www.site1.example/p/1/item.html?id=1", "-",
        "HIER_DIRECT", "192.0.2.1", "text/html", "www.site1.example",
        "10.0.0.2", "TCP_TUNNEL", "CONNECT", "WWW.Site2.Example:443", "-", "HIER_DIRECT",
        "192.0.2.2", "-", "www.site2.example",
        "10.0.0.3", "NONE", "NONE", "error:invalid-request", "-", "HIER_NONE", "-", "-",
        "error",
        ""]
    rows, bad = both(data, False)
    assert bad == []
    assert rows[1] == (101, 3, 1796300000.02, 7, "10.0.0.2", "TCP_TUNNEL", 200, 999, "CONNECT",
                       "WWW.Site2.Example:443", "www.site2.example", "-", "HIER_DIRECT",
                       "192.0.2.2", "-")


@pytest.mark.parametrize(("url", "host"), [
    ("http://User:Pw@WWW.Example.com:8080/a@b?c", "www.example.com"),
    ("https://[2001:DB8::1]:443/x", "2001:db8::1"),
    ("http://[::1/x", "::1"),
    ("http://h.example?q=http://other/", "h.example"),
    ("http://h.example#f@x", "h.example"),
    ("h.example:443", "h.example"),
    ("no-scheme/path:80", "no-scheme/path"),
    ("a@b@C.example:1", "c.example"),
    ("http://", ""),
    ("x?y://z/w", "z"),
])
def test_hosts_read_in_c(url: str, host: str) -> None:
    data = GOOD.replace("http://www.site1.example/p/1/item.html?id=1", url).encode()
    got = scan(data, 1)
    assert got.fast == [1]
    assert got.fields[3] == url
    assert got.fields[8] == host
    rows, _ = both(data, True)
    assert rows[0][10] == host


@pytest.mark.parametrize(("line", "fast", "bad"), [
    (GOOD, 1, []),
    (GOOD + "\r", 0, []),  # Python's split() takes \r as space: the same row, read by Python
    # Python's split() takes \xa0 and \x1c as spaces too: read by Python, the same row
    (GOOD.replace(" ", "\xa0", 1), 0, []),
    (GOOD.replace(" ", "\x1c", 1), 0, []),
    (GOOD.replace("GET", "G\u2003T"), 0, [(0, "Squid native format has 10 fields, this line 11")]),
    (GOOD.replace("GET", "G\x00T"), 0, []),  # NUL becomes U+FFFD: Python reads it
    (GOOD.replace("GET", "GÉT"), 0, []),
    (GOOD + " extra", 0, [(0, "Squid native format has 10 fields, this line 11")]),
    (GOOD.replace("5123", "1" * 18), 1, []),
    (GOOD.replace("5123", "9" * 19), 0, [(0, "time, elapsed, status or size out of range")]),
    (GOOD.replace("5123", "+5"), 0, []),
    (GOOD.replace("TCP_MISS/200", "TCP_MISS/2000"), 1,
     [(0, "time, elapsed, status or size out of range")]),
    (GOOD.replace("TCP_MISS/200", "TCP_MISS"), 0,
     [(0, "time, elapsed, status or size is not a number")]),
    (GOOD.replace("1796300000.010", "1e9"), 0, []),
    (GOOD.replace("1796300000.010", "0"), 1, [(0, "time, elapsed, status or size out of range")]),
    (GOOD.replace("1796300000.010", "1796300000."), 0, []),
    (GOOD.replace("1796300000.010", "1796300000.12345"), 1, []),
    (GOOD.replace("1796300000.010", "1796300000.123456"), 0, []),  # 16 digits: Python
])
def test_explicit_lines(line: str, fast: int, bad: list[tuple[int, str]]) -> None:
    data = line.encode()
    assert scan(data, 1).fast == [fast]
    _, got_bad = both(data, True)
    assert got_bad == bad


def test_empty_and_blank_pieces() -> None:
    assert both(b"", False) == ([], [])
    assert both(b"", True) == ([], [(0, "Squid native format has 10 fields, this line 0")])
    rows, bad = both(b"\n" + GOOD.encode() + b"\n\n", False)
    assert [row[0] for row in rows] == [101]
    assert bad == [(0, "Squid native format has 10 fields, this line 0"),
                   (2, "Squid native format has 10 fields, this line 0")]
