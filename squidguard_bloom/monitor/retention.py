"""Retention: raw rows (subscribers' browsing data) for ``raw_days``, rollups for ``rollup_days``.

Rows go in slices of ``slice_rows``, each its own short transaction, so that a
large purge never holds the ingest (or the dashboard's readers) for long.
Raw rows are found through their time index; rollups through their primary
key, which starts with the bucket.
"""

from __future__ import annotations

import time

from squidguard_bloom.monitor import postings
from squidguard_bloom.monitor.db import Database

DAY = 86400.0
RAW = (("access", "ts"), ("decisions", "ts"), ("events", "ts"), ("unparsed", "received"))
ROLLUPS = (("rollup_lines", "minute"), ("rollup_decisions", "minute"), ("rollup_cache", "minute"),
           ("rollup_blocked_hosts", "hour"), ("rollup_hosts", "hour"), ("rollup_clients", "hour"),
           # the dashboard's sums of those (migration 3): the same retention
           ("rollup_decisions_hourly", "hour"), ("rollup_cache_hourly", "hour"),
           ("rollup_blocked_hosts_daily", "day"), ("rollup_hosts_daily", "day"),
           ("rollup_clients_daily", "day"),
           # their fleet-wide hourly sums (migration 5)
           ("rollup_blocked_hosts_fleet", "hour"), ("rollup_hosts_fleet", "hour"),
           ("rollup_clients_fleet", "hour"))


def prune(db: Database, *, raw_days: float, rollup_days: float, now: float | None = None,
          slice_rows: int = 50000) -> dict[str, int]:
    """Delete raw rows older than raw_days and rollups older than rollup_days; counts."""
    now = time.time() if now is None else now
    removed: dict[str, int] = {}
    for table, column in RAW:
        removed[table] = _delete_ids(db, table, column, now - raw_days * DAY, slice_rows)
    removed.update(postings.prune(db, now - raw_days * DAY))  # the raw rows' search index
    for table, column in ROLLUPS:
        with db.transaction():
            before = db.scalar(f"SELECT count(*) FROM {table} WHERE {column} < ?",
                               (int(now - rollup_days * DAY),))
            db.execute(f"DELETE FROM {table} WHERE {column} < ?", (int(now - rollup_days * DAY),))
        removed[table] = int(before)
    return removed


def _delete_ids(db: Database, table: str, column: str, cutoff: float, slice_rows: int) -> int:
    total = 0
    while True:
        with db.transaction():
            gone = len(db.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} < ? "
                "LIMIT ?) RETURNING id", (cutoff, slice_rows)))
        total += gone
        if gone < slice_rows:
            return total
