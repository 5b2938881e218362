"""URL normalisation: one request URL -> the strings lists are looked up by.

squidGuard 1.6 decodes the URL once, lower-cases it, splits host and path
and derives three lookup strings (§6 of docs/squidguard.md).  We do the
same, with every known evasion closed, so that no spelling of a blacklisted
URL looks up anything but the canonical host and path:

* the host comes after the *last* ``@`` of the authority, as browsers and
  Squid read it (squidGuard takes the first: ``a@b@host`` got through);
* the authority ends at ``/``, ``?``, ``#`` or ``\\``;
* all trailing dots go, before a port too; ``%``-escapes in the host are
  decoded until none is left (``%252e``), spaces in it are dropped;
* numeric IPv4 spellings (``2130706433``, ``0x7f.1``, ``0177.0.0.1``,
  ``127.1``) become a dotted quad; IPv6 literals their compressed form,
  and both count as addresses for ``in-addr``;
* an internationalised host is in its punycode form (``BÜCHER.example``
  and ``xn--bcher-kva.example`` are one host: :mod:`squidguard_bloom.core.idn`);
* in the path, backslashes are slashes, runs of ``/`` collapse (before the
  query) and ``.``/``..`` segments are resolved.

What users and logs see (``orig``: decoded once, ``%20`` kept, original
case) is exactly squidGuard's.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from squidguard_bloom.records import Record

_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")
_WWW = re.compile(r"(?:www|web|ftp)\d*\.")
_NUMERIC_V4 = re.compile(r"[0-9a-fx.]+")
_SLASHES = re.compile(r"/{2,}")
_AUTHORITY_END = re.compile(r"[/?#\\]")
_HOST_END = re.compile(r"[/?#\\@:]")


class Target(Record):
    """The lookup strings of one request URL."""

    orig: str  # decoded once, %20 kept, original case: for %u, logs and rewrites
    host: str  # canonical lower-case host: domain lookups
    port: int | None
    furl: str  # host[:port]/path?query: expressions and the second url lookup
    surl: str  # host without www./web./ftp.N and port, then path: first url lookup
    dotted: bool  # the host is an IP address (what in-addr tests)
    # host with its www. but no port, then path: a third url lookup, needed
    # only when both a www. prefix and a port are there ("" otherwise)
    wurl: str = ""
    # furl with the host as it came, not ASCII, when it was put in punycode
    # ("" otherwise): expressions are searched in it too, as squidGuard does
    ufurl: str = ""


def _decode_once(url: str) -> str:
    """squidGuard's single %-decoding pass: %20 stays, %00 ends the URL."""
    if "%" not in url:
        return url
    raw = url.encode("utf-8", "surrogateescape")

    def one(m: re.Match[bytes]) -> bytes:
        code = m.group(1)
        return m.group() if code == b"20" else bytes([int(code, 16)])

    out = _PCT.sub(one, raw)
    nul = out.find(b"\x00")
    if nul >= 0:
        out = out[:nul]
    return out.decode("utf-8", "surrogateescape")


def _decode_host(host: str) -> str:
    if "%" not in host and " " not in host and "\t" not in host:
        return host  # the usual case: already lower-case, nothing to decode
    for _ in range(4):
        if "%" not in host:
            break
        raw = host.encode("utf-8", "surrogateescape")
        raw = _PCT.sub(lambda m: bytes([int(m.group(1), 16)]), raw)
        nxt = raw.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
        if nxt == host:
            break
        host = nxt
    return host.replace(" ", "").replace("\t", "").lower()


def _resplit_host(host: str) -> str:
    """The host inside a host whose decoding revealed a delimiter (``%252f``, ``%2540``).

    The authority is split again as if the delimiters had been there all
    along, so decoding can only reveal the host Squid would reach, never hide it.
    """
    m = _AUTHORITY_END.search(host)
    if m is not None:
        host = host[: m.start()]
    host = host.rsplit("@", 1)[-1]
    return host.split(":", 1)[0]


