"""A pure-Python Bloom filter with exactly the C filter's sizing, hashing and bits.

It exists to check the C code (tests compare bit arrays byte for byte) and
to document the algorithm in a dozen readable lines; it is far too slow for
the helper.  Sizing is the formula of csrc/bloom.h, evaluated the same way.
"""

from __future__ import annotations

import math

import mmh3


def reference_sizing(capacity: int, error_rate: float) -> tuple[int, int]:
    """(m, k): m = ceil(-n ln p / ln^2 2); k = floor or ceil of (m/n) ln 2, lower FPR wins."""
    ln2 = math.log(2.0)
    n = float(capacity)
    m = math.ceil(-n * math.log(error_rate) / (ln2 * ln2))
    kstar = m / n * ln2
    lo = max(1.0, math.floor(kstar))
    hi = math.floor(kstar) + 1.0

    def fpr(k: float) -> float:
        return (1.0 - math.exp(-k * n / m)) ** k

    return m, int(hi if fpr(hi) < fpr(lo) else lo)


class ReferenceBloom:
    """Same bit layout as the C filter: bit x is bit (x % 8) of byte x // 8."""

    def __init__(self, capacity: int, error_rate: float, seed: int) -> None:
        self.bits, self.hashes = reference_sizing(capacity, error_rate)
        self.seed = seed
        self.data = bytearray((self.bits + 63) // 64 * 8)

    def probes(self, key: bytes) -> list[int]:
        """The k bit positions of key: (a + i*b) mod m from one MurmurHash3 call."""
        a, b = mmh3.hash64(key, self.seed, signed=False)
        m = self.bits
        start = a % m
        step = 1 + b % (m - 1) if m > 1 else 0
        return [(start + i * step) % m for i in range(self.hashes)]

    def add(self, key: bytes) -> bool:
        """Set key's bits; True if any was clear."""
        fresh = False
        for x in self.probes(key):
            mask = 1 << (x & 7)
            if not self.data[x >> 3] & mask:
                self.data[x >> 3] |= mask
                fresh = True
        return fresh

    def __contains__(self, key: bytes) -> bool:
        return all(self.data[x >> 3] & (1 << (x & 7)) for x in self.probes(key))
