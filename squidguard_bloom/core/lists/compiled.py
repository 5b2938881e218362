"""Compiled blacklists (``LIST.sgb``): written once by ``-C``, memory-mapped by every helper.

The file is a hash table over the list's keys (layout in csrc/listindex.h;
:mod:`squidguard_bloom.core.lists.writer` writes it): 2 bytes of tag per slot,
4 bytes of record offset per 16 slots, and records with varint lengths
whose keys keep their last label (``com``) as one byte into a table, so a
million domains of 14 bytes take 15 MB.  Lookups run in C (one call per
lookup, walking parent domains there), and the pages are shared by every
helper process that maps the file, so N children cost one copy of the
list, and opening it costs an ``mmap``.

The header records the text list's size and modification time, and the
compiled file's own size.  A compiled file whose text changed, or that is
truncated, damaged, of another version or another kind, is never used:
:func:`check` says why, and the caller rebuilds it or reads the text.
"""

from __future__ import annotations

import mmap
import os
import struct

from squidguard_bloom.core.lists.lookup import Match, is_address
from squidguard_bloom.core.urlnorm import Target
from squidguard_bloom.native.listindex import ListIndex

MAGIC = b"SGBLIST\x1a"
#: 5: keys of IDN entries are punycode (core.idn), so a version 4 file, which stored them
#: as written, is rebuilt
VERSION = 5
KIND_CODES = {"domain": 1, "url": 2}
SEED = 0x5347424C  # "SGBL"
BLOCK = 16  # slots per record offset
SUFFIX_SLOT = 16  # bytes per suffix: length, up to 15 bytes, zero padding
MAX_SUFFIXES = 255
#: magic, version, kind, text size, text mtime (ns), text hash, file size, slots, keys, seed,
#: suffixes
HEADER = struct.Struct("<8sIIQQQQIIII")
SUFFIX = ".sgb"


class StaleError(Exception):
    """The compiled file cannot be used for this text list (the message says why)."""


def compiled_path(path: str) -> str:
    """Where the compiled form of the list at path lives."""
    return path + SUFFIX


def tables_size(nslots: int, nsuffixes: int) -> int:
    """Bytes of header, tags, block offsets and suffixes before the first record."""
    return HEADER.size + 2 * nslots + 4 * (nslots // BLOCK) + SUFFIX_SLOT * nsuffixes


def check(kind: str, path: str) -> mmap.mmap:
    """The mapped compiled file of the text list at path; StaleError if unusable."""
    cpath = compiled_path(path)
    try:
        fd = os.open(cpath, os.O_RDONLY)
    except FileNotFoundError:
        raise StaleError(f"{cpath} does not exist") from None
    try:
        size = os.fstat(fd).st_size
        if size < HEADER.size:
            raise StaleError(f"{cpath} is truncated")
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    magic, version, code, tsize, tmtime, _thash, fsize, nslots, _n, seed, nsuffixes = \
        HEADER.unpack_from(mm)
    st = os.stat(path)
    problem = ""
    if magic != MAGIC:
        problem = "is not a compiled squidguard-bloom list"
    elif version != VERSION:
        problem = f"has format version {version}, this squidguard-bloom reads {VERSION}"
    elif code != KIND_CODES[kind]:
        problem = f"was compiled as another kind of list, not a {kind} list"
    elif (tsize, tmtime) != (st.st_size, st.st_mtime_ns):
        problem = f"is older than {path} (the text list changed since it was compiled)"
    elif size < fsize:
        problem = f"is truncated ({size} of its {fsize} bytes)"
    elif (size != fsize or seed != SEED or nslots == 0 or nslots % BLOCK
          or nsuffixes > MAX_SUFFIXES or tables_size(nslots, nsuffixes) > size):
        problem = "is damaged"
    if problem:
        mm.close()
        raise StaleError(f"{cpath} {problem}")
    return mm


def _varint(mm: mmap.mmap, off: int) -> tuple[int, int]:
    """The unsigned LEB128 number at off, and the offset after it."""
    value = shift = 0
    while True:
        byte = mm[off]
        off += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, off
        shift += 7


def suffix_table(mm: mmap.mmap) -> list[bytes]:
    """The suffixes of a checked compiled file, by index."""
    fields = HEADER.unpack_from(mm)
    nslots, nsuffixes = fields[7], fields[10]
    at = tables_size(nslots, 0)
    out = []
    for i in range(nsuffixes):
        slot = at + i * SUFFIX_SLOT
        out.append(bytes(mm[slot + 1 : slot + 1 + mm[slot]]))
    return out


class _Mapped:
    __slots__ = ("_mm", "_suffixes", "entries", "index", "path")

    def __init__(self, path: str, mm: mmap.mmap) -> None:
        self.path = path
        self._mm = mm
        self.index = ListIndex(mm)  # the lookups, in C
        self.entries: int = HEADER.unpack_from(mm)[8]
        self._suffixes: list[bytes] | None = None  # read at the first hit

    def __len__(self) -> int:
        return self.entries

    def _record(self, off: int, host: bytes = b"") -> Match:
        """The entry and redirect of the record at off (an offset C returned: it fits);
        a url entry's record holds what follows its host."""
        mm = self._mm
        head, start = _varint(mm, off)
        suffix = b""
        if head & 2:
            if self._suffixes is None:
                self._suffixes = suffix_table(mm)
            suffix = b"." + self._suffixes[mm[start]]
            start += 1
        redirlen = 0
        if head & 1:
            redirlen, start = _varint(mm, start)
        end = start + (head >> 2)
        redirect = mm[end : end + redirlen].decode("utf-8", "surrogateescape")
        key = (host + mm[start:end] + suffix).decode("utf-8", "surrogateescape")
        return Match(key, redirect or None)


class CompiledDomainList(_Mapped):
    """A compiled ``domainlist``: suffix lookups in C over the mapped table."""

    __slots__ = ()

    def lookup(self, host: str) -> Match | None:
        """The entry listing host or one of its parent domains."""
        key = host.encode("utf-8", "surrogateescape")
        off = self.index.find_exact(key) if is_address(host) else self.index.find_domain(key)
        if off < 0:
            return None
        return self._record(off)


class CompiledUrlList(_Mapped):
    """A compiled ``urllist``: prefix lookups among the entries of the request's host."""

    __slots__ = ()

    def lookup(self, target: Target) -> Match | None:
        """The entry that is a prefix of the request's surl, else furl, else wurl."""
        for s in (target.surl, target.furl, target.wurl):
            if not s:
                continue
            key = s.encode("utf-8", "surrogateescape")
            off = self.index.find_url(key)
            if off >= 0:
                return self._record(off, key.split(b"/", 1)[0])
        return None
