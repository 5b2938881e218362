"""Parsing Squid's request lines and writing replies it reads back unchanged."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squidguard_bloom.helper.protocol import (
    parse_request,
    quote,
    reply_pass,
    reply_redirect,
    reply_rewrite,
    reply_unparsable,
)

# Raw lines captured from Squid 5.7 (docs/squid-helper.md §2.3).
SQUID57 = [
    (b"http://127.0.0.1:43151/page1 127.0.0.2/127.0.0.2 - GET myip=127.0.0.1 myport=39771",
     None, "http://127.0.0.1:43151/page1", "127.0.0.2", "127.0.0.2", "", "GET"),
    (b"127.0.0.1:43151 127.0.0.2/127.0.0.2 - CONNECT myip=127.0.0.1 myport=39771",
     None, "127.0.0.1:43151", "127.0.0.2", "127.0.0.2", "", "CONNECT"),
    (b"5 allowed.example:43985 127.0.0.5/127.0.0.5 - CONNECT myip=127.0.0.1 myport=43041",
     b"5", "allowed.example:43985", "127.0.0.5", "127.0.0.5", "", "CONNECT"),
    (b'http://127.0.0.1:39923/authed 127.0.0.2/127.0.0.2 john doe "x"% GET myip=127.0.0.1 '
     b"myport=40669", None, "http://127.0.0.1:39923/authed", "127.0.0.2", "127.0.0.2",
     'john doe "x"%', "GET"),
    (b"http://a/ 10.0.0.1/- - GET", None, "http://a/", "10.0.0.1", "", "", "GET"),
    (b"http://a/ 10.0.0.1 bob POST", None, "http://a/", "10.0.0.1", "", "bob", "POST"),
    (b"00042 http://a/\t10.0.0.1/-\t-\tHEAD  x=1", b"00042", "http://a/", "10.0.0.1", "", "",
     "HEAD"),
]


@pytest.mark.parametrize(("line", "channel", "url", "client", "fqdn", "user", "method"), SQUID57)
def test_parses_real_squid_lines(
    line: bytes, channel: bytes | None, url: str, client: str, fqdn: str, user: str, method: str
) -> None:
    """Channel-ID, URL, client/fqdn, user (spaces kept), method, extras."""
    req = parse_request(line)
    assert (req.channel, req.url, req.client, req.fqdn, req.user, req.method) == (
        channel, url, client, fqdn, user, method)
    assert req.problem == ""


def test_extras_are_collected() -> None:
    """Trailing key=value pairs become extras."""
    req = parse_request(b"http://a/ 10.0.0.1/- - GET myip=127.0.0.1 myport=3128")
    assert req.extras == {"myip": "127.0.0.1", "myport": "3128"}


@pytest.mark.parametrize(
    ("line", "problem"),
    [(b"", "empty request line"), (b"   ", "empty request line"), (b"7", "empty request"),
     (b"http://a/", "no client address"), (b"http://a/ 1.2.3.4", "no method"),
     (b"http://a/ 1.2.3.4 GET", "no user field")],
)
def test_missing_fields_are_reported_not_raised(line: bytes, problem: str) -> None:
    """Short lines parse to a Request whose problem says what is missing."""
    assert parse_request(line).problem == problem


def test_replies_in_squid34_style() -> None:
    """ERR for no change; OK status=/url=; OK rewrite-url=; channel echoed."""
    assert reply_pass(None) == b"ERR\n"
    assert reply_pass(b"17") == b"17 ERR\n"
    assert reply_redirect(b"3", "http://w/?u=a b") == b'3 OK status=302 url="http://w/?u=a b"\n'
    assert reply_redirect(None, "http://w/", 307) == b'OK status=307 url="http://w/"\n'
    assert reply_rewrite(None, "http://b/") == b'OK rewrite-url="http://b/"\n'
    assert reply_unparsable(b"9", "empty") == b'9 ERR message="empty"\n'


def test_legacy_replies() -> None:
    """Squid <= 3.3 style: blank, 30x:URL, bare URL; nothing can split the word."""
    assert reply_pass(None, "legacy") == b"\n"
    assert reply_pass(b"2", "legacy") == b"2 \n"
    assert reply_redirect(None, "http://w/a b", 301, "legacy") == b"301:http://w/a%20b\n"
    assert reply_rewrite(b"4", "http://b/", "legacy") == b"4 http://b/\n"


def unquote_like_squid(value: bytes) -> bytes:
    """Squid's quoted-string reading: backslash escapes, \\n and \\r become line ends."""
    assert value[:1] == b'"' and value[-1:] == b'"'
    out, i, body = bytearray(), 0, value[1:-1]
    while i < len(body):
        c = body[i : i + 1]
        if c == b"\\":
            nxt = body[i + 1 : i + 2]
            out += {b"n": b"\n", b"r": b"\r"}.get(nxt, nxt)
            i += 2
            continue
        assert c != b'"', "unescaped quote would end the value early"
        out += c
        i += 1
    return bytes(out)


@given(st.text())
def test_quoted_values_cannot_break_the_reply(value: str) -> None:
    """Any text quotes into one line that Squid reads back as the same value
    (control characters arrive %-encoded, the rest byte for byte)."""
    q = quote(value)
    assert b"\n" not in q and b"\r" not in q
    raw = value.encode("utf-8", "surrogateescape")
    expected = re.sub(rb"[\x00-\x1f\x7f]", lambda m: b"%%%02X" % m.group()[0], raw)
    assert unquote_like_squid(q) == expected


line_bytes = st.binary(max_size=300).map(lambda b: b.replace(b"\n", b" "))


@given(st.one_of(st.none(), st.integers(0, 10**12).map(lambda n: str(n).encode())), line_bytes)
def test_any_line_parses_and_keeps_the_channel(channel: bytes | None, rest: bytes) -> None:
    """Random bytes never raise, and a channel-ID in front is always recovered."""
    line = rest if channel is None else channel + b" " + rest
    req = parse_request(line)
    if channel is not None and rest.strip(b" \t"):
        assert req.channel == channel
    if channel is None and req.channel is not None:
        assert line.lstrip(b" \t").startswith(req.channel)


@given(st.lists(st.binary(min_size=1, max_size=12).filter(lambda b: b" " not in b
                                                          and b"\t" not in b), max_size=8))
def test_single_space_fast_path_parses_like_the_general_one(tokens):
    line = b" ".join(tokens)
    fast = parse_request(line)
    slow = parse_request(b" " + line)  # a leading blank forces the general tokenizer
    assert fast == slow
