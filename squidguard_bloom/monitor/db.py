"""The monitor's database: one thin layer over sqlite3 (default) and psycopg 3 (PostgreSQL).

Everything above this module (ingest, report, the dashboard, alerts) writes SQL
once, with ``?`` placeholders, and calls :class:`Database`; the few places
where the dialects differ are methods here (:meth:`Database.minute`, bulk
insert). No ORM: ingest speed is the point, and the SQL stays visible.

``open_database(url)`` takes ``postgresql://...`` (or ``postgres://``) for
PostgreSQL; anything else is a SQLite file path (``sqlite:///path`` also
works). :func:`squidguard_bloom.monitor.migrate.open_database` opens one and
applies pending migrations.

A ``Database`` is one connection: open one per thread (a web server runs its
queries in a thread pool, one connection per worker thread). On SQLite, WAL
lets any number of readers work while the single ingest writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from squidguard_bloom.monitor.errors import DatabaseError

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
_PG_URL = re.compile(r"^postgres(?:ql)?://", re.I)
# lock keys for pg_advisory_lock; any fixed numbers unlikely to clash with other users
_PG_LOCKS = {"migrate": 0x5367_6201, "ingest": 0x5367_6202, "ids": 0x5367_6203}

Row = tuple[Any, ...]


def is_postgresql(url: str) -> bool:
    """Whether url names a PostgreSQL database."""
    return bool(_PG_URL.match(url))


def redact(url: str) -> str:
    """url without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


