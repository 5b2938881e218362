"""Search postings: the index behind the dashboard's search by client and by domain.

A B-tree index on ``(client, ts)`` or ``(host, ts)`` costs every stored row one
insert at a random place in the tree; on SQLite that was more than half of
ingest's time. A posting instead lists the ids of all rows of one ingest
transaction that share a value (one client, or one host) in one hour of line
time, in ``access_postings`` / ``decision_postings`` (schema 4):

    (field, value, hour, first_id) -> ids    ids: ascending row ids, comma-separated

so a transaction writes one posting per (value, hour) it touched, not one index
entry per row, and still in the transaction of its rows (exactly once).

A search for a client or a domain reads the postings of the newest hour in its
range that has any (a primary-key range), fetches those rows by id with the
other filters, and goes on to the next older hour only while the page is not
full. Its cost grows with the value's rows in the hours it reads, never with
the table. Retention drops postings whose hour is wholly older than the raw
rows kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from squidguard_bloom.monitor.db import Database

CLIENT = "client"
HOST = "host"
COLUMNS = ("field", "value", "hour", "first_id", "ids")
TABLES = {"access": "access_postings", "decisions": "decision_postings"}
HOUR = 3600
FETCH_IDS = 500  # ids per row fetch (SQLite allows 32,766 parameters)

Row = tuple[Any, ...]


class Postings:
    """The postings of one ingest transaction, ready to insert."""

    def __init__(self) -> None:
        self.rows: dict[str, list[Row]] = {"access": [], "decisions": []}

    def add(self, table: str, field: str, buckets: dict[tuple, list[int]]) -> None:
        """Add the postings of buckets ``{(hour, proxy_id, value): [ascending row ids]}`` of
        table's rows."""
        out = self.rows[table]
        for (hour, _proxy, value), ids in buckets.items():
            out.append((field, value, hour, ids[0], ",".join(map(str, ids))))

    def write(self, db: Database) -> None:
        """Insert them (inside the transaction that inserts their rows)."""
        for table, rows in self.rows.items():
            db.insert_rows(TABLES[table], COLUMNS, rows)


def hours_newest_first(db: Database, table: str, field: str, value: str, since: float,
                       until: float) -> Iterator[list[int]]:
    """The ids of table's rows with field = value, one hour at a time, newest hour first,
    over the hours that [since, until) touches (ids of rows outside it may be included)."""
    postings = TABLES[table]
    low = int(since // HOUR * HOUR)
    high = int(until // HOUR * HOUR)
    while high >= low:
        hour = db.scalar(f"SELECT max(hour) FROM {postings} WHERE field = ? AND value = ? "
                         "AND hour >= ? AND hour <= ?", (field, value, low, high))
        if hour is None:
            return
        ids: list[int] = []
        for (text,) in db.execute(f"SELECT ids FROM {postings} WHERE field = ? AND value = ? "
                                  "AND hour = ?", (field, value, hour)):
            ids.extend(map(int, text.split(",")))
        yield ids
        high = int(hour) - HOUR


def fetch(db: Database, select: str, where: Sequence[str], params: Sequence[Any],
          ids: list[int]) -> list[Row]:
    """``SELECT <select> WHERE id IN ids AND <where>``, in slices of FETCH_IDS ids."""
    out: list[Row] = []
    for start in range(0, len(ids), FETCH_IDS):
        part = ids[start:start + FETCH_IDS]
        cond = " AND ".join([f"id IN ({','.join('?' * len(part))})", *where])
        out.extend(db.execute(f"{select} WHERE {cond}", (*part, *params)))
    return out


def prune(db: Database, cutoff: float) -> dict[str, int]:
    """Delete the postings of hours wholly before cutoff (epoch s), each table in its own
    transaction; the postings removed, per table."""
    removed: dict[str, int] = {}
    last_hour = cutoff - HOUR  # an hour that starts here or before ends by the cutoff
    for name in TABLES.values():
        with db.transaction():
            removed[name] = int(db.scalar(f"SELECT count(*) FROM {name} WHERE hour <= ?",
                                          (last_hour,)))
            db.execute(f"DELETE FROM {name} WHERE hour <= ?", (last_hour,))
    return removed


def rebuild_sql(db: Database) -> list[str]:
    """Statements that recompute every posting from the raw rows (for tools that load rows
    by SQL, such as the dashboard benchmark; ingest writes its own)."""
    out = []
    hour = db.bucket("ts", HOUR)
    for table, postings in TABLES.items():
        out.append(f"DELETE FROM {postings}")
        for field, column in ((CLIENT, "client"), (HOST, "host")):
            if db.dialect == "sqlite":
                agg, source = ("group_concat(id, ',')",
                               f"(SELECT id, {column}, {hour} AS hour FROM {table} ORDER BY id)")
            else:
                agg, source = ("string_agg(id::text, ',' ORDER BY id)",
                               f"(SELECT id, {column}, {hour} AS hour FROM {table}) r")
            out.append(f"INSERT INTO {postings} ({', '.join(COLUMNS)}) "
                       f"SELECT '{field}', {column}, hour, min(id), {agg} FROM {source} "
                       f"GROUP BY {column}, hour")
    return out
