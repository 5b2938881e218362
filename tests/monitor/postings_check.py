"""A check shared by the monitor tests: the search postings list every raw row exactly once."""

from __future__ import annotations

from collections import Counter

from squidguard_bloom.monitor import postings
from squidguard_bloom.monitor.db import Database


def listed(db: Database, table: str, field: str) -> Counter[tuple[str, int, int]]:
    """(value, hour, id) for every id in table's postings of field, with repeats counted."""
    out: Counter[tuple[str, int, int]] = Counter()
    for value, hour, first_id, ids in db.execute(
            f"SELECT value, hour, first_id, ids FROM {postings.TABLES[table]} WHERE field = ?",
            (field,)):
        numbers = [int(x) for x in ids.split(",")]
        assert numbers == sorted(numbers) and numbers[0] == first_id, (value, hour, ids)
        out.update((value, int(hour), n) for n in numbers)
    return out


def assert_postings_match_rows(db: Database) -> None:
    """Every access and decisions row is in exactly one posting per field (client, host),
    under its own value and the hour of its time, and no posting names another id."""
    for table in postings.TABLES:
        for field in (postings.CLIENT, postings.HOST):
            rows = Counter((value, int(ts // 3600 * 3600), int(rid)) for rid, value, ts in
                           db.execute(f"SELECT id, {field}, ts FROM {table}"))
            assert listed(db, table, field) == rows, (table, field)
