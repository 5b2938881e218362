"""Compiling a list in C (csrc/listbuild.h), one function per C call.

:mod:`squidguard_bloom.core.lists.writer` drives the compile (spill files,
the table's layout, the header); these functions do its bulk work in C and
hand back plain Python objects: ``bytes``, ``memoryview`` (of scratch
memory this module allocated, never written to by anyone else), ``int``,
and the ``array`` objects the caller passed in, filled.
"""

from __future__ import annotations

from squidguard_bloom.native import _bloom

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from array import array
    from typing import Any

_ffi: Any = _bloom.ffi
_lib: Any = _bloom.lib
#: scratch buffers: pages a call does not fill are never touched, so never resident
_scratch = _ffi.new_allocator(should_clear_after_alloc=False)


def plain(block: bytes, url: bool) -> bool:
    """Whether every line of block is stored exactly as written, lower-cased
    (``sgb_build_plain``: ASCII, no blank, comment, sign, outer dot, scheme...)."""
    return bool(_lib.sgb_build_plain(block, len(block), int(url)))


def split(lines: bytes, url: bool, seed: int, nparts: int) -> tuple[memoryview, list[int]]:
    """The non-empty lines grouped by the hash part each falls in, and each part's size."""
    out = _scratch("char[]", len(lines) or 1)
    sizes, cursors = _ffi.new("uint64_t[]", nparts), _ffi.new("uint64_t[]", nparts)
    n = _lib.sgb_build_split(lines, len(lines), int(url), seed, nparts, out, sizes, cursors)
    return memoryview(_ffi.buffer(out, n)), list(sizes)


def sort(data: bytes, url: bool, seed: int) -> tuple[memoryview, bytes, int]:
    """The lines of data in record order (duplicates dropped), the tally of last labels
    (``label<TAB>count`` lines) and the number of records; MemoryError when C had none."""
    out, labels = _scratch("char[]", len(data) or 1), _scratch("char[]", len(data) or 1)
    labels_len, groups = _ffi.new("uint64_t *"), _ffi.new("uint64_t *")
    n = _lib.sgb_build_sort(data, len(data), int(url), seed, out, labels, labels_len, groups)
    if n < 0:
        raise MemoryError(f"sorting {len(data):,} bytes of list entries")
    tally = _ffi.buffer(labels, labels_len[0])[:]
    return memoryview(_ffi.buffer(out, n)), tally, int(groups[0])


def records(data: bytes, url: bool, seed: int, suffixes: bytes, nsuffixes: int, cap: int,
            hi: array[int], tags: array[int], lens: array[int]) -> tuple[int, memoryview, int]:
    """Encode the sorted lines of data as records (at most cap bytes); fills each record's
    hash >> 32, tag and length into hi, tags and lens (as many as they hold).

    Returns (records encoded, the records' bytes, entries).
    """
    out = _scratch("char[]", cap)
    outlen, count = _ffi.new("uint64_t *"), _ffi.new("uint64_t *")
    got = _lib.sgb_build_records(
        data, len(data), int(url), seed, suffixes, nsuffixes, out, cap,
        _ffi.from_buffer("uint32_t[]", hi), _ffi.from_buffer("uint16_t[]", tags),
        _ffi.from_buffer("uint32_t[]", lens), len(hi), outlen, count)
    return int(got), memoryview(_ffi.buffer(out, outlen[0])), int(count[0])


def place(hi: array[int], nslots: int, pos: int) -> int:
    """Where the placing of records of these hashes (in order) ends, from pos."""
    return int(_lib.sgb_build_place(_ffi.from_buffer("uint32_t[]", hi), len(hi), nslots, pos))


class Filler:
    """Fills a table's slot tags and block offsets from records' metadata, in order.

    ``slot_tags`` and ``blocks`` are the caller's arrays, filled in place;
    ``wrapped`` records come first (those that wrap to slots 0, 1, ...), and
    ``start`` is the offset of the first record in the file.
    """

    __slots__ = ("_blocks", "_slot_tags", "_state")

    def __init__(self, slot_tags: array[int], blocks: array[int], wrapped: int,
                 start: int) -> None:
        self._slot_tags = _ffi.from_buffer("uint16_t[]", slot_tags)
        self._blocks = _ffi.from_buffer("uint32_t[]", blocks)
        self._state = _ffi.new("uint64_t[4]", [wrapped, start, 0, 0])

    def fill(self, hi: array[int], tags: array[int], lens: array[int], wrap: bool,
             nslots: int) -> bool:
        """Place these records; False when the offsets no longer fit in 32 bits."""
        return _lib.sgb_build_fill(
            _ffi.from_buffer("uint32_t[]", hi), _ffi.from_buffer("uint16_t[]", tags),
            _ffi.from_buffer("uint32_t[]", lens), len(hi), int(wrap), nslots,
            self._slot_tags, self._blocks, self._state) >= 0

    def finish(self) -> tuple[int, int]:
        """Release the caller's arrays; (blocks filled, the offset after the last record)."""
        _ffi.release(self._slot_tags)
        _ffi.release(self._blocks)
        return int(self._state[2]), int(self._state[1])
