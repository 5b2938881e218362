"""Writing compiled blacklists (``LIST.sgb``, layout in csrc/listindex.h).

Only ``-C`` and the rebuild of a stale file come here, so a helper that
finds its compiled lists up to date never imports this module.
"""

from __future__ import annotations

import os
import sys
import tempfile
from array import array
from collections import Counter

import mmh3

from squidguard_bloom.lists.compiled import (
    BLOCK,
    HEADER,
    KIND_CODES,
    MAGIC,
    MAX_SUFFIXES,
    SEED,
    SUFFIX_SLOT,
    VERSION,
    compiled_path,
    tables_size,
)
from squidguard_bloom.lists.errors import ListError
from squidguard_bloom.lists.text import domain_key, entries, url_key

#: At most 7 keys for 10 slots: a miss then probes about 6 slots (12 bytes of tags).
LOAD_TENTHS = 7
#: Record offsets are 32-bit and key lengths 30-bit (a varint of keylen << 2): 1 GiB,
#: some 60 million domains.
MAX_FILE = (1 << 30) - 1
_BYTE = [bytes((n,)) for n in range(256)]


def _varint(n: int) -> bytes:
    """n as unsigned LEB128: 7 bits a byte, low bits first, high bit set on all but the last."""
    if n < 0x80:
        return _BYTE[n]
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def record(key: bytes, value: bytes, suffixes: dict[bytes, int] | None = None) -> bytes:
    """One record: varint (keylen << 2 | has_suffix << 1 | has_value), [u8 suffix index],
    [varint valuelen], key (less ".suffix" when its last label is one of suffixes), value."""
    head, index = len(key) << 2, b""
    if suffixes:
        stem, dot, last = key.rpartition(b".")
        if dot and stem and last in suffixes:
            head, index = len(stem) << 2 | 2, _BYTE[suffixes[last]]
            key = stem
    if value:
        return _varint(head | 1) + index + _varint(len(value)) + key + value
    return _varint(head) + index + key


def pick_suffixes(keys: list[bytes]) -> list[bytes]:
    """The last labels worth a slot of the suffix table: those that save the most bytes.

    A key ending in ``.com`` stores one index byte instead of 4 bytes, so each
    use saves len(suffix) bytes; a slot costs SUFFIX_SLOT.
    """
    parts = (k.rpartition(b".") for k in keys)
    counts = Counter(last for stem, dot, last in parts if dot and stem)
    gains = [(n * len(s), s) for s, n in counts.items()
             if 0 < len(s) < SUFFIX_SLOT and n * len(s) > SUFFIX_SLOT]
    return [s for _, s in sorted(gains, reverse=True)[:MAX_SUFFIXES]]


def slot_count(nkeys: int) -> int:
    """Slots for nkeys keys: at most 70 % full, at least one free, a multiple of BLOCK."""
    need = nkeys * 10 // LOAD_TENTHS + 1
    return -(-need // BLOCK) * BLOCK


def home(h: int, nslots: int) -> tuple[int, int]:
    """The first slot to probe and the (non-zero) tag of a key whose hash is h."""
    return ((h >> 32) * nslots) >> 32, (h & 0xFFFF) or 1


def _le(typecode: str, values: list[int]) -> bytes:
    a = array(typecode, values)
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()


def _u32_code() -> str:
    return "I" if array("I").itemsize == 4 else "L"


def _records(kind: str, text: str) -> tuple[dict[bytes, bytes], int, list[bytes]]:
    """Every key's record, the number of list entries, and the suffix table."""
    records: dict[bytes, bytes] = {}
    if kind == "domain":
        values: dict[bytes, bytes] = {}
        for _n, key, redirect in entries(text):
            k = domain_key(key).encode("utf-8", "surrogateescape")
            if k:
                values[k] = (redirect or "").encode("utf-8", "surrogateescape")
        suffixes = pick_suffixes(list(values))
        index = {s: i for i, s in enumerate(suffixes)}
        for k, r in values.items():
            records[k] = record(k, r, index)
        return records, len(records), suffixes
    if kind != "url":
        raise ValueError(f"only domain and url lists are compiled, not {kind!r}")
    groups: dict[bytes, dict[bytes, bytes]] = {}
    for _n, key, redirect in entries(text):
        k = url_key(key).encode("utf-8", "surrogateescape")
        if k:
            host = k.split(b"/", 1)[0]
            groups.setdefault(host, {})[k] = (redirect or "").encode("utf-8", "surrogateescape")
    suffixes = pick_suffixes(list(groups))
    index = {s: i for i, s in enumerate(suffixes)}
    count = 0
    for host, items in groups.items():
        # each entry begins with its host: the record keeps what follows it
        body = b"".join(record(k[len(host) :], r) for k, r in sorted(items.items()))
        records[host] = record(host, body, index)
        count += len(items)
    return records, count, suffixes


def write(kind: str, path: str) -> str:
    """Compile the text list at path; return the compiled file's path."""
    with open(path, "rb") as fh:
        before = os.fstat(fh.fileno())
        raw = fh.read()
    records, count, suffixes = _records(kind, raw.decode("utf-8", "surrogateescape"))
    nslots = slot_count(len(records))
    start = tables_size(nslots, len(suffixes))
    size = start + sum(map(len, records.values()))
    if size > MAX_FILE or nslots > MAX_FILE:
        msg = (f"{path}: too big to compile ({size:,} bytes; the limit is 1 GiB); "
               "split it into several lists")
        raise ListError(msg)
    tags = [0] * nslots
    in_slot: list[bytes] = [b""] * nslots
    hash64 = mmh3.hash64
    for key, rec in records.items():
        h = hash64(key, SEED, signed=False)[0]
        i = ((h >> 32) * nslots) >> 32  # home(), inlined: it runs once per key
        while tags[i]:
            i = i + 1 if i + 1 < nslots else 0
        tags[i] = (h & 0xFFFF) or 1
        in_slot[i] = rec
    blocks, parts, pos = [], [], start
    for b in range(0, nslots, BLOCK):
        blocks.append(pos)
        chunk = b"".join(in_slot[b : b + BLOCK])
        parts.append(chunk)
        pos += len(chunk)
    header = HEADER.pack(MAGIC, VERSION, KIND_CODES[kind], before.st_size, before.st_mtime_ns,
                         mmh3.hash64(raw, SEED, signed=False)[0], size, nslots, count, SEED,
                         len(suffixes))
    out = compiled_path(path)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(out) + ".", dir=os.path.dirname(out))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(header)
            fh.write(_le("H", tags))
            fh.write(_le(_u32_code(), blocks))
            fh.writelines(bytes((len(s),)) + s.ljust(SUFFIX_SLOT - 1, b"\0") for s in suffixes)
            fh.writelines(parts)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    return out
