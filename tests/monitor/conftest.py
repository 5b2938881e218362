"""Fixtures of the monitor tests: a SQLite file and a private PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.monitor.pgserver import SETUP_HINT, PostgresServer, find_bindir


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    if find_bindir() is None:
        pytest.fail(f"PostgreSQL is not installed: {SETUP_HINT}")
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each dialect."""
    if request.param == "sqlite":
        return str(tmp_path / "monitor.db")
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.new_database()