def _canonical_host(host: str) -> tuple[str, bool]:
    """(host, is_address) with numeric and IPv6 spellings made canonical."""
    if host.startswith("["):
        inner = host[1:].split("]", 1)[0].split("%", 1)[0]
        try:
            addr = ipaddress.IPv6Address(inner)
        except ValueError:
            return host, False
        mapped = addr.ipv4_mapped
        return (str(mapped) if mapped is not None else addr.compressed), True
    if host and host[0].isdigit() and _NUMERIC_V4.fullmatch(host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host)), True
        except OSError:
            return host, False
    return host, False


def _clean_path(path: str) -> str:
    """Backslashes, repeated slashes and dot segments, before the query only.

    A ``#fragment`` is kept behind the cleaned path and query, unchanged, as
    squidGuard keeps it: an expression or url entry that names it still
    matches a hand-made request that carries one.
    """
    if not path or path == "/":
        return path
    if "#" in path:
        path, hash_, fragment = path.partition("#")
        return _clean_path(path) + hash_ + fragment
    query = ""
    q = path.find("?")
    if q >= 0:
        path, query = path[:q], path[q:]
    if "\\" in path:
        path = path.replace("\\", "/")
    if "//" in path:
        path = _SLASHES.sub("/", path)
    if "/." in path:
        out: list[str] = []
        parts = path.split("/")
        for seg in parts[1:]:
            if seg == ".":
                continue
            if seg == "..":
                if out:
                    out.pop()
                continue
            out.append(seg)
        last = parts[-1]
        path = "/" + "/".join(out) + ("/" if last in (".", "..") and out else "")
    return path + query


def parse_target(url: str) -> Target | None:
    """The lookup strings of url; None when it has no host (squidGuard's BH case)."""
    orig = _decode_once(url)
    low = orig.lower()
    sep = low.find("://")
    rest = low[sep + 3 :] if sep >= 0 else low
    # The authority ends at the first "/", "?", "#" or "\".
    m = _AUTHORITY_END.search(rest)
    end = m.start() if m is not None else len(rest)
    authority, path = rest[:end], rest[end:]
    if "@" in authority:
        authority = authority.rsplit("@", 1)[1]
    port: int | None = None
    port_text = ""
    if authority.startswith("["):
        close = authority.find("]")
        host = authority[: close + 1] if close >= 0 else authority
        tail = authority[close + 1 :] if close >= 0 else ""
        if tail.startswith(":"):
            port_text = tail[1:]
    else:
        host, colon, port_text = authority.partition(":")
        if not colon:
            port_text = ""
    if port_text.isascii() and port_text.isdigit():  # not "¹" (a digit to isdigit, not to int)
        port = int(port_text)
    host = _decode_host(host)
    if not host.startswith("[") and _HOST_END.search(host):
        host = _resplit_host(host)
    host = host.rstrip(".")
    uhost = ""
    if not host.isascii():  # before the address check: full-width digits are an address
        from squidguard_bloom.core.idn import ascii_host  # noqa: PLC0415 - IDN hosts only

        uhost, host = host, ascii_host(host).rstrip(".")
    if not host:
        return None
    dotted = False
    if host[0].isdigit() or host[0] == "[":
        host, dotted = _canonical_host(host)
    path = _clean_path(path)
    if path.startswith(("?", "#")):
        path = "/" + path
    hostport = f"{host}:{port_text}" if port_text else host
    furl = hostport + path
    m = _WWW.match(host)
    if m is not None and m.end() < len(host):
        surl = host[m.end() :] + path
        # An entry www.x.com/p is stored with its www.: surl has none and furl
        # has the port, so http://www.x.com:8080/p would slip past both.
        wurl = host + path if port_text else ""
    else:
        surl, wurl = host + path, ""
    ufurl = ""
    if uhost and uhost != host:
        ufurl = (f"{uhost}:{port_text}" if port_text else uhost) + path
    return Target(orig, host, port, furl, surl, dotted, wurl, ufurl)
