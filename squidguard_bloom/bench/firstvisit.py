"""The added cost of the first-visit check, per request, measured directly.

Times :meth:`squidguard_bloom.helper.welcome.Welcome.first_visit` on a warm
filter (every client already welcomed, the steady state of a busy proxy)
with and without a window, next to the parts it is made of (turning the
address into a key, one filter lookup) and to the cold case (clients never
seen, each call adds a key).  Times are µs per call from a Python loop,
the loop's own cost included, as in the helper.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squidguard_bloom.bench import gen
from squidguard_bloom.bench.table import Column, count, fixed, format_table, text
from squidguard_bloom.core.keys import address_key
from squidguard_bloom.helper.welcome import Welcome, WelcomeSettings
from squidguard_bloom.native.bloom import BloomFilter


def _per_call_us(calls: int, body: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    body()
    return (time.perf_counter() - t0) / calls * 1e6


def measure(
    calls: int = 1_000_000,
    clients: int = 3_000,
    seed: int = 1234,
    capacity: int = 100_000,
    error: float = 0.001,
) -> list[dict[str, Any]]:
    """Rows of µs per call for each variant (see the module docstring)."""
    rng = random.Random(f"{seed}:welcome")
    who = gen.clients(clients, rng)
    stream = [who[i % clients] for i in range(calls)]
    rows: list[dict[str, Any]] = []
    now = time.time()

    def row(what: str, us: float, note: str = "") -> None:
        rows.append({"what": what, "calls": calls, "us_per_call": us, "note": note})

    def loop_only() -> None:
        for _c in stream:
            pass

    row("empty loop (baseline)", _per_call_us(calls, loop_only))

    def keys_only() -> None:
        for c in stream:
            address_key(c)

    row("address_key only", _per_call_us(calls, keys_only))
    with tempfile.TemporaryDirectory(prefix="sgb-welcome-bench-") as tmp:
        f = BloomFilter(capacity, error, Path(tmp) / "plain.bloom")
        f.add_many([address_key(c) for c in who])
        packed = [address_key(c) for c in stream]

        def lookups() -> None:
            for k in packed:
                k in f  # noqa: B015 - the lookup is what is timed

        row("filter lookup only (packed key)", _per_call_us(calls, lookups), "shared mmap file")
        f.close()
        for window, label in (
            (None, "first_visit, warm"),
            (86400.0, "first_visit, warm, window 1d"),
        ):
            settings = WelcomeSettings(
                redirect="http://welcome.invalid/",
                key="ip",
                capacity=capacity,
                error=error,
                state=str(Path(tmp) / f"w{window}.bloom"),
                window=window,
            )
            w = Welcome(settings)
            for c in who:
                w.first_visit(c, "", now)
            first = w.first_visit

            def warm(first: Callable[[str, str, float], bool] = first) -> None:
                for c in stream:
                    first(c, "", now)

            row(label, _per_call_us(calls, warm), f"{clients:,} clients, all seen")
            w.close()
        cold_n = min(calls, capacity)
        fresh = gen.clients(cold_n, random.Random(f"{seed}:cold"))
        w = Welcome(
            WelcomeSettings(
                redirect="http://welcome.invalid/",
                capacity=capacity,
                error=error,
                state=str(Path(tmp) / "cold.bloom"),
            )
        )
        first = w.first_visit

        def cold() -> None:
            for c in fresh:
                first(c, "", now)

        rows.append(
            {
                "what": "first_visit, cold (every client new)",
                "calls": cold_n,
                "us_per_call": _per_call_us(cold_n, cold),
                "note": "adds a key per call",
            }
        )
        w.close()
    base = rows[0]["us_per_call"]
    for r in rows:
        r["minus_loop_us"] = max(r["us_per_call"] - base, 0.0) if r is not rows[0] else None
    return rows


COLUMNS = (
    Column("what", "measured", text, left=True),
    Column("calls", "calls", count),
    Column("us_per_call", "µs/call", fixed(3)),
    Column("minus_loop_us", "minus loop", fixed(3)),
    Column("note", "note", text, left=True),
)


def render(rows: list[dict[str, Any]]) -> str:
    """The µs-per-call table."""
    return format_table(COLUMNS, rows)
