"""Writing compiled blacklists (``LIST.sgb``, layout in csrc/listindex.h).

Only ``-C`` and the rebuild of a stale file come here, so a helper that
finds its compiled lists up to date never imports this module.

Memory stays bounded whatever the size of the list (an external sort):

1. the text is read in blocks of ``chunk`` bytes; each entry, put in its
   stored form (:mod:`.text`), goes to one of P parts, P = text size /
   chunk, each part a range of key hashes, spilled to a file in a temporary
   directory next to the output;
2. each part is sorted on its own, in the order of the records in the file
   (by hash, so by home slot), duplicates dropped (the last line wins), and
   the last labels of its keys counted for the suffix table;
3. each part, in order, is encoded as records into a spill file, and each
   record's hash, tag and length into three more;
4. the records are placed in the table (tags and block offsets), reading
   those back a block at a time, and the file is written: header, tables,
   then the records copied over from the spill file.

The per-entry work runs in C (csrc/listbuild.c); what is in memory at once
is a few blocks of ``chunk`` bytes, the suffix counts and the table's tags
and block offsets (2 bytes a slot, 3 bytes a record).  The parts never
depend on the chunk size: any chunk gives the same file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import BinaryIO

import mmh3

from squidguard_bloom.core.lists.compiled import (
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
from squidguard_bloom.core.lists.errors import ListError
from squidguard_bloom.core.lists.text import domain_key, entries, url_key
from squidguard_bloom.native import listbuild

#: At most 7 keys for 10 slots: a miss then probes about 6 slots (12 bytes of tags).
LOAD_TENTHS = 7
#: Record offsets are 32-bit and key lengths 30-bit (a varint of keylen << 2): 1 GiB,
#: some 60 million domains.
MAX_FILE = (1 << 30) - 1
#: Bytes of list text read, and roughly the bytes of one part sorted, at a time.  Peak
#: memory is the interpreter, about 8 chunks and 3 bytes per record (squidguard-bloom -C:
#: 30 MB for a million domains, 37.5 MB for three million; bench/compile_memory.py).
CHUNK = 2 << 20
#: The most a record can exceed its line: varint lengths and a suffix byte.
_RECORD_OVERHEAD = 24
_COPY = 1 << 20


def pick_suffixes(counts: Mapping[bytes, int]) -> list[bytes]:
    """The last labels worth a slot of the suffix table: those that save the most bytes.

    counts: how many keys end in each last label.  A key ending in ``.com``
    stores one index byte instead of 4 bytes, so each use saves len(suffix)
    bytes; a slot costs SUFFIX_SLOT.
    """
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


def _le(a: array[int]) -> bytes:
    if sys.byteorder == "big":
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


_U32 = "I" if array("I").itemsize == 4 else "L"


def _blocks(fh: BinaryIO, chunk: int, hasher: mmh3.mmh3_x64_128) -> Iterator[bytes]:
    """The file in blocks of whole lines (about chunk bytes; each ends in a newline),
    every byte read also fed to hasher."""
    rest = b""
    while data := fh.read(chunk):
        hasher.update(data)
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # a line longer than chunk
            rest += data
            continue
        yield rest + data[:cut]
        rest = data[cut:]
    if rest:
        yield rest + b"\n"


def stored_lines(kind: str, block: bytes, *, plain: bool = True) -> bytes:
    """The entries of a block of whole lines in their stored form, one line each:
    ``key`` or ``key<TAB>redirect``.

    A block of plain lines (csrc/listbuild.c, ``sgb_build_plain``: ASCII, no
    blank, comment, sign, outer dot, nor scheme, user or port in a url entry)
    is its lines lower-cased, which is what text.entries and text.domain_key or
    text.url_key make of them; plain=False reads every block through those.
    """
    if plain and listbuild.plain(block, kind == "url"):
        return block.lower()
    stored = domain_key if kind == "domain" else url_key
    out = []
    for _n, key, redirect in entries(block.decode("utf-8", "surrogateescape")):
        k = stored(key)
        if k:
            out.append(k if redirect is None else f"{k}\t{redirect}")
    return "".join(f"{line}\n" for line in out).encode("utf-8", "surrogateescape")


class _Build:
    """One compile: the spill files, the counts, the records' hashes and lengths."""

    def __init__(self, kind: str, work: str, nparts: int) -> None:
        self.url = kind == "url"
        self.work = work
        self.parts = [os.path.join(work, f"part.{p}") for p in range(nparts)]
        self.records = os.path.join(work, "records")
        # per record, in record order: hash >> 32, tag, length (native byte order)
        self.meta = {name: os.path.join(work, name) for name in ("hi", "tags", "lens")}
        self.labels: Counter[bytes] = Counter()
        self.part_groups: list[int] = []
        self.groups = 0  # records
        self.entries = 0
        self.record_bytes = 0

    def split(self, lines: bytes) -> None:
        """Append the lines to the parts their hashes fall in."""
        if len(self.parts) == 1:
            with open(self.parts[0], "ab") as fh:
                fh.write(lines)
            return
        view, sizes = listbuild.split(lines, self.url, SEED, len(self.parts))
        at = 0
        for p, path in enumerate(self.parts):
            if sizes[p]:
                with open(path, "ab") as fh:
                    fh.write(view[at : at + sizes[p]])
                at += sizes[p]

    def _read(self, path: str) -> bytes:
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:  # no entry fell in this part
            return b""

    def sort(self) -> None:
        """Sort each part in place, in record order, and count groups and last labels."""
        for path in self.parts:
            data = self._read(path)
            self.part_groups.append(0)
            if not data:
                continue
            out, tally, groups = listbuild.sort(data, self.url, SEED)
            del data
            with open(path, "wb") as fh:
                fh.write(out)
            del out
            for line in tally.split(b"\n")[:-1]:
                label, _, count = line.rpartition(b"\t")
                self.labels[label] += int(count)
            self.groups += groups
            self.part_groups[-1] = groups

    def encode(self, suffixes: bytes, nsuffixes: int) -> None:
        """Write every part's records, in order, to the records file, and their hashes
        >> 32, tags and lengths to the meta files."""
        files = {name: open(path, "wb") for name, path in self.meta.items()}  # noqa: SIM115
        try:
            with open(self.records, "wb") as rec:
                for path, n in zip(self.parts, self.part_groups, strict=True):
                    data = self._read(path)
                    if not data:
                        continue
                    hi, tags, lens = (array(_U32, bytes(4 * n)), array("H", bytes(2 * n)),
                                      array(_U32, bytes(4 * n)))
                    cap = len(data) + _RECORD_OVERHEAD * data.count(b"\n") + 16
                    got, out, count = listbuild.records(data, self.url, SEED, suffixes,
                                                        nsuffixes, cap, hi, tags, lens)
                    if got != n:
                        raise ListError("an entry longer than 1 GiB cannot be compiled")
                    rec.write(out)
                    for name, values in (("hi", hi), ("tags", tags), ("lens", lens)):
                        values.tofile(files[name])
                    self.entries += count
                    self.record_bytes += len(out)
        finally:
            for fh in files.values():
                fh.close()

    def meta_blocks(self, first: int, end: int, per: int,
                    names: tuple[str, ...] = ("hi", "tags", "lens")) -> Iterator[list[array[int]]]:
        """The meta arrays (of names) of records first..end, per records at a time."""
        codes = {"hi": _U32, "tags": "H", "lens": _U32}
        files = [open(self.meta[name], "rb") for name in names]  # noqa: SIM115
        try:
            for fh, name in zip(files, names, strict=True):
                fh.seek(first * array(codes[name]).itemsize)
            while first < end:
                n = min(per, end - first)
                block = []
                for fh, name in zip(files, names, strict=True):
                    values = array(codes[name])
                    values.fromfile(fh, n)
                    block.append(values)
                yield block
                first += n
        finally:
            for fh in files:
                fh.close()


