"""Reading blacklist files exactly as squidGuard 1.6 reads them.

Domain and url lists: a ``#`` in column 1 starts a comment line; blank and
whitespace-only lines are skipped; ``\\r\\n`` is fine; leading blanks are
skipped; a leading ``+`` or ``-`` is removed (the entry is added either
way); the key is the first word, lower-cased, and the rest of the line
after blanks is that entry's own redirect.  Later duplicates overwrite
earlier ones.

Domain entries and the host part of url entries are then put in the form
request hosts are looked up in: an internationalised name as punycode
(:mod:`squidguard_bloom.core.idn`), so ``bücher.example`` matches what
browsers send.

Expression lists: each line is one pattern; only the line end goes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_WORD = re.compile(r"[ \t]+")


def entries(text: str) -> Iterator[tuple[int, str, str | None]]:
    """(line number, lower-cased key, per-entry redirect or None) of a list file."""
    for number, raw in enumerate(text.split("\n"), 1):
        if not raw or raw[0] == "#":
            continue
        line = raw.removesuffix("\r").lstrip(" \t")
        if not line:
            continue
        if line[0] in "+-":
            line = line[1:]
        if " " not in line and "\t" not in line:  # the common line: just the entry
            if line:
                yield number, line.lower(), None
            continue
        parts = _WORD.split(line, maxsplit=1)
        key = parts[0].lower()
        if not key:
            continue
        redirect = parts[1].strip(" \t") if len(parts) > 1 else ""
        yield number, key, redirect or None


def domain_key(key: str) -> str:
    """A domain entry as we store it: no leading or trailing dots, punycode for IDNs.

    squidGuard stores ``.example.com`` as ``..example.com``, which never
    matches anything; a Squid-style list must not silently block nothing,
    so the dot goes.
    """
    if not key.isascii():
        key = _ascii_host(key)
    return key.strip(".")


def url_key(key: str) -> str:
    """A url entry as we store it: no scheme, userinfo or port in its host part,
    and the host part in punycode when it is an IDN (the path as written)."""
    if "://" in key:
        key = key.split("://", 1)[1]
    key = key.lstrip(".")
    host, slash, path = key.partition("/")
    if "@" in host:
        host = host.rsplit("@", 1)[1]
    host = host.partition(":")[0].rstrip(".")
    if not host.isascii():
        host = _ascii_host(host).strip(".")
    return host + slash + path


def _ascii_host(name: str) -> str:
    """core.idn.ascii_host, imported for the first entry that is not ASCII."""
    from squidguard_bloom.core.idn import ascii_host  # noqa: PLC0415 - spares ASCII lists

    return ascii_host(name)


def expression_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, pattern) of an expression list; blank lines are not patterns.

    squidGuard keeps a blank line as a pattern: harmless ("\\n") in a LF
    file, but the empty pattern (matching every URL) in a CRLF file.
    """
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r")
        if line.strip(" \t"):
            yield number, line
