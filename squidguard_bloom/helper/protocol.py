"""Squid's url_rewrite helper protocol: request lines in, reply lines out.

This module knows channel-IDs, tokens, key=value extras and reply quoting,
and nothing about ACLs.  Everything is bytes on the wire; text fields are
decoded and replies encoded by the rule of :mod:`squidguard_bloom.core.rawtext`
(UTF-8 with ``surrogateescape``), so any byte sequence survives a round
trip and nothing raises on odd input.

Request line (Squid 3.5+, default ``url_rewrite_extras``)::

    [channel-ID SP] URL SP client/fqdn SP user... SP method [SP key=value]...

The user field may contain spaces and quotes (Squid sends it raw), so the
method is found from the right: it is the last token before the trailing
``key=value`` extras.  Older Squids' ``URL ip/fqdn ident method`` is the
same shape without extras.
"""

from __future__ import annotations

import re

from squidguard_bloom.core.engine.request import Request
from squidguard_bloom.core.rawtext import raw as _raw
from squidguard_bloom.core.rawtext import text as _text

#: How Squid 3.4+ reads a reply's first word; legacy replies are for Squid <= 3.3.
REPLY_STYLES = ("squid34", "legacy")

_TOKEN = re.compile(rb"[^ \t]+")
_EXTRA = re.compile(rb"[A-Za-z0-9_-]+=")




def parse_request(line: bytes) -> Request:
    """Parse one request line (without its line end); never raises.

    A leading all-digit token followed by more text is the channel-ID.
    A line without a URL gets ``problem`` set and ``url`` empty.
    """
    if b"\t" in line or b"  " in line or line[:1] == b" " or line[-1:] == b" ":
        spans = [(m.start(), m.end()) for m in _TOKEN.finditer(line)]
        toks = [line[a:b] for a, b in spans]
    else:  # the usual line: single spaces only
        spans = None
        toks = line.split(b" ") if line else []
    first = 0
    channel = None
    if toks and toks[0].isdigit():
        channel = toks[0]
        if len(toks) == 1:
            # "7" alone: a channel-ID whose request was empty (cannot be a URL).
            return Request(channel=channel, url="", problem="empty request")
        first = 1
    n = len(toks) - first
    if n <= 0:
        return Request(channel=None, url="", problem="empty request line")
    url = _text(toks[first])
    if n < 2:
        return Request(channel, url, problem="no client address")
    client, _, fqdn = toks[first + 1].partition(b"/")
    # The client stays as sent, "-" too: squidGuard shows it so in %a and its logs.
    req = Request(channel, url, _text(client), "" if fqdn[:1] == b"-" else _text(fqdn))
    # Trailing key=value extras, then the method just before them.
    end = len(toks)
    while end > first + 2 and b"=" in toks[end - 1] and _EXTRA.match(toks[end - 1]):
        end -= 1
    if end < len(toks):
        req.extras_raw = tuple(toks[end:])
    if end <= first + 2:
        req.problem = "no method"
        return req
    req.method = _text(toks[end - 1])
    if end > first + 3:  # the user field: everything between client and method, verbatim
        if spans is None:
            user = b" ".join(toks[first + 2 : end - 1])
        else:
            user = line[spans[first + 2][0] : spans[end - 2][1]]
        req.user = "" if user == b"-" else _text(user)
    else:
        req.problem = "no user field"
    return req


def channel_of(line: bytes) -> bytes | None:
    """The channel-ID of a request line, as :func:`parse_request` reads it (never raises)."""
    m = _TOKEN.search(line)
    if m is None or not m.group().isdigit():
        return None
    return m.group()


def quote(value: str) -> bytes:
    """A reply value as a double-quoted string Squid reads back unchanged.

    Squid's parser takes backslash as an escape and turns ``\\n``/``\\r`` into
    line ends, so backslash and quote are escaped, and control characters,
    which no URL may hold, are %-encoded so they can never end the line.
    """
    raw = _raw(value)
    if _NEEDS_ESCAPE.search(raw):
        raw = _NEEDS_ESCAPE.sub(_escape_byte, raw)
    return b'"' + raw + b'"'


_NEEDS_ESCAPE = re.compile(rb'[\x00-\x1f\x7f"\\]')


def _escape_byte(m: re.Match[bytes]) -> bytes:
    b = m.group()
    if b in (b'"', b"\\"):
        return b"\\" + b
    return b"%%%02X" % b[0]


def _prefix(channel: bytes | None) -> bytes:
    return channel + b" " if channel is not None else b""


def reply_pass(channel: bytes | None, style: str = "squid34") -> bytes:
    """No change ("ERR" in 3.4+ terms; an empty line in legacy style)."""
    if style == "legacy":
        return _prefix(channel) + b"\n"
    return _prefix(channel) + b"ERR\n"


def reply_redirect(
    channel: bytes | None, url: str, status: int = 302, style: str = "squid34"
) -> bytes:
    """Redirect the client: ``OK status=302 url="..."``."""
    if style == "legacy":
        return _prefix(channel) + b"%d:" % status + _legacy_url(url) + b"\n"
    return _prefix(channel) + b"OK status=%d url=" % status + quote(url) + b"\n"


def reply_rewrite(channel: bytes | None, url: str, style: str = "squid34") -> bytes:
    """Fetch url instead, under the original URL: ``OK rewrite-url="..."``."""
    if style == "legacy":
        return _prefix(channel) + _legacy_url(url) + b"\n"
    return _prefix(channel) + b"OK rewrite-url=" + quote(url) + b"\n"


def reply_error(channel: bytes | None, message: str, style: str = "squid34") -> bytes:
    """A helper fault: ``BH message="..."`` (Squid retries, then passes the request)."""
    if style == "legacy":
        return reply_pass(channel, style)
    return _prefix(channel) + b"BH message=" + quote(message) + b"\n"


def reply_unparsable(channel: bytes | None, message: str, style: str = "squid34") -> bytes:
    """A request we could not read: no change, with the reason as a note."""
    if style == "legacy":
        return reply_pass(channel, style)
    return _prefix(channel) + b"ERR message=" + quote(message) + b"\n"


def _legacy_url(url: str) -> bytes:
    # A legacy reply is one bare word: anything that could split it is %-encoded.
    raw = _raw(url)
    return re.sub(rb"[\x00-\x20\x7f]", lambda m: b"%%%02X" % m.group()[0], raw)
