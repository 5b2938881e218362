"""The Bloom filter, as a Python class over the C code in csrc/.

Like the other modules of :mod:`squidguard_bloom.native` (the only
importers of the compiled ``_bloom`` extension) it lets no cffi object
out.  Keys are ``bytes``-like or ``str`` (hashed as UTF-8, so ``"a"`` and
``b"a"`` are the same key).

A filter lives either in private memory (``path=None``) or in a file mapped
``MAP_SHARED``: every process that opens the same path with the same
parameters shares one bit array, and concurrent adds never lose a bit.
Adding past capacity never raises; :meth:`BloomFilter.info` reports it.
"""

from __future__ import annotations

import math
import os
from array import array
from collections.abc import Iterable, Sequence
from contextlib import suppress
from types import TracebackType

from squidguard_bloom.errors import BloomError, BloomFileError
from squidguard_bloom.native import _bloom
from squidguard_bloom.records import FrozenRecord

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from typing import Any, Self

_ffi: Any = _bloom.ffi
_lib: Any = _bloom.lib

#: MurmurHash3 seed used unless the caller picks another.
DEFAULT_SEED = 0x5EED_B10F

Key = str | bytes | bytearray | memoryview

_MAX_U64 = 2**64 - 1
_MAX_U32 = 2**32 - 1

_FILE_ERRORS = {
    _lib.SGB_EMAGIC: "delete it or point the filter at another path",
    _lib.SGB_EVERSION: "it was written by another version of squidguard-bloom; move it aside",
    _lib.SGB_ECORRUPT: "move it aside; a new empty filter will be created",
    _lib.SGB_ETRUNCATED: "move it aside; a new empty filter will be created",
    _lib.SGB_EMISMATCH: "use the capacity and error rate it was made with, or move it aside",
}


def _raise_for(rc: int, path: str | None = None) -> None:
    """Turn a C status code into the matching Python exception."""
    if rc == _lib.SGB_OK:
        return
    reason = _ffi.string(_lib.sgb_strerror(rc)).decode()
    if rc == _lib.SGB_EOS:
        err = _ffi.errno
        raise OSError(err, os.strerror(err), path)
    if rc == _lib.SGB_ENOMEM:
        raise MemoryError(reason)
    if path is not None and rc in _FILE_ERRORS:
        raise BloomFileError(path, reason, _FILE_ERRORS[rc])
    raise BloomError(reason)


def _check_params(capacity: int, error_rate: float) -> None:
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        msg = f"capacity must be an int, not {type(capacity).__name__}"
        raise TypeError(msg)
    if not 1 <= capacity <= _MAX_U64:
        msg = f"capacity must be between 1 and 2**64 - 1, got {capacity}"
        raise BloomError(msg)
    if not isinstance(error_rate, (int, float)) or isinstance(error_rate, bool):
        msg = f"error_rate must be a float, not {type(error_rate).__name__}"
        raise TypeError(msg)
    if not 0.0 < error_rate < 1.0:  # also refuses NaN
        msg = f"error_rate must be strictly between 0 and 1, got {error_rate!r}"
        raise BloomError(msg)


def sizing(capacity: int, error_rate: float) -> tuple[int, int]:
    """Return ``(bits, hashes)`` for a filter of this capacity and error rate.

    Computed by the C code without allocating anything, so it can answer
    for filters far larger than memory (or refuse them with BloomError).
    """
    _check_params(capacity, error_rate)
    bits = _ffi.new("uint64_t *")
    hashes = _ffi.new("uint32_t *")
    _raise_for(_lib.sgb_bloom_size(capacity, error_rate, bits, hashes))
    return int(bits[0]), int(hashes[0])


def murmur3_128(data: bytes, seed: int = 0) -> tuple[int, int]:
    """The C MurmurHash3 x64-128 of data: (low 64 bits, high 64 bits)."""
    out = _ffi.new("uint64_t[2]")
    _lib.sgb_murmur3_128(data, len(data), seed, out)
    return int(out[0]), int(out[1])


class BloomInfo(FrozenRecord):
    """A snapshot of a filter's parameters and fill."""

    capacity: int
    error_rate: float
    bits: int
    hashes: int
    seed: int
    bytes: int
    entries: int
    bits_set: int
    shared: bool
    path: str | None

    @property
    def bits_per_entry(self) -> float:
        """m / n: bits spent per expected entry."""
        return self.bits / self.capacity

    @property
    def estimated_count(self) -> float:
        """Distinct keys implied by the fill: -(m/k) ln(1 - X/m)."""
        if self.bits_set >= self.bits:
            return math.inf
        return -(self.bits / self.hashes) * math.log1p(-self.bits_set / self.bits)

    @property
    def current_error_rate(self) -> float:
        """False-positive rate implied by the fill now: (X/m)^k."""
        return (self.bits_set / self.bits) ** self.hashes

    @property
    def over_capacity(self) -> bool:
        """True once more keys were added than the filter was sized for."""
        return self.entries > self.capacity

    def describe(self) -> str:
        """One human-readable line, e.g. for a helper's startup log."""
        state = "OVER CAPACITY" if self.over_capacity else "ok"
        where = f"shared file {self.path}" if self.shared else "private memory"
        return (
            f"bloom filter ({where}): {self.entries}/{self.capacity} entries [{state}], "
            f"p={self.error_rate:g} now ~{self.current_error_rate:.3g}, m={self.bits} bits "
            f"({self.bits_per_entry:.2f}/entry, {self.bytes} bytes), k={self.hashes}, "
            f"{self.bits_set} bits set, ~{self.estimated_count:.0f} keys"
        )


