"""The schema and its migrations on real SQLite and real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest

from squidguard_bloom.monitor.errors import DatabaseError
from squidguard_bloom.monitor.migrate import applied, available, migrate, open_database

TABLES = {"schema_migrations", "proxies", "streams", "segments", "access", "decisions",
          "events", "unparsed", "rollup_lines", "rollup_decisions", "rollup_cache",
          "rollup_blocked_hosts", "rollup_hosts", "rollup_clients"}


def test_both_dialects_ship_the_same_migrations() -> None:
    """Every version exists for both dialects, under the same name."""
    sqlite = [(v, n) for v, n, _ in available("sqlite")]
    pg = [(v, n) for v, n, _ in available("postgresql")]
    assert sqlite == pg and sqlite[0] == (1, "initial")


def test_migrations_apply_once_and_create_every_table(db_url: str) -> None:
    with open_database(db_url) as db:
        assert applied(db) == [v for v, _n, _s in available(db.dialect)]
        assert set(db.table_bytes()) >= TABLES
        assert migrate(db) == []  # nothing left to do
    with open_database(db_url) as db:  # a second start applies nothing either
        assert applied(db) == [v for v, _n, _s in available(db.dialect)]


def test_rollup_upsert_adds_on_both(db_url: str) -> None:
    """The ON CONFLICT ... DO UPDATE form the ingest relies on adds to existing counts."""
    sql = ("INSERT INTO rollup_decisions (minute, proxy_id, target, action, n) "
           "VALUES (?, ?, ?, ?, ?) ON CONFLICT (minute, proxy_id, target, action) "
           "DO UPDATE SET n = rollup_decisions.n + excluded.n")
    with open_database(db_url) as db:
        with db.transaction():
            db.executemany(sql, [(60, 1, "porn", "REDIRECT", 2), (60, 1, "porn", "REDIRECT", 3)])
        assert db.execute("SELECT minute, target, n FROM rollup_decisions") == [(60, "porn", 5)]


def test_a_database_newer_than_the_code_is_refused(db_url: str) -> None:
    with open_database(db_url) as db:
        db.execute("INSERT INTO schema_migrations (version, name, applied) VALUES (999, 'x', 0)")
    with pytest.raises(DatabaseError, match="schema version 999, newer than this"):
        open_database(db_url)


def test_failed_transaction_leaves_nothing(db_url: str) -> None:
    with open_database(db_url) as db:
        with pytest.raises(RuntimeError), db.transaction():
            db.execute("INSERT INTO proxies (name, first_seen) VALUES (?, ?)", ("p", 1.0))
            raise RuntimeError("boom")
        assert db.execute("SELECT count(*) FROM proxies") == [(0,)]


def test_migrate_command(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-m", "squidguard_bloom.monitor", "--db",
                          str(tmp_path / "m.db"), "migrate"], capture_output=True, text=True,
                         check=False, timeout=60)
    newest = available("sqlite")[-1][0]
    assert (out.returncode, out.stdout, out.stderr) == (
        0, f"{tmp_path / 'm.db'}: schema version {newest}\n", "")


def test_unopenable_database_says_what_to_do(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-m", "squidguard_bloom.monitor", "--db",
                          str(tmp_path / "missing" / "m.db"), "migrate"], capture_output=True,
                         text=True, check=False, timeout=60)
    assert out.returncode == 1
    assert out.stderr.startswith(f"squidguard-bloom-monitor: cannot open SQLite database "
                                 f"{tmp_path / 'missing' / 'm.db'}: ")
    assert "does its directory exist" in out.stderr