class Database:
    """A connection to the monitor's database, in autocommit mode between transactions."""

    dialect: str

    def __init__(self, url: str) -> None:
        self.url = url
        self._locks: list[Any] = []

    # -- to be provided by each dialect ------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement (``?`` placeholders); its rows (empty for DML)."""
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each parameter row."""
        raise NotImplementedError

    def script(self, sql: str) -> None:
        """Run several statements without parameters, inside the current transaction."""
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A write transaction: committed on normal exit, rolled back on an exception."""
        raise NotImplementedError

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        """Bulk insert (executemany on SQLite, COPY on PostgreSQL); inside a transaction."""
        raise NotImplementedError

    def add_to(self, table: str, keys: Sequence[str], values: Sequence[str],
               rows: Sequence[Row], fixed: Sequence[str] = ()) -> None:
        """Add rows of (*keys, *fixed, *values) to table: a new key is inserted, an existing
        one gets its values added (``fixed`` columns are written on insert only)."""
        if rows:
            self.executemany(_add_sql(table, keys, values, fixed, "VALUES"), rows)

    #: Whether blocks from :meth:`reserve_ids` never overlap across connections (else a
    #: writer that finds rows stored above its own ids must start again, as ingest does).
    ids_unique_across_connections = False

    def reserve_ids(self, table: str, n: int) -> int:
        """The first of n new ids for rows of table (an ``id`` primary key), for the caller to
        insert explicitly, above every id stored when this connection first asked. Within
        one connection they never repeat; across connections see
        :attr:`ids_unique_across_connections` (SQLite: no)."""
        raise NotImplementedError

    def try_lock(self, name: str) -> bool:
        """Take the named exclusive lock for this connection's life; False if someone has it."""
        raise NotImplementedError

    def defer_checkpoints(self) -> None:
        """Leave the write-ahead log's checkpoints to :meth:`checkpoint` on another
        connection (SQLite; nothing to do on PostgreSQL, whose server does them)."""

    def checkpoint(self) -> None:
        """Copy committed pages from the write-ahead log to the database without waiting
        for or blocking the writer (SQLite's passive checkpoint; PostgreSQL: nothing)."""

    def minute(self, column: str) -> str:
        """SQL for the start of the minute of an epoch-seconds column."""
        return self.bucket(column, 60)

    def bucket(self, column: str, seconds: int) -> str:
        """SQL for the start of the ``seconds``-long bucket of an epoch-seconds column."""
        raise NotImplementedError

    def table_bytes(self) -> dict[str, int]:
        """Bytes on disk per table, indexes included (for the benchmark and the report)."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the connection (and release its locks)."""
        raise NotImplementedError

    # -- common ------------------------------------------------------------------------

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None."""
        rows = self.execute(sql, params)
        return rows[0][0] if rows else None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SqliteDatabase(Database):
    """SQLite in WAL mode: readers (report, dashboard) never block the ingest writer."""

    dialect = SQLITE

    def __init__(self, url: str) -> None:
        super().__init__(url)
        path = url[len("sqlite://"):] if url.startswith("sqlite://") else url
        self.path = path
        self._issued: dict[str, int] = {}
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=30.0,
                                        check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a crash of the process loses nothing committed; a power
            # loss may lose the last transactions, rows and checkpoints together.
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA cache_size=-65536")
            self.conn.execute("PRAGMA temp_store=MEMORY")
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open SQLite database {path}: {exc} (does its "
                                "directory exist, and may this user write there?)") from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.conn.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def script(self, sql: str) -> None:
        # executescript() would commit first; run statement by statement instead.
        for stmt in _statements(sql):
            self.conn.execute(stmt)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        if rows:
            marks = ",".join("?" * len(columns))
            self.conn.executemany(
                f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", rows)

    def reserve_ids(self, table: str, n: int) -> int:
        # Ids handed out and not yet committed are remembered in this connection.
        top = int(self.scalar(f"SELECT coalesce(max(id), 0) FROM {table}"))
        first = max(top, self._issued.get(table, 0)) + 1
        self._issued[table] = first + n - 1
        return first

    def try_lock(self, name: str) -> bool:
        fd = os.open(f"{self.path}.{name}-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._locks.append(fd)
        return True

    def defer_checkpoints(self) -> None:
        # A writer's COMMIT otherwise copies the log back into the database once it holds
        # 1,000 pages, while it holds the write lock.
        self.conn.execute("PRAGMA wal_autocheckpoint=0")

    def checkpoint(self) -> None:
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def bucket(self, column: str, seconds: int) -> str:
        return f"(CAST({column} / {seconds} AS INTEGER) * {seconds})"

    def table_bytes(self) -> dict[str, int]:
        try:
            rows = self.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
        except sqlite3.OperationalError:  # built without SQLITE_ENABLE_DBSTAT_VTAB
            return {}
        index_of: dict[str, str] = dict(self.execute(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'"))
        sizes: dict[str, int] = {}
        for name, size in rows:
            table = str(index_of.get(name, name))
            sizes[table] = sizes.get(table, 0) + int(size)
        return sizes

    def close(self) -> None:
        for fd in self._locks:
            os.close(fd)
        self._locks.clear()
        self.conn.close()


class PostgresDatabase(Database):
    """PostgreSQL through psycopg 3; bulk inserts by COPY."""

    dialect = POSTGRESQL
    ids_unique_across_connections = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        try:
            import psycopg  # noqa: PLC0415 - only for --db postgresql://
        except ImportError as exc:
            raise DatabaseError(
                "PostgreSQL needs psycopg: pip install 'squidguard-bloom[monitor]'") from exc
        self._psycopg = psycopg
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot connect to {redact(url)}: {exc}".strip()) from exc
        self._sql: dict[str, str] = {}
        self._staged: set[str] = set()
        self._types: dict[str, list[str]] = {}  # "table(columns)" -> their declared types
        self._past_stored: set[str] = set()  # tables whose ids reserve_ids has checked

    def _pg(self, sql: str) -> str:
        out = self._sql.get(sql)
        if out is None:
            out = self._sql[sql] = sql.replace("%", "%%").replace("?", "%s")
        return out

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = self.conn.execute(self._pg(sql) if params else sql, params or None)
        return cur.fetchall() if cur.description is not None else []

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(self._pg(sql), rows)

    def script(self, sql: str) -> None:
        self.conn.execute(sql)  # no parameters: simple protocol, several statements

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self.conn.transaction():
                yield
        except BaseException:
            self._staged.clear()  # temp tables created in it are gone with it
            raise

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        # Binary COPY with the columns' own types: the client does not format or escape text
        # (0.5 against 1.3 us of its CPU per access row, the server's the same, measured).
        if not rows:
            return
        types = self._column_types(table, columns)
        with self.conn.cursor() as cur, cur.copy(
            f"COPY {table} ({','.join(columns)}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(types)
            write = copy.write_row
            for row in rows:
                write(row)

    def _column_types(self, table: str, columns: Sequence[str]) -> list[str]:
        key = f"{table}({','.join(columns)})"
        types = self._types.get(key)
        if types is None:
            # to_regclass also finds add_to's temporary staging twins (pg_temp is searched first)
            declared: dict[str, str] = dict(self.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "WHERE a.attrelid = to_regclass(?) AND a.attnum > 0 AND NOT a.attisdropped",
                (table,)))
            missing = [c for c in columns if c not in declared]
            if missing:
                raise DatabaseError(f"table {table} has no column {', '.join(missing)}: is the "
                                    "database's schema older than this program? (run "
                                    "squidguard-bloom-monitor migrate)")
            types = self._types[key] = [declared[c] for c in columns]
        return types

    def add_to(self, table: str, keys: Sequence[str], values: Sequence[str],
               rows: Sequence[Row], fixed: Sequence[str] = ()) -> None:
        # One COPY into a temporary twin and one INSERT ... SELECT: a row-by-row upsert
        # costs a round trip and a plan execution per bucket.
        if not rows:
            return
        stage = f"stage_{table}"
        if stage not in self._staged:
            self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) "
                              "ON COMMIT DELETE ROWS")
            self._staged.add(stage)
        columns = (*keys, *fixed, *values)
        self.insert_rows(stage, columns, rows)
        self.conn.execute(_add_sql(table, keys, values, fixed, f"SELECT {', '.join(columns)} "
                                   f"FROM {stage}"))
        self.conn.execute(f"DELETE FROM {stage}")

    def reserve_ids(self, table: str, n: int) -> int:
        # A block of the identity's sequence; rows inserted without an id get later numbers.
        # Taking n values is nextval and setval, so a transaction lock keeps two connections'
        # blocks apart. Only a connection's first block also goes past the stored ids (rows
        # copied in with ids of their own): max(id) walks past every row another connection
        # is still copying, which cost ingest's workers 0.3 s of the server's CPU a million
        # rows when it was asked for each block. The sequence is not rolled back: a failed
        # batch leaves a gap.
        n = max(n, 1)
        seq = f"pg_get_serial_sequence('{table}', 'id')"
        start = f"nextval({seq})"
        if table not in self._past_stored:
            start = f"greatest({start}, (SELECT coalesce(max(id), 0) + 1 FROM {table}))"
        last = self.scalar(f"WITH held AS MATERIALIZED (SELECT pg_advisory_xact_lock(?)) "
                           f"SELECT setval({seq}, {start} + ? - 1) FROM held",
                           (_PG_LOCKS["ids"], n))
        self._past_stored.add(table)
        return int(last) - n + 1

    def try_lock(self, name: str) -> bool:
        return bool(self.scalar("SELECT pg_try_advisory_lock(?)", (_PG_LOCKS[name],)))

    def bucket(self, column: str, seconds: int) -> str:
        return f"(floor({column} / {seconds})::bigint * {seconds})"

    def table_bytes(self) -> dict[str, int]:
        rows = self.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = current_schema()")
        return {name: int(size) for name, size in rows}

    def close(self) -> None:
        self.conn.close()


def _add_sql(table: str, keys: Sequence[str], values: Sequence[str], fixed: Sequence[str],
             source: str) -> str:
    columns = (*keys, *fixed, *values)
    if source == "VALUES":
        source = f"VALUES ({', '.join('?' * len(columns))})"
    sets = ", ".join(f"{v} = {table}.{v} + excluded.{v}" for v in values)
    return (f"INSERT INTO {table} ({', '.join(columns)}) {source} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}")


def _statements(sql: str) -> list[str]:
    """Split a migration file into statements: at each ';' that ends a complete statement, so
    a trigger's body stays whole (no '--' or ';' inside our literals)."""
    body = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    out: list[str] = []
    pending = ""
    for piece in body.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                out.append(pending.strip())
            pending = ""
    if pending.strip(" \t\n;"):
        out.append(pending.strip().removesuffix(";"))
    return out
