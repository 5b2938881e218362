"""Top lists of the dashboard: what each way of storing the hourly sums costs a 24-hour list.

On a SQLite file filled by ``bench/monitor_api.py --reuse-sqlite FILE`` (opened read-only; the
variants are built as TEMP tables from its hourly rollups and vanish with the connection),
the three top-list queries of ``queries.tops()`` over the last 24 hours of data, all proxies,
from:

* the per-proxy hourly rollups (``rollup_*``: what tops() read before migration 5);
* fleet-wide hourly sums (``rollup_*_fleet``: what it reads since);
* per-proxy 4-hour sums, whole hours at both edges;
* fleet-wide 4-hour sums, fleet-wide hours at both edges.

Each query ``--repeat`` times, median in ms; every variant's lists are checked against the
first's. Usage: python bench/monitor_tops.py FILE [--repeat 7]. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path

HOUR = 3600
BLOCK = 4 * HOUR
# list -> (per-proxy hourly rollup, key columns but proxy_id, value columns)
LISTS = {
    "blocked": ("rollup_blocked_hosts", "target, host", "n"),
    "clients": ("rollup_clients", "client", "requests, bytes, blocks"),
    "cached": ("rollup_hosts", "host", "n, hits, bytes, hit_bytes"),
}


def top_sql(rows: str) -> dict[str, str]:
    """The top-list queries of queries.tops() over ``rows`` (a table or a subquery whose
    ``{name}`` stands for each list's per-proxy table name)."""
    return {
        "blocked": f"SELECT host, target, sum(n) FROM {rows.format(name='blocked')} "
                   "GROUP BY host, target ORDER BY 3 DESC, 1, 2 LIMIT 10",
        "clients": f"SELECT client, sum(requests), sum(blocks), sum(bytes) FROM "
                   f"{rows.format(name='clients')} GROUP BY client "
                   "ORDER BY sum(requests) + sum(blocks) DESC, 1 LIMIT 10",
        "cached": f"SELECT host, sum(hits), sum(n), sum(hit_bytes) FROM "
                  f"{rows.format(name='cached')} GROUP BY host HAVING sum(hits) > 0 "
                  "ORDER BY 2 DESC, 4 DESC, 1 LIMIT 10",
    }


def build(db: sqlite3.Connection) -> float:
    """The variants' TEMP tables (WITHOUT ROWID, keyed as the real ones) from the hourly
    rollups; seconds taken."""
    t = time.perf_counter()
    for name, (table, keys, values) in LISTS.items():
        sums = ", ".join(f"sum({v})" for v in values.split(", "))
        columns = ", ".join([*(f"{k} TEXT NOT NULL" for k in keys.split(", ")),
                             *(f"{v} INTEGER NOT NULL" for v in values.split(", "))])
        for variant, bucket, proxy in (("fh", "hour", ""),
                                       ("pb", f"hour - hour % {BLOCK}", "proxy_id, "),
                                       ("fb", f"hour - hour % {BLOCK}", "")):
            proxy_column = "proxy_id INTEGER NOT NULL, " if proxy else ""
            db.execute(f"CREATE TEMP TABLE {variant}_{name} (hour INTEGER NOT NULL, "
                       f"{proxy_column}{columns}, PRIMARY KEY (hour, {proxy}{keys})) "
                       "WITHOUT ROWID")
            db.execute(f"INSERT INTO {variant}_{name} (hour, {proxy}{keys}, {values}) "
                       f"SELECT {bucket}, {proxy}{keys}, {sums} FROM {table} "
                       f"GROUP BY 1, {proxy}{keys}")
    db.execute("ANALYZE temp")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    db = sqlite3.connect(f"file:{args.file}?mode=ro", uri=True)
    db.execute("PRAGMA cache_size=-65536")  # as the monitor's connections
    db.execute("PRAGMA temp_store=MEMORY")
    print(f"variants built in {build(db):.1f} s")
    until = int(db.execute("SELECT max(hour) FROM rollup_hosts").fetchone()[0]) + HOUR // 2
    first = (until - 86400) // HOUR * HOUR
    end = -(-until // HOUR) * HOUR  # the hours [first, end) that the 24 hours touch
    b0, b1 = -(-first // BLOCK) * BLOCK, end // BLOCK * BLOCK

    def edges(hourly: str, blocks: str, cols: str) -> str:
        return (f"(SELECT {cols} FROM {hourly} WHERE hour >= {first} AND hour < {b0} "
                f"UNION ALL SELECT {cols} FROM {blocks} WHERE hour >= {b0} AND hour < {b1} "
                f"UNION ALL SELECT {cols} FROM {hourly} WHERE hour >= {b1} AND hour < {end})")

    cols = {name: f"{keys}, {values}" for name, (_t, keys, values) in LISTS.items()}
    real = {name: table for name, (table, _k, _v) in LISTS.items()}

    def per_list(make: Callable[[str], str]) -> dict[str, str]:
        return {name: top_sql(make(name))[name] for name in LISTS}

    window = f"WHERE hour >= {first} AND hour < {end}"
    variants = {
        "per-proxy hourly rollups": per_list(lambda n: f"(SELECT * FROM {real[n]} {window})"),
        "fleet-wide hourly sums": per_list(lambda n: f"(SELECT * FROM fh_{n} {window})"),
        "per-proxy 4-hour sums + hours at the edges": per_list(
            lambda n: edges(real[n], f"pb_{n}", cols[n])),
        "fleet-wide 4-hour sums + hours at the edges": per_list(
            lambda n: edges(f"fh_{n}", f"fb_{n}", cols[n])),
    }
    print(f"24 hours: {(end - first) // HOUR} hours touched; ms, median of {args.repeat}")
    print(f"  {'top lists read from':<45} " + " ".join(f"{n:>8}" for n in LISTS)
          + "    total  same lists")
    reference = None
    for variant, sqls in variants.items():
        times, lists = [], []
        for sql in sqls.values():
            lists.append(db.execute(sql).fetchall())
            took = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                db.execute(sql).fetchall()
                took.append(time.perf_counter() - t)
            times.append(1000 * statistics.median(took))
        reference = reference or lists
        print(f"  {variant:<45} " + " ".join(f"{ms:8.1f}" for ms in times)
              + f" {sum(times):8.1f}  {'yes' if lists == reference else 'NO'}")


if __name__ == "__main__":
    main()