def _copy(src: BinaryIO, dst: BinaryIO, start: int, end: int) -> None:
    """Bytes start..end of src appended to dst, a megabyte at a time."""
    src.seek(start)
    while start < end:
        data = src.read(min(_COPY, end - start))
        if not data:
            raise OSError(f"{src.name} ended early")
        dst.write(data)
        start += len(data)


def _layout(build: _Build, nslots: int, start: int, per: int,
            path: str) -> tuple[array[int], array[int], int]:
    """The tags of the nslots slots, the block offsets, and the bytes of records before
    those that wrap to the first slots (they come first in the file); per records of
    meta in memory at a time."""
    n = build.groups
    wrapped = 0  # see csrc/listbuild.h: the last records that wrap to slots 0, 1, ...
    while True:
        pos = wrapped
        for (hi,) in build.meta_blocks(0, n - wrapped, per, ("hi",)):
            pos = listbuild.place(hi, nslots, pos)
        if pos <= nslots:
            break
        wrapped += pos - nslots
        if wrapped > n:  # cannot happen: n < nslots
            raise ListError(f"{path}: the table cannot be laid out; please report this")
    slot_tags, blocks = array("H", bytes(2 * nslots)), array(_U32, bytes(4 * (nslots // BLOCK)))
    filler = listbuild.Filler(slot_tags, blocks, wrapped, start)
    wrapped_bytes = 0
    for first, end, wrap in ((n - wrapped, n, True), (0, n - wrapped, False)):
        for hi, tags, lens in build.meta_blocks(first, end, per):
            if not filler.fill(hi, tags, lens, wrap, nslots):
                raise ListError(f"{path}: too big to compile; split it into several lists")
            if wrap:
                wrapped_bytes += sum(lens)
    filled, offset = filler.finish()
    blocks[filled:] = array(_U32, [offset]) * (len(blocks) - filled)  # empty ones
    return slot_tags, blocks, build.record_bytes - wrapped_bytes


def write(kind: str, path: str, chunk: int = CHUNK) -> str:
    """Compile the text list at path, reading chunk bytes at a time; return the compiled
    file's path."""
    if kind not in KIND_CODES:
        raise ValueError(f"only domain and url lists are compiled, not {kind!r}")
    out = compiled_path(path)
    outdir = os.path.dirname(out) or "."
    with open(path, "rb") as fh, tempfile.TemporaryDirectory(
        prefix=os.path.basename(out) + ".", dir=outdir
    ) as work:
        before = os.fstat(fh.fileno())
        build = _Build(kind, work, max(1, -(-before.st_size // chunk)))
        hasher = mmh3.mmh3_x64_128(seed=SEED)
        for block in _blocks(fh, chunk, hasher):
            build.split(stored_lines(kind, block))
        text_hash = int.from_bytes(hasher.digest()[:8], "little")
        build.sort()
        suffixes = pick_suffixes(build.labels)
        build.labels.clear()
        table = b"".join(bytes((len(s),)) + s.ljust(SUFFIX_SLOT - 1, b"\0") for s in suffixes)
        nslots = slot_count(build.groups)
        start = tables_size(nslots, len(suffixes))
        build.encode(table, len(suffixes))
        size = start + build.record_bytes
        if size > MAX_FILE or nslots > MAX_FILE:
            msg = (f"{path}: too big to compile ({size:,} bytes; the limit is 1 GiB); "
                   "split it into several lists")
            raise ListError(msg)
        slot_tags, blocks, split = _layout(build, nslots, start, max(1, chunk // 10), path)
        header = HEADER.pack(MAGIC, VERSION, KIND_CODES[kind], before.st_size,
                             before.st_mtime_ns, text_hash, size, nslots, build.entries, SEED,
                             len(suffixes))
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(out) + ".", dir=outdir)
        try:
            with os.fdopen(fd, "wb") as dst, open(build.records, "rb") as src:
                dst.write(header)
                dst.write(_le(slot_tags))
                dst.write(_le(blocks))
                dst.write(table)
                # slot order: the records that wrapped to the first slots, then the rest
                _copy(src, dst, split, build.record_bytes)
                _copy(src, dst, 0, split)
                dst.flush()
                os.fsync(dst.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, out)
        except BaseException:
            os.unlink(tmp)
            raise
    return out
