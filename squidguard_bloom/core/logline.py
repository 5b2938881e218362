"""squidGuard's request log line: its one format, shared by everything that writes or reads it.

A request line reads ``Request(SRC/TARGET/REWRITE) URL CLIENT/FQDN IDENT
METHOD ACTION`` after the ``YYYY-MM-DD HH:MM:SS [PID] `` prefix the log
sink adds (:mod:`squidguard_bloom.helper.reqlog`).  The engine builds these
lines, the C fast path writes the same bytes (``put_log`` in
csrc/fastpath.c), the shipper carries them and the monitor reads them.
"""

from __future__ import annotations

from squidguard_bloom.core.rawtext import raw


def request_line(
    source: str,
    target: str,
    rewrite: str,
    url: str,
    client: str,
    fqdn: str,
    user: str,
    method: str,
    action: str,
) -> str:
    """squidGuard's ``Request(...)`` line body, fields made safe for one line."""
    # the client as sent, even empty (squidGuard writes "/fqdn" then)
    fields = (url, client, fqdn or "-", user or "-", method or "-")
    url, client, fqdn, user, method = (_one_line(f) for f in fields)
    return f"Request({source}/{target}/{rewrite}) {url} {client}/{fqdn} {user} {method} {action}"


def _one_line(value: str) -> str:
    # A user name may hold spaces and a URL may hold anything: keep each a
    # single space-free token so the monitor can split the line.  What is
    # not printable goes %-encoded byte by byte, as it came (rawtext's rule:
    # a byte that was not UTF-8 shows as itself, %FF, never as a character).
    if value.isprintable() and " " not in value:
        return value
    return "".join(c if c.isprintable() and c != " " else _pct(c) for c in value)


def _pct(c: str) -> str:
    return "".join(f"%{b:02X}" for b in raw(c))
