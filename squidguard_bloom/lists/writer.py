"""Writing compiled blacklists (``LIST.sgb``, layout in csrc/listindex.h).

Only ``-C`` and the rebuild of a stale file come here, so a helper that
finds its compiled lists up to date never imports this module.
"""

from __future__ import annotations

import os
import sys
import tempfile
from array import array

import mmh3

from squidguard_bloom.lists.compiled import (
    BLOCK,
    HEADER,
    KIND_CODES,
    MAGIC,
    SEED,
    VERSION,
    compiled_path,
    tables_size,
)
from squidguard_bloom.lists.errors import ListError
from squidguard_bloom.lists.text import domain_key, entries, url_key

#: At most 7 keys for 10 slots: a miss then probes about 6 slots (12 bytes of tags).
LOAD_TENTHS = 7
MAX_FILE = 0xFFFF_FFFF  # record offsets are 32-bit
_ONE_BYTE = [bytes((n,)) for n in range(0x80)]


def _varint(n: int) -> bytes:
    """n as unsigned LEB128: 7 bits a byte, low bits first, high bit set on all but the last."""
    if n < 0x80:
        return _ONE_BYTE[n]
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def record(key: bytes, value: bytes) -> bytes:
    """One record: varint (keylen << 1 | has_value), [varint valuelen], key, value."""
    if value:
        return _varint(len(key) << 1 | 1) + _varint(len(value)) + key + value
    return _varint(len(key) << 1) + key


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


def _records(kind: str, text: str) -> tuple[dict[bytes, bytes], int]:
    """Every key's record, and the number of list entries."""
    records: dict[bytes, bytes] = {}
    if kind == "domain":
        for _n, key, redirect in entries(text):
            k = domain_key(key).encode("utf-8", "surrogateescape")
            if k:
                records[k] = record(k, (redirect or "").encode("utf-8", "surrogateescape"))
        return records, len(records)
    if kind != "url":
        raise ValueError(f"only domain and url lists are compiled, not {kind!r}")
    groups: dict[bytes, dict[bytes, bytes]] = {}
    for _n, key, redirect in entries(text):
        k = url_key(key).encode("utf-8", "surrogateescape")
        if k:
            host = k.split(b"/", 1)[0]
            groups.setdefault(host, {})[k] = (redirect or "").encode("utf-8", "surrogateescape")
    count = 0
    for host, items in groups.items():
        body = b"".join(record(k, r) for k, r in sorted(items.items()))
        records[host] = record(host, body)
        count += len(items)
    return records, count


def write(kind: str, path: str) -> str:
    """Compile the text list at path; return the compiled file's path."""
    with open(path, "rb") as fh:
        before = os.fstat(fh.fileno())
        raw = fh.read()
    records, count = _records(kind, raw.decode("utf-8", "surrogateescape"))
    nslots = slot_count(len(records))
    start = tables_size(nslots)
    size = start + sum(map(len, records.values()))
    if size > MAX_FILE or nslots > MAX_FILE:
        msg = (f"{path}: too big to compile ({size:,} bytes; the limit is 4 GiB); "
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
                         mmh3.hash64(raw, SEED, signed=False)[0], size, nslots, count, SEED, 0)
    out = compiled_path(path)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(out) + ".", dir=os.path.dirname(out))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(header)
            fh.write(_le("H", tags))
            fh.write(_le(_u32_code(), blocks))
            fh.writelines(parts)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    return out
