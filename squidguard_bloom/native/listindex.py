"""Lookups in a compiled list file (csrc/listindex.h) over its memory map.

:class:`ListIndex` holds the mapped bytes of a checked ``LIST.sgb`` file
(:mod:`squidguard_bloom.core.lists.compiled` checks the header and decodes
the records) and answers with record offsets: plain ints, ``-1`` for no
entry.  The fast path (:mod:`squidguard_bloom.native.fastpath`) hands the
same mapped table to C for whole batches.
"""

from __future__ import annotations

from squidguard_bloom.native import _bloom

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    import mmap
    from typing import Any

_ffi: Any = _bloom.ffi
_lib: Any = _bloom.lib


class ListIndex:
    """The hash table of one compiled list file, mapped read-only."""

    __slots__ = ("_buf", "size")

    def __init__(self, mm: mmap.mmap | bytes) -> None:
        self.size = len(mm)
        self._buf = _ffi.from_buffer("uint8_t[]", mm)

    def find_exact(self, key: bytes) -> int:
        """Offset of the record whose key is exactly key, or -1 (IP-address hosts)."""
        return _lib.sgb_list_find(self._buf, self.size, key, len(key))

    def find_domain(self, host: bytes) -> int:
        """Offset of the record of host or its nearest listed parent domain, or -1."""
        return _lib.sgb_domain_find(self._buf, self.size, host, len(host))

    def find_url(self, url: bytes) -> int:
        """Offset of the first entry of url's host that is a prefix of url, or -1."""
        return _lib.sgb_url_find(self._buf, self.size, url, len(url))


def table(index: ListIndex) -> Any:
    """The mapped table as C sees it: for :mod:`squidguard_bloom.native.fastpath` only."""
    return index._buf