def _as_bytes(key: object) -> bytes:
    if type(key) is bytes:
        return key
    if type(key) is str:
        return key.encode()
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise _key_type_error(key)


def _bools(results: bytearray) -> list[bool]:
    """C's 0/1 bytes as a list of bool (one C loop, not one call per element)."""
    return memoryview(results).cast("?").tolist()  # type: ignore[return-value]


def _closed(*_args: object) -> int:
    msg = "operation on a closed BloomFilter"
    raise BloomError(msg)


def _key_type_error(key: object) -> TypeError:
    return TypeError(f"Bloom filter keys must be str or bytes-like, not {type(key).__name__}")


class BloomFilter:
    """A Bloom filter sized for ``capacity`` keys at ``error_rate``.

    With ``path`` the filter lives in that file, shared with every other
    process that opens it; a missing file is created (atomically), an
    existing one must have been made with the same capacity, error rate
    and seed, else :class:`BloomFileError`.
    """

    __slots__ = ("__weakref__", "_add", "_check", "_hashes", "_ptr", "path")

    def __init__(
        self,
        capacity: int,
        error_rate: float,
        path: str | os.PathLike[str] | None = None,
        *,
        seed: int = DEFAULT_SEED,
    ) -> None:
        _check_params(capacity, error_rate)
        if not 0 <= seed <= _MAX_U32:
            msg = f"seed must fit in 32 bits, got {seed}"
            raise BloomError(msg)
        out = _ffi.new("sgb_bloom **")
        self.path = None if path is None else os.fspath(path)
        if self.path is None:
            rc = _lib.sgb_bloom_new(capacity, error_rate, seed, out)
        else:
            rc = _lib.sgb_bloom_open(os.fsencode(self.path), capacity, error_rate, seed, 1, out)
        _raise_for(rc, self.path)
        self._own(out[0])

    def _own(self, ptr: Any) -> None:
        info = _ffi.new("struct sgb_bloom_info *")
        _lib.sgb_bloom_info(ptr, info)
        self._ptr = _ffi.gc(ptr, _lib.sgb_bloom_free, size=int(info.bytes))
        self._hashes = int(info.hashes)
        self._add = _lib.sgb_bloom_add
        self._check = _lib.sgb_bloom_check

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Self:
        """Map an existing filter file, taking its parameters from its header."""
        self = cls.__new__(cls)
        self.path = os.fspath(path)
        out = _ffi.new("sgb_bloom **")
        _raise_for(_lib.sgb_bloom_open(os.fsencode(self.path), 0, 0.5, 0, 0, out), self.path)
        self._own(out[0])
        return self

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Read a saved filter into private memory (the file is not changed later)."""
        self = cls.__new__(cls)
        self.path = None
        where = os.fspath(path)
        out = _ffi.new("sgb_bloom **")
        _raise_for(_lib.sgb_bloom_load(os.fsencode(where), out), where)
        self._own(out[0])
        return self

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the filter to path atomically (temp file, fsync, rename)."""
        where = os.fspath(path)
        _raise_for(_lib.sgb_bloom_save(self._live(), os.fsencode(where)), where)

    def _live(self) -> Any:
        if self._add is _closed:
            _closed()
        return self._ptr

    def add(self, key: Key) -> bool:
        """Add key; True if it was new (this call set at least one bit)."""
        if isinstance(key, str):
            key = key.encode()
        try:
            return self._add(self._ptr, key, len(key)) == 1
        except TypeError:  # bytearray, memoryview (or not a key: _as_bytes says so)
            key = _as_bytes(key)
            return self._add(self._ptr, key, len(key)) == 1

    def __contains__(self, key: object) -> bool:
        if isinstance(key, bytes):  # the welcome check's packed addresses
            return self._check(self._ptr, key, len(key)) == 1
        data = key.encode() if isinstance(key, str) else _as_bytes(key)
        return self._check(self._ptr, data, len(data)) == 1

    def _batch(self, add: bool, keys: Iterable[Key]) -> list[bool]:
        ptr = self._live()
        items = keys if isinstance(keys, list) else list(keys)
        count = len(items)
        if not count:
            return []
        results = bytearray(count)
        out = _ffi.from_buffer(results)
        # All str (the usual case): joined by NUL, which C splits on, provided
        # no key holds a NUL (the join then has count - 1 of them).
        if items[0].__class__ is str:
            with suppress(TypeError):
                buf = "\0".join(items).encode()  # type: ignore[arg-type]
                if buf.count(0) == count - 1:
                    fn = _lib.sgb_bloom_add_split if add else _lib.sgb_bloom_check_split
                    fn(ptr, _ffi.from_buffer(buf), len(buf), 0, count, out)
                    return _bools(results)
        # Bytes (packed addresses hold NULs), keys with NUL, mixed: with lengths.
        try:
            buf = b"".join(items)  # type: ignore[arg-type]
            lengths = array("I", map(len, items))
            if len(buf) != sum(lengths):  # a memoryview of wider items
                raise TypeError
        except TypeError:
            items = [_as_bytes(k) for k in items]
            buf = b"".join(items)  # type: ignore[arg-type]
            lengths = array("I", map(len, items))
        if max(lengths) >= 2**32:  # pragma: no cover - 4 GiB keys
            msg = "a Bloom filter key must be shorter than 4 GiB"
            raise BloomError(msg)
        fn = _lib.sgb_bloom_add_many if add else _lib.sgb_bloom_check_many
        fn(ptr, _ffi.from_buffer(buf), _ffi.from_buffer("uint32_t[]", lengths), count, out)
        return _bools(results)

    def add_many(self, keys: Iterable[Key]) -> list[bool]:
        """Add every key in one C loop; element i says whether key i was new."""
        return self._batch(True, keys)

    def contains_many(self, keys: Iterable[Key]) -> list[bool]:
        """Check every key in one C loop; element i is ``keys[i] in self``."""
        return self._batch(False, keys)

    def positions(self, key: Key, shards: int = 1) -> tuple[int, list[int]]:
        """(shard, bit indexes) of key, for a copy of the filter kept elsewhere.

        With shards=1 the indexes are the k bits this filter sets for key
        (bit x is bit x % 8 of byte x // 8, least significant first; a store
        that numbers bits from the most significant one, such as Redis's
        BITFIELD, holds the same bytes at offset x ^ 7).  With shards=N the
        filter is split into N shards of ceil(bits / N) bits, all of key's
        bits lie in the returned shard and the indexes count inside it.
        """
        flat = self.positions_many([key], shards)
        return flat[0], flat[1:]

    def positions_many(self, keys: Sequence[Key], shards: int = 1) -> list[int]:
        """positions() of every key in one C loop, flat: k + 1 values per key
        (shard, then its k indexes), key after key."""
        ptr = self._live()
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= _MAX_U32:
            msg = f"shards must be a whole number from 1 to 2**32 - 1, got {shards!r}"
            raise BloomError(msg)
        items = [k if k.__class__ is bytes else _as_bytes(k) for k in keys]
        if not items:
            return []
        k = self._hashes
        buf = b"".join(items)
        lengths = array("I", map(len, items))
        out = array("Q", bytes(8 * (k + 1) * len(items)))
        rc = _lib.sgb_bloom_positions_many(ptr, buf, _ffi.from_buffer("uint32_t[]", lengths),
                                           len(items), shards, _ffi.from_buffer("uint64_t[]", out))
        if rc < 0:
            msg = f"shards must be at most half the filter's {self.info().bits} bits, got {shards}"
            raise BloomError(msg)
        return out.tolist()

    @property
    def hashes(self) -> int:
        """k, the number of bits per key."""
        return self._hashes

    def info(self) -> BloomInfo:
        """Parameters and fill (counts set bits: O(m/64) work)."""
        raw = _ffi.new("struct sgb_bloom_info *")
        _lib.sgb_bloom_info(self._live(), raw)
        return BloomInfo(
            capacity=int(raw.capacity),
            error_rate=float(raw.error),
            bits=int(raw.bits),
            hashes=int(raw.hashes),
            seed=int(raw.seed),
            bytes=int(raw.bytes),
            entries=int(raw.entries),
            bits_set=int(raw.bits_set),
            shared=bool(raw.shared),
            path=self.path,
        )

    def __len__(self) -> int:
        """Keys added that were new when added (an upper bound of distinct keys seen)."""
        return self.info().entries

    def reset(self) -> None:
        """Clear every bit and the entry count (for a shared file: for everyone)."""
        _lib.sgb_bloom_reset(self._live())

    def close(self) -> None:
        """Release memory or unmap the file; later calls raise BloomError. Idempotent."""
        if self._add is _closed:
            return
        self._add = self._check = _closed
        _ffi.release(self._ptr)

    @property
    def closed(self) -> bool:
        """True after close()."""
        return self._add is _closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<BloomFilter closed>"
        i = self.info()
        where = f" path={self.path!r}" if self.path else ""
        return f"<BloomFilter capacity={i.capacity} error_rate={i.error_rate:g}{where}>"


def handle(f: BloomFilter) -> Any:
    """The filter's C handle, for :mod:`squidguard_bloom.native.fastpath` only (never handed
    outside the native layer); BloomError once the filter is closed."""
    return f._live()
