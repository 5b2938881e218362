"""The rollup statements, run in each ingest transaction over the raw rows it just added.

Raw rows of one transaction have ids above the table's largest id before it
(a single ingest writes them, holding the ingest lock), so each rollup is one
``INSERT ... SELECT ... WHERE id > ? GROUP BY ... ON CONFLICT DO UPDATE`` that
adds to existing buckets: computed by the database, exact, and committed with
the rows and checkpoints it counts.
"""

from __future__ import annotations

from squidguard_bloom.monitor.cache import HIT_SQL
from squidguard_bloom.monitor.db import Database

MINUTE = 60
HOUR = 3600


def _upsert(table: str, keys: str, values: str) -> str:
    sets = ", ".join(f"{v} = {table}.{v} + excluded.{v}" for v in values.split(", "))
    return f"ON CONFLICT ({keys}) DO UPDATE SET {sets}"


def access_statements(db: Database) -> list[str]:
    """Statements taking one parameter, the largest ``access.id`` before the new rows."""
    minute, hour = db.bucket("ts", MINUTE), db.bucket("ts", HOUR)
    return [
        "INSERT INTO rollup_lines (minute, proxy_id, kind, lines, unparsed) "
        f"SELECT {minute}, proxy_id, 'access', count(*), 0 FROM access WHERE id > ? "
        "GROUP BY 1, 2 " + _upsert("rollup_lines", "minute, proxy_id, kind", "lines"),
        "INSERT INTO rollup_cache (minute, proxy_id, result, status, hit, n, bytes, elapsed_ms) "
        f"SELECT {minute}, proxy_id, result, status, {HIT_SQL}, count(*), sum(bytes), "
        "sum(elapsed_ms) FROM access WHERE id > ? GROUP BY 1, 2, 3, 4 "
        + _upsert("rollup_cache", "minute, proxy_id, result, status", "n, bytes, elapsed_ms"),
        "INSERT INTO rollup_hosts (hour, proxy_id, host, n, hits, bytes, hit_bytes) "
        f"SELECT {hour}, proxy_id, host, count(*), sum(h), sum(bytes), sum(h * bytes) "
        f"FROM (SELECT ts, proxy_id, host, bytes, {HIT_SQL} AS h FROM access WHERE id > ?) a "
        "WHERE true GROUP BY 1, 2, 3 "
        + _upsert("rollup_hosts", "hour, proxy_id, host", "n, hits, bytes, hit_bytes"),
        "INSERT INTO rollup_clients (hour, proxy_id, client, requests, bytes, blocks) "
        f"SELECT {hour}, proxy_id, client, count(*), sum(bytes), 0 FROM access WHERE id > ? "
        "GROUP BY 1, 2, 3 " + _upsert("rollup_clients", "hour, proxy_id, client",
                                      "requests, bytes"),
    ]


def decision_statements(db: Database) -> list[str]:
    """Statements taking one parameter, the largest ``decisions.id`` before the new rows."""
    minute, hour = db.bucket("ts", MINUTE), db.bucket("ts", HOUR)
    return [
        "INSERT INTO rollup_lines (minute, proxy_id, kind, lines, unparsed) "
        f"SELECT {minute}, proxy_id, 'helper', count(*), 0 FROM decisions WHERE id > ? "
        "GROUP BY 1, 2 " + _upsert("rollup_lines", "minute, proxy_id, kind", "lines"),
        "INSERT INTO rollup_decisions (minute, proxy_id, target, action, n) "
        f"SELECT {minute}, proxy_id, target, action, count(*) FROM decisions WHERE id > ? "
        "GROUP BY 1, 2, 3, 4 " + _upsert("rollup_decisions", "minute, proxy_id, target, action",
                                         "n"),
        "INSERT INTO rollup_blocked_hosts (hour, proxy_id, target, host, n) "
        f"SELECT {hour}, proxy_id, target, host, count(*) FROM decisions "
        "WHERE id > ? AND action = 'REDIRECT' GROUP BY 1, 2, 3, 4 "
        + _upsert("rollup_blocked_hosts", "hour, proxy_id, target, host", "n"),
        "INSERT INTO rollup_clients (hour, proxy_id, client, requests, bytes, blocks) "
        f"SELECT {hour}, proxy_id, client, 0, 0, count(*) FROM decisions "
        "WHERE id > ? AND action = 'REDIRECT' GROUP BY 1, 2, 3 "
        + _upsert("rollup_clients", "hour, proxy_id, client", "blocks"),
    ]


LINES_UPSERT = ("INSERT INTO rollup_lines (minute, proxy_id, kind, lines, unparsed) "
                "VALUES (?, ?, ?, ?, ?) "
                + _upsert("rollup_lines", "minute, proxy_id, kind", "lines, unparsed"))
"""Adds counted lines for events and unparsed lines, counted in Python (few rows)."""
