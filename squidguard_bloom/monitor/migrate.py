"""Numbered schema migrations, one SQL file per dialect and version.

``schema/<dialect>/NNNN_name.sql`` (dialect ``sqlite`` or ``postgresql``; numbers
start at 0001 and may leave gaps, so each part of the monitor owns a range:
the alerts start at 0100); each
file runs in one transaction together with its row in ``schema_migrations``,
so a migration is applied completely or not at all. To change the schema, add
the next number in *both* directories (same name), never edit an applied one.
Concurrent starts are serialised (SQLite: the write lock; PostgreSQL: an
advisory lock) and re-check what is applied once they hold the lock.
"""

from __future__ import annotations

import re
import time
from importlib import resources

from squidguard_bloom.monitor.db import (
    POSTGRESQL,
    Database,
    PostgresDatabase,
    SqliteDatabase,
    is_postgresql,
)
from squidguard_bloom.monitor.errors import DatabaseError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_BOOTSTRAP = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied DOUBLE PRECISION NOT NULL)"
)


def available(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped for dialect, in order."""
    folder = resources.files("squidguard_bloom.monitor").joinpath("schema", dialect)
    found = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _n, _s in found]
    # Numbers may leave gaps (each part of the monitor takes its own range: alerts 0100...),
    # but never repeat, and 0001 comes first.
    if not versions or versions[0] != 1 or len(set(versions)) != len(versions):
        raise DatabaseError(f"migrations for {dialect} must start at 0001 and never repeat "
                            f"a number: {versions}")
    return found


def applied(db: Database) -> list[int]:
    """Versions recorded in the database."""
    return [v for (v,) in db.execute("SELECT version FROM schema_migrations ORDER BY version")]


def migrate(db: Database) -> list[int]:
    """Apply what is missing; the versions applied now. Refuses a newer database."""
    db.execute(_BOOTSTRAP)
    todo = available(db.dialect)
    known = {v for v, _n, _s in todo}
    done_now: list[int] = []
    for version, name, sql in todo:
        if version in applied(db):
            continue
        with db.transaction():
            if db.dialect == POSTGRESQL:
                db.execute("SELECT pg_advisory_xact_lock(?)", (0x53676201,))
            if db.scalar("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)):
                continue  # another process applied it while we waited
            try:
                db.script(sql)
            except Exception as exc:
                raise DatabaseError(f"migration {version:04d}_{name} failed on "
                                    f"{db.dialect}: {exc}") from exc
            db.execute("INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)",
                       (version, name, time.time()))
        done_now.append(version)
    unknown = sorted(set(applied(db)) - known)
    if unknown:
        raise DatabaseError(
            f"the database is at schema version {unknown[-1]}, newer than this "
            f"squidguard-bloom-monitor knows (up to {max(known)}); upgrade squidguard-bloom "
            "on this host")
    return done_now


run_migrations = migrate  # open_database takes a flag of that name


def open_database(url: str, *, migrate: bool = True) -> Database:
    """Connect to url and (by default) bring its schema up to date."""
    db: Database = PostgresDatabase(url) if is_postgresql(url) else SqliteDatabase(url)
    if migrate:
        try:
            run_migrations(db)
        except BaseException:
            db.close()
            raise
    return db
