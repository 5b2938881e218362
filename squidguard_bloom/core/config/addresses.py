"""Client addresses of a ``src`` block: ``ip`` values and ``iplist`` files.

squidGuard reads IPv4 only, as four decimal numbers (``010.0.0.1`` is
10.0.0.1, not octal).  Forms: ``A.B.C.D``, ``A.B.C.D/NN`` (the network is
masked), ``A.B.C.D/M.M.M.M`` (the address is *not* masked, so host bits make
it match nothing) and ``A.B.C.D-E.F.G.H`` (inclusive; reversed is an error).
We also take the same forms in IPv6, which squidGuard refuses.
"""

from __future__ import annotations

import ipaddress
import re

from squidguard_bloom.core.config.model import IPEntry

_V4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_LIST_SEP = re.compile(r"[ \t,\r\n]+")
_LIST_TOKEN = re.compile(r"[0-9./-]+")
_LIST_TOKEN6 = re.compile(r"[0-9A-Fa-f.:/-]+")  # only for words holding ":" (IPv6)
_FORMS = ("expected A.B.C.D, A.B.C.D/NN, A.B.C.D/M.M.M.M or A.B.C.D-E.F.G.H "
          "(or the same forms in IPv6)")


def _addr(text: str) -> tuple[int, int]:
    """(value, version) of one address; ValueError when it is not one."""
    if _V4.fullmatch(text):
        parts = [int(p) for p in text.split(".")]
        if any(p > 255 for p in parts):
            raise ValueError(f"address error in {text!r}: each part must be 0-255")
        return (parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3], 4
    if ":" in text:
        try:
            return int(ipaddress.IPv6Address(text)), 6
        except ValueError:
            pass
    raise ValueError(f"address error in {text!r}: {_FORMS}")


def parse_ip(text: str) -> IPEntry:
    """One ``ip`` value (address, CIDR, address/netmask or range) -> IPEntry."""
    if "/" in text:
        addr_text, mask_text = text.split("/", 1)
        value, version = _addr(addr_text)
        width = 32 if version == 4 else 128
        if mask_text.isdigit():
            bits = int(mask_text)
            if bits > width:
                raise ValueError(f"prefix error /{mask_text} in {text!r}: use /0 to /{width}")
            mask = ((1 << width) - 1) ^ ((1 << (width - bits)) - 1)
            return IPEntry("mask", value & mask, mask, version)
        mask, mask_version = _addr(mask_text)
        if mask_version != version:
            raise ValueError(f"address error in {text!r}: address and netmask differ in family")
        return IPEntry("mask", value, mask, version)  # not masked, as squidGuard
    if "-" in text:
        lo_text, hi_text = text.split("-", 1)
        (lo, v1), (hi, v2) = _addr(lo_text), _addr(hi_text)
        if v1 != v2 or lo > hi:
            raise ValueError(f"iprange error in {text!r}: the first address must not be "
                             "above the second")
        return IPEntry("range", lo, hi, v1)
    value, version = _addr(text)
    return IPEntry("mask", value, (1 << (32 if version == 4 else 128)) - 1, version)


def split_ip_words(words: list[str]) -> list[tuple[int, str]]:
    """The values of an ``ip`` line as (index of the word it starts in, text).

    Commas separate values, and ``A - B`` written with blanks is one range,
    as squidGuard reads them.
    """
    parts: list[tuple[int, str]] = []
    for n, word in enumerate(words):
        for piece in re.split(r"(,|-)", word):
            if piece in ("", ","):
                continue
            if parts and (piece == "-" or parts[-1][1].endswith("-")):
                parts[-1] = (parts[-1][0], parts[-1][1] + piece)
                continue
            parts.append((n, piece))
    return parts


def read_iplist(path: str) -> tuple[list[IPEntry], list[tuple[int, int, str]]]:
    """Entries of an iplist file, and (line, col, message) for bad ones.

    squidGuard's format: values separated by blanks or commas; ``#`` in
    column 1 skips the line, a later ``#`` ends it; a value is cut at its
    first character that cannot be part of an address, and a word that
    starts with such a character ends the line.  Words holding ``:`` are
    read as IPv6 (squidGuard skips them).
    """
    entries: list[IPEntry] = []
    problems: list[tuple[int, int, str]] = []
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for number, raw in enumerate(fh, 1):
            if raw.startswith("#"):
                continue
            line = raw.split("#", 1)[0]
            for m in re.finditer(r"[^ \t,\r\n]+", line):
                word = m.group()
                token = (_LIST_TOKEN6 if ":" in word else _LIST_TOKEN).match(word)
                if token is None:
                    break
                try:
                    entries.append(parse_ip(token.group()))
                except ValueError as exc:
                    problems.append((number, m.start() + 1, str(exc)))
    return entries, problems


def read_userlist(path: str) -> set[str]:
    """Lower-cased user names of a userlist file.

    Names are separated by blanks or commas; a line holding ``:`` gives only
    the text before it (passwd-style lines); ``#`` comments as in iplist.
    """
    users: set[str] = set()
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for raw in fh:
            if raw.startswith("#"):
                continue
            line = raw.split("#", 1)[0]
            if ":" in line:
                line = line.split(":", 1)[0]
            users.update(t.lower() for t in _LIST_SEP.split(line) if t)
    return users
