"""Bloom filter throughput and false-positive rate, ours vs pybloom-live, side by side.

Usage: python bench/bloom_throughput.py [--n 1000000] [--queries 1000000]

Prints one table per error rate: inserts/s and lookups/s (single calls and,
for ours, batch calls), measured false-positive rate against the formula
(1 - e^(-kn/m))^k, bits per entry and bytes.  Keys are fixed ("client-<i>"
inserted, "stranger-<i>" queried), so FPR figures are reproducible.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

from pybloom_live import BloomFilter as PyBloomLive

from squidguard_bloom.native.bloom import BloomFilter


def rate(count: int, fn: Callable[[], object]) -> float:
    """Operations per second of fn(), which performs count operations."""
    start = time.perf_counter()
    fn()
    return count / (time.perf_counter() - start)


def bench_ours(n: int, p: float, inserted: list[str], absent: list[str]) -> list[dict]:
    rows = []
    f = BloomFilter(n, p)
    add, contains = f.add, f.__contains__
    ins = rate(n, lambda: [add(k) for k in inserted])
    look = rate(n, lambda: [contains(k) for k in inserted])
    info = f.info()
    fp = sum(f.contains_many(absent)) / len(absent)
    rows.append(("ours, single calls", ins, look, fp, info.bits, info.hashes, info.bytes))
    g = BloomFilter(n, p)
    ins_b = rate(n, lambda: g.add_many(inserted))
    look_b = rate(n, lambda: g.contains_many(inserted))
    rows.append(("ours, add_many/contains_many", ins_b, look_b, fp, info.bits, info.hashes,
                 info.bytes))
    packed = [k.encode() for k in inserted]
    h = BloomFilter(n, p)
    ins_p = rate(n, lambda: h.add_many(packed))
    look_p = rate(n, lambda: h.contains_many(packed))
    rows.append(("ours, batch, bytes keys", ins_p, look_p, fp, info.bits, info.hashes,
                 info.bytes))
    f.close()
    g.close()
    h.close()
    return rows


def bench_pybloom_live(n: int, p: float, inserted: list[str], absent: list[str]) -> list[tuple]:
    f = PyBloomLive(capacity=n, error_rate=p)
    add = f.add
    ins = rate(n, lambda: [add(k) for k in inserted])
    look = rate(n, lambda: [k in f for k in inserted])
    fp = sum(k in f for k in absent) / len(absent)
    bits = f.num_bits
    return [("pybloom-live 4.0", ins, look, fp, bits, f.num_slices, len(f.bitarray.tobytes()))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.n
    inserted = [f"client-{i}" for i in range(n)]
    absent = [f"stranger-{i}" for i in range(args.queries)]
    for p in (0.01, 0.001):
        rows = bench_ours(n, p, inserted, absent) + bench_pybloom_live(n, p, inserted, absent)
        print(f"\nn = {n:,}, target p = {p}")
        head = (f"{'filter':32} {'inserts/s':>12} {'lookups/s':>12} {'FPR':>8} {'theory':>8} "
                f"{'rel.err':>8} {'bits/entry':>10} {'k':>3} {'bytes':>10} {'lookup x':>9}")
        print(head)
        print("-" * len(head))
        base = rows[-1][2]
        for name, ins, look, fp, bits, k, nbytes in rows:
            theory = (1 - math.exp(-k * n / bits)) ** k
            print(f"{name:32} {ins:12,.0f} {look:12,.0f} {fp:8.4%} {theory:8.4%} "
                  f"{(fp - theory) / theory:+8.1%} {bits / n:10.3f} {k:3d} {nbytes:10,d} "
                  f"{look / base:8.1f}x")


if __name__ == "__main__":
    main()
