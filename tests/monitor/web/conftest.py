"""Fixtures of the dashboard tests: a database with shipped logs, ingest, serve, a browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .browser import Browser
from .servers import Process, Served, start_ingest, start_serve


@pytest.fixture
def incoming(tmp_path: Path) -> Path:
    root = tmp_path / "incoming"
    root.mkdir()
    return root


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = start_serve(str(tmp_path / "monitor.db"), tmp_path)
    try:
        yield s
    finally:
        s.process.stop()


@pytest.fixture
def ingest(served: Served, incoming: Path, tmp_path: Path) -> Iterator[Process]:
    proc = start_ingest(served.db, incoming, tmp_path)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()
