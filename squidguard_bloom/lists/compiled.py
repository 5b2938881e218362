"""Compiled blacklists (``LIST.sgb``): written once by ``-C``, memory-mapped by every helper.

The file is a hash table over the list's keys (layout in csrc/listindex.h);
lookups run in C (one call per lookup, walking parent domains there), and
the pages are shared by every helper process that maps the file, so N
children cost one copy of the list, and opening it costs an ``mmap``.

The header records the text list's size, modification time and content
hash.  A compiled file whose text changed, or that is damaged, of another
version or another kind, is never used: :func:`check` says why, and the
caller rebuilds it or reads the text.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
from dataclasses import dataclass

import mmh3

from squidguard_bloom import _bloom  # noqa: TID251 - this module is the listindex wrapper
from squidguard_bloom.lists.lookup import Match, _is_address
from squidguard_bloom.lists.text import domain_key, entries, url_key
from squidguard_bloom.urlnorm import Target

_ffi = _bloom.ffi
_lib = _bloom.lib

MAGIC = b"SGBLIST\x1a"
VERSION = 1
KIND_CODES = {"domain": 1, "url": 2}
SEED = 0x5347424C  # "SGBL"
_HEADER = struct.Struct("<8sIIQQQQQII")
SUFFIX = ".sgb"


class StaleError(Exception):
    """The compiled file cannot be used for this text list (the message says why)."""


@dataclass(frozen=True, slots=True)
class TextStamp:
    """What identifies a version of the text list."""

    size: int
    mtime_ns: int


def compiled_path(path: str) -> str:
    """Where the compiled form of the list at path lives."""
    return path + SUFFIX


def stamp(path: str) -> TextStamp:
    """The size and modification time of the text list."""
    st = os.stat(path)
    return TextStamp(st.st_size, st.st_mtime_ns)


def _hash(key: bytes) -> int:
    return mmh3.hash64(key, SEED, signed=False)[0]


def write(kind: str, path: str) -> str:
    """Compile the text list at path; return the compiled file's path."""
    with open(path, "rb") as fh:
        before = os.fstat(fh.fileno())
        raw = fh.read()
    text = raw.decode("utf-8", "surrogateescape")
    records: dict[bytes, bytes] = {}
    if kind == "domain":
        for _n, key, redirect in entries(text):
            k = domain_key(key).encode("utf-8", "surrogateescape")
            if k:
                r = (redirect or "").encode("utf-8", "surrogateescape")
                records[k] = struct.pack("<II", len(k), len(r)) + k + r
    elif kind == "url":
        groups: dict[bytes, dict[bytes, bytes]] = {}
        for _n, key, redirect in entries(text):
            k = url_key(key).encode("utf-8", "surrogateescape")
            if k:
                host = k.split(b"/", 1)[0]
                groups.setdefault(host, {})[k] = (redirect or "").encode("utf-8",
                                                                        "surrogateescape")
        for host, items in groups.items():
            body = b"".join(struct.pack("<II", len(k), len(r)) + k + r
                            for k, r in sorted(items.items()))
            records[host] = struct.pack("<II", len(host), len(items)) + host + body
    else:
        raise ValueError(f"only domain and url lists are compiled, not {kind!r}")
    nslots = 16
    while nslots < len(records) * 2:
        nslots *= 2
    table = bytearray(nslots * 16)
    blob = bytearray()
    base = _HEADER.size + len(table)
    mask = nslots - 1
    for key, rec in records.items():
        h = _hash(key)
        i = h & mask
        while struct.unpack_from("<Q", table, i * 16 + 8)[0] != 0:
            i = (i + 1) & mask
        struct.pack_into("<QQ", table, i * 16, h, base + len(blob))
        blob += rec
    header = _HEADER.pack(MAGIC, VERSION, KIND_CODES[kind], before.st_size, before.st_mtime_ns,
                          mmh3.hash64(raw, SEED, signed=False)[0], nslots, len(records), SEED, 0)
    out = compiled_path(path)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(out) + ".", dir=os.path.dirname(out))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(header)
            fh.write(table)
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    return out


def check(kind: str, path: str) -> mmap.mmap:
    """The mapped compiled file of the text list at path; StaleError if unusable."""
    cpath = compiled_path(path)
    try:
        fd = os.open(cpath, os.O_RDONLY)
    except FileNotFoundError:
        raise StaleError(f"{cpath} does not exist") from None
    try:
        size = os.fstat(fd).st_size
        if size < _HEADER.size:
            raise StaleError(f"{cpath} is truncated")
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    magic, version, code, tsize, tmtime, _thash, nslots, _n, seed, _ = _HEADER.unpack_from(mm)
    text = stamp(path)
    problem = ""
    if magic != MAGIC:
        problem = "is not a compiled squidguard-bloom list"
    elif version != VERSION:
        problem = f"has format version {version}, this squidguard-bloom reads {VERSION}"
    elif code != KIND_CODES[kind]:
        problem = f"was compiled as another kind of list, not a {kind} list"
    elif (tsize, tmtime) != (text.size, text.mtime_ns):
        problem = f"is older than {path} (the text list changed since it was compiled)"
    elif seed != SEED or nslots & (nslots - 1) or _HEADER.size + nslots * 16 > size:
        problem = "is damaged"
    if problem:
        mm.close()
        raise StaleError(f"{cpath} {problem}")
    return mm


class _Mapped:
    def __init__(self, path: str, mm: mmap.mmap) -> None:
        self.path = path
        self._mm = mm
        self._size = len(mm)
        self._buf = _ffi.from_buffer("uint8_t[]", mm)
        self.entries = _HEADER.unpack_from(mm)[7]

    def _record(self, off: int) -> tuple[str, str | None]:
        keylen, redirlen = struct.unpack_from("<II", self._mm, off)
        start = off + 8
        key = self._mm[start : start + keylen].decode("utf-8", "surrogateescape")
        redirect = self._mm[start + keylen : start + keylen + redirlen]
        return key, redirect.decode("utf-8", "surrogateescape") or None


class CompiledDomainList(_Mapped):
    """A compiled ``domainlist``: suffix lookups in C over the mapped table."""

    def __len__(self) -> int:
        return int(self.entries)

    def lookup(self, host: str) -> Match | None:
        """The entry listing host or one of its parent domains."""
        key = host.encode("utf-8", "surrogateescape")
        if _is_address(host):
            off = _lib.sgb_list_find(self._buf, self._size, key, len(key))
        else:
            off = _lib.sgb_domain_find(self._buf, self._size, key, len(key))
        if off < 0:
            return None
        return Match(*self._record(off))


class CompiledUrlList(_Mapped):
    """A compiled ``urllist``: prefix lookups among the entries of the request's host."""

    def __len__(self) -> int:
        return int(self.entries)

    def lookup(self, target: Target) -> Match | None:
        """The entry that is a prefix of the request's surl, else of its furl."""
        for s in (target.surl, target.furl):
            key = s.encode("utf-8", "surrogateescape")
            off = _lib.sgb_url_find(self._buf, self._size, key, len(key))
            if off >= 0:
                return Match(*self._record(off))
        return None
