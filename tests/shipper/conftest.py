"""Fixtures for the shipper tests: a private sshd per test, and the shipper run against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Harness
from .servers import FaultProxy, Sshd


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    server = Sshd(tmp_path / "sshd")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def harness(tmp_path: Path, sshd: Sshd) -> Iterator[Harness]:
    h = Harness(tmp_path, sshd)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def proxy(sshd: Sshd) -> Iterator[FaultProxy]:
    p = FaultProxy(sshd.port)
    sshd.trust_port(p.port)
    try:
        yield p
    finally:
        p.close()
